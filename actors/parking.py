"""Parking rate-limited instances: when a 429 says to come back, and the parked-until state.

``parse_retry_after`` reads the server's hint; precedence, first valid value wins:

1. ``retry-after-ms`` (milliseconds; OpenAI, Azure);
2. ``retry-after`` (seconds, or an HTTP date);
3. the reset headers: OpenAI ``x-ratelimit-reset-{requests,tokens}`` (durations like ``6m0s``)
   and Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset``
   (RFC 3339 timestamps). Only an exhausted limit blocks us, so when the matching
   ``*-remaining`` headers mark some limits as exhausted (remaining 0), the latest reset among
   those is used; when none does (or they are absent), the latest reset of all, which is never
   too early.

Negative, non-finite and unparsable values are ignored; a date already past means "now" (0);
values above ``cap`` (one hour by default) are cut to ``cap`` so a daily quota reset parks the
instance for an hour and then lets a call find out, rather than for the rest of the day.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["MAX_RETRY_AFTER", "Parking", "parse_duration", "parse_retry_after"]

#: The longest park any header can ask for, in seconds.
MAX_RETRY_AFTER = 3600.0

# (reset header, matching remaining header)
_RESETS = (
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
    ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
    ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
    ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
)

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(_NUMBER)
# Longer units first, so "ms" is not read as "m" followed by garbage.
_PART = re.compile(rf"({_NUMBER})(ms|us|µs|μs|ns|h|m|s)")
_DURATION = re.compile(rf"(?:{_NUMBER}(?:ms|us|µs|μs|ns|h|m|s))+")


def _plain(text: str) -> float | None:
    # Only unsigned decimals: float() would also take "-1", "nan", "inf" and "1_000".
    return float(text) if _PLAIN.fullmatch(text) else None


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or a bare number."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    return _plain(text)


def _seconds_until(when: datetime, now_wall: float) -> float:
    if when.tzinfo is None:  # HTTP dates are GMT; a zone-less timestamp is read as UTC too
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_wall)


def _http_date(text: str, now_wall: float) -> float | None:
    try:
        return _seconds_until(parsedate_to_datetime(text), now_wall)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _rfc3339(text: str, now_wall: float) -> float | None:
    try:
        return _seconds_until(datetime.fromisoformat(text.strip().upper()), now_wall)
    except (ValueError, OverflowError):
        return None


def _sane(seconds: float | None, cap: float) -> float | None:
    if seconds is None or not 0 <= seconds < math.inf:  # also rejects NaN
        return None
    return min(seconds, cap)


def _reset(text: str, now_wall: float) -> float | None:
    seconds = parse_duration(text)
    return seconds if seconds is not None else _rfc3339(text, now_wall)


def _exhausted(text: str | None) -> bool:
    if text is None:
        return False
    try:
        return float(text) <= 0
    except ValueError:
        return False


def parse_retry_after(
    headers: Mapping[str, str], now_wall: float | None = None, *, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds the server asks us to wait, from a response's headers; None when it gave no hint.

    ``now_wall`` is the wall-clock time (``time.time()``) the dates are measured from.
    """
    h = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    wall = time.time() if now_wall is None else now_wall

    value = h.get("retry-after-ms")
    if value is not None:
        ms = _plain(value)
        if ms is not None and (seconds := _sane(ms / 1000.0, cap)) is not None:
            return seconds
    value = h.get("retry-after")
    if value is not None:
        seconds = _plain(value)
        if seconds is None:
            seconds = _http_date(value, wall)
        if (seconds := _sane(seconds, cap)) is not None:
            return seconds
    resets: list[float] = []
    blocking: list[float] = []
    for reset_key, remaining_key in _RESETS:
        value = h.get(reset_key)
        if value is None:
            continue
        seconds = _sane(_reset(value, wall), cap)
        if seconds is None:
            continue
        resets.append(seconds)
        if _exhausted(h.get(remaining_key)):
            blocking.append(seconds)
    if blocking:
        return max(blocking)
    return max(resets) if resets else None


class Parking:
    """Whether one instance is parked (rate limited) and until when.

    Without a server hint, ``park_default`` backs off exponentially per consecutive 429
    (``base``, ``base * factor``, ... capped at ``max_delay``); a success resets the streak.
    """

    __slots__ = ("_reason", "_streak", "_until", "base", "factor", "max_delay")

    def __init__(self, base: float = 1.0, factor: float = 2.0, max_delay: float = 60.0) -> None:
        if not base > 0 or factor < 1 or max_delay < base:
            raise ValueError(
                f"need base > 0, factor >= 1, max_delay >= base; got {base!r}, {factor!r}, {max_delay!r}"
            )
        self.base = float(base)
        self.factor = float(factor)
        self.max_delay = float(max_delay)
        self._until: float | None = None
        self._reason: str | None = None
        self._streak = 0

    def park(self, now: float, seconds: float, reason: str = "rate limited", *, count: bool = True) -> float:
        """Park until ``now + seconds`` (never earlier than an existing park); returns the end.

        ``count=False`` (a park that headers asked for, not a 429) leaves the 429 streak alone.
        """
        if not seconds > 0:  # negative or NaN: the hint is garbage, park for no time
            seconds = 0.0
        if count:
            self._streak += 1
        until = now + seconds
        if self._until is None or until > self._until or self._until <= now:
            self._until = until
            self._reason = reason
        return self._until

    def park_default(self, now: float, reason: str = "rate limited (no retry hint)") -> float:
        """Park for the next step of the default backoff; returns the seconds chosen."""
        try:
            seconds = min(self.base * self.factor**self._streak, self.max_delay)
        except OverflowError:
            seconds = self.max_delay
        self.park(now, seconds, reason)
        return seconds

    def record_success(self) -> None:
        """A call succeeded: the next hint-less 429 starts the backoff from ``base`` again."""
        self._streak = 0

    def unpark(self) -> None:
        """Lift the park now (a passing probe, a reload)."""
        self._until = None
        self._reason = None

    def is_parked(self, now: float) -> bool:
        until = self._until
        return until is not None and now < until

    @property
    def parked_until(self) -> float | None:
        """When the latest park ends (possibly already past); None if never parked or unparked."""
        return self._until

    @property
    def reason(self) -> str | None:
        """Why the instance was parked, for health output."""
        return self._reason

    @property
    def streak(self) -> int:
        """Consecutive 429s since the last success."""
        return self._streak

    def snapshot(self, now: float) -> dict[str, Any]:
        """State for stats and health output."""
        parked = self.is_parked(now)
        return {
            "parked": parked,
            "parked_until": self._until if parked else None,
            "reason": self._reason if parked else None,
            "rate_limit_streak": self._streak,
        }

    def __repr__(self) -> str:
        return f"Parking(until={self._until!r}, reason={self._reason!r}, streak={self._streak})"
