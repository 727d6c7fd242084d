"""Every kind of configuration error names its file and field path and says how to fix it.

Each case copies the shipped config, breaks one thing, and expects exactly one issue: a broken
file must not cascade into a list of follow-on complaints.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from config_helpers import edit, edit_yaml, single_issue

from actors.config import ConfigError, load_config

pytestmark = pytest.mark.usefixtures("no_keys")

FAST = "groups/fast_group.yaml"
THINKING = "groups/thinking_group.yaml"
FAST_POOL = "polling_pools/fast_pool.yaml"
WRAPPERS = "wrappers.yaml"
GPT4 = "provider/openai/openai-gpt4.yaml"
OLLAMA = "provider/local/ollama-llama3.yaml"


def write(file: str, text: str) -> Callable[[Path], None]:
    return lambda llms: (llms / file).write_text(text, encoding="utf-8")


def rename_key(mapping: dict, old: str, new: str) -> None:
    items = [(new if k == old else k, v) for k, v in mapping.items()]
    mapping.clear()
    mapping.update(items)


def copy_model_to(folder: str) -> Callable[[Path], None]:
    def do(llms: Path) -> None:
        (llms / "provider" / folder).mkdir()
        shutil.copy(llms / GPT4, llms / "provider" / folder / "openai-gpt4.yaml")

    return do


CASES = [
    # id, break it, file, field path, what the message must say
    (
        "typo in a tier key",
        edit(FAST, lambda d: rename_key(d["echelon1"], "concurrency_limit", "concurency_limit")),
        FAST,
        "echelon1.concurency_limit",
        "unknown key; did you mean 'concurrency_limit'?",
    ),
    (
        "typo in a group key",
        edit(FAST, lambda d: rename_key(d, "fallback_config", "fallback_confg")),
        FAST,
        "fallback_confg",
        "did you mean 'fallback_config'?",
    ),
    (
        "typo in a nested key",
        edit(
            FAST,
            lambda d: rename_key(d["fallback_config"]["circuit_breaker"], "recovery_time", "recovery_tme"),
        ),
        FAST,
        "fallback_config.circuit_breaker.recovery_tme",
        "did you mean 'recovery_time'?",
    ),
    (
        "typo in a model file key",
        edit(GPT4, lambda d: rename_key(d, "context_window", "context_windw")),
        GPT4,
        "context_windw",
        "did you mean 'context_window'?",
    ),
    (
        "typo in a wrapper key",
        edit(WRAPPERS, lambda d: rename_key(d["fast_pool_wrapper"], "pool", "pol")),
        WRAPPERS,
        "fast_pool_wrapper.pol",
        "unknown key; did you mean 'pool'?",
    ),
    (
        "unknown model in an echelon",
        edit(FAST, lambda d: d["echelon1"]["models"].__setitem__(1, "anthropic-claude-3-opsu")),
        FAST,
        "echelon1.models[1]",
        "unknown model 'anthropic-claude-3-opsu' (no file provider/<provider>/anthropic-claude-3-opsu.yaml); did you mean 'anthropic-claude-3-opus'?",
    ),
    (
        "model listed twice in a tier",
        edit(FAST, lambda d: d["echelon1"]["models"].append("openai-gpt4")),
        FAST,
        "echelon1.models",
        "listed twice",
    ),
    (
        "empty tier",
        edit(FAST, lambda d: d["echelon1"].update(models=[])),
        FAST,
        "echelon1.models",
        "at least 1 item",
    ),
    (
        "unknown fallback group",
        edit(
            THINKING, lambda d: d["fallback_config"]["fallback_groups"].__setitem__(2, "fastgroup.echelon1")
        ),
        THINKING,
        "fallback_config.fallback_groups[2]",
        "unknown group 'fastgroup'; did you mean 'fast_group'?",
    ),
    (
        "unknown tier in a fallback ref",
        edit(FAST, lambda d: d["fallback_config"]["fallback_groups"].append("fast_group.echelon9")),
        FAST,
        "fallback_config.fallback_groups[2]",
        "group 'fast_group' has no tier 'echelon9'",
    ),
    (
        "malformed ref",
        edit(FAST, lambda d: d["fallback_config"]["fallback_groups"].append("fast_group.echelon1.x")),
        FAST,
        "fallback_config.fallback_groups[2]",
        "is not a reference",
    ),
    (
        "fallback to itself",
        edit(FAST, lambda d: d["fallback_config"]["fallback_groups"].append("fast_group")),
        FAST,
        "fallback_config.fallback_groups[2]",
        "'fast_group' falls back to itself",
    ),
    (
        "fallback cycle",
        edit(FAST, lambda d: d["fallback_config"]["fallback_groups"].append("thinking_group.echelon3")),
        FAST,
        "fallback_config.fallback_groups[2]",
        "fallback cycle: fast_group -> thinking_group -> fast_group",
    ),
    (
        "bad type",
        edit(FAST, lambda d: d["echelon1"].update(concurrency_limit="ten")),
        FAST,
        "echelon1.concurrency_limit",
        "must be a valid integer, unable to parse string as an integer; got 'ten'",
    ),
    (
        "out of range",
        edit(FAST, lambda d: d["fallback_config"]["circuit_breaker"].update(failure_threshold=0)),
        FAST,
        "fallback_config.circuit_breaker.failure_threshold",
        "must be greater than 0; got 0",
    ),
    (
        "base_url port zero",
        edit(OLLAMA, lambda d: d.update(base_url="http://127.0.0.1:0/v1")),
        OLLAMA,
        "base_url",
        "has port 0, outside 1-65535",
    ),
    (
        "base_url port above 65535",
        edit(OLLAMA, lambda d: d.update(base_url="http://127.0.0.1:70000/v1")),
        OLLAMA,
        "base_url",
        "has port 70000, outside 1-65535",
    ),
    (
        "base_url port negative",
        edit(OLLAMA, lambda d: d.update(base_url="http://127.0.0.1:-1/v1")),
        OLLAMA,
        "base_url",
        "has port -1, outside 1-65535",
    ),
    (
        "state url port zero",
        write("state.yaml", "backend: redis\nurl: redis://127.0.0.1:0/0\n"),
        "state.yaml",
        "url",
        "has an invalid port (1-65535)",
    ),
    (
        "state url port above 65535",
        write("state.yaml", "backend: redis\nurl: redis://127.0.0.1:70000/0\n"),
        "state.yaml",
        "url",
        "has an invalid port (1-65535)",
    ),
    (
        "model timeout over a day",
        edit(OLLAMA, lambda d: d.update(timeout=90_000)),
        OLLAMA,
        "timeout",
        "must be less than or equal to 86400",
    ),
    (
        "tier timeout infinite",
        edit(FAST, lambda d: d["echelon1"].update(timeout=float("inf"))),
        FAST,
        "echelon1.timeout",
        "must be less than or equal to 86400",
    ),
    (
        "breaker recovery time infinite",
        edit(FAST, lambda d: d["fallback_config"]["circuit_breaker"].update(recovery_time=float("inf"))),
        FAST,
        "fallback_config.circuit_breaker.recovery_time",
        "must be less than or equal to 86400",
    ),
    (
        "retry delay over a day",
        edit(FAST, lambda d: d["fallback_config"].update(retry_delay=1e9)),
        FAST,
        "fallback_config.retry_delay",
        "must be less than or equal to 86400",
    ),
    (
        "pool health check interval over a day",
        edit(FAST_POOL, lambda d: d.update(health_check_interval=1e12)),
        FAST_POOL,
        "health_check_interval",
        "must be less than or equal to 86400",
    ),
    (
        "pool ejection time over a day",
        edit(FAST_POOL, lambda d: d.update(outlier_detection={"base_ejection_time": 1e7})),
        FAST_POOL,
        "outlier_detection.base_ejection_time",
        "must be less than or equal to 86400",
    ),
    (
        "hedge after over a day",
        edit(FAST_POOL, lambda d: d["fallback_config"].update(hedge={"after": 1e7})),
        FAST_POOL,
        "fallback_config.hedge.after",
        "must be at most 86400 seconds",
    ),
    (
        "wrapper timeout over a day",
        edit(WRAPPERS, lambda d: d["fast_group_wrapper"].update(timeout=1e6)),
        WRAPPERS,
        "fast_group_wrapper.timeout",
        "must be less than or equal to 86400",
    ),
    (
        "model weight infinite",
        edit(OLLAMA, lambda d: d.update(weight=float("inf"))),
        OLLAMA,
        "weight",
        "finite number",
    ),
    (
        "model price infinite",
        edit(OLLAMA, lambda d: d.update(input_price=float("inf"))),
        OLLAMA,
        "input_price",
        "finite number",
    ),
    (
        "simulated latency over a day",
        edit(OLLAMA, lambda d: d.update(simulation={"latency": 1e6})),
        OLLAMA,
        "simulation.latency",
        "must be less than or equal to 86400",
    ),
    (
        "bad enum value",
        edit(FAST, lambda d: d["fallback_config"].update(strategy="echelon_dwn")),
        FAST,
        "fallback_config.strategy",
        "must be 'echelon_down', 'task_group_switch' or 'provider_failover'; got 'echelon_dwn'",
    ),
    (
        "bad rotation strategy",
        edit(FAST_POOL, lambda d: d.update(rotation_strategy="round-robin")),
        FAST_POOL,
        "rotation_strategy",
        "got 'round-robin'",
    ),
    (
        "tier is not a mapping",
        edit(FAST, lambda d: d.update(echelon2=["openai-gpt4"])),
        FAST,
        "echelon2",
        "must be a mapping of keys to values, got a list",
    ),
    (
        "bad YAML",
        write(FAST_POOL, "name: fast_pool\ntask_groups: [fast_group\nrotation_strategy: round_robin\n"),
        FAST_POOL,
        "",
        "invalid YAML at line",
    ),
    (
        "duplicate YAML key",
        write(FAST_POOL, "name: fast_pool\ntask_groups: [fast_group]\ntask_groups: [thinking_group]\n"),
        FAST_POOL,
        "",
        "key 'task_groups' appears twice (first on line 2)",
    ),
    (
        "top level is not a mapping",
        write(FAST_POOL, "- fast_group\n"),
        FAST_POOL,
        "",
        "must be a mapping of keys to values at the top level, got a list",
    ),
    ("empty file", write(FAST_POOL, "# nothing yet\n"), FAST_POOL, "", "the file is empty"),
    (
        "duplicate model name",
        copy_model_to("zz_mirror"),
        "provider/zz_mirror/openai-gpt4.yaml",
        "",
        "model 'openai-gpt4' is already defined by",
    ),
    (
        "group name differs from its file",
        edit(FAST, lambda d: d.update(name="quick_group")),
        FAST,
        "name",
        "'quick_group' differs from the file name 'fast_group'",
    ),
    (
        "model provider differs from its folder",
        edit(GPT4, lambda d: d.update(provider="azure")),
        GPT4,
        "provider",
        "'azure' differs from the provider folder 'openai'",
    ),
    (
        "wrapper pointing at an unknown pool",
        edit(WRAPPERS, lambda d: d["fast_pool_wrapper"].update(pool="fast_pol")),
        WRAPPERS,
        "fast_pool_wrapper.pool",
        "unknown pool 'fast_pol'; did you mean 'fast_pool'?",
    ),
    (
        "wrapper target unknown",
        edit(WRAPPERS, lambda d: d["fast_group_wrapper"].update(target="fast_group.echelon0")),
        WRAPPERS,
        "fast_group_wrapper.target",
        "has no tier 'echelon0'",
    ),
    (
        "task_group wrapper without target",
        edit(WRAPPERS, lambda d: d["fast_group_wrapper"].pop("target")),
        WRAPPERS,
        "fast_group_wrapper.target",
        "required for a task_group wrapper",
    ),
    (
        "wrapper field of the other type",
        edit(WRAPPERS, lambda d: d["fast_group_wrapper"].update(pool="fast_pool")),
        WRAPPERS,
        "fast_group_wrapper.pool",
        "only a polling_pool wrapper takes pool",
    ),
    (
        "wrapper type unknown",
        edit(WRAPPERS, lambda d: d["fast_group_wrapper"].update(type="group")),
        WRAPPERS,
        "fast_group_wrapper.type",
        "must be 'task_group' or 'polling_pool'; got 'group'",
    ),
    (
        "pool referencing an unknown group",
        edit(FAST_POOL, lambda d: d.update(task_groups=["fast_grop"])),
        FAST_POOL,
        "task_groups[0]",
        "unknown group 'fast_grop'; did you mean 'fast_group'?",
    ),
    (
        "weights for a model not in the pool",
        edit("polling_pools/translation_pool.yaml", lambda d: d["weights"].update({"openai-gpt4": 2})),
        "polling_pools/translation_pool.yaml",
        "weights.openai-gpt4",
        "is not in this pool",
    ),
    (
        "weights without the weighted strategy",
        edit(FAST_POOL, lambda d: d.update(weights={"openai-gpt4": 2})),
        FAST_POOL,
        "weights",
        "only rotation_strategy 'weighted' reads weights",
    ),
    (
        "misspelt echelon",
        edit(FAST, lambda d: rename_key(d, "echelon3", "echelom3")),
        FAST,
        "echelom3",
        "looks like a misspelt echelon; rename it to 'echelon3'",
    ),
    (
        "openai_compatible without base_url",
        edit(OLLAMA, lambda d: d.pop("base_url")),
        OLLAMA,
        "base_url",
        "required for model_type openai_compatible",
    ),
    (
        "anthropic base_url with the version",
        edit(
            "provider/anthropic/anthropic-claude-3-haiku.yaml",
            lambda d: d.update(base_url="https://api.anthropic.com/v1"),
        ),
        "provider/anthropic/anthropic-claude-3-haiku.yaml",
        "base_url",
        "drop the trailing /v1",
    ),
    ("bad model_type", edit(GPT4, lambda d: d.update(model_type="azure")), GPT4, "model_type", "got 'azure'"),
    (
        "unset variable in a non-key field",
        edit(GPT4, lambda d: d.update(base_url="${GPT4_PROXY_URL}")),
        GPT4,
        "base_url",
        "environment variable GPT4_PROXY_URL is not set; set it, or give a default: ${GPT4_PROXY_URL:-value}",
    ),
    (
        "malformed variable reference",
        edit(FAST, lambda d: d.update(description="${FAST")),
        FAST,
        "description",
        "never closed",
    ),
    (
        "registry entry for a missing file",
        edit(
            "groups/_task_groups.yaml",
            lambda d: d["task_groups"].update(plan_group={"file": "groups/plan_group.yaml"}),
        ),
        "groups/_task_groups.yaml",
        "task_groups.plan_group.file",
        "file 'groups/plan_group.yaml' not found",
    ),
    (
        "registry unknown key",
        edit("groups/_task_groups.yaml", lambda d: d.update(loading_options={"enable_cache": True})),
        "groups/_task_groups.yaml",
        "loading_options",
        "unknown key; valid keys here: task_groups, polling_pools, global_configs",
    ),
    (
        "registry global config llm-actors does not read",
        edit(
            "groups/_task_groups.yaml",
            lambda d: d.update(global_configs={"rate_limiting": {"file": "rate_limiting.yaml"}}),
        ),
        "groups/_task_groups.yaml",
        "global_configs.rate_limiting",
        "reads no global config but global_fallback",
    ),
    (
        "legacy global fallback with a bad value",
        write("global_fallback.yaml", "enabled: true\nmax_attempts: -1\n"),
        "global_fallback.yaml",
        "max_attempts",
        "must be greater than 0",
    ),
    (
        "api_key_env written by hand",
        edit(GPT4, lambda d: d.update(api_key_env="OPENAI_API_KEY")),
        GPT4,
        "api_key_env",
        "write api_key: ${VARIABLE}",
    ),
]


@pytest.mark.parametrize("mutate, file, path, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_and_field(
    llms: Path, mutate: Callable[[Path], None], file: str, path: str, message: str
) -> None:
    error = single_issue(llms, mutate, file, path, message)
    # The rendered error carries all of it.
    assert f"{llms / file}" in str(error) and message in str(error)


def test_every_problem_is_collected_before_raising(llms: Path) -> None:
    edit_yaml(llms / FAST, lambda d: rename_key(d["echelon1"], "rpm_limit", "rpm_limt"))
    edit_yaml(llms / THINKING, lambda d: d["echelon2"]["models"].append("openai-gpt5"))
    (llms / FAST_POOL).write_text("task_groups: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    where = [(Path(i.file).name, i.path) for i in info.value.issues]
    assert ("fast_group.yaml", "echelon1.rpm_limt") in where
    assert ("thinking_group.yaml", "echelon2.models[2]") in where
    assert ("fast_pool.yaml", "") in where
    # The wrapper points at fast_pool, whose file is broken: reported once, at the file.
    assert ("wrappers.yaml", "fast_pool_wrapper.pool") not in where
    edit_yaml(llms / WRAPPERS, lambda d: d["fast_group_wrapper"].update(target="nope"))
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    assert len(info.value.issues) == len(where) + 1
    assert str(info.value).startswith(f"invalid configuration ({len(where) + 1} problems):")


def test_a_model_whose_file_is_broken_is_not_also_unknown(llms: Path) -> None:
    (llms / GPT4).write_text("model_type: openai\nmodel_name: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    assert [Path(i.file).name for i in info.value.issues] == ["openai-gpt4.yaml"]


def test_cycle_across_three_groups_reports_the_path(llms: Path) -> None:
    edit_yaml(
        llms / FAST, lambda d: d["fallback_config"]["fallback_groups"].append("fast_small_group.analysis")
    )
    edit_yaml(
        llms / "groups" / "fast_small_group.yaml",
        lambda d: d["fallback_config"].update(fallback_groups=["thinking_group.echelon3"]),
    )
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    [issue] = info.value.issues
    assert "fallback cycle: fast_group -> fast_small_group -> thinking_group -> fast_group" in issue.message


def test_a_base_url_with_an_invalid_port_is_a_config_error_naming_file_and_field(tmp_path):
    import shutil

    from actors.config import load_config
    from actors.errors import ConfigError

    shutil.copytree("config", tmp_path / "config")
    path = tmp_path / "config/llms/provider/openai/openai-gpt4.yaml"
    path.write_text(path.read_text().replace("https://api.openai.com/v1", "http://host:port/v1"))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config")
    assert "openai-gpt4.yaml" in str(info.value) and "base_url" in str(info.value)
