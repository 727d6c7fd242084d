"""Fixtures for the state owner's unit tests: a config on disk, a LocalState over it, a manual clock.

No threads, no sleeps, no HTTP: the owner is plain logic under one lock, driven with explicit
``now`` values; waiters are plain objects that record being woken.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.clock import ManualClock
from actors.config import load_config
from actors.fake.topology import write_topology
from actors.state.local import LocalState


class Waiter:
    """A queued request's wake-up handle that only records (the drivers' real ones block)."""

    def __init__(self) -> None:
        self.gone = False
        self.handed = False
        self.plan: Any = None

    def wake(self) -> bool:
        if self.gone:
            return False
        self.handed = True
        return True

    def rearm(self) -> None:
        self.handed = False


class Ticket:
    """The owner's view of a request: its plan, deadline and place in a queue."""

    def __init__(self, plan: Any, deadline: float = 1e9) -> None:
        self.plan = plan
        self.deadline = deadline
        self.waiter: Any = None
        self.waiting_at: Any = None


def tier(models: list[str], **settings: Any) -> dict[str, Any]:
    return {"echelon1": {"models": models, "priority": 1, **settings}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def build(tmp_path: Path) -> Callable[..., tuple[Any, LocalState, list[tuple[str, str, str, Any]]]]:
    """``build(models=..., groups=..., pools=...)`` -> (config, state, events heard)."""
    count = [0]

    def make(**topology: Any) -> tuple[Any, LocalState, list[tuple[str, str, str, Any]]]:
        models = {n: {"model_type": "simulated", **spec} for n, spec in topology.pop("models").items()}
        count[0] += 1
        root = write_topology(tmp_path / f"cfg{count[0]}", None, models=models, **topology)
        config = load_config(root)
        events: list[tuple[str, str, str, Any]] = []
        state = LocalState(
            config, dict.fromkeys(config.models), on_change=lambda *event: events.append(event)
        )
        return config, state, events

    return make
