"""Hostile and careless configurations: each ends quickly in a ConfigError naming the file.

Keys pasted with a line break, YAML alias bombs, values that contain themselves, deep nesting,
and a fuzzed mix of deleted keys, wrong types, unknown references, cycles, non-UTF-8 and broken
files: never a traceback, never a hang (the pytest timeout bounds each case).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from config_helpers import FAKE_KEY, SHIPPED, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors.cli
from actors.config import ConfigError, load_config
from actors.runtime import Runtime

pytestmark = pytest.mark.usefixtures("no_keys")

GPT4 = "provider/openai/openai-gpt4.yaml"
GROUP = "groups/fast_group.yaml"


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nname: fast_group\ndescription: *a{levels - 1}\n"


def _deep(depth: int) -> str:
    return "name: fast_group\ndescription: " + "[" * depth + "]" * depth + "\n"


HOSTILE_TEXTS = {
    "alias bomb": _alias_bomb(),
    "recursive alias": "name: fast_group\ndescription: &a [1, *a]\n",
    "nested 5,000 deep": _deep(5000),
    "nested 200 deep": _deep(200),
    "nested mappings 3,000 deep": "name: fast_group\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
}


def _assert_names(exc: ConfigError, file: Path) -> None:
    assert any(issue.file == str(file) for issue in exc.issues), [str(i) for i in exc.issues]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_a_bomb_or_deep_nesting_is_a_config_error_naming_the_file(llms: Path, name: str) -> None:
    (llms / GROUP).write_text(HOSTILE_TEXTS[name], encoding="utf-8")
    for load in (load_config, Runtime.from_config):
        with pytest.raises(ConfigError) as info:
            load(llms)
        _assert_names(info.value, llms / GROUP)


def test_anchors_and_aliases_in_ordinary_use_still_load(llms: Path) -> None:
    (llms / GROUP).write_text(
        "name: fast_group\n"
        "echelon1: {models: &top [openai-gpt4, anthropic-claude-3-opus], priority: 1, timeout: &t 30}\n"
        "echelon2: {models: *top, priority: 2, timeout: *t, max_retries: 1}\n"
        "echelon3: {models: *top, priority: 3, timeout: *t}\n",  # others name this tier
        encoding="utf-8",
    )
    tiers = load_config(llms).groups["fast_group"].tiers
    assert tiers["echelon2"].models == tiers["echelon1"].models and tiers["echelon2"].timeout == 30


@pytest.mark.timeout(20)
def test_check_reports_a_bomb_without_a_traceback(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (llms / GROUP).write_text(_alias_bomb(), encoding="utf-8")
    assert actors.cli.main(["check", str(llms)]) == 1
    out, err = capsys.readouterr()
    assert str(llms / GROUP) in out + err and "aliases" in out + err
    assert "Traceback" not in out + err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["alias bomb", "nested 5,000 deep"])
def test_migrate_refuses_a_bomb_or_deep_nesting_at_once(
    llms: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (llms / GROUP).write_text(HOSTILE_TEXTS[name], encoding="utf-8")
    assert actors.cli.main(["migrate", "--config-path", str(llms), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    [line] = [x for x in (out + err).splitlines() if "fast_group" in x]
    assert "failed" in line and ("aliases" in line or "nested" in line)
    assert "Traceback" not in out + err


def test_a_key_with_a_trailing_line_break_is_stripped(llms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", f"  {FAKE_KEY}\r\n")  # as `export KEY=$(cat keyfile)` can give
    model = load_config(llms).models["openai-gpt4"]
    assert model.key() == FAKE_KEY and model.enabled


@pytest.mark.parametrize(
    "key, why",
    [
        (f"sk-a\n{FAKE_KEY}", "control character"),
        (f"{FAKE_KEY}\x1b[0m", "control character"),
        (f"sk\x7f{FAKE_KEY}", "control character"),
        (f"{FAKE_KEY}\u2013x", "non-ASCII character"),  # an en dash a word processor put in
    ],
)
def test_a_key_no_header_can_carry_is_a_config_error_naming_the_field(
    llms: Path, monkeypatch: pytest.MonkeyPatch, key: str, why: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    [issue] = [i for i in info.value.issues if i.path == "api_key" and i.file == str(llms / GPT4)]
    assert why in issue.message and "OPENAI_API_KEY" in issue.message
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in repr(info.value.issues)


def test_a_header_with_a_line_break_is_a_config_error(llms: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["headers"] = {"x-proxy-token": f"{FAKE_KEY}\nx-injected: 1"}

    path = llms / GPT4
    data = yaml.safe_load(path.read_text())
    change(data)
    write_yaml(path, data)
    with pytest.raises(ConfigError) as info:
        load_config(llms)
    [issue] = [i for i in info.value.issues if i.path.startswith("headers")]
    assert issue.file == str(path) and "control character" in issue.message
    assert FAKE_KEY not in str(info.value)


# -- fuzzing ------------------------------------------------------------------------------------

FILES = sorted(str(p.relative_to(SHIPPED / "llms")) for p in (SHIPPED / "llms").rglob("*.yaml"))

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["fast_group", "fast_group.echelon9", "no_such_pool", "${UNSET_VAR}", "${", "$$"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)

RAW = {
    "empty": b"",
    "not UTF-8": b"name: \xff\xfe\x00 broken\n",
    "syntax error": b"name: [unclosed\n  - x: {\n",
    "tabs": b"name:\n\t- x\n",
    "a list at the top": b"- 1\n- 2\n",
    "duplicate keys": b"name: a\nname: b\n",
    "alias bomb": _alias_bomb().encode(),
    "recursive alias": b"x: &a {k: *a}\n",
    "deep nesting": _deep(3000).encode(),
    "a python tag": b"x: !!python/object/apply:os.system ['true']\n",
}


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, Any]:
    """(file, kind, what): one careless or hostile change to one file of the shipped config."""
    file = draw(st.sampled_from(FILES))
    kind = draw(st.sampled_from(["delete", "replace", "raw", "remove file", "cycle"]))
    if kind == "raw":
        return file, kind, draw(st.sampled_from(sorted(RAW)))
    if kind in ("remove file", "cycle"):
        return file, kind, None
    data = yaml.safe_load((SHIPPED / "llms" / file).read_text(encoding="utf-8"))
    paths = _paths(data)
    if not paths:
        return file, "raw", "empty"
    path = draw(st.sampled_from(paths))
    return file, kind, (path, draw(VALUES) if kind == "replace" else None)


def _apply(llms: Path, file: str, kind: str, what: Any) -> None:
    path = llms / file
    if kind == "raw":
        path.write_bytes(RAW[what])
    elif kind == "remove file":
        path.unlink()
    elif kind == "cycle":  # two groups falling back to each other
        for name, other in (("fast_group", "thinking_group"), ("thinking_group", "fast_group")):
            group = llms / "groups" / f"{name}.yaml"
            data = yaml.safe_load(group.read_text())
            data.setdefault("fallback_config", {})["fallback_groups"] = [other]
            write_yaml(group, data)
    else:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        where, value = what
        parent = _parent(data, where)
        if kind == "delete":
            del parent[where[-1]]
        else:
            parent[where[-1]] = value
        # safe_dump writes what the mutation made; a value it cannot write is itself a mutation
        try:
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        except (yaml.YAMLError, UnicodeEncodeError):
            path.write_bytes(RAW["syntax error"])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the shipped configuration; each example changes it and puts it back."""
    root = tmp_path_factory.mktemp("fuzz") / "config"
    shutil.copytree(SHIPPED, root)
    return root


#: Edits per run; raise it for a longer hunt (``LLM_ACTORS_FUZZ_EXAMPLES=2000``).
EXAMPLES = int(os.environ.get("LLM_ACTORS_FUZZ_EXAMPLES", "50"))


@pytest.mark.timeout(60 + EXAMPLES)
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(change=mutations())
def test_fuzzed_configurations_load_or_fail_with_every_issue_naming_a_file(
    scratch: Path, change: tuple[str, str, Any]
) -> None:
    file, kind, what = change
    llms = scratch / "llms"
    touched = {file, "groups/fast_group.yaml", "groups/thinking_group.yaml"}
    _apply(llms, file, kind, what)
    try:
        load_config(scratch)
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file and Path(issue.file).is_relative_to(llms), str(issue)
            assert issue.message
        if kind == "raw" and what != "duplicate keys":
            _assert_names(exc, llms / file)
    else:
        empty_wrappers = (file, what) == ("wrappers.yaml", "empty")  # no wrappers declared: fine
        assert kind in ("delete", "replace", "remove file") or empty_wrappers, f"{kind} {what} loaded"
    finally:
        for name in touched:
            shutil.copyfile(SHIPPED / "llms" / name, llms / name)
