"""The task-group actor: a group's tiers in priority order and what each tier served."""

from __future__ import annotations

from typing import Any

from actors.protocol import AttemptDone, CountingActor

__all__ = ["TaskGroupActor"]


class TaskGroupActor(CountingActor):
    """Counts attempts per tier; the tiers' order and fallback settings come from the config."""

    def __init__(self, name: str, config: Any) -> None:
        tiers = [t for t, _ in config.tiers_by_priority()]
        super().__init__([f"{name}.{t}" for t in tiers])
        self.name = name
        self.config = config
        self.tiers = tiers

    def key_of(self, m: AttemptDone) -> str:
        return m.target

    def describe(self) -> dict[str, Any]:
        fb = self.config.effective_fallback
        return {
            "name": self.name,
            "tiers": self.tiers,
            "strategy": getattr(fb.strategy, "value", fb.strategy),
            "stats": self.stats.to_dict(),
            "per_tier": {label: s.to_dict() for label, s in self.per_key.items()},
        }
