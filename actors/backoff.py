"""Backoff between retries: exponential with jitter, as a small policy value.

The policy only decides how long to wait; the sync and async drivers do the waiting.
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "fits"]

_JITTERS = ("full", "equal", "none")


class Backoff:
    """Exponential backoff: ``min(max_delay, base * factor ** attempt)``, then jittered.

    ``jitter="full"`` waits a uniform time in ``[0, d]``; ``"equal"`` in ``[d/2, d]`` (never
    shorter than half, so a retry storm still backs off); ``"none"`` waits exactly ``d``.
    """

    __slots__ = ("_rng", "base", "factor", "jitter", "max_delay")

    def __init__(
        self,
        base: float,
        factor: float = 2.0,
        max_delay: float = 30.0,
        *,
        jitter: str = "full",
        rng: random.Random | None = None,
    ) -> None:
        if base < 0:
            raise ValueError(f"base delay must not be negative, got {base!r}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor!r}")
        if max_delay < 0:
            raise ValueError(f"max_delay must not be negative, got {max_delay!r}")
        if jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {', '.join(_JITTERS)}; got {jitter!r}")
        self.base = float(base)
        self.factor = float(factor)
        self.max_delay = float(max_delay)
        self.jitter = jitter
        self._rng = rng if rng is not None else random.Random()

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay before retry number ``attempt`` (0 for the first retry)."""
        if attempt < 0:
            raise ValueError(f"attempt index must not be negative, got {attempt!r}")
        try:
            delay = self.base * self.factor**attempt
        except OverflowError:
            return self.max_delay
        return min(delay, self.max_delay)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        d = self.ceiling(attempt)
        if self.jitter == "full":
            return self._rng.uniform(0.0, d)
        if self.jitter == "equal":
            return d / 2 + self._rng.uniform(0.0, d / 2)
        return d

    __call__ = delay

    def __repr__(self) -> str:
        return (
            f"Backoff(base={self.base:g}, factor={self.factor:g}, max_delay={self.max_delay:g}, "
            f"jitter={self.jitter!r})"
        )


def fits(now: float, delay: float, deadline: float | None) -> bool:
    """Whether waiting ``delay`` seconds from ``now`` still ends by ``deadline`` (None: no deadline)."""
    return deadline is None or now + delay <= deadline
