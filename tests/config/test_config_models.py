"""The config models on their own, and ``LLMConfig`` built in code (no files)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from actors.config import (
    ConfigError,
    EchelonConfig,
    FallbackConfig,
    FallbackStrategy,
    LLMConfig,
    ModelConfig,
    PollingPoolConfig,
    PoolFallbackStrategy,
    TaskGroupConfig,
    WrapperConfig,
)


@pytest.mark.parametrize(
    "fields, base_url, disabled",
    [
        ({"model_type": "openai", "api_key": "k"}, "https://api.openai.com/v1", None),
        ({"model_type": "anthropic", "api_key": "k"}, "https://api.anthropic.com", None),
        (
            {"model_type": "openai", "api_key": "k", "base_url": "https://proxy.example/v1/"},
            "https://proxy.example/v1",
            None,
        ),
        (
            {"model_type": "openai_compatible", "base_url": "http://127.0.0.1:8000/v1"},
            "http://127.0.0.1:8000/v1",
            None,
        ),
        ({"model_type": "simulated"}, None, None),
        ({"model_type": "openai"}, "https://api.openai.com/v1", "no api_key configured"),
        ({"model_type": "anthropic", "api_key": ""}, "https://api.anthropic.com", "no api_key configured"),
        (
            {"model_type": "openai", "disabled_reason": "quota gone until June"},
            "https://api.openai.com/v1",
            "quota gone",
        ),
    ],
)
def test_model_defaults_by_type(fields: dict, base_url: str | None, disabled: str | None) -> None:
    model = ModelConfig(model_name="m", **fields)
    assert model.base_url == base_url
    if disabled is None:
        assert model.enabled
    else:
        assert not model.enabled and disabled in (model.disabled_reason or "")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"model_type": "openai_compatible"}, "required for model_type openai_compatible"),
        ({"model_type": "openai", "base_url": "api.openai.com/v1"}, "must be an http:// or https:// URL"),
        ({"model_type": "anthropic", "base_url": "https://api.anthropic.com/v1"}, "drop the trailing /v1"),
        ({"model_type": "gemini"}, "model_type"),
        ({"model_type": "openai", "api_keys": "x"}, "api_keys"),
    ],
)
def test_model_rejects(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig(model_name="m", **fields)


def test_config_models_are_frozen() -> None:
    tier = EchelonConfig(models=["a"])
    with pytest.raises(ValidationError):
        tier.priority = 3  # type: ignore[misc]


def test_echelon_defaults() -> None:
    tier = EchelonConfig(models=["a"])
    assert (tier.max_retries, tier.temperature, tier.max_tokens, tier.timeout) == (1, 0.7, 2000, None)
    assert tier.thinking_config is None
    assert EchelonConfig(models=["a"], thinking_config={"budget_tokens": 100}).thinking_config.enabled


@pytest.mark.parametrize("value, ok", [(True, True), ("auto", True), (None, True), (3, False), ([1], False)])
def test_function_calling_is_a_bool_or_a_string(value: object, ok: bool) -> None:
    if ok:
        assert EchelonConfig(models=["a"], function_calling=value).function_calling == value
    else:
        with pytest.raises(ValidationError, match="tool_choice"):
            EchelonConfig(models=["a"], function_calling=value)


def test_model_rotate_is_an_alias_of_echelon_down() -> None:
    assert FallbackStrategy("model_rotate") is FallbackStrategy.ECHELON_DOWN
    assert FallbackConfig(strategy="model_rotate").strategy is FallbackStrategy.ECHELON_DOWN


def test_group_without_fallback_config_gets_defaults() -> None:
    group = TaskGroupConfig(name="g", echelon1={"models": ["a"]})
    fb = group.effective_fallback
    assert (fb.strategy, fb.fallback_groups, fb.max_attempts, fb.retry_delay) == (
        FallbackStrategy.ECHELON_DOWN,
        [],
        3,
        1.0,
    )
    assert (
        fb.circuit_breaker.failure_threshold,
        fb.circuit_breaker.recovery_time,
        fb.circuit_breaker.half_open_requests,
    ) == (5, 60, 1)


def test_group_needs_a_tier() -> None:
    with pytest.raises(ValidationError, match="no tiers"):
        TaskGroupConfig(name="g", description="empty")


def test_pool_fallback_default() -> None:
    pool = PollingPoolConfig(task_groups=["g"])
    assert pool.effective_fallback.strategy is PoolFallbackStrategy.INSTANCE_ROTATION
    assert pool.effective_fallback.max_instance_attempts == 2
    assert (pool.health_check_interval, pool.failure_threshold, pool.recovery_time) == (30, 3, 60)
    with pytest.raises(ValidationError):
        PollingPoolConfig(task_groups=["g"], fallback_config={"max_instance_attempts": 0})


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"type": "task_group"}, "target"),
        ({"type": "polling_pool"}, "pool"),
        (
            {"type": "polling_pool", "pool": "p", "fallback_groups": ["g"]},
            "only a task_group wrapper takes fallback_groups",
        ),
        ({"type": "task_group", "target": "g", "max_instance_attempts": 2}, "only a polling_pool wrapper"),
        ({"type": "task_group", "target": "g", "timeout": 0}, "greater than 0"),
    ],
)
def test_wrapper_rejects(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WrapperConfig(**fields)


# ----------------------------------------------------------------------------- LLMConfig in code


def small_config(**changes: object) -> LLMConfig:
    data: dict = {
        "models": {
            "a": {"model_type": "simulated", "model_name": "sim-a"},
            "b": {"model_type": "simulated", "model_name": "sim-b"},
            "c": {"model_type": "openai", "model_name": "gpt-4"},
        },
        "groups": {
            "main": {
                "echelon1": {"models": ["a", "b"]},
                "echelon2": {"models": ["c"]},
                "fallback_config": {"fallback_groups": ["spare"]},
            },
            "spare": {"echelon1": {"models": ["b"]}},
        },
        "pools": {"p": {"task_groups": ["main", "spare.echelon1"]}},
        "wrappers": {"w": {"type": "task_group", "target": "main"}},
    }
    data.update(changes)
    return LLMConfig.model_validate(data)


def test_llm_config_from_a_mapping_fills_names() -> None:
    config = small_config()
    assert config.models["a"].name == "a" and config.models["a"].provider == "simulated"
    assert config.groups["main"].name == "main" and config.pools["p"].name == "p"
    assert set(config.enabled_models()) == {"a", "b"}
    assert set(config.disabled_models()) == {"c"}


def test_llm_config_queries() -> None:
    config = small_config()
    assert config.resolve("main") == [("main", "echelon1"), ("main", "echelon2")]
    assert config.resolve("main.echelon2") == [("main", "echelon2")]
    assert config.tier("main", "echelon1").models == ["a", "b"]
    assert config.pool_members("p") == [
        ("main", "echelon1", "a"),
        ("main", "echelon1", "b"),
        ("main", "echelon2", "c"),
        ("spare", "echelon1", "b"),
    ]
    assert config.fallback_chain("main.echelon1") == ["spare"]
    assert config.fallback_tiers("main") == [("spare", "echelon1")]
    assert config.fallback_chain("spare") == []
    assert config.wrapper("w").target == "main"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.resolve("mian"), "unknown group 'mian'; did you mean 'main'?"),
        (lambda c: c.resolve("main.echelon3"), "group 'main' has no tier 'echelon3'"),
        (lambda c: c.tier("main", "echelon9"), "has no tier 'echelon9'"),
        (lambda c: c.wrapper("ww"), "unknown wrapper 'ww'; did you mean 'w'?"),
        (lambda c: c.pool_members("q"), "unknown pool 'q'"),
    ],
)
def test_llm_config_queries_reject_unknown_names(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        call(small_config())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"wrappers": {"w": {"type": "polling_pool", "pool": "nope"}}}, "unknown pool 'nope'"),
        ({"pools": {"p": {"task_groups": ["mian"]}}}, "unknown group 'mian'"),
        ({"groups": {"main": {"echelon1": {"models": ["z"]}}}}, "unknown model 'z'"),
        (
            {
                "groups": {
                    "main": {"echelon1": {"models": ["a"]}, "fallback_config": {"fallback_groups": ["main"]}}
                }
            },
            "falls back to itself",
        ),
    ],
)
def test_llm_config_built_in_code_is_cross_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(**changes)
