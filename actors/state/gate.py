"""Instance gates and echelon budgets: the state a lease decision reads and changes.

A request must be admitted or refused in microseconds, and two requests must never both take
the last permit, so these objects are plain data guarded by one lock. They are the data of the
state owner (``actors.state.local.LocalState``): only it changes them, under that lock, for a
few microseconds, never across I/O. Everything slower (statistics, probes, timers, pool
membership) belongs to the actors, which hear about each attempt by ``tell``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.breaker import BreakerState, CircuitBreaker
from actors.outcome import Outcome
from actors.parking import Parking
from actors.resilience import PaceDecision, TtfbSamples
from actors.window import RateWindow, TokenWindow

if TYPE_CHECKING:
    from actors.config.models import ModelConfig

__all__ = ["NEVER", "EchelonBudget", "InstanceGate"]

#: "Not before the configuration changes": an instance disabled with a reason.
NEVER = math.inf


class Permits:
    """Concurrency, requests-per-minute and tokens-per-minute limits; each one optional.

    Requests in flight are counted whether or not a concurrency limit is set, so a reload can
    set, change or lift one while requests run. Tokens are known only after a call, so ``tpm``
    admits while the last minute's tokens are under the limit and counts each call's tokens
    when it ends.
    """

    __slots__ = ("in_flight", "limit", "paced_until", "rpm", "tpm")

    def __init__(self, concurrency: int | None, rpm: int | None, tpm: int | None = None) -> None:
        self.in_flight = 0
        self.paced_until = 0.0  # no call before then: the provider's headers said little is left
        self.limit = concurrency or None
        self.rpm = RateWindow(rpm) if rpm else None
        self.tpm = TokenWindow(tpm) if tpm else None

    def resize(self, concurrency: int | None, rpm: int | None, tpm: int | None = None) -> None:
        """New limits (a reload); what is in flight and the windows' history carry over."""
        self.limit = concurrency or None
        self.rpm = _window(self.rpm, rpm, RateWindow)
        self.tpm = _window(self.tpm, tpm, TokenWindow)

    def room_at(self, now: float) -> float | None:
        """None when a request fits now; else when one will (``now`` means: on a release)."""
        if self.limit is not None and self.in_flight >= self.limit:
            return now
        if now < self.paced_until:
            return self.paced_until
        if self.rpm is not None and self.rpm.available(now) <= 0:
            return self.rpm.next_free_at(now)
        if self.tpm is not None and self.tpm.available(now) <= 0:
            return self.tpm.next_free_at(now, 1)
        return None

    def take(self, now: float) -> None:
        self.in_flight += 1
        if self.rpm is not None:
            self.rpm.try_acquire(now)

    def pace(self, until: float) -> None:
        """Admit nothing before ``until`` (a later pace wins)."""
        if until > self.paced_until:
            self.paced_until = until

    def give_back(self, now: float, tokens: int) -> None:
        if self.in_flight <= 0:
            raise RuntimeError("a permit was given back twice: a lease leaked or was returned twice")
        self.in_flight -= 1
        if self.tpm is not None and tokens:
            self.tpm.record(now, tokens)


def _window(old: Any, limit: int | None, kind: type) -> Any:
    if not limit:
        return None
    if old is None:
        return kind(limit)
    old.limit = limit
    return old


class EchelonBudget:
    """An echelon's ``concurrency_limit`` and ``rpm_limit``, shared by every route through it."""

    __slots__ = ("label", "permits", "watchers")

    def __init__(self, label: str, concurrency_limit: int | None, rpm_limit: int | None) -> None:
        self.label = label
        self.permits = Permits(concurrency_limit, rpm_limit)
        self.watchers: list[Any] = []  # targets to wake when a permit frees

    @property
    def in_flight(self) -> int:
        return self.permits.in_flight


class InstanceGate:
    """The health and permits of one instance, judged per route (a pool or a task group).

    Each route has its own circuit breaker with its own parameters (SPEC §4), all fed by the
    one stream of outcomes this instance produces.
    """

    __slots__ = (
        "breakers",
        "client",
        "config_disabled",
        "context_window",
        "disabled_reason",
        "last_used",
        "latency",
        "name",
        "on_change",
        "paced",
        "pacing",
        "parking",
        "permits",
        "provider",
        "timeout",
        "ttfb",
        "watchers",
        "weight",
    )

    def __init__(
        self, model: ModelConfig, client: Any, *, on_change: Callable[..., None] | None = None
    ) -> None:
        self.name = model.name
        self.provider = model.provider or model.model_type
        self.context_window = model.context_window
        self.timeout = model.timeout
        self.weight = model.weight
        self.client = client  # the Provider that speaks this instance's API
        self.disabled_reason: str | None = model.disabled_reason
        self.config_disabled = model.disabled_reason is not None  # only a reload can enable it
        self.parking = Parking()
        self.breakers: dict[str, CircuitBreaker] = {}
        self.permits = Permits(model.concurrency_limit, model.rpm_limit, model.tpm_limit)
        self.latency: float | None = None  # EWMA seconds, written by the instance actor
        self.ttfb = TtfbSamples()  # times to first byte, for hedging on the p95
        self.pacing = model.pace_from_headers
        self.paced = 0  # answers whose rate-limit headers parked or paced this instance
        self.last_used: float | None = None
        self.watchers: list[Any] = []
        # Called as (gate, route, event, until) when the instance opens, closes, parks or is
        # disabled; the runtime tells the supervisor. Runs under the table lock: keep it a tell.
        self.on_change = on_change

    @property
    def in_flight(self) -> int:
        return self.permits.in_flight

    def reconfigure(self, model: ModelConfig, client: Any) -> None:
        """A reload changed this model's settings: adopt them, keeping what is in flight."""
        self.provider = model.provider or model.model_type
        self.context_window = model.context_window
        self.timeout = model.timeout
        self.weight = model.weight
        self.pacing = model.pace_from_headers
        self.client = client
        self.config_disabled = model.disabled_reason is not None
        self.disabled_reason = model.disabled_reason
        self.parking.unpark()
        self.breakers.clear()  # judged afresh: the old verdicts were about other settings
        self.permits.resize(model.concurrency_limit, model.rpm_limit, model.tpm_limit)

    def add_route(
        self, route: str, failure_threshold: int, recovery_time: float, half_open_requests: int
    ) -> None:
        """Judge this instance on ``route`` with that route's breaker parameters.

        A route already judged with the same parameters keeps its breaker (a reload keeps the
        state of what did not change).
        """
        current = self.breakers.get(route)
        if current is not None and (
            current.failure_threshold,
            current.recovery_time,
            current.half_open_requests,
        ) == (failure_threshold, float(recovery_time), half_open_requests):
            return
        breaker = CircuitBreaker(failure_threshold, recovery_time, half_open_requests)
        breaker.on_change = lambda old, new: self._notify(route, new.value, breaker.open_until)
        self.breakers[route] = breaker

    def _notify(self, route: str, event: str, until: float | None) -> None:
        if self.on_change is not None:
            self.on_change(self, route, event, until)

    # -- reading (under the table lock) ---------------------------------------------------------

    def down_until(self, route: str, now: float) -> float | None:
        """None when healthy enough to try on ``route`` now; else when it is expected back."""
        if self.disabled_reason is not None:
            return NEVER
        if self.parking.is_parked(now):
            return self.parking.parked_until
        breaker = self.breakers.get(route)
        if breaker is None or breaker.state(now) is BreakerState.CLOSED:
            return None  # no breaker: a route dropped by a reload, still draining
        at = breaker.retry_at(now)
        if at is None:  # half-open, every trial slot taken: back when a trial ends at the latest
            return now + self.timeout
        return None if at <= now else at

    # -- changing (under the table lock) --------------------------------------------------------

    def take(self, route: str, now: float) -> bool:
        """Take a permit for one attempt; False when the breaker refuses (half-open slots full)."""
        breaker = self.breakers.get(route)
        if breaker is not None and not breaker.allow(now):
            return False
        self.permits.take(now)
        self.last_used = now
        return True

    def give_back(
        self,
        route: str,
        outcome: Outcome | None,
        now: float,
        retry_after: float | None,
        reason: str,
        tokens: int = 0,
        pace: PaceDecision | None = None,
    ) -> None:
        """Return the permit and record what the attempt taught us about this instance.

        ``pace`` is what a successful answer's rate-limit headers said: nothing left parks the
        instance until the reset (as a 429 would, without sending the request that gets it);
        little left spaces its calls.
        """
        self.permits.give_back(now, tokens)
        if outcome is Outcome.SUCCESS:
            self.parking.record_success()
            for breaker in self.breakers.values():
                breaker.record_success(now)
            if pace is not None and self.pacing:
                self.paced += 1
                if pace.park is not None:
                    self.parking.park(now, pace.park, pace.reason, count=False)
                    self._notify(route, "parked", self.parking.parked_until)
                elif pace.gap is not None:
                    self.permits.pace(now + pace.gap)
        elif outcome is Outcome.UNHEALTHY:
            for breaker in self.breakers.values():
                breaker.record_failure(now, retry_after=retry_after)
        elif outcome is Outcome.RATE_LIMITED:
            if retry_after is not None:
                self.parking.park(now, retry_after, reason)
            else:
                self.parking.park_default(now)
            self._release_trial(route)
            self._notify(route, "parked", self.parking.parked_until)
        elif outcome is Outcome.FATAL:
            self.disabled_reason = reason
            self._release_trial(route)
            self._notify(route, "disabled", None)
        else:  # caller's fault or cancelled: no verdict on the instance
            self._release_trial(route)

    def ejected(self, route: str, until: float) -> None:
        """``route``'s outlier detection ejected this instance until ``until``: tell the supervisor."""
        self._notify(route, "ejected", until)

    def retain_routes(self, routes: set[str]) -> None:
        """Forget the breakers of routes a reload removed."""
        for route in [r for r in self.breakers if r not in routes]:
            del self.breakers[route]

    def _release_trial(self, route: str) -> None:
        breaker = self.breakers.get(route)
        if breaker is not None and breaker.trials_in_flight:
            breaker.release_trial()

    def snapshot(self, now: float) -> dict[str, Any]:
        """State for health and stats output; never contains secrets."""
        if self.disabled_reason is not None:
            state, reason = "disabled", self.disabled_reason
        elif self.parking.is_parked(now):
            state, reason = "parked", self.parking.reason or "rate limited"
        else:
            worst = max(
                (b.state(now) for b in self.breakers.values()),
                key=_SEVERITY.__getitem__,
                default=BreakerState.CLOSED,
            )
            state, reason = worst.value, None
        return {
            "instance": self.name,
            "provider": self.provider,
            "state": state,
            "reason": reason,
            "in_flight": self.in_flight,
            "parked_until": self.parking.parked_until if self.parking.is_parked(now) else None,
            "latency_ewma": self.latency,
            "paced_until": self.permits.paced_until if self.permits.paced_until > now else None,
            "paced_total": self.paced,
            "breakers": {route: b.snapshot(now) for route, b in self.breakers.items()},
        }


#: Which breaker state a health report shows when routes disagree: the worst.
_SEVERITY = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
