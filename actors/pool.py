"""The polling-pool actor: which members are in rotation, why they left, and per-member counts."""

from __future__ import annotations

import collections
import time
from typing import Any

from actors.actor import Actor
from actors.instance import AttemptDone, GetStats
from actors.outcome import Outcome
from actors.stats import CallStats

__all__ = ["PoolActor", "Rotate"]

#: Rotation events kept per pool.
HISTORY = 200


class Rotate:
    """The supervisor moves ``instance`` out of rotation (``out=True``) or back in."""

    __slots__ = ("instance", "out", "reason")

    def __init__(self, instance: str, out: bool, reason: str) -> None:
        self.instance = instance
        self.out = out
        self.reason = reason


class PoolActor(Actor):
    """Keeps a pool's membership as the supervisor rotates instances out and in.

    Leases skip an unavailable member at once (its gate says so); membership is the slower,
    explained view of the same facts, for health reports and the rotation history.
    """

    handlers = {Rotate: "_on_rotate", AttemptDone: "_on_attempt", GetStats: "_on_get_stats"}

    def __init__(self, name: str, members: list[str], config: Any) -> None:
        super().__init__()
        self.name = name
        self.members = list(members)
        self.config = config
        self.out_of_rotation: dict[str, str] = {}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.per_member: dict[str, CallStats] = {m: CallStats() for m in members}
        self.stats = CallStats()

    def _on_rotate(self, m: Rotate) -> None:
        if m.instance not in self.per_member:
            return
        was_out = m.instance in self.out_of_rotation
        if m.out:
            self.out_of_rotation[m.instance] = m.reason
        else:
            self.out_of_rotation.pop(m.instance, None)
        if was_out != m.out:
            self.history.append(
                {"instance": m.instance, "event": "out" if m.out else "in", "reason": m.reason, "timestamp": time.time()}
            )

    def _on_attempt(self, m: AttemptDone) -> None:
        success = None if m.outcome is None else m.outcome is Outcome.SUCCESS
        outcome = m.outcome.value if m.outcome else "cancelled"
        self.stats.record(success, m.duration, usage=m.usage, outcome=outcome)
        stats = self.per_member.get(m.instance)
        if stats is not None:
            stats.record(success, m.duration, usage=m.usage, outcome=outcome)

    def _on_get_stats(self, m: GetStats) -> None:
        m.reply.set(
            {
                "name": self.name,
                "rotation_strategy": self.config.rotation_strategy,
                "total_instances": len(self.members),
                "in_rotation": [x for x in self.members if x not in self.out_of_rotation],
                "out_of_rotation": dict(self.out_of_rotation),
                "rotation_history": list(self.history),
                "stats": self.stats.to_dict(),
                "members": {name: s.to_dict() for name, s in self.per_member.items()},
            }
        )
