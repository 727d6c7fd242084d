"""``LocalState``: the in-process owner of request state, under one lock, with no I/O.

One lock, not one per object: a lease touches a target's queue, a gate and a budget at once; a
single lock makes that atomic without lock-ordering rules, and under the GIL it costs well under
a microsecond uncontended. It is held for microseconds, never across I/O or a wait. The gates,
budgets and targets it guards (``actors.state.gate``, ``actors.state.target``, built by
``LeaseTable``) are its data: nothing else changes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from actors.breaker import BreakerState
from actors.state.gate import NEVER, InstanceGate
from actors.state.table import LeaseTable
from actors.state.target import Blocked, Lease, Target

if TYPE_CHECKING:
    from actors.config import LLMConfig
    from actors.outcome import Outcome
    from actors.resilience import PaceDecision
    from actors.state.owner import ChangeListener, StateOwner, Ticket, Waiter

__all__ = ["LocalState"]

#: The answer to a request queued behind others when nothing is left for it: wait for a turn.
_QUEUED = Blocked(True, NEVER)


class _Behind:
    """A plan as seen by a request queued behind another: it admits only what the other cannot use."""

    __slots__ = ("ahead", "plan", "prefers", "session")

    def __init__(self, plan: Any, ahead: Any) -> None:
        self.plan = plan
        self.ahead = ahead
        self.prefers = plan.prefers
        self.session = plan.session

    def admits(self, member: Any) -> bool:
        return self.plan.admits(member) and not (self.ahead is not None and self.ahead.admits(member))

    def preference(self, member: Any) -> int:
        return self.plan.preference(member)


class LocalState:
    """Every gate, budget and target queue of one process; implements ``StateOwner``."""

    def __init__(
        self,
        config: LLMConfig,
        providers: Mapping[str, Any],
        *,
        on_change: ChangeListener | None = None,
        lock: Any = None,
    ) -> None:
        self.on_change = on_change
        self.lock = lock if lock is not None else threading.Lock()
        #: The structure routes are built from; read it, never change it.
        self.table = LeaseTable.build(config, providers, on_change=self._changed, lock=self.lock)

    def _changed(self, gate: InstanceGate, route: str, event: str, until: float | None) -> None:
        if self.on_change is not None:
            self.on_change(gate.name, route, event, until)

    # -- the request path -----------------------------------------------------------------------

    def lease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        with self.lock:
            waiter = ticket.waiter
            my_turn = waiter is not None and waiter.handed and ticket.waiting_at is target
            waiters = target.waiters
            if waiters and waiters[0] is not waiter and not my_turn:
                # Others queued first. FIFO: take nothing the first of them is waiting for; a
                # member it cannot use (one it tried already) is free for us.
                result = target.lease(_Behind(ticket.plan, waiters[0].plan), now)
                if isinstance(result, Lease):
                    self._leave(ticket, now)
                    return result
                result = _QUEUED
            else:
                result = target.lease(ticket.plan, now)
                if isinstance(result, Lease):
                    self._leave(ticket, now)
                    return result
                if my_turn and target.has_room(now):
                    # The permit that woke us is of no use to this request (a member it tried
                    # already, say): hand the turn on rather than hold everyone up.
                    target.wake_after(waiter)
            if result.full and queue is not None:
                self._enqueue(ticket, target, queue, now)
            return result

    async def alease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        return self.lease(target, ticket, now, queue)

    def leave(self, ticket: Ticket, now: float) -> None:
        if ticket.waiter is not None:
            with self.lock:
                self._leave(ticket, now)

    def give_back(
        self,
        lease: Lease,
        outcome: Outcome | None,
        now: float,
        *,
        retry_after: float | None = None,
        reason: str = "",
        tokens: int = 0,
        pace: PaceDecision | None = None,
        ttfb: float | None = None,
    ) -> None:
        member = lease.member
        gate, budget = member.gate, member.budget
        with self.lock:
            gate.give_back(lease.route, outcome, now, retry_after, reason, tokens, pace)
            if ttfb is not None:
                gate.ttfb.add(ttfb)
                outliers = lease.target.outliers
                if outliers is not None:
                    until = outliers.record(member.name, ttfb, now)
                    if until is not None:
                        gate.ejected(lease.route, until)
            if budget is not None:
                budget.permits.give_back(now, tokens)
            for target in gate.watchers:
                if target.waiters:
                    target.wake_head()
            if budget is not None:
                for target in budget.watchers:
                    if target.waiters:
                        target.wake_head()

    async def agive_back(
        self,
        lease: Lease,
        outcome: Outcome | None,
        now: float,
        *,
        retry_after: float | None = None,
        reason: str = "",
        tokens: int = 0,
        pace: PaceDecision | None = None,
        ttfb: float | None = None,
    ) -> None:
        self.give_back(
            lease, outcome, now, retry_after=retry_after, reason=reason, tokens=tokens, pace=pace, ttfb=ttfb
        )

    def _enqueue(self, ticket: Ticket, target: Target, queue: Callable[[], Waiter], now: float) -> None:
        if ticket.waiter is not None and ticket.waiting_at is not target:
            self._leave(ticket, now)
        if ticket.waiter is None:
            waiter = queue()
            waiter.plan = ticket.plan
            ticket.waiter, ticket.waiting_at = waiter, target
            target.waiters.append(waiter)
            target.watch()  # it may be a target a reload replaced since this request started
        else:
            ticket.waiter.rearm()

    def _leave(self, ticket: Ticket, now: float) -> None:
        """Leave the target's queue; if we held the head, let the next waiter try."""
        waiter, target = ticket.waiter, ticket.waiting_at
        if waiter is None:
            return
        ticket.waiter = ticket.waiting_at = None
        waiter.gone = True
        waiters = target.waiters
        if waiters and waiters[0] is waiter:
            waiters.popleft()
            if target.has_room(now):
                target.wake_head()  # room remains (or we never used it): the next may try
        else:
            try:
                waiters.remove(waiter)
            except ValueError:
                pass

    # -- the actors and the supervisor ----------------------------------------------------------

    def record_latency(self, instance: str, seconds: float) -> None:
        with self.lock:
            gate = self.table.gates.get(instance)
            if gate is not None:  # None: removed by a reload meanwhile
                gate.latency = seconds

    def tick(self, instance: str, now: float) -> dict[str, float | None]:
        with self.lock:
            gate = self.table.gates.get(instance)
            if gate is None:
                return {}
            for breaker in gate.breakers.values():
                breaker.tick(now)
            return {route: gate.down_until(route, now) for route in gate.breakers}

    def needs_probe(self, instance: str, route: str, now: float) -> bool:
        with self.lock:
            gate = self.table.gates.get(instance)
            if gate is None:
                return False
            if gate.disabled_reason is not None and not gate.config_disabled:
                return True
            breaker = gate.breakers.get(route)
            return breaker is not None and breaker.state(now) is not BreakerState.CLOSED

    def claim_probe(self, instance: str, interval: float) -> bool:
        return True  # one process: its prober is the only one

    def probe_passed(self, instance: str, now: float) -> None:
        with self.lock:
            gate = self.table.gates.get(instance)
            if gate is None:
                return
            if gate.disabled_reason is not None and not gate.config_disabled:
                gate.disabled_reason = None
            for breaker in gate.breakers.values():
                breaker.end_open_period(now)  # a passing probe earns trial calls, not a full close

    def disabled_reason(self, instance: str) -> str | None:
        gate = self.table.gates.get(instance)
        return None if gate is None else gate.disabled_reason

    # -- reload and views -----------------------------------------------------------------------

    def reconfigure(self, config: LLMConfig, providers: Mapping[str, Any], keep: Iterable[str]) -> None:
        with self.lock:
            self.table = LeaseTable.build(
                config, providers, on_change=self._changed, previous=self.table, keep=frozenset(keep)
            )

    def targets(self) -> Mapping[str, Target]:
        return self.table.targets

    def down_until(self, instance: str, route: str, now: float) -> float | None:
        with self.lock:
            gate = self.table.gates.get(instance)
            return NEVER if gate is None else gate.down_until(route, now)

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: gate.snapshot(now) for name, gate in self.table.gates.items()}

    def health(self, targets: Iterable[Target], now: float) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        with self.lock:
            for target in targets:
                for m in target.members:
                    if m.name in seen:
                        continue
                    snap = m.gate.snapshot(now)
                    seen[m.name] = {
                        "instance": m.name,
                        "target": target.label,
                        "available": m.gate.down_until(target.route, now) is None,
                        "state": snap["state"],
                        "reason": snap["reason"],
                        "in_flight": snap["in_flight"],
                    }
        return list(seen.values())


if TYPE_CHECKING:
    _: type[StateOwner] = LocalState  # mypy checks that LocalState implements the seam
