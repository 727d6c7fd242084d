"""Fixtures for runtime tests: small topologies written as real config files, served by the fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.fake.topology import write_topology
from actors.runtime import Runtime

__all__ = ["runtime_for", "write_topology"]


@pytest.fixture
def runtime_for(tmp_path: Path, fake: Any) -> Iterator[Callable[..., Runtime]]:
    """Build, start and (at the end of the test) stop a runtime over a topology on the fake."""
    started: list[Runtime] = []

    def make(**topology: Any) -> Runtime:
        options = {k: topology.pop(k) for k in ("simulate", "group_probe_interval", "state") if k in topology}
        root = write_topology(tmp_path / f"cfg{len(started)}", fake, **topology)
        rt = Runtime.from_config(root, **options).start()
        started.append(rt)
        return rt

    yield make
    for rt in started:
        rt.stop()
