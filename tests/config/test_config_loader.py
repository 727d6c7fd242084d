"""Loading the shipped configuration, and the loader's features on copies of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from config_helpers import FAKE_KEY, REPO, edit_yaml, write_yaml

from actors.config import (
    ConfigError,
    FallbackStrategy,
    GlobalFallbackConfig,
    LLMConfig,
    PoolFallbackStrategy,
    RotationStrategy,
    load_config,
)

pytestmark = pytest.mark.usefixtures("no_keys")

MODELS = {
    # name: (provider, model_type, model_name)
    "openai-gpt4": ("openai", "openai", "gpt-4"),
    "openai-gpt4-turbo": ("openai", "openai", "gpt-4-turbo"),
    "openai-gpt3.5-turbo": ("openai", "openai", "gpt-3.5-turbo"),
    "anthropic-claude-3-opus": ("anthropic", "anthropic", "claude-3-opus-20240229"),
    "anthropic-claude-3-sonnet": ("anthropic", "anthropic", "claude-3-sonnet-20240229"),
    "anthropic-claude-3-haiku": ("anthropic", "anthropic", "claude-3-haiku-20240307"),
    "ollama-llama3": ("local", "openai_compatible", "llama3"),
}


# ----------------------------------------------------------------------------- the shipped config


@pytest.mark.parametrize("path", ["config", "config/llms", REPO / "config"])
def test_shipped_config_loads_from_the_repo_root(path: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    config = load_config(path)
    assert isinstance(config, LLMConfig)
    assert config.root is not None and config.root.name == "llms"
    assert set(config.groups) == {"fast_group", "thinking_group", "fast_small_group"}
    assert set(config.pools) == {"fast_pool", "thinking_pool", "translation_pool"}
    assert {"fast_group_wrapper", "fast_pool_wrapper", "thinking_pool_wrapper"} <= set(config.wrappers)
    assert config.global_fallback is None  # migration input; not shipped


def test_shipped_models_are_real_endpoints() -> None:
    config = load_config(REPO / "config", environ={})
    assert set(config.models) == set(MODELS)
    for name, (provider, model_type, model_name) in MODELS.items():
        model = config.models[name]
        assert (model.name, model.provider, model.model_type, model.model_name) == (
            name,
            provider,
            model_type,
            model_name,
        )
        assert model.context_window and model.input_price is not None and model.output_price is not None
    assert config.models["openai-gpt4"].base_url == "https://api.openai.com/v1"
    assert config.models["anthropic-claude-3-opus"].base_url == "https://api.anthropic.com"


def test_shipped_fast_group_is_the_design_example() -> None:
    group = load_config(REPO / "config", environ={}).groups["fast_group"]
    e1 = group.tiers["echelon1"]
    assert e1.models == ["openai-gpt4", "anthropic-claude-3-opus"]
    assert (e1.concurrency_limit, e1.rpm_limit, e1.priority, e1.timeout, e1.max_retries) == (
        10,
        100,
        1,
        30,
        3,
    )
    assert (e1.temperature, e1.max_tokens) == (0.7, 2000)
    assert group.tiers["echelon2"].models == ["openai-gpt4-turbo", "anthropic-claude-3-sonnet"]
    assert group.tiers["echelon3"].models == ["openai-gpt3.5-turbo", "anthropic-claude-3-haiku"]
    fb = group.effective_fallback
    assert fb.strategy is FallbackStrategy.ECHELON_DOWN
    assert fb.fallback_groups == ["fast_group.echelon2", "fast_group.echelon3"]
    assert (fb.max_attempts, fb.retry_delay) == (3, 1.0)
    assert (
        fb.circuit_breaker.failure_threshold,
        fb.circuit_breaker.recovery_time,
        fb.circuit_breaker.half_open_requests,
    ) == (5, 60, 1)


def test_shipped_pools_and_wrappers() -> None:
    config = load_config(REPO / "config", environ={})
    fast = config.pools["fast_pool"]
    assert fast.task_groups == ["fast_group"] and fast.rotation_strategy is RotationStrategy.ROUND_ROBIN
    assert fast.effective_fallback.strategy is PoolFallbackStrategy.INSTANCE_ROTATION
    assert fast.effective_fallback.max_instance_attempts == 2
    assert config.pools["thinking_pool"].rotation_strategy is RotationStrategy.LEAST_RECENTLY_USED
    assert config.wrappers["fast_group_wrapper"].target == "fast_group.echelon1"
    assert config.wrappers["fast_pool_wrapper"].pool == "fast_pool"
    assert config.wrappers["thinking_pool_wrapper"].pool == "thinking_pool"
    # The local model is used somewhere, so users see how.
    used = {m for _, _, m in config.pool_members("translation_pool")}
    assert "ollama-llama3" in used


# ----------------------------------------------------------------------------- keys and environment


def test_missing_key_disables_the_model_with_its_reason() -> None:
    config = load_config(REPO / "config", environ={})
    gpt4 = config.models["openai-gpt4"]
    assert not gpt4.enabled
    assert gpt4.disabled_reason == "API key variable OPENAI_API_KEY is not set"
    assert gpt4.api_key is None and gpt4.api_key_env == "OPENAI_API_KEY"
    assert "openai-gpt4" in config.disabled_models()
    # A local OpenAI-compatible server needs no key.
    assert config.models["ollama-llama3"].enabled
    assert set(config.enabled_models()) == {"ollama-llama3"}
    # Disabled models stay in the topology.
    assert "openai-gpt4" in config.groups["fast_group"].tiers["echelon1"].models


def test_empty_key_counts_as_unset() -> None:
    config = load_config(REPO / "config", environ={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "  "})
    assert config.models["openai-gpt4"].disabled_reason == "API key variable OPENAI_API_KEY is not set"
    assert (
        config.models["anthropic-claude-3-haiku"].disabled_reason
        == "API key variable ANTHROPIC_API_KEY is not set"
    )


def test_key_set_enables_the_model_and_records_its_variable() -> None:
    config = load_config(REPO / "config", environ={"OPENAI_API_KEY": FAKE_KEY})
    gpt4 = config.models["openai-gpt4"]
    assert gpt4.enabled and gpt4.key() == FAKE_KEY and gpt4.api_key_env == "OPENAI_API_KEY"
    assert not config.models["anthropic-claude-3-opus"].enabled


def test_default_and_override_of_a_url_variable() -> None:
    default = load_config(REPO / "config", environ={})
    assert default.models["ollama-llama3"].base_url == "http://127.0.0.1:11434/v1"
    override = load_config(REPO / "config", environ={"OLLAMA_BASE_URL": "http://gpu-box:8000/v1/"})
    assert override.models["ollama-llama3"].base_url == "http://gpu-box:8000/v1"  # trailing / dropped


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    config = load_config(REPO / "config")
    assert config.models["anthropic-claude-3-haiku"].enabled


def test_dollar_dollar_is_a_literal_dollar(llms: Path) -> None:
    edit_yaml(
        llms / "groups" / "fast_group.yaml", lambda d: d.update(description="costs $$5 per ${UNIT:-call}")
    )
    config = load_config(llms, environ={})
    assert config.groups["fast_group"].description == "costs $5 per call"


def test_unset_variable_without_default_outside_api_key_is_an_error(llms: Path) -> None:
    edit_yaml(llms / "provider" / "local" / "ollama-llama3.yaml", lambda d: d.update(base_url="${LLAMA_URL}"))
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    [issue] = info.value.issues
    assert issue.file.endswith("provider/local/ollama-llama3.yaml")
    assert issue.path == "base_url"
    assert "LLAMA_URL is not set" in issue.message


def test_a_number_can_come_from_the_environment(llms: Path) -> None:
    edit_yaml(
        llms / "groups" / "fast_group.yaml", lambda d: d["echelon1"].update(rpm_limit="${FAST_RPM:-100}")
    )
    assert load_config(llms, environ={"FAST_RPM": "250"}).tier("fast_group", "echelon1").rpm_limit == 250
    assert load_config(llms, environ={}).tier("fast_group", "echelon1").rpm_limit == 100


# ----------------------------------------------------------------------------- tiers and fallback


def test_tiers_by_priority_follows_priority_not_yaml_order(llms: Path) -> None:
    def reorder(d: dict) -> None:
        d["echelon1"]["priority"] = 3
        d["echelon3"]["priority"] = 1

    edit_yaml(llms / "groups" / "fast_group.yaml", reorder)
    config = load_config(llms, environ={})
    assert [t for t, _ in config.groups["fast_group"].tiers_by_priority()] == [
        "echelon3",
        "echelon2",
        "echelon1",
    ]
    assert config.resolve("fast_group") == [
        ("fast_group", "echelon3"),
        ("fast_group", "echelon2"),
        ("fast_group", "echelon1"),
    ]


def test_echelon_priority_defaults_to_its_number_and_task_tiers_come_after(llms: Path) -> None:
    path = llms / "groups" / "fast_group.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    tiers = {key: data[key] for key in ("echelon3", "echelon2", "echelon1")}
    tiers["review"] = {"models": ["openai-gpt4"]}
    for tier in tiers.values():
        tier.pop("priority", None)
    write_yaml(path, tiers)
    group = load_config(llms, environ={}).groups["fast_group"]
    assert [(t, c.priority) for t, c in group.tiers_by_priority()] == [
        ("echelon1", 1),
        ("echelon2", 2),
        ("echelon3", 3),
        ("review", 4),
    ]


def test_task_named_tiers_are_tiers() -> None:
    config = load_config(REPO / "config", environ={})
    group = config.groups["fast_small_group"]
    assert list(group.tiers) == ["translation", "analysis", "execute", "thinking", "high_payload"]
    assert config.resolve("fast_small_group.translation") == [("fast_small_group", "translation")]
    execute = config.tier("fast_small_group", "execute")
    assert execute.function_calling is True
    assert execute.response_format == {"type": "json_object"}


def test_any_mapping_with_models_is_a_tier_not_a_hard_coded_list(llms: Path) -> None:
    edit_yaml(
        llms / "groups" / "fast_small_group.yaml",
        lambda d: d.update(summarize={"models": ["openai-gpt3.5-turbo"], "priority": 9}),
    )
    config = load_config(llms, environ={})
    assert config.resolve("fast_small_group.summarize") == [("fast_small_group", "summarize")]


def test_legacy_fallback_keys_are_accepted_and_kept(llms: Path) -> None:
    def legacy(d: dict) -> None:
        del d["fallback_config"]
        d["fallback_strategy"] = "model_rotate"  # the original's name; an alias of echelon_down
        d["circuit_breaker"] = {"failure_threshold": 2, "recovery_time": 30}

    edit_yaml(llms / "groups" / "fast_group.yaml", legacy)
    group = load_config(llms, environ={}).groups["fast_group"]
    assert group.fallback_config is None
    assert group.fallback_strategy is FallbackStrategy.ECHELON_DOWN
    assert group.circuit_breaker is not None and group.circuit_breaker.failure_threshold == 2
    fb = group.effective_fallback
    assert fb.strategy is FallbackStrategy.ECHELON_DOWN
    assert (fb.circuit_breaker.failure_threshold, fb.circuit_breaker.recovery_time) == (2, 30)
    assert (fb.max_attempts, fb.retry_delay, fb.fallback_groups) == (3, 1.0, [])


def test_fallback_config_wins_over_legacy_keys_it_sets(llms: Path) -> None:
    def both(d: dict) -> None:
        d["fallback_strategy"] = "provider_failover"  # fallback_config sets strategy: it wins
        d["circuit_breaker"] = {"failure_threshold": 9}  # fallback_config sets a breaker too
        d["fallback_config"].pop("circuit_breaker")  # ... not any more: the legacy one fills in

    edit_yaml(llms / "groups" / "fast_group.yaml", both)
    fb = load_config(llms, environ={}).groups["fast_group"].effective_fallback
    assert fb.strategy is FallbackStrategy.ECHELON_DOWN
    assert fb.circuit_breaker.failure_threshold == 9


def test_fallback_chain_never_contains_the_ref_and_follows_fallback_groups() -> None:
    config = load_config(REPO / "config", environ={})
    assert config.fallback_chain("fast_group.echelon1") == ["fast_group.echelon2", "fast_group.echelon3"]
    assert config.fallback_chain("fast_group.echelon2") == ["fast_group.echelon3"]
    assert config.fallback_chain("fast_group.echelon3") == []  # the bottom of the ladder
    assert config.fallback_chain("fast_group") == []  # every listed tier is the group's own
    assert config.fallback_chain("thinking_group.echelon1") == [
        "thinking_group.echelon2",
        "thinking_group.echelon3",
        "fast_group.echelon1",
        # then down fast_group's ladder from where it was entered
        "fast_group.echelon2",
        "fast_group.echelon3",
    ]
    assert config.fallback_chain("thinking_group.echelon3") == [
        "fast_group.echelon1",
        "fast_group.echelon2",
        "fast_group.echelon3",
    ]
    assert config.fallback_tiers("thinking_group")[0] == ("fast_group", "echelon1")
    # A wrapper's override replaces the group's list; entering fast_group at its last rung ends there.
    assert config.fallback_chain("fast_small_group.translation", ["fast_group.echelon3"]) == [
        "fast_group.echelon3"
    ]
    assert config.fallback_chain("fast_small_group.translation") == ["fast_group.echelon3"]


def test_pool_members_are_group_tier_model_triples() -> None:
    config = load_config(REPO / "config", environ={})
    members = config.pool_members("fast_pool")
    assert members[:2] == [
        ("fast_group", "echelon1", "openai-gpt4"),
        ("fast_group", "echelon1", "anthropic-claude-3-opus"),
    ]
    assert len(members) == 6
    with pytest.raises(ConfigError, match="did you mean 'fast_pool'"):
        config.pool_members("fastpool")


# ----------------------------------------------------------------------------- registry and legacy files


def test_registry_enabled_false_skips_the_file(llms: Path) -> None:
    def disable(d: dict) -> None:
        d["task_groups"]["fast_small_group"]["enabled"] = False
        d["polling_pools"]["translation_pool"]["enabled"] = False

    edit_yaml(llms / "groups" / "_task_groups.yaml", disable)
    edit_yaml(llms / "wrappers.yaml", lambda d: d.pop("translation_wrapper"))
    # Even a broken file is not read when its entry is disabled.
    (llms / "groups" / "fast_small_group.yaml").write_text("echelon1: [unclosed\n", encoding="utf-8")
    config = load_config(llms, environ={})
    assert "fast_small_group" not in config.groups
    assert "translation_pool" not in config.pools
    assert config.registry is not None and config.registry.task_groups["fast_small_group"].enabled is False


def test_a_reference_to_a_disabled_group_says_so(llms: Path) -> None:
    edit_yaml(
        llms / "groups" / "_task_groups.yaml",
        lambda d: d["task_groups"]["fast_small_group"].update(enabled=False),
    )
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    paths = {(Path(i.file).name, i.path) for i in info.value.issues}
    assert paths == {
        ("translation_pool.yaml", "task_groups[0]"),
        ("wrappers.yaml", "translation_wrapper.target"),
    }
    assert all("is disabled in" in i.message and "_task_groups.yaml" in i.message for i in info.value.issues)


def test_groups_not_in_the_registry_still_load(llms: Path) -> None:
    edit_yaml(llms / "groups" / "_task_groups.yaml", lambda d: d["task_groups"].pop("thinking_group"))
    assert "thinking_group" in load_config(llms, environ={}).groups


def test_no_registry_is_fine(llms: Path) -> None:
    (llms / "groups" / "_task_groups.yaml").unlink()
    config = load_config(llms, environ={})
    assert config.registry is None and len(config.groups) == 3


def test_legacy_global_fallback_is_loaded_when_present(llms: Path) -> None:
    (llms / "global_fallback.yaml").write_text(
        "enabled: true\nmax_attempts: 5\nretry_delay: 2.0\n"
        "circuit_breaker:\n  failure_threshold: 4\n  recovery_time: 30\n  half_open_requests: 1\n",
        encoding="utf-8",
    )
    config = load_config(llms, environ={})
    assert config.global_fallback == GlobalFallbackConfig(
        max_attempts=5, retry_delay=2.0, circuit_breaker={"failure_threshold": 4, "recovery_time": 30}
    )
    # Migration input only: groups keep their own settings.
    assert config.groups["fast_group"].effective_fallback.max_attempts == 3


def test_wrappers_yaml_is_optional(llms: Path) -> None:
    (llms / "wrappers.yaml").unlink()
    assert load_config(llms, environ={}).wrappers == {}


def test_no_config_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope")
    with pytest.raises(ConfigError, match="expected a directory containing llms/"):
        load_config(tmp_path)


# ----------------------------------------------------------------------------- YAML merge keys

MERGED_GROUP = """\
name: fast_group
echelon1: &tier
  models: [openai-gpt4]
  timeout: 30
  max_retries: 3
echelon3:
  <<: *tier
  models: [openai-gpt3.5-turbo]
echelon2:
  <<: *tier
  models: [openai-gpt4-turbo]
  timeout: 25
"""


def test_a_key_written_after_a_merge_overrides_the_merged_one(llms: Path) -> None:
    # YAML 1.1 merge semantics: the mapping's own key wins over the one merged in by <<.
    (llms / "groups" / "fast_group.yaml").write_text(MERGED_GROUP, encoding="utf-8")
    group = load_config(llms, environ={}).groups["fast_group"]
    assert group.tiers["echelon2"].models == ["openai-gpt4-turbo"]
    assert (group.tiers["echelon2"].timeout, group.tiers["echelon2"].max_retries) == (25, 3)
    assert (group.tiers["echelon1"].models, group.tiers["echelon1"].timeout) == (["openai-gpt4"], 30)


def test_a_key_written_twice_next_to_a_merge_is_still_a_duplicate(llms: Path) -> None:
    path = llms / "groups" / "fast_group.yaml"
    path.write_text(MERGED_GROUP + "  timeout: 20\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    [issue] = info.value.issues
    assert (issue.file, issue.path) == (str(path), "")
    assert "key 'timeout' appears twice (first on line 12)" in issue.message
