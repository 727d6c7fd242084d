"""What the fake provider saw: per-instance counters, the arrival log and the request bodies."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["InstanceStats", "Recorder"]


class InstanceStats:
    """Counters of one instance; mutated only under the recorder's lock."""

    __slots__ = ("by_api", "in_flight", "log_keys", "peak_in_flight", "received", "requests", "statuses")

    def __init__(self, keep: int | None = None) -> None:
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.by_api: dict[str, int] = {"openai": 0, "anthropic": 0}
        self.statuses: dict[int, int] = {}
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        # One shared (instance, api) tuple per api, so a long log costs a pointer per entry.
        self.log_keys: dict[str, tuple[str, str]] = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "by_api": dict(self.by_api),
            "statuses": dict(self.statuses),
        }


class Recorder:
    """Thread-safe record of every request; the server writes, tests read and wait on it.

    Counters and the log cover every request; only the last ``keep_requests`` bodies of each
    instance are kept (None keeps all), so long benchmarks do not grow without bound.
    """

    def __init__(self, keep_requests: int | None = 1000) -> None:
        self._keep = keep_requests
        self._cond = threading.Condition(threading.Lock())
        self._stats: dict[str, InstanceStats] = {}
        self._log: list[tuple[str, str]] = []

    def begin(
        self, instance: str, api: str, body: Any, headers: dict[str, str], query: str = ""
    ) -> InstanceStats:
        """Count a request whose body has arrived; pass the result to ``end`` when it is over."""
        with self._cond:
            stats = self._stats.get(instance)
            if stats is None:
                stats = self._stats[instance] = InstanceStats(self._keep)
            stats.requests += 1
            stats.in_flight += 1
            if stats.in_flight > stats.peak_in_flight:
                stats.peak_in_flight = stats.in_flight
            stats.by_api[api] = stats.by_api.get(api, 0) + 1
            stats.received.append({"body": body, "headers": headers, "query": query})
            key = stats.log_keys.get(api)
            if key is None:
                key = stats.log_keys[api] = (instance, api)
            self._log.append(key)
            self._cond.notify_all()
        return stats

    def end(self, stats: InstanceStats, status: int | None) -> None:
        """A request is over: answered with ``status``, or None when no response was sent."""
        # ``stats`` is the object ``begin`` returned, so a request that outlives a reset
        # settles its own (discarded) counters instead of driving the new ones negative.
        with self._cond:
            stats.in_flight -= 1
            if status is not None:
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._stats = {}
            self._log = []
            self._cond.notify_all()

    def stats(self, instance: str | None = None) -> dict[str, Any]:
        with self._cond:
            if instance is not None:
                return self._stats.get(instance, InstanceStats()).snapshot()
            return {name: s.snapshot() for name, s in self._stats.items()}

    def log(self) -> list[tuple[str, str]]:
        with self._cond:
            return list(self._log)

    def requests(self, instance: str) -> list[dict[str, Any]]:
        with self._cond:
            stats = self._stats.get(instance)
            return list(stats.received) if stats else []

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate`` (called under the lock) holds, or ``timeout`` seconds pass."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout=timeout)

    def in_flight(self, instance: str | None = None) -> int:
        """Requests in flight now, for one instance or for all (a point-in-time read)."""
        if instance is not None:
            stats = self._stats.get(instance)
            return stats.in_flight if stats else 0
        return sum(s.in_flight for s in self._stats.values())
