"""Task group files, ``config/llms/groups/<group>.yaml``: tiers of models and the group's fallback."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from actors.config.base import MAX_SECONDS, Strict
from actors.config.resilience import CircuitBreakerConfig, HedgeConfig, RetryBudgetConfig

__all__ = [
    "ECHELON_RE",
    "EchelonConfig",
    "FallbackConfig",
    "FallbackStrategy",
    "TaskGroupConfig",
    "ThinkingConfig",
]


ECHELON_RE = re.compile(r"echelon(\d+)")


class ThinkingConfig(Strict):
    """Extended thinking for models that support it; present means on unless ``enabled: false``."""

    enabled: bool = True
    budget_tokens: PositiveInt | None = None


class EchelonConfig(Strict):
    """One tier of a task group (``echelonN`` or a task-named tier): its models, limits and defaults."""

    models: list[str] = Field(min_length=1)
    concurrency_limit: PositiveInt | None = Field(None, description="requests in flight across the tier")
    rpm_limit: PositiveInt | None = Field(None, description="requests per rolling 60 s across the tier")
    priority: int = Field(1, description="lower is tried first; echelonN defaults to N")
    timeout: PositiveFloat | None = Field(None, le=MAX_SECONDS, description="seconds per attempt")
    max_retries: int = Field(
        1, ge=0, description="further attempts within the tier, each on another instance when there is one"
    )
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: PositiveInt = 2000
    function_calling: str | bool | None = Field(
        None, description="tool support: true/false, or a tool_choice such as 'auto'"
    )
    response_format: str | dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None
    description: str = ""

    @field_validator("models")
    @classmethod
    def _no_duplicate_models(cls, models: list[str]) -> list[str]:
        seen = set()
        for name in models:
            if name in seen:
                raise ValueError(f"model {name!r} is listed twice; list each model once")
            seen.add(name)
        return models

    @field_validator("function_calling", mode="before")
    @classmethod
    def _function_calling_type(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (str, bool)):
            raise ValueError("must be true, false, or a tool_choice string such as 'auto' or 'required'")
        return value

    @field_validator("response_format", mode="before")
    @classmethod
    def _response_format_type(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (str, Mapping)):
            raise ValueError(
                "must be a string such as 'json_object' or a mapping such as {type: json_object}"
            )
        return value


class FallbackStrategy(enum.StrEnum):
    """How a task group falls back when a tier fails (SPEC §4)."""

    ECHELON_DOWN = "echelon_down"
    TASK_GROUP_SWITCH = "task_group_switch"
    PROVIDER_FAILOVER = "provider_failover"

    @classmethod
    def _missing_(cls, value: object) -> FallbackStrategy | None:
        # The original's ``model_rotate`` rotated through a tier's models: the first phase of
        # echelon_down, which then descends instead of giving up.
        if value == "model_rotate":
            return cls.ECHELON_DOWN
        return None


class FallbackConfig(Strict):
    """A task group's ``fallback_config`` block."""

    strategy: FallbackStrategy = FallbackStrategy.ECHELON_DOWN
    fallback_groups: list[str] = Field(
        default_factory=list, description="refs tried after the group's own tiers"
    )
    max_attempts: PositiveInt = Field(3, description="attempts of one request overall")
    retry_delay: NonNegativeFloat = Field(1.0, le=MAX_SECONDS, description="seconds of the first backoff")
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    retry_budget: RetryBudgetConfig = Field(default_factory=RetryBudgetConfig)
    hedge: HedgeConfig | None = None


_GROUP_KEYS = ("name", "description", "fallback_config", "fallback_strategy", "circuit_breaker")


def _is_tier(key: Any, value: Any) -> bool:
    if not isinstance(key, str):
        return False
    return ECHELON_RE.fullmatch(key) is not None or (isinstance(value, Mapping) and "models" in value)


class TaskGroupConfig(Strict):
    """``config/llms/groups/<group>.yaml``: tiers of models plus the group's fallback settings.

    In YAML the tiers are top-level keys: every ``echelonN``, and every other key whose value is
    a mapping with ``models`` (a task-named tier such as ``translation``). They are collected into
    ``tiers``. A tier without ``priority`` gets N for ``echelonN``; a task tier gets one more than
    the highest priority among the other tiers, so it comes after the echelons.
    """

    hidden_keys: ClassVar[frozenset[str]] = frozenset({"tiers"})

    name: str = ""
    description: str = ""
    tiers: dict[str, EchelonConfig]
    fallback_config: FallbackConfig | None = None
    # Legacy keys (before fallback_config existed); kept raw so the migrator can see them.
    fallback_strategy: FallbackStrategy | None = None
    circuit_breaker: CircuitBreakerConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _collect_tiers(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "tiers" in data:
            return data
        out: dict[Any, Any] = {}
        tiers: dict[str, Any] = {}
        for key, value in data.items():
            if key not in _GROUP_KEYS and _is_tier(key, value):
                tiers[key] = value
            else:
                out[key] = value  # unknown keys stay here for extra="forbid" to report
        out["tiers"] = _default_priorities(tiers)
        return out

    @field_validator("tiers")
    @classmethod
    def _at_least_one_tier(cls, tiers: dict[str, EchelonConfig]) -> dict[str, EchelonConfig]:
        if not tiers:
            raise ValueError("the group has no tiers; add one, e.g. echelon1: {models: [openai-gpt4]}")
        return tiers

    @property
    def echelons(self) -> dict[str, EchelonConfig]:
        """The tiers under the original design's name."""
        return self.tiers

    def tiers_by_priority(self) -> list[tuple[str, EchelonConfig]]:
        """The tiers, best first: by ``priority``, then by name."""
        return sorted(self.tiers.items(), key=lambda item: (item[1].priority, item[0]))

    @property
    def effective_fallback(self) -> FallbackConfig:
        """``fallback_config``, with the legacy top-level keys filling what it does not set."""
        legacy: dict[str, Any] = {}
        if self.fallback_strategy is not None:
            legacy["strategy"] = self.fallback_strategy
        if self.circuit_breaker is not None:
            legacy["circuit_breaker"] = self.circuit_breaker
        if self.fallback_config is None:
            return FallbackConfig(**legacy)
        missing = {k: v for k, v in legacy.items() if k not in self.fallback_config.model_fields_set}
        return self.fallback_config.model_copy(update=missing) if missing else self.fallback_config


def _default_priorities(tiers: dict[str, Any]) -> dict[str, Any]:
    """Give every tier mapping without ``priority`` its default (see ``TaskGroupConfig``)."""
    out = dict(tiers)
    for key, value in tiers.items():
        match = ECHELON_RE.fullmatch(key)
        if match and isinstance(value, Mapping) and "priority" not in value:
            out[key] = {**value, "priority": int(match.group(1))}
    known = [v["priority"] for v in out.values() if isinstance(v, Mapping) and type(v.get("priority")) is int]
    after = max(known, default=0) + 1
    for key, value in out.items():
        if isinstance(value, Mapping) and "priority" not in value:
            out[key] = {**value, "priority": after}
    return out
