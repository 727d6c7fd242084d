"""Pydantic models of the configuration files (SPEC §3); frozen, unknown keys forbidden.

One class per kind of file or block, each in the module named for its file: ``instances``
(model files), ``groups`` (task groups), ``pools`` (polling pools), ``wrappers``, ``registry``
(the registry and the legacy global fallback), ``resilience`` (breaker, retry budget, hedge,
outlier detection) and ``base`` (``Strict`` and the bounds). This module gathers them under one
name. Cross-file rules (a tier naming a model that exists, a reference to a group that exists,
no fallback cycles) are checked in ``actors.config.refs``.
"""

from __future__ import annotations

from actors.config.base import MAX_PORT, MAX_SECONDS, FinitePositive, Strict
from actors.config.groups import (
    ECHELON_RE,
    EchelonConfig,
    FallbackConfig,
    FallbackStrategy,
    TaskGroupConfig,
    ThinkingConfig,
)
from actors.config.instances import (
    CONTROL_CHARS,
    DEFAULT_BASE_URLS,
    KEYED_TYPES,
    ModelConfig,
    SimulationConfig,
    header_value_problem,
)
from actors.config.pools import PollingPoolConfig, PoolFallbackConfig, PoolFallbackStrategy, RotationStrategy
from actors.config.registry import GlobalFallbackConfig, RegistryConfig, RegistryEntry
from actors.config.resilience import (
    CircuitBreakerConfig,
    HedgeConfig,
    OutlierDetectionConfig,
    RetryBudgetConfig,
)
from actors.config.wrappers import WrapperConfig, WrapperType

__all__ = [
    "CONTROL_CHARS",
    "DEFAULT_BASE_URLS",
    "ECHELON_RE",
    "KEYED_TYPES",
    "MAX_PORT",
    "MAX_SECONDS",
    "CircuitBreakerConfig",
    "EchelonConfig",
    "FallbackConfig",
    "FallbackStrategy",
    "FinitePositive",
    "GlobalFallbackConfig",
    "HedgeConfig",
    "ModelConfig",
    "OutlierDetectionConfig",
    "PollingPoolConfig",
    "PoolFallbackConfig",
    "PoolFallbackStrategy",
    "RegistryConfig",
    "RegistryEntry",
    "RetryBudgetConfig",
    "RotationStrategy",
    "SimulationConfig",
    "Strict",
    "TaskGroupConfig",
    "ThinkingConfig",
    "WrapperConfig",
    "WrapperType",
    "header_value_problem",
]
