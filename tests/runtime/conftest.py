"""Fixtures for runtime tests: small topologies written as real config files, served by the fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from actors.runtime import Runtime


def write_topology(
    root: Path,
    fake: Any,
    *,
    models: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]] | None = None,
    pools: dict[str, dict[str, Any]] | None = None,
    wrappers: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write ``root/llms/...`` with each model on the fake provider, named after its instance.

    A model entry may set ``model_type`` (default openai) and any other model field.
    """
    llms = root / "llms"
    for name, spec in models.items():
        spec = dict(spec)
        kind = spec.setdefault("model_type", "openai")
        provider = spec.pop("provider", "anthropic" if kind == "anthropic" else "openai")
        spec.setdefault("model_name", f"{name}-model")
        if kind == "anthropic":
            spec.setdefault("base_url", fake.anthropic_base_url(name))
        elif kind != "simulated":
            spec.setdefault("base_url", fake.openai_base_url(name))
        if kind != "simulated":
            spec.setdefault("api_key", f"sk-test-{name}")
        spec.setdefault("timeout", 5)
        _dump(llms / "provider" / provider / f"{name}.yaml", spec)
    for name, spec in (groups or {}).items():
        _dump(llms / "groups" / f"{name}.yaml", {"name": name, **spec})
    for name, spec in (pools or {}).items():
        _dump(llms / "polling_pools" / f"{name}.yaml", {"name": name, **spec})
    if wrappers:
        _dump(llms / "wrappers.yaml", wrappers)
    return root


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def runtime_for(tmp_path: Path, fake: Any) -> Iterator[Callable[..., Runtime]]:
    """Build, start and (at the end of the test) stop a runtime over a topology on the fake."""
    started: list[Runtime] = []

    def make(**topology: Any) -> Runtime:
        options = {k: topology.pop(k) for k in ("simulate", "group_probe_interval") if k in topology}
        root = write_topology(tmp_path / f"cfg{len(started)}", fake, **topology)
        rt = Runtime.from_config(root, **options).start()
        started.append(rt)
        return rt

    yield make
    for rt in started:
        rt.stop()
