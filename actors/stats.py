"""Call statistics: counts, tokens and latency percentiles over a bounded window.

One class serves instances, pools, groups and wrappers. It is not thread-safe by itself: an
actor owns one, or a wrapper guards one with a lock.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["CallStats", "percentile"]

#: Latencies kept for percentiles; older ones age out.
LATENCY_WINDOW = 4096


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of already sorted values, nearest-rank; None when empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[rank]


class CallStats:
    """Counts of requests by result, token totals and a latency window."""

    __slots__ = (
        "attempts",
        "cancelled_requests",
        "completion_tokens",
        "failed_requests",
        "fallbacks",
        "latencies",
        "outcomes",
        "prompt_tokens",
        "successful_requests",
        "total_requests",
        "total_response_time",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total_requests = 0
        self.successful_requests = 0
        self.failed_requests = 0
        self.cancelled_requests = 0
        self.total_response_time = 0.0
        self.attempts = 0
        self.fallbacks = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)

    def record(
        self,
        success: bool | None,
        response_time: float,
        *,
        attempts: int = 1,
        fallbacks: int = 0,
        usage: Any = None,
        outcome: str | None = None,
        outcomes: Iterable[str] = (),
    ) -> None:
        """Count one request; ``success=None`` means it was cancelled.

        ``outcome`` is the kind of a single attempt; ``outcomes``, of each of a request's attempts.
        """
        self.total_requests += 1
        if success is None:
            self.cancelled_requests += 1
        elif success:
            self.successful_requests += 1
        else:
            self.failed_requests += 1
        self.total_response_time += response_time
        self.latencies.append(response_time)
        self.attempts += attempts
        self.fallbacks += fallbacks
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
        if outcome is not None:
            self.outcomes[outcome] += 1
        self.outcomes.update(outcomes)

    def to_dict(self) -> dict[str, Any]:
        """The original design's keys, plus percentiles, attempts, fallbacks and tokens."""
        ordered = sorted(self.latencies)
        n = self.total_requests
        return {
            "total_requests": n,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "cancelled_requests": self.cancelled_requests,
            "total_response_time": self.total_response_time,
            "avg_response_time": self.total_response_time / n if n else 0.0,
            "success_rate": self.successful_requests / n if n else 0.0,
            "latency_p50": percentile(ordered, 0.50),
            "latency_p95": percentile(ordered, 0.95),
            "latency_p99": percentile(ordered, 0.99),
            "attempts": self.attempts,
            "fallbacks": self.fallbacks,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "outcomes": dict(self.outcomes),
        }
