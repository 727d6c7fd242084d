"""Blocks that bound failure: the circuit breaker, the retry budget, hedging and outlier
detection, shared by task groups and polling pools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator

from actors.config.base import MAX_SECONDS, Strict

__all__ = [
    "CircuitBreakerConfig",
    "HedgeConfig",
    "OutlierDetectionConfig",
    "RetryBudgetConfig",
]


class CircuitBreakerConfig(Strict):
    """When an instance is taken out of rotation and how it is let back in."""

    failure_threshold: PositiveInt = Field(5, description="consecutive failures that open the breaker")
    recovery_time: PositiveFloat = Field(60.0, le=MAX_SECONDS, description="seconds the breaker stays open")
    half_open_requests: PositiveInt = Field(1, description="trial calls admitted at once when half-open")


class RetryBudgetConfig(Strict):
    """``fallback_config.retry_budget``: retries over a rolling 10 s window are at most
    ``ratio`` × requests + ``min_per_second`` × 10. The default is Linkerd's."""

    ratio: NonNegativeFloat = Field(0.2, allow_inf_nan=False, description="retries per request")
    min_per_second: NonNegativeFloat = Field(
        10.0, allow_inf_nan=False, description="retries a second allowed however few requests"
    )


class HedgeConfig(Strict):
    """``fallback_config.hedge``: with no first byte ``after`` seconds (or the instance's ``p95``)
    into an attempt, the same request also goes to another instance, up to ``max_extra`` times."""

    after: float | Literal["p95"] = Field(
        0.2, description="seconds, or 'p95' of the instance's time to first byte"
    )
    max_extra: PositiveInt = Field(1, description="hedges one request may add")

    @field_validator("after", mode="before")
    @classmethod
    def _seconds_or_p95(cls, value: Any) -> Any:
        # One clear message rather than one per member of the union.
        if value == "p95":
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= MAX_SECONDS:
            return float(value)
        if isinstance(value, (int, float)) and value > MAX_SECONDS:
            raise ValueError(f"must be at most {MAX_SECONDS:g} seconds (a day); got {value!r}")
        raise ValueError(f"must be a positive number of seconds or 'p95'; got {value!r}")


class OutlierDetectionConfig(Strict):
    """A pool's ``outlier_detection``: eject a member slower than ``latency_factor`` × the pool's
    median time to first byte, for ``base_ejection_time`` × its ejections so far."""

    latency_factor: float = Field(3.0, gt=1, allow_inf_nan=False, description="times the pool median")
    min_requests: PositiveInt = Field(5, description="measurements before a member is judged")
    max_ejection_percent: float = Field(
        34.0, ge=0, le=100, description="most of the pool ejected at once (rounded down)"
    )
    base_ejection_time: PositiveFloat = Field(30.0, le=MAX_SECONDS, description="seconds")
