"""The retry budget: retries may be at most a share of requests over a rolling window.

Over the last ``window`` seconds (10 s), attempts after a request's first (retries, fallbacks
and hedges) may number at most ``ratio`` × requests + ``min_per_second`` × ``window``. Past
that a request ends with its last error instead of retrying, so an outage does not multiply
the load on a provider that is already failing. The floor lets a quiet service still retry.

Callers on many threads share one budget, so its public methods take its own small lock (never
held across anything but these few additions). The window is kept as a ring of ``buckets`` counters with running totals, so a decision costs
O(1) however many requests pass; the oldest bucket leaves whole, so the window's length is
exact to one bucket (``window / buckets`` = 0.1 s).
"""

from __future__ import annotations

import math
import threading
from typing import Any

__all__ = ["DEFAULT_MIN_PER_SECOND", "DEFAULT_RATIO", "WINDOW", "RetryBudget"]

#: Seconds the budget looks back.
WINDOW = 10.0
#: Linkerd's defaults: a retry per five requests, and ten a second however quiet it is.
DEFAULT_RATIO = 0.2
DEFAULT_MIN_PER_SECOND = 10.0


class RetryBudget:
    """Counts requests and retries in a rolling window; ``try_retry`` spends one if allowed."""

    __slots__ = (
        "_bucket",
        "_lock",
        "_requests",
        "_retries",
        "_ring_requests",
        "_ring_retries",
        "buckets",
        "exhausted",
        "min_per_second",
        "ratio",
        "width",
        "window",
    )

    def __init__(
        self,
        ratio: float = DEFAULT_RATIO,
        min_per_second: float = DEFAULT_MIN_PER_SECOND,
        *,
        window: float = WINDOW,
        buckets: int = 100,
    ) -> None:
        if not (
            ratio >= 0 and min_per_second >= 0 and math.isfinite(ratio) and math.isfinite(min_per_second)
        ):
            raise ValueError(
                f"ratio and min_per_second must be finite and >= 0; got {ratio!r}, {min_per_second!r}"
            )
        if not window > 0 or buckets < 1:
            raise ValueError(f"need window > 0 and buckets >= 1; got {window!r}, {buckets!r}")
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.window = float(window)
        self.buckets = int(buckets)
        self.width = self.window / self.buckets
        self._ring_requests = [0] * self.buckets
        self._ring_retries = [0] * self.buckets
        self._requests = 0  # totals over the ring
        self._retries = 0
        self._bucket: int | None = None  # absolute index of the newest bucket
        #: Retries refused since start (for statistics).
        self.exhausted = 0
        self._lock = threading.Lock()

    def _roll(self, now: float) -> int:
        index = int(now // self.width)
        last = self._bucket
        if last is None:
            self._bucket = index
        elif index > last:
            # Empty every bucket between the newest and now (all of them after a long quiet).
            for i in range(last + 1, min(index, last + self.buckets) + 1):
                slot = i % self.buckets
                self._requests -= self._ring_requests[slot]
                self._retries -= self._ring_retries[slot]
                self._ring_requests[slot] = 0
                self._ring_retries[slot] = 0
            self._bucket = index
        # An earlier ``now`` (a stale timestamp) counts in the newest bucket: never under-counts.
        return self._bucket % self.buckets  # type: ignore[operator]

    def record_request(self, now: float) -> None:
        """A request started (its first attempt is free)."""
        with self._lock:
            slot = self._roll(now)
            self._ring_requests[slot] += 1
            self._requests += 1

    def _allowed(self, now: float) -> float:
        self._roll(now)
        return self.ratio * self._requests + self.min_per_second * self.window

    def can_retry(self, now: float) -> bool:
        """Whether one more retry fits now (spends nothing)."""
        with self._lock:
            return self._retries + 1 <= self._allowed(now)

    def try_retry(self, now: float) -> bool:
        """Spend one retry if it fits; count a refusal otherwise."""
        with self._lock:
            if self._retries + 1 <= self._allowed(now):
                slot = self._roll(now)
                self._ring_retries[slot] += 1
                self._retries += 1
                return True
            self.exhausted += 1
            return False

    def snapshot(self, now: float) -> dict[str, Any]:
        with self._lock:
            return self._snapshot(now)

    def _snapshot(self, now: float) -> dict[str, Any]:
        self._roll(now)
        return {
            "ratio": self.ratio,
            "min_per_second": self.min_per_second,
            "requests": self._requests,
            "retries": self._retries,
            "allowed": self.ratio * self._requests + self.min_per_second * self.window,
            "exhausted_total": self.exhausted,
        }

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio}, min_per_second={self.min_per_second}, "
            f"{self._retries} retries / {self._requests} requests)"
        )
