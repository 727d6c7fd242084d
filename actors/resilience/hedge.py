"""Hedged requests: when the first byte is late, ask another instance too; the first answer wins.

``HedgePolicy`` decides *when* an attempt is late: ``after`` seconds, or ``"p95"``, the 95th
percentile of the instance's measured time to first byte (``TtfbSamples``). Until an instance
has ``MIN_SAMPLES`` measurements its p95 is unknown and its attempts are not hedged (a guess
could double the load on a pool that is merely warming up). ``max_extra`` caps the hedges of
one request; each hedge also counts against the retry budget (the drivers ask it).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

__all__ = ["MIN_SAMPLES", "HedgePolicy", "TtfbSamples"]

#: Measurements an instance needs before its p95 is trusted.
MIN_SAMPLES = 20


class TtfbSamples:
    """The last ``size`` times to first byte of one instance, and their 95th percentile."""

    __slots__ = ("_p95", "_samples", "_stale", "size")

    def __init__(self, size: int = 200) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size!r}")
        self.size = size
        self._samples: deque[float] = deque(maxlen=size)
        self._p95: float | None = None
        self._stale = 0  # samples since the percentile was computed

    def add(self, seconds: float) -> None:
        if not 0 <= seconds < math.inf:
            return
        self._samples.append(seconds)
        self._stale += 1

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the samples (nearest rank), or None when there are none."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1]

    def p95(self) -> float | None:
        """The 95th percentile, recomputed at most every tenth sample (it is read per attempt)."""
        if len(self._samples) < MIN_SAMPLES:
            return None
        if self._p95 is None or self._stale >= 10:
            self._p95 = self.percentile(0.95)
            self._stale = 0
        return self._p95


class HedgePolicy:
    """``fallback_config.hedge``: hedge an attempt ``after`` seconds (or the instance's p95)."""

    __slots__ = ("after", "max_extra")

    def __init__(self, after: float | Literal["p95"] = 0.2, max_extra: int = 1) -> None:
        if after != "p95" and not (isinstance(after, (int, float)) and 0 < after < math.inf):
            raise ValueError(f"after must be a positive number of seconds or 'p95', got {after!r}")
        if max_extra < 1:
            raise ValueError(f"max_extra must be at least 1, got {max_extra!r}")
        self.after = after
        self.max_extra = int(max_extra)

    def delay(self, samples: TtfbSamples | None) -> float | None:
        """Seconds into an attempt on an instance with these ``samples`` to hedge it; None: never."""
        if self.after == "p95":
            return samples.p95() if samples is not None else None
        return float(self.after)

    def should_hedge(self, elapsed: float, extra_so_far: int, samples: TtfbSamples | None) -> bool:
        """Whether an attempt with no first byte after ``elapsed`` s gets another hedge now."""
        if extra_so_far >= self.max_extra:
            return False
        at = self.delay(samples)
        return at is not None and elapsed >= at

    def __repr__(self) -> str:
        return f"HedgePolicy(after={self.after!r}, max_extra={self.max_extra})"
