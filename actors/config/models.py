"""Pydantic models of the configuration files (SPEC §3); frozen, unknown keys forbidden.

One class per kind of file or block. Cross-file rules (a tier naming a model that exists, a
reference to a group that exists, no fallback cycles) are checked in ``actors.config.refs``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from actors.secrets import shown_url

__all__ = [
    "DEFAULT_BASE_URLS",
    "CircuitBreakerConfig",
    "EchelonConfig",
    "FallbackConfig",
    "FallbackStrategy",
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
]


#: The largest TCP port; a URL's port must be 1 to this.
MAX_PORT = 65_535

#: The longest duration any setting may give, a day: longer is a slip (milliseconds written as
#: seconds), and far longer overflows the C timeouts that sockets and locks take.
MAX_SECONDS = 86_400.0


#: A positive, finite number (a weight).
FinitePositive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    """Base of every config model: frozen, and an unknown key is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields the loader fills; never suggested as a fix for a misspelt key.
    hidden_keys: ClassVar[frozenset[str]] = frozenset()


# --------------------------------------------------------------------------- models (instances)


#: Where requests go when a model file gives no ``base_url`` (each SDK's own convention).
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}

#: Model types that cannot work without a key: missing one disables the model.
KEYED_TYPES = ("openai", "anthropic")

# Header names whose values are credentials.
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|credential|password", re.IGNORECASE)

#: Characters no HTTP header value may hold (C0 controls other than tab, and DEL).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value_problem(value: str) -> str | None:
    """Why ``value`` (a key or header value, already stripped) cannot be sent, without quoting it."""
    found = CONTROL_CHARS.search(value)
    if found is not None:
        return (
            f"contains a control character ({found.group()!r} at position {found.start()}), which no "
            "HTTP header may carry; check how the value was set (e.g. a key file read with its line break)"
        )
    if not value.isascii():
        at = next(i for i, c in enumerate(value) if not c.isascii())
        return (
            f"contains a non-ASCII character (at position {at}), which httpx does not send in a header; "
            "check that the value was pasted whole and unchanged"
        )
    return None


class SimulationConfig(Strict):
    """How the in-process ``simulated`` provider behaves (also used by ``simulate=True``)."""

    latency: float = Field(0.02, ge=0, le=MAX_SECONDS, description="seconds before answering")
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of calls that fail")
    failure_status: int = Field(503, ge=400, le=599, description="HTTP status a failure imitates")
    reply: str | None = Field(None, description="fixed reply text; default echoes the last user message")
    seed: int | None = Field(None, description="seed for the failure draw, for repeatable runs")


class ModelConfig(Strict):
    """One model instance: ``config/llms/provider/<provider>/<name>.yaml``.

    ``name`` is the file stem and ``provider`` the folder; the loader fills both. A model whose
    key is missing loads with ``disabled_reason`` set instead of failing the whole config.
    """

    hidden_keys: ClassVar[frozenset[str]] = frozenset({"api_key_env"})

    name: str = ""
    provider: str = ""
    model_type: Literal["openai", "anthropic", "openai_compatible", "simulated"]
    model_name: str
    mode: Literal["chat", "embedding"] = Field(
        "chat", description="what the model serves: chat completions, or embeddings"
    )
    base_url: str | None = Field(None, validate_default=True)
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="variable the key came from, for messages")
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Headers may carry credentials (a proxy's token), so they stay out of repr.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeout: float = Field(60.0, gt=0, le=MAX_SECONDS, description="seconds for one attempt")
    rpm_limit: int | None = Field(None, gt=0)
    tpm_limit: int | None = Field(None, gt=0)
    concurrency_limit: int | None = Field(None, gt=0)
    context_window: int | None = Field(None, gt=0)
    input_price: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="USD per million prompt tokens"
    )
    output_price: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="USD per million completion tokens"
    )
    weight: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="share under the weighted rotation strategy"
    )
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    pace_from_headers: bool = Field(
        True, description="park or pace the instance from its answers' rate-limit headers"
    )
    disabled_reason: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_type(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        model_type = data.get("model_type")
        if data.get("base_url") in (None, "") and model_type in DEFAULT_BASE_URLS:
            data["base_url"] = DEFAULT_BASE_URLS[model_type]
        key = data.get("api_key")
        if isinstance(key, str):
            key = data["api_key"] = key.strip()  # `$(cat keyfile)` brings the file's line break
            if not key:
                data.pop("api_key")
                key = None
        if key is None and model_type in KEYED_TYPES and not data.get("disabled_reason"):
            data["disabled_reason"] = "no api_key configured (add api_key: ${VARIABLE} to the model file)"
        return data

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        problem = header_value_problem(value.get_secret_value()) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        value = {name: text.strip() for name, text in value.items()}
        for name, text in value.items():
            problem = header_value_problem(name) or header_value_problem(text)
            if problem:
                raise ValueError(f"header {name.strip()[:40]!r} {problem}")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        model_type = info.data.get("model_type")
        if value is None or value == "":
            if model_type == "openai_compatible":
                raise ValueError(
                    "required for model_type openai_compatible: the server's URL including the "
                    "version, e.g. http://127.0.0.1:11434/v1"
                )
            return None
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        try:  # the same parser the providers use, so what loads here also connects
            url = httpx.URL(value)
            if not url.host:
                raise ValueError("has no host")
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"is not a valid URL ({exc}); e.g. https://api.openai.com/v1") from None
        if url.port is not None and not 1 <= url.port <= MAX_PORT:
            raise ValueError(f"has port {url.port}, outside 1-{MAX_PORT}; e.g. http://127.0.0.1:11434/v1")
        value = value.rstrip("/")
        if model_type == "anthropic" and value.endswith("/v1"):
            raise ValueError(
                "an Anthropic base_url does not include the version (requests go to "
                "{base_url}/v1/messages); drop the trailing /v1"
            )
        return value

    @model_validator(mode="after")
    def _embedding_needs_an_api(self) -> ModelConfig:
        if self.mode == "embedding" and self.model_type == "anthropic":
            raise ValueError(
                "mode: embedding needs an embeddings API, and Anthropic has none; use an openai or "
                "openai_compatible model for embeddings"
            )
        return self

    def __repr_args__(self) -> Any:
        # base_url may carry a password or a key in its query: repr shows it without them.
        for name, value in super().__repr_args__():
            yield name, shown_url(value) if name == "base_url" and value else value

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def key(self) -> str | None:
        """The API key in clear, for building request headers only."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def secrets(self) -> tuple[str, ...]:
        """Every credential this model holds, to mask: the key, credential headers, and base_url's
        password and query values."""
        found = [v for k, v in self.headers.items() if _SECRET_HEADER.search(k)]
        key = self.key()
        if key:
            found.append(key)
        if self.base_url and ("@" in self.base_url or "?" in self.base_url):
            try:
                url = httpx.URL(self.base_url)
            except (httpx.InvalidURL, ValueError):
                return tuple(found)
            if url.password:
                found.append(url.password)
            # A query value may be a key under any name (?key=, ?code=, ?sig=): all count as one.
            found += [value for _, value in url.params.multi_items() if value]
        return tuple(found)


# --------------------------------------------------------------------------- task groups

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


# --------------------------------------------------------------------------- polling pools


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


class OutlierDetectionConfig(Strict):
    """A pool's ``outlier_detection``: eject a member slower than ``latency_factor`` × the pool's
    median time to first byte, for ``base_ejection_time`` × its ejections so far."""

    latency_factor: float = Field(3.0, gt=1, allow_inf_nan=False, description="times the pool median")
    min_requests: PositiveInt = Field(5, description="measurements before a member is judged")
    max_ejection_percent: float = Field(
        34.0, ge=0, le=100, description="most of the pool ejected at once (rounded down)"
    )
    base_ejection_time: PositiveFloat = Field(30.0, le=MAX_SECONDS, description="seconds")


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


# --------------------------------------------------------------------------- wrappers


class WrapperType(enum.StrEnum):
    TASK_GROUP = "task_group"
    POLLING_POOL = "polling_pool"


class WrapperConfig(Strict):
    """One entry of ``config/llms/wrappers.yaml``: a named client over a group ref or a pool."""

    type: WrapperType
    target: str | None = Field(None, validate_default=True, description="group ref, for task_group")
    fallback_groups: list[str] | None = Field(
        None, validate_default=True, description="overrides the group's"
    )
    pool: str | None = Field(None, validate_default=True, description="pool name, for polling_pool")
    max_instance_attempts: PositiveInt | None = Field(
        None, validate_default=True, description="overrides the pool's"
    )
    timeout: PositiveFloat | None = Field(
        None, le=MAX_SECONDS, description="deadline of one request, every attempt included"
    )
    description: str = ""

    @field_validator("target", "fallback_groups", "pool", "max_instance_attempts")
    @classmethod
    def _fields_of_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is None:
            return value
        own = {
            "target": WrapperType.TASK_GROUP,
            "fallback_groups": WrapperType.TASK_GROUP,
            "pool": WrapperType.POLLING_POOL,
            "max_instance_attempts": WrapperType.POLLING_POOL,
        }
        field = info.field_name
        if value is None:
            if field == "target" and kind is WrapperType.TASK_GROUP:
                raise ValueError(
                    "required for a task_group wrapper: the group or group.tier it calls, e.g. fast_group.echelon1"
                )
            if field == "pool" and kind is WrapperType.POLLING_POOL:
                raise ValueError(
                    "required for a polling_pool wrapper: the name of a pool under polling_pools/"
                )
            return value
        assert field is not None  # a field validator always knows its field
        if own[field] is not kind:
            raise ValueError(f"only a {own[field].value} wrapper takes {field}; this one is {kind.value}")
        return value


# --------------------------------------------------------------------------- registry and legacy


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
