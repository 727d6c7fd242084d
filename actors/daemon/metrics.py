"""Prometheus metrics on a registry of the daemon's own (never the process-global one).

Counters and histograms are updated by the request handler from what it already holds (the
response or error and the request's attempts); gauges are read at scrape time from the lease
table's snapshot and the daemon's state. Neither costs an actor ask.

Label values are bounded: ``model`` is a name the configuration knows (anything else is
counted as ``unknown``), ``instance`` and ``route`` come from the configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.response import Attempt, TokenUsage

if TYPE_CHECKING:
    from actors.runtime import Runtime

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, float("inf"))
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}
_STATES = ("closed", "half_open", "open", "parked", "disabled")


class Metrics:
    """The daemon's metrics; ``render()`` is the ``/metrics`` body."""

    def __init__(self, runtime: Runtime, daemon: Callable[[], dict[str, float]]) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        p = "llm_actors_"
        self.requests = Counter(
            p + "requests",
            "Requests answered, by API, model and HTTP status",
            ["api", "model", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            p + "request_duration_seconds",
            "Time to answer a request (to its last byte)",
            ["api", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_attempts = Counter(
            p + "request_attempts", "Attempts made by requests, by model", ["model"], registry=registry
        )
        self.fallbacks = Counter(
            p + "fallbacks", "Requests that left their first target, by model", ["model"], registry=registry
        )
        self.tokens = Counter(
            p + "tokens",
            "Tokens reported by providers, by model and kind",
            ["model", "kind"],
            registry=registry,
        )
        self.attempts = Counter(
            p + "instance_attempts",
            "Attempts on an instance, by outcome",
            ["instance", "outcome"],
            registry=registry,
        )
        self.attempt_latency = Histogram(
            p + "instance_attempt_duration_seconds",
            "Time of one attempt on an instance",
            ["instance"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.reloads = Counter(
            p + "config_reloads", "Configuration reloads, by result", ["result"], registry=registry
        )
        registry.register(_Snapshot(runtime, daemon))
        # Each request updates several labelled series; ``labels()`` validates and locks every
        # time, so the children are kept here (as many as the bounded label values allow).
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(
        self,
        api: str,
        model: str,
        status: int,
        duration: float,
        attempts: Sequence[Attempt] = (),
        first_target: str = "",
        usage: TokenUsage | None = None,
    ) -> None:
        """Count one finished request and its attempts."""
        child = self._child
        child(self.requests, api, model, str(status)).inc()
        child(self.latency, api, model).observe(duration)
        if attempts:
            child(self.request_attempts, model).inc(len(attempts))
            if any(a.target != first_target for a in attempts):
                child(self.fallbacks, model).inc()
            for a in attempts:
                child(self.attempts, a.instance, a.outcome.value).inc()
                child(self.attempt_latency, a.instance).observe(a.duration)
        if usage is not None:
            child(self.tokens, model, "prompt").inc(usage.prompt_tokens)
            child(self.tokens, model, "completion").inc(usage.completion_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """Gauges read at scrape time: instance states, breakers, parking, in-flight counts."""

    def __init__(self, runtime: Runtime, daemon: Callable[[], dict[str, float]]) -> None:
        self.runtime = runtime
        self.daemon = daemon

    def describe(self) -> Iterable[Metric]:
        return []  # collected fresh on each scrape; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        p = "llm_actors_"
        state = GaugeMetricFamily(
            p + "instance_state", "1 for an instance's current state", labels=["instance", "state"]
        )
        breaker = GaugeMetricFamily(
            p + "breaker_state",
            "Circuit breaker per instance and route: 0 closed, 1 half-open, 2 open",
            labels=["instance", "route"],
        )
        parked = GaugeMetricFamily(
            p + "instance_parked", "1 while an instance is parked (rate limited)", labels=["instance"]
        )
        disabled = GaugeMetricFamily(
            p + "instance_disabled", "1 while an instance is disabled", labels=["instance"]
        )
        in_flight = GaugeMetricFamily(
            p + "instance_in_flight", "Calls in flight on an instance", labels=["instance"]
        )
        table = self.runtime.table
        snapshot: dict[str, Any] = table.snapshot(time.monotonic()) if table is not None else {}
        for name, snap in snapshot.items():
            for s in _STATES:
                state.add_metric([name, s], 1.0 if snap["state"] == s else 0.0)
            for route, b in snap["breakers"].items():
                breaker.add_metric([name, route], float(_BREAKER.get(b["state"], 0)))
            parked.add_metric([name], 1.0 if snap["state"] == "parked" else 0.0)
            disabled.add_metric([name], 1.0 if snap["state"] == "disabled" else 0.0)
            in_flight.add_metric([name], float(snap["in_flight"]))
        yield from (state, breaker, parked, disabled, in_flight)
        if table is not None:
            yield from _resilience(self.runtime.resilience_stats())
        for key, value in self.daemon().items():
            yield GaugeMetricFamily(p + key, f"daemon {key.replace('_', ' ')}", value=float(value))


def _resilience(r: dict[str, Any]) -> Iterable[Metric]:
    """Counters kept by the retry budgets, hedging, pacing and outlier detection."""
    p = "llm_actors_"
    exhausted = CounterMetricFamily(
        p + "retry_budget_exhausted",
        "Retries the retry budget refused (the request ended with its last error), by route",
        labels=["route"],
    )
    for route, snap in r["retry_budgets"].items():
        exhausted.add_metric([route], snap["exhausted_total"])
    hedges = CounterMetricFamily(
        p + "hedges",
        "Hedged attempts: won (answered first), lost (cancelled), refused (no budget)",
        labels=["outcome"],
    )
    for outcome, count in r["hedges"].items():
        hedges.add_metric([outcome], count)
    paced = CounterMetricFamily(
        p + "paced", "Answers whose rate-limit headers parked or paced their instance", labels=["instance"]
    )
    for name, count in r["paced"].items():
        paced.add_metric([name], count)
    ejections = CounterMetricFamily(
        p + "ejections", "Pool members ejected as slow outliers, by pool", labels=["pool"]
    )
    for label, snap in r["outlier_detection"].items():
        ejections.add_metric([label.removeprefix("pool:")], snap["ejections_total"])
    return (exhausted, hedges, paced, ejections)
