"""Configurations whose models are served by a fake provider, written as real config files.

Tests, benchmarks and anyone trying llm-actors without a provider account write a small topology
with ``write_topology`` and start a ``Runtime`` on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["FakeURLs", "write_topology"]


class FakeURLs:
    """The base URLs of a fake provider listening at ``url`` (``http://host:port``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def openai_base_url(self, instance: str) -> str:
        return f"{self.url}/{instance}/v1"

    def anthropic_base_url(self, instance: str) -> str:
        return f"{self.url}/{instance}"


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

    A model entry may set ``model_type`` (default openai) and any other model field; simulated
    models need no ``fake`` (pass None).
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
