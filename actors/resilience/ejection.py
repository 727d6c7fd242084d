"""Outlier ejection: a pool member much slower than the others is taken out for a while.

A member whose recent time to first byte (the median of its last ``RECENT`` measurements)
exceeds ``latency_factor`` × the pool's median (the median of the members' recent values) is
ejected for ``base_ejection_time`` × the number of times it has been ejected. A member is judged
only after ``min_requests`` measurements, and at most ``max_ejection_percent`` of the pool
(rounded down) is ejected at once, so the last healthy members always stay: with the default
34 %, a pool of two never ejects, one of three ejects at most one. A member coming back starts
measuring afresh, so old samples cannot eject it again at once.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["RECENT", "OutlierDetector"]

#: Measurements that make a member's "recent" latency.
RECENT = 20


class _Member:
    __slots__ = ("ejected_until", "recent", "samples", "times")

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=RECENT)
        self.recent: float | None = None  # median of ``samples`` once there are enough
        self.ejected_until: float | None = None
        self.times = 0  # ejections so far


class OutlierDetector:
    """A pool's ``outlier_detection``: ``record`` latencies, ask ``is_ejected``."""

    __slots__ = (
        "base_ejection_time",
        "ejections",
        "latency_factor",
        "max_ejection_percent",
        "members",
        "min_requests",
    )

    def __init__(
        self,
        members: Iterable[str],
        *,
        latency_factor: float = 3.0,
        min_requests: int = 5,
        max_ejection_percent: float = 34.0,
        base_ejection_time: float = 30.0,
    ) -> None:
        if not latency_factor > 1 or min_requests < 1 or not 0 <= max_ejection_percent <= 100:
            raise ValueError("need latency_factor > 1, min_requests >= 1, 0 <= max_ejection_percent <= 100")
        if not base_ejection_time > 0:
            raise ValueError(f"base_ejection_time must be positive, got {base_ejection_time!r}")
        self.latency_factor = float(latency_factor)
        self.min_requests = int(min_requests)
        self.max_ejection_percent = float(max_ejection_percent)
        self.base_ejection_time = float(base_ejection_time)
        self.members = {name: _Member() for name in members}
        #: Ejections since start (for statistics).
        self.ejections = 0

    def adopt(self, previous: OutlierDetector, names: Iterable[str]) -> None:
        """After a reload: carry on ``previous``'s count of ejections and, for the members among
        ``names`` (instances whose settings did not change), their measurements and ejections.

        The member records are shared, not copied: an attempt leased before the reload measures
        into the same record as one leased after it.
        """
        self.ejections = previous.ejections
        for name in names:
            old = previous.members.get(name)
            if old is not None and name in self.members:
                self.members[name] = old

    def is_ejected(self, name: str, now: float) -> bool:
        member = self.members.get(name)
        return member is not None and member.ejected_until is not None and now < member.ejected_until

    def ejected_until(self, name: str, now: float) -> float | None:
        """When ``name``'s ejection ends, or None when it is not ejected."""
        return self.members[name].ejected_until if self.is_ejected(name, now) else None

    def ejected_count(self, now: float) -> int:
        return sum(1 for name in self.members if self.is_ejected(name, now))

    def record(self, name: str, seconds: float, now: float) -> float | None:
        """Take one measurement of ``name``; returns the end of its ejection if this ejects it."""
        member = self.members.get(name)
        if member is None or not 0 <= seconds < math.inf:
            return None
        if member.ejected_until is not None and now >= member.ejected_until:
            member.ejected_until = None  # back: judged on new measurements only
            member.samples.clear()
            member.recent = None
        member.samples.append(seconds)
        if len(member.samples) < self.min_requests:
            return None
        member.recent = statistics.median(member.samples)
        if member.ejected_until is not None:
            return None
        measured = [
            m.recent
            for n, m in self.members.items()
            if m.recent is not None and (n == name or not self.is_ejected(n, now))
        ]
        if len(measured) < 2:
            return None
        median = statistics.median(measured)
        if not member.recent > self.latency_factor * median:
            return None
        allowed = math.floor(len(self.members) * self.max_ejection_percent / 100.0 + 1e-9)
        if self.ejected_count(now) + 1 > allowed:
            return None
        member.times += 1
        member.ejected_until = now + self.base_ejection_time * member.times
        self.ejections += 1
        return member.ejected_until

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "ejections_total": self.ejections,
            "ejected": {
                name: m.ejected_until for name, m in self.members.items() if self.is_ejected(name, now)
            },
            "recent_latency": {name: m.recent for name, m in self.members.items()},
        }
