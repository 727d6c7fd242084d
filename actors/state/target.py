"""Targets: a group tier or a pool, whose members a request leases from, in rotation order."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.state.gate import NEVER, EchelonBudget, InstanceGate

__all__ = ["Blocked", "Lease", "Member", "Target"]


class Member:
    """An instance as reached through one echelon: its gate, the echelon's budget and timeout."""

    __slots__ = ("budget", "context_window", "gate", "name", "provider", "tier", "timeout")

    def __init__(
        self, gate: InstanceGate, budget: EchelonBudget | None, tier: str, timeout: float | None = None
    ) -> None:
        self.gate = gate
        self.budget = budget
        self.name = gate.name
        self.provider = gate.provider
        self.context_window = gate.context_window
        self.tier = tier  # "group.tier" this member's permits are counted against
        self.timeout = timeout  # that tier's per-attempt ``timeout``, wherever the member is reached


class Lease:
    """One admitted attempt: a member of a target, taken on ``route``; give it back exactly once."""

    __slots__ = ("member", "route", "taken_at", "target")

    def __init__(self, member: Member, target: Target, route: str, taken_at: float) -> None:
        self.member = member
        self.target = target
        self.route = route
        self.taken_at = taken_at

    @property
    def gate(self) -> InstanceGate:
        return self.member.gate


@dataclass(slots=True)
class Blocked:
    """Nothing in the target can be leased now.

    ``full`` is True when some admitted member is healthy but out of permits (worth waiting
    for, until ``until``); otherwise every admitted member is down until ``until``:
    ``parked_only`` says all of those were parked by rate limits, and ``disabled`` lists the
    disabled ones with their reasons.
    """

    full: bool
    until: float
    parked_only: bool = False
    disabled: tuple[tuple[str, str], ...] = ()


class Target:
    """A set of members leased in rotation, with a FIFO of requests waiting for permits."""

    __slots__ = (
        "affinity",
        "by_name",
        "defaults",
        "label",
        "members",
        "names",
        "outliers",
        "rotation",
        "route",
        "timeout",
        "tool_choice",
        "view",
        "waiters",
    )

    def __init__(
        self,
        label: str,
        route: str,
        members: Sequence[Member],
        rotation: Any,
        *,
        timeout: float | None = None,
        defaults: dict[str, Any] | None = None,
        tool_choice: str | None = None,
        affinity: Any = None,
        outliers: Any = None,
    ) -> None:
        self.label = label
        self.affinity = affinity  # a SessionRing: a request's session key picks its member
        self.outliers = outliers  # an OutlierDetector: slow members sit out a while
        self.tool_choice = tool_choice  # the tier's ``function_calling`` when it names a tool_choice
        self.defaults = defaults or {}  # the tier's parameter defaults (temperature, max_tokens...)
        self.timeout = timeout  # the tier's per-attempt ``timeout``; a pool's members carry their own
        self.route = route  # whose breaker judges the members: "pool:<name>" or "group:<name>"
        self.members = tuple(members)
        self.names = tuple(m.name for m in self.members)
        self.by_name = {m.name: m for m in self.members}
        self.rotation = rotation
        self.waiters: collections.deque[Any] = collections.deque()
        self.view = _GateView(self)
        for m in self.members:
            m.gate.watchers.append(self)
            if m.budget is not None and self not in m.budget.watchers:
                m.budget.watchers.append(self)

    def lease(self, plan: Any, now: float) -> Lease | Blocked:
        """Lease the member the rotation picks among those the plan admits and can take one now.

        Members are judged lazily, as the rotation asks about them, so a round robin over a
        healthy pool looks at one member, not all of them.
        """
        view = self.view.start(plan, now)
        lease = self._take(plan, view, now)
        if lease is not None:
            return lease
        view.judge_all()
        if view.ejected and view.full_until == NEVER:
            # Every other member is down: an ejected one is still better than none.
            view.start(plan, now, eject=False)
            lease = self._take(plan, view, now)
            if lease is not None:
                return lease
            view.judge_all()
        if view.full_until < NEVER:
            return Blocked(True, view.full_until)
        return Blocked(False, view.down_until, not view.unparked_down, tuple(view.disabled))

    def _take(self, plan: Any, view: _GateView, now: float) -> Lease | None:
        session = getattr(plan, "session", None) if self.affinity is not None else None
        while True:
            if session is not None:
                name = self.affinity.choose(session, view.available, view.in_flight)
            else:
                name = self.rotation.choose(self.names, view)
            if name is None:
                return None
            member = self.by_name[name]
            if member.gate.take(self.route, now):
                if member.budget is not None:
                    member.budget.permits.take(now)
                return Lease(member, self, self.route, now)
            view.verdicts[name] = False  # half-open trial slots are all taken

    def merge(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters over this target's defaults."""
        merged = {**self.defaults, **params} if self.defaults else params
        if self.tool_choice is not None and "tools" in merged and "tool_choice" not in merged:
            merged = {**merged, "tool_choice": self.tool_choice}
        return merged

    def attempt_timeout(self, member: Member) -> float:
        """Seconds one attempt on ``member`` may take: its tier's timeout or the model's, the shorter."""
        limit = member.timeout if member.timeout is not None else self.timeout
        if limit is None:
            return member.gate.timeout
        return min(limit, member.gate.timeout)

    def has_room(self, now: float) -> bool:
        """Whether some member could take one more request now, whoever asks."""
        for m in self.members:
            if m.gate.down_until(self.route, now) is not None or m.gate.permits.room_at(now) is not None:
                continue
            if m.budget is None or m.budget.permits.room_at(now) is None:
                return True
        return False

    def watch(self) -> None:
        """Be woken when a member's permit frees: a target a reload replaced is watched no longer,
        but a request that started before the reload may still queue on it."""
        for m in self.members:
            if self not in m.gate.watchers:
                m.gate.watchers.append(self)
            if m.budget is not None and self not in m.budget.watchers:
                m.budget.watchers.append(self)

    def wake_after(self, waiter: Any) -> None:
        """Give the turn to the first live waiter queued behind ``waiter``."""
        seen = False
        for other in self.waiters:
            if seen and other.wake():
                return
            seen = seen or other is waiter

    def wake_head(self) -> None:
        """A permit freed: let the first waiter try again (it wakes the next if room remains)."""
        while self.waiters:
            waiter = self.waiters[0]
            if waiter.wake():
                return
            self.waiters.popleft()  # already gone (timed out or cancelled)


class _GateView:
    """What a rotation strategy may know about a target's members, for one lease.

    ``available`` judges a member on first use (plan, health, permits) and remembers why one
    was refused, so a refused lease can say whether to wait (full) or move on (down).
    """

    __slots__ = (
        "disabled",
        "down_until",
        "eject",
        "ejected",
        "full_until",
        "now",
        "plan",
        "target",
        "unparked_down",
        "verdicts",
    )

    def __init__(self, target: Target) -> None:
        self.target = target
        self.verdicts: dict[str, bool] = {}

    def start(self, plan: Any, now: float, *, eject: bool = True) -> _GateView:
        # One view per target is reused: every lease runs under the table lock.
        self.plan = plan
        self.now = now
        self.eject = eject and self.target.outliers is not None
        self.ejected = False  # some member was turned away only because it is ejected
        self.verdicts = {}
        self.full_until = NEVER
        self.down_until = NEVER
        self.unparked_down = False  # some member was down for a reason other than parking
        self.disabled: list[tuple[str, str]] = []
        if plan.prefers:
            # A preference orders the members that can take the request now; it never turns
            # one away while nothing better is available.
            self.judge_all()
            by_name = self.target.by_name
            ok = [name for name, verdict in self.verdicts.items() if verdict]
            best = min((plan.preference(by_name[n]) for n in ok), default=None)
            for name in ok:
                if plan.preference(by_name[name]) != best:
                    self.verdicts[name] = False
        return self

    def available(self, name: str) -> bool:
        verdict = self.verdicts.get(name)
        if verdict is None:
            verdict = self.verdicts[name] = self._judge(self.target.by_name[name])
        return verdict

    def judge_all(self) -> None:
        for name in self.target.names:
            self.available(name)

    def _judge(self, m: Member) -> bool:
        plan = self.plan
        if not plan.admits(m):
            return False
        now = self.now
        gate = m.gate
        down = gate.down_until(self.target.route, now)
        if down is not None:
            if down < self.down_until:
                self.down_until = down
            if gate.disabled_reason is not None:
                self.disabled.append((m.name, gate.disabled_reason))
                self.unparked_down = True
            elif not gate.parking.is_parked(now):
                self.unparked_down = True
            return False
        room = m.gate.permits.room_at(now)
        if room is None and m.budget is not None:
            room = m.budget.permits.room_at(now)
        if room is not None:
            if room < self.full_until:
                self.full_until = room
            return False
        if self.eject and self.target.outliers.is_ejected(m.name, now):
            self.ejected = True
            return False
        return True

    def in_flight(self, name: str) -> int:
        return self.target.by_name[name].gate.in_flight

    def latency(self, name: str) -> float | None:
        return self.target.by_name[name].gate.latency

    def last_used(self, name: str) -> float | None:
        return self.target.by_name[name].gate.last_used

    def weight(self, name: str) -> float:
        return self.target.by_name[name].gate.weight
