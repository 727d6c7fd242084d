"""Messages the runtime's actors share, and the base of the actors that count attempts."""

from __future__ import annotations

from typing import Any

from actors.actor import Actor
from actors.outcome import Outcome
from actors.stats import CallStats

__all__ = ["AttemptBatch", "AttemptDone", "CountingActor", "GetStats"]


class AttemptDone:
    """One attempt on an instance ended; ``outcome`` None means it was cancelled."""

    __slots__ = ("duration", "error", "instance", "outcome", "target", "usage")

    def __init__(
        self,
        instance: str,
        target: str,
        outcome: Outcome | None,
        duration: float,
        usage: Any,
        error: str | None,
    ) -> None:
        self.instance = instance
        self.target = target
        self.outcome = outcome
        self.duration = duration
        self.usage = usage
        self.error = error


class AttemptBatch:
    """Several ``AttemptDone`` for one actor, delivered together (see ``Runtime.flush``)."""

    __slots__ = ("items",)

    def __init__(self, items: list[AttemptDone]) -> None:
        self.items = items


class GetStats:
    """Ask for an actor's statistics; the answer goes to ``reply``."""

    __slots__ = ("reply",)

    def __init__(self, reply: Any) -> None:
        self.reply = reply


class CountingActor(Actor):
    """Counts attempts in ``stats`` and, per ``key_of(attempt)``, in ``per_key``."""

    handlers = {AttemptDone: "_on_attempt", AttemptBatch: "_on_batch", GetStats: "_on_get_stats"}

    def __init__(self, keys: list[str] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(**kwargs)
        self.stats = CallStats()
        self.per_key: dict[str, CallStats] = {k: CallStats() for k in keys}

    def key_of(self, m: AttemptDone) -> str | None:
        return None

    def _on_attempt(self, m: AttemptDone) -> None:
        outcome = m.outcome
        success = None if outcome is None else outcome is Outcome.SUCCESS
        name = outcome.value if outcome is not None else "cancelled"
        self.stats.record(success, m.duration, usage=m.usage, outcome=name)
        per = self.per_key.get(self.key_of(m))  # type: ignore[arg-type]
        if per is not None:
            per.record(success, m.duration, usage=m.usage, outcome=name)
        self.attempt_seen(m)

    def attempt_seen(self, m: AttemptDone) -> None:
        """Hook for what else an attempt teaches a subclass."""

    def _on_batch(self, m: AttemptBatch) -> None:
        for item in m.items:
            self._on_attempt(item)

    def _on_get_stats(self, m: GetStats) -> None:
        m.reply.set(self.describe())

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError
