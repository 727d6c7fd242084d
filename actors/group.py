"""The task-group actor: a group's tiers in priority order and what each tier served."""

from __future__ import annotations

from typing import Any

from actors.actor import Actor
from actors.instance import AttemptDone, GetStats
from actors.outcome import Outcome
from actors.stats import CallStats

__all__ = ["TaskGroupActor"]


class TaskGroupActor(Actor):
    """Counts attempts per tier; the tiers' order and fallback settings come from the config."""

    handlers = {AttemptDone: "_on_attempt", GetStats: "_on_get_stats"}

    def __init__(self, name: str, config: Any) -> None:
        super().__init__()
        self.name = name
        self.config = config
        self.tiers = [t for t, _ in config.tiers_by_priority()]
        self.per_tier: dict[str, CallStats] = {f"{name}.{t}": CallStats() for t in self.tiers}
        self.stats = CallStats()

    def _on_attempt(self, m: AttemptDone) -> None:
        success = None if m.outcome is None else m.outcome is Outcome.SUCCESS
        outcome = m.outcome.value if m.outcome else "cancelled"
        self.stats.record(success, m.duration, usage=m.usage, outcome=outcome)
        stats = self.per_tier.get(m.target)
        if stats is not None:
            stats.record(success, m.duration, usage=m.usage, outcome=outcome)

    def _on_get_stats(self, m: GetStats) -> None:
        fb = self.config.effective_fallback
        m.reply.set(
            {
                "name": self.name,
                "tiers": self.tiers,
                "strategy": getattr(fb.strategy, "value", fb.strategy),
                "stats": self.stats.to_dict(),
                "per_tier": {label: s.to_dict() for label, s in self.per_tier.items()},
            }
        )
