"""Validated configuration: the models of ``config/llms`` files and ``load_config`` to read them.

``load_config("config")`` returns an ``LLMConfig`` or raises one ``ConfigError`` that lists every
problem with its file and field path.
"""

from actors.config.env import expand, substitute
from actors.config.loader import find_llms_dir, load_config
from actors.config.models import (
    DEFAULT_BASE_URLS,
    CircuitBreakerConfig,
    EchelonConfig,
    FallbackConfig,
    FallbackStrategy,
    GlobalFallbackConfig,
    ModelConfig,
    PollingPoolConfig,
    PoolFallbackConfig,
    PoolFallbackStrategy,
    RegistryConfig,
    RegistryEntry,
    RotationStrategy,
    SimulationConfig,
    TaskGroupConfig,
    ThinkingConfig,
    WrapperConfig,
    WrapperType,
)
from actors.config.refs import parse_ref
from actors.config.state import StateConfig
from actors.config.topology import LLMConfig
from actors.errors import ConfigError, ConfigIssue

__all__ = [
    "DEFAULT_BASE_URLS",
    "CircuitBreakerConfig",
    "ConfigError",
    "ConfigIssue",
    "EchelonConfig",
    "FallbackConfig",
    "FallbackStrategy",
    "GlobalFallbackConfig",
    "LLMConfig",
    "ModelConfig",
    "PollingPoolConfig",
    "PoolFallbackConfig",
    "PoolFallbackStrategy",
    "RegistryConfig",
    "RegistryEntry",
    "RotationStrategy",
    "SimulationConfig",
    "StateConfig",
    "TaskGroupConfig",
    "ThinkingConfig",
    "WrapperConfig",
    "WrapperType",
    "expand",
    "find_llms_dir",
    "load_config",
    "parse_ref",
    "substitute",
]
