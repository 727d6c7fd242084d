"""Benchmark helpers: the fake provider as a process, and topologies written as config files.

``FakeProcess`` and ``write_topology`` live in ``actors.fake`` (tests use them too); this module
adds the 1,000-instance topology of the scale figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.fake.process import FakeProcess
from actors.fake.topology import FakeURLs, write_topology

__all__ = ["FakeProcess", "FakeURLs", "write_scale_topology", "write_topology"]


def write_scale_topology(root: Path, pools: int = 100, per_pool: int = 10) -> Path:
    """``pools`` groups of ``per_pool`` simulated instances, one polling pool over each group."""
    models: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    pool_specs: dict[str, dict[str, Any]] = {}
    for p in range(pools):
        names = [f"m{p:03d}x{i:02d}" for i in range(per_pool)]
        for n in names:
            models[n] = {"model_type": "simulated", "provider": "simulated", "model_name": "sim"}
        groups[f"g{p:03d}"] = {"echelon1": {"models": names, "priority": 1}}
        pool_specs[f"p{p:03d}"] = {"task_groups": [f"g{p:03d}.echelon1"], "rotation_strategy": "round_robin"}
    return write_topology(root, None, models=models, groups=groups, pools=pool_specs)
