"""The manual clock: policies take ``now`` as an argument, so tests drive time by hand."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """A fake monotonic clock that moves only when told to: the one clock every test uses."""

    __slots__ = ("_t",)

    def __init__(self, start: float = 1000.0) -> None:
        # Starts well above zero so that "now - period" never needs special cases in tests.
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back (advance({seconds!r}))")
        self._t += seconds
        return self._t

    def set(self, t: float) -> float:
        """Jump to time ``t`` (not earlier than now) and return it."""
        if t < self._t:
            raise ValueError(f"a monotonic clock cannot go back (set({t!r}) at {self._t!r})")
        self._t = float(t)
        return self._t

    def __call__(self) -> float:
        # Lets the clock stand in for ``time.monotonic`` where a plain callable is expected.
        return self._t

    def __repr__(self) -> str:
        return f"ManualClock({self._t!r})"
