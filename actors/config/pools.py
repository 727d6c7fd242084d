"""Polling pool files, ``config/llms/polling_pools/<pool>.yaml``: instances drawn from tiers,
and how the pool rotates through them."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, ValidationInfo, field_validator

from actors.config.base import MAX_SECONDS, FinitePositive, Strict
from actors.config.resilience import HedgeConfig, OutlierDetectionConfig, RetryBudgetConfig

__all__ = [
    "PollingPoolConfig",
    "PoolFallbackConfig",
    "PoolFallbackStrategy",
    "RotationStrategy",
]


class RotationStrategy(enum.StrEnum):
    """How a polling pool picks the next instance."""

    ROUND_ROBIN = "round_robin"
    LEAST_RECENTLY_USED = "least_recently_used"
    WEIGHTED = "weighted"
    RANDOM = "random"
    LEAST_BUSY = "least_busy"
    LOWEST_LATENCY = "lowest_latency"


class PoolFallbackStrategy(enum.StrEnum):
    """What a polling pool does after a failed attempt."""

    INSTANCE_ROTATION = "instance_rotation"
    SIMPLE_RETRY = "simple_retry"


class PoolFallbackConfig(Strict):
    """A polling pool's ``fallback_config`` block."""

    strategy: PoolFallbackStrategy = PoolFallbackStrategy.INSTANCE_ROTATION
    max_instance_attempts: PositiveInt = 2
    retry_budget: RetryBudgetConfig = Field(default_factory=RetryBudgetConfig)
    hedge: HedgeConfig | None = None


class PollingPoolConfig(Strict):
    """``config/llms/polling_pools/<pool>.yaml``: instances drawn from task-group tiers."""

    name: str = ""
    description: str = ""
    task_groups: list[str] = Field(min_length=1, description="refs: group or group.tier")
    rotation_strategy: RotationStrategy = RotationStrategy.ROUND_ROBIN
    weights: dict[str, FinitePositive] | None = Field(
        None, description="model name -> weight, for 'weighted'"
    )
    health_check_interval: PositiveFloat = Field(30.0, le=MAX_SECONDS)
    failure_threshold: PositiveInt = 3
    recovery_time: PositiveFloat = Field(60.0, le=MAX_SECONDS)
    fallback_config: PoolFallbackConfig | None = None
    outlier_detection: OutlierDetectionConfig | None = None
    affinity: Literal["session"] | None = Field(
        None, description="'session': a request's session key keeps it on one instance"
    )

    @field_validator("weights")
    @classmethod
    def _weights_need_weighted(
        cls, weights: dict[str, float] | None, info: ValidationInfo
    ) -> dict[str, float] | None:
        strategy = info.data.get("rotation_strategy")
        if weights and strategy is not None and strategy is not RotationStrategy.WEIGHTED:
            raise ValueError(
                f"only rotation_strategy 'weighted' reads weights (this pool uses {strategy.value!r}); "
                "remove weights or set rotation_strategy: weighted"
            )
        return weights

    @property
    def effective_fallback(self) -> PoolFallbackConfig:
        """``fallback_config``, or the default ``instance_rotation`` with 2 attempts."""
        return self.fallback_config if self.fallback_config is not None else PoolFallbackConfig()
