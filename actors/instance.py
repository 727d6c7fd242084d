"""The instance actor: statistics and latency of one LLM instance, fed by ``tell``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from actors.outcome import Outcome
from actors.protocol import AttemptDone, CountingActor
from actors.rotation import Ewma
from actors.state.gate import InstanceGate

__all__ = ["InstanceActor", "InstanceHandle"]


class InstanceActor(CountingActor):
    """Counts one instance's attempts and keeps its latency average for ``lowest_latency``.

    Admission (breaker, parking, permits) is decided on the instance's gate by the callers
    themselves; this actor only learns from outcomes, off the request path.
    """

    def __init__(
        self,
        gate: InstanceGate,
        restarts: int = 0,
        on_crash: Any = None,
        model: Any = None,
        record_latency: Callable[[str, float], None] | None = None,
    ) -> None:
        super().__init__(on_crash=on_crash)
        self.gate = gate  # read only: its name and provider
        self.record_latency = record_latency  # the state owner's, for ``lowest_latency``
        self.model = model  # its ModelConfig: prices turn token counts into cost
        self.ewma = Ewma(0.3)
        self.last_error: str | None = None
        self.restarts = restarts

    def attempt_seen(self, m: AttemptDone) -> None:
        if m.outcome is Outcome.SUCCESS:
            self.ewma.update(m.duration)
            if self.record_latency is not None and self.ewma.value is not None:
                self.record_latency(self.gate.name, self.ewma.value)
        elif m.error:
            self.last_error = m.error

    def describe(self) -> dict[str, Any]:
        out = self.stats.to_dict()
        model = self.model
        cost = None
        if model is not None and (model.input_price is not None or model.output_price is not None):
            cost = (
                self.stats.prompt_tokens * (model.input_price or 0.0)
                + self.stats.completion_tokens * (model.output_price or 0.0)
            ) / 1e6
        out.update(
            cost_usd=cost,
            instance=self.gate.name,
            provider=self.gate.provider,
            latency_ewma=self.ewma.value,
            last_error=self.last_error,
            restarts=self.restarts,
        )
        return out


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
