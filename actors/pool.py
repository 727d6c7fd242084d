"""The polling-pool actor: which members are in rotation, why they left, and per-member counts."""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from typing import Any

from actors.protocol import AttemptDone, CountingActor

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


class PoolActor(CountingActor):
    """Keeps a pool's membership as the supervisor rotates instances out and in.

    Leases skip an unavailable member at once (its gate says so); membership is the slower,
    explained view of the same facts, for health reports and the rotation history. After a
    reload, ``previous`` (the status of the actor this one replaces) carries the history and
    who is out on; the new supervisor then brings it up to the state owner's view.
    """

    handlers = {**CountingActor.handlers, Rotate: "_on_rotate"}

    def __init__(
        self, name: str, members: list[str], config: Any, previous: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(list(members))
        self.name = name
        self.members = list(members)
        self.config = config
        self.out_of_rotation: dict[str, str] = {}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        if previous is not None:
            self.history.extend(previous.get("rotation_history", ()))
            out = previous.get("out_of_rotation", {})
            self.out_of_rotation = {n: reason for n, reason in out.items() if n in self.per_key}

    def key_of(self, m: AttemptDone) -> str:
        return m.instance

    def _on_rotate(self, m: Rotate) -> None:
        if m.instance not in self.per_key:
            return
        was_out = m.instance in self.out_of_rotation
        if m.out:
            self.out_of_rotation[m.instance] = m.reason
        else:
            self.out_of_rotation.pop(m.instance, None)
        if was_out != m.out:
            self.history.append(
                {
                    "instance": m.instance,
                    "event": "out" if m.out else "in",
                    "reason": m.reason,
                    "timestamp": time.time(),
                }
            )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rotation_strategy": getattr(
                self.config.rotation_strategy, "value", self.config.rotation_strategy
            ),
            "total_instances": len(self.members),
            "in_rotation": [x for x in self.members if x not in self.out_of_rotation],
            "out_of_rotation": dict(self.out_of_rotation),
            "rotation_history": list(self.history),
            "stats": self.stats.to_dict(),
            "members": {name: s.to_dict() for name, s in self.per_key.items()},
        }
