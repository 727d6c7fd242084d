"""The optional registry of files (``groups/_task_groups.yaml``) and the legacy
``global_fallback.yaml``, which the migrator reads."""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat, PositiveInt

from actors.config.base import MAX_SECONDS, Strict
from actors.config.resilience import CircuitBreakerConfig

__all__ = [
    "GlobalFallbackConfig",
    "RegistryConfig",
    "RegistryEntry",
]


class RegistryEntry(Strict):
    """One entry of the registry: a file (relative to the ``llms`` directory) and its flag."""

    file: str
    description: str = ""
    enabled: bool = True


class RegistryConfig(Strict):
    """``config/llms/groups/_task_groups.yaml``: optional registry; ``enabled: false`` skips a file."""

    task_groups: dict[str, RegistryEntry] = Field(default_factory=dict)
    polling_pools: dict[str, RegistryEntry] = Field(default_factory=dict)
    global_configs: dict[str, RegistryEntry] = Field(default_factory=dict)


class GlobalFallbackConfig(Strict):
    """The legacy ``config/llms/global_fallback.yaml``: migration input, not applied at run time."""

    enabled: bool = True
    max_attempts: PositiveInt = 3
    retry_delay: NonNegativeFloat = Field(1.0, le=MAX_SECONDS)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
