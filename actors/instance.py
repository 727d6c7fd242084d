"""The instance actor: statistics and latency of one LLM instance, fed by ``tell``."""

from __future__ import annotations

from typing import Any

import pykka

from actors.actor import Actor
from actors.gate import InstanceGate
from actors.outcome import Outcome
from actors.rotation import Ewma
from actors.stats import CallStats

__all__ = ["AttemptDone", "GetStats", "InstanceActor", "InstanceHandle"]


class AttemptDone:
    """One attempt on an instance ended; ``outcome`` None means it was cancelled."""

    __slots__ = ("instance", "target", "outcome", "duration", "usage", "error")

    def __init__(self, instance: str, target: str, outcome: Outcome | None, duration: float, usage: Any, error: str | None) -> None:
        self.instance = instance
        self.target = target
        self.outcome = outcome
        self.duration = duration
        self.usage = usage
        self.error = error


class GetStats:
    """Ask for an actor's statistics; the answer goes to ``reply``."""

    __slots__ = ("reply",)

    def __init__(self, reply: Any) -> None:
        self.reply = reply


class InstanceActor(Actor):
    """Counts one instance's attempts and keeps its latency average for ``lowest_latency``.

    Admission (breaker, parking, permits) is decided on the instance's gate by the callers
    themselves; this actor only learns from outcomes, off the request path.
    """

    handlers = {AttemptDone: "_on_attempt", GetStats: "_on_get_stats"}

    def __init__(self, gate: InstanceGate, restarts: int = 0, on_crash: Any = None) -> None:
        super().__init__(on_crash=on_crash)
        self.gate = gate
        self.stats = CallStats()
        self.ewma = Ewma(0.3)
        self.last_error: str | None = None
        self.restarts = restarts

    def _on_attempt(self, m: AttemptDone) -> None:
        outcome = m.outcome
        success = None if outcome is None else outcome is Outcome.SUCCESS
        self.stats.record(success, m.duration, usage=m.usage, outcome=outcome.value if outcome else "cancelled")
        if success:
            self.ewma.update(m.duration)
            self.gate.latency = self.ewma.value  # one float store: atomic for readers
        elif m.error:
            self.last_error = m.error

    def _on_get_stats(self, m: GetStats) -> None:
        out = self.stats.to_dict()
        out.update(
            instance=self.gate.name,
            provider=self.gate.provider,
            latency_ewma=self.ewma.value,
            last_error=self.last_error,
            restarts=self.restarts,
        )
        m.reply.set(out)


class InstanceHandle:
    """Where callers send an instance's outcomes; the supervisor swaps ``ref`` on a restart."""

    __slots__ = ("gate", "ref", "restarts")

    def __init__(self, gate: InstanceGate) -> None:
        self.gate = gate
        self.ref: pykka.ActorRef[Any] | None = None
        self.restarts = 0

    def tell(self, message: Any) -> None:
        ref = self.ref
        if ref is None:
            return
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass  # crashed: the supervisor is restarting it; this one report is lost
