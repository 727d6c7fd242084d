"""Fixtures for the configuration tests: the shipped config, and a copy of it to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from config_helpers import CONFIG_VARS, SHIPPED


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment without any of the variables the shipped config reads."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped ``config`` directory, free to break."""
    target = tmp_path / "config"
    shutil.copytree(SHIPPED, target)
    return target


@pytest.fixture
def llms(config_dir: Path) -> Path:
    return config_dir / "llms"
