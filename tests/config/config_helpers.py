"""Constants and helpers shared by the configuration tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config"
#: Variables the shipped config reads; tests start with none of them set.
CONFIG_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_BASE_URL")
#: A fake key distinctive enough that finding it anywhere in output is a leak.
FAKE_KEY = "sk-test-Zq7LEAKCANARY9xWv3"


def edit_yaml(path: Path, change: Callable[[Any], object]) -> None:
    """Load ``path``, let ``change`` mutate the data (its return value is ignored), write it back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    write_yaml(path, data)


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def edit(file: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A mutation of the config tree: ``change`` applied to ``file``'s data."""
    return lambda llms: edit_yaml(llms / file, change)


def single_issue(
    llms: Path, mutate: Callable[[Path], None], file: str, path: str, message: str
) -> ConfigError:
    """Apply ``mutate``; loading must fail with exactly one issue naming ``file``, ``path`` and ``message``."""
    mutate(llms)
    with pytest.raises(ConfigError) as info:
        load_config(llms, environ={})
    issues = info.value.issues
    assert len(issues) == 1, "\n".join(map(str, issues))
    [issue] = issues
    assert issue.file == str(llms / file)
    assert issue.path == path
    assert message in issue.message
    return info.value
