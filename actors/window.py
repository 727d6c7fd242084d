"""Limits: rolling request and token windows, a concurrency counter, and a FIFO of waiters.

Windows are exact: an admission at ``t`` occupies the half-open interval ``[t, t + period)``, so
no interval of length ``period`` ever holds more than ``limit`` admissions (or tokens). Each
stores the *expiry* of an admission (``t + period``), which makes "when does the next slot
free" a read of the oldest entry. Times are monotonic seconds; a ``now`` earlier than one
already seen is treated as the latest seen, so a stale timestamp can never over-admit.
"""

from __future__ import annotations

import collections
import math

__all__ = ["ConcurrencyLimit", "RateWindow", "TokenWindow"]


class RateWindow:
    """At most ``limit`` admissions in any ``period`` seconds (requests per minute by default)."""

    __slots__ = ("_expiries", "_last", "limit", "period")

    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        self.limit = int(limit)
        self.period = float(period)
        # Expiry times of the admissions still in the window, oldest first; never longer than limit.
        self._expiries: collections.deque[float] = collections.deque()
        self._last = -math.inf

    def _evict(self, now: float) -> float:
        if now < self._last:
            now = self._last
        else:
            self._last = now
        expiries = self._expiries
        while expiries and expiries[0] <= now:
            expiries.popleft()
        return now

    def try_acquire(self, now: float) -> bool:
        """Admit one request at ``now`` if the window has room."""
        now = self._evict(now)
        if len(self._expiries) >= self.limit:
            return False
        self._expiries.append(now + self.period)
        return True

    def count(self, now: float) -> int:
        """Admissions inside the window ending at ``now``."""
        self._evict(now)
        return len(self._expiries)

    def available(self, now: float) -> int:
        """Admissions the window would still take at ``now``."""
        self._evict(now)
        return self.limit - len(self._expiries)

    def next_free_at(self, now: float) -> float:
        """When the window next has room: ``now`` if it has room now."""
        now = self._evict(now)
        if len(self._expiries) < self.limit:
            return now
        return self._expiries[0]

    def __repr__(self) -> str:
        return f"RateWindow({len(self._expiries)}/{self.limit} per {self.period:g}s)"


class TokenWindow:
    """At most ``limit`` tokens in any ``period`` seconds (tokens per minute by default).

    ``try_spend`` reserves tokens before a call; ``record`` adds tokens learned only afterwards
    (it always succeeds, since the call already happened, and later spends wait for the excess
    to leave the window). A spend larger than ``limit`` can never fit: it is refused, and
    ``next_free_at`` says ``math.inf``.
    """

    __slots__ = ("_entries", "_last", "_used", "limit", "period")

    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if not period > 0:
            raise ValueError(f"period must be positive, got {period!r}")
        self.limit = limit
        self.period = float(period)
        self._entries: collections.deque[tuple[float, int | float]] = collections.deque()  # (expiry, tokens)
        self._used: int | float = 0
        self._last = -math.inf

    def _evict(self, now: float) -> float:
        if now < self._last:
            now = self._last
        else:
            self._last = now
        entries = self._entries
        while entries and entries[0][0] <= now:
            self._used -= entries.popleft()[1]
        return now

    def try_spend(self, now: float, tokens: int | float) -> bool:
        """Reserve ``tokens`` at ``now`` if they fit in the window."""
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens!r}")
        now = self._evict(now)
        if self._used + tokens > self.limit:
            return False
        self._add(now, tokens)
        return True

    def record(self, now: float, tokens: int | float) -> None:
        """Count ``tokens`` already used at ``now``, even past the limit."""
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens!r}")
        self._add(self._evict(now), tokens)

    def _add(self, now: float, tokens: int | float) -> None:
        if tokens:
            self._entries.append((now + self.period, tokens))
            self._used += tokens

    def used(self, now: float) -> int | float:
        """Tokens inside the window ending at ``now``."""
        self._evict(now)
        return self._used

    def available(self, now: float) -> int | float:
        """Tokens the window would still take at ``now`` (0 when over the limit)."""
        self._evict(now)
        return max(0, self.limit - self._used)

    def next_free_at(self, now: float, tokens: int | float) -> float:
        """When ``tokens`` will fit: ``now`` if they fit now, ``math.inf`` if they never can."""
        if tokens > self.limit:
            return math.inf
        now = self._evict(now)
        excess = self._used + tokens - self.limit
        if excess <= 0:
            return now
        # Only reached when refused, so walking the window is off the fast path.
        for expiry, spent in self._entries:
            excess -= spent
            if excess <= 0:
                return expiry
        return now  # unreachable: the whole window's tokens cover any excess

    def __repr__(self) -> str:
        return f"TokenWindow({self._used}/{self.limit} per {self.period:g}s)"


class ConcurrencyLimit:
    """At most ``limit`` permits out at once; releasing more than was acquired raises (a leak bug)."""

    __slots__ = ("in_flight", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        self.limit = int(limit)
        #: Permits acquired and not yet released.
        self.in_flight = 0

    def try_acquire(self) -> bool:
        """Take a permit if one is free."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give a permit back."""
        if self.in_flight <= 0:
            raise RuntimeError(
                f"permit released more often than acquired (limit {self.limit}): "
                "a lease was given back twice; every lease must be returned exactly once"
            )
        self.in_flight -= 1

    @property
    def available(self) -> int:
        """Permits free now."""
        return self.limit - self.in_flight

    def __repr__(self) -> str:
        return f"ConcurrencyLimit({self.in_flight}/{self.limit})"
