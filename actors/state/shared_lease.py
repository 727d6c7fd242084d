"""``SharedLeases``: ``RedisState``'s request path, leases taken and given back on the shared limits.

After the in-process owner picks a member, one round trip takes the instance's and its tier's
shared permits together (``RedisStore.admit``); a member the store refuses is handed back and
the next one tried. A refusal by a full limit queues the request in this process's FIFO; a
refusal by a shared park or disable is applied here too. A half-open trial also needs the
instance's probe lease. While the store is away, each process takes from its share of every
limit (``on_outage: split``) or refuses (``closed``). The give-back returns the local permits at
once and sends the release off the request path, except for a park or a disable, which every
process must see before the caller moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from actors.breaker import BreakerState
from actors.outcome import Outcome
from actors.state.gate import Permits
from actors.state.split import share
from actors.state.store import RECOVERY_INTERVAL, Admission, Owner, RedisStore, StoreUnavailable
from actors.state.target import Blocked, Lease

if TYPE_CHECKING:
    from actors.config import LLMConfig, StateConfig
    from actors.resilience import PaceDecision
    from actors.state.local import LocalState
    from actors.state.owner import Ticket, Waiter
    from actors.state.target import Member, Target

__all__ = ["SharedLeases"]

#: Weight of the newest call in the per-instance token average that ``tpm`` debits up front.
_TOKEN_EWMA = 0.2


class _Held:
    """What a lease holds beyond the local owner's permits."""

    __slots__ = ("id", "owners", "probe", "split")

    def __init__(self, lease_id: str, owners: tuple[Owner, ...], split: bool, probe: bool = False) -> None:
        self.id = lease_id
        self.owners = owners
        self.split = split  # taken from this process's share while the store was away
        self.probe = probe  # holds the instance's probe lease (a half-open trial)


class _Without:
    """A request's plan minus the members the shared limits refused during this admission."""

    __slots__ = ("names", "plan", "prefers")

    def __init__(self, plan: Any, names: set[str]) -> None:
        self.plan = plan
        self.names = names
        self.prefers = plan.prefers

    def admits(self, member: Any) -> bool:
        return member.name not in self.names and self.plan.admits(member)

    def preference(self, member: Any) -> int:
        return self.plan.preference(member)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plan, name)


class _Refusals:
    """The members refused by shared state in one admission, and when the earliest may fit."""

    __slots__ = ("disabled", "down_until", "full_until", "names", "nudges")

    def __init__(self, nudges: int) -> None:
        self.nudges = nudges  # the owner's count of ``free`` nudges when this admission began
        self.names: set[str] = set()
        self.full_until: float | None = None
        self.down_until: float | None = None
        self.disabled: list[tuple[str, str]] = []

    def full(self, names: Iterable[str], until: float) -> None:
        self.names.update(names)
        self.full_until = until if self.full_until is None else min(self.full_until, until)

    def down(self, name: str, until: float, disabled: str | None = None) -> None:
        self.names.add(name)
        self.down_until = until if self.down_until is None else min(self.down_until, until)
        if disabled is not None:
            self.disabled.append((name, disabled))


class SharedLeases:
    """The request path of ``RedisState`` (a mixin: ``RedisState.__init__`` sets the attributes)."""

    config: LLMConfig
    settings: StateConfig
    replicas: int
    local: LocalState
    lock: Any  # the local owner's
    store: RedisStore
    _held: dict[Lease, _Held]
    _owners: dict[tuple[str, str], tuple[Owner, ...]]
    _split: dict[str, Permits]
    _tokens: dict[str, float]
    _nudges: int
    _expiry_wakes: dict[str, float]

    if TYPE_CHECKING:  # the facts half, in ``RedisState``

        def _fact(self, send: Callable[[], Any]) -> None: ...

        def _release_soon(self, held: _Held, tokens: int) -> None: ...

        def _apply_park(self, name: str, seconds: float, reason: str) -> None: ...

        def _apply_disable(self, name: str, reason: str) -> None: ...

    def _owners_of(self, member: Member) -> tuple[Owner, ...]:
        key = (member.name, member.tier)
        owners = self._owners.get(key)
        if owners is None:
            m = self.config.models[member.name]
            owners = (
                self.store.owner(f"i:{m.name}", m.concurrency_limit, m.rpm_limit, m.tpm_limit, health=True),
            )
            group, _, tier_name = member.tier.partition(".")
            tier = self.config.groups[group].tiers[tier_name] if group in self.config.groups else None
            if tier is not None and (tier.concurrency_limit or tier.rpm_limit):
                owners += (self.store.owner(f"t:{member.tier}", tier.concurrency_limit, tier.rpm_limit),)
            self._owners[key] = owners
        return owners

    # -- the request path -----------------------------------------------------------------------

    def lease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        core = self._admission(target, ticket, now, queue)
        answer: Any = None
        try:
            while True:
                kind, lease, owners, lease_id = core.send(answer)
                if kind == "admit":
                    try:
                        answer = self.store.admit(owners, lease_id, self._estimate(lease))
                    except StoreUnavailable as exc:
                        answer = exc
                elif kind == "probe":
                    try:
                        answer = self.store.try_probe(owners[0], lease.target.attempt_timeout(lease.member))
                    except StoreUnavailable:
                        answer = None
                else:
                    self.give_back(lease, None, now, reason="another process is probing")
                    answer = None
        except StopIteration as done:
            return done.value

    async def alease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        core = self._admission(target, ticket, now, queue)
        answer: Any = None
        try:
            while True:
                kind, lease, owners, lease_id = core.send(answer)
                if kind == "admit":
                    try:
                        answer = await self.store.aadmit(owners, lease_id, self._estimate(lease))
                    except StoreUnavailable as exc:
                        answer = exc
                    except BaseException:
                        # Cancelled with the answer on the wire: the local permits go back now
                        # (waking a waiter), the shared ones when the store's watcher gives the
                        # orphaned lease back.
                        core.close()
                        self.local.give_back(lease, None, now, reason="cancelled")
                        raise
                elif kind == "probe":
                    try:
                        answer = await self.store.atry_probe(
                            owners[0], lease.target.attempt_timeout(lease.member)
                        )
                    except StoreUnavailable:
                        answer = None
                    except BaseException:
                        # Cancelled while asking: the admitted lease goes back (its shared half
                        # rides with a later round trip); a probe lease taken meanwhile lapses.
                        core.close()
                        self.give_back(lease, None, now, reason="cancelled")
                        raise
                else:
                    await self.agive_back(lease, None, now, reason="another process is probing")
                    answer = None
        except StopIteration as done:
            return done.value

    def _admission(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Generator[tuple[str, Lease, tuple[Owner, ...], str], Any, Lease | Blocked]:
        """The decision, for ``lease`` and ``alease`` alike: it yields the I/O it needs (an
        admission, a half-open trial's probe lease, a give-back) and is sent the answer; its return value is the lease's."""
        refused = _Refusals(self._nudges)
        while True:
            result = self._local_lease(target, ticket, now, queue, refused)
            if not isinstance(result, Lease):
                return self._blocked(result, refused, target, ticket, now, queue)
            owners, lease_id = self._owners_of(result.member), self.store.lease_id()
            if self.store.degraded:
                admitted = self._split_take(result, owners, lease_id, now, refused)
            else:
                answer = yield ("admit", result, owners, lease_id)
                if isinstance(answer, StoreUnavailable):
                    admitted = self._split_take(result, owners, lease_id, now, refused)
                else:
                    admitted = self._judge(result, owners, lease_id, answer, now, refused)
            if not admitted:
                continue
            if not self._half_open(result, now) or self.store.degraded:
                return result
            # A half-open trial also needs the instance's one probe lease: one process probes.
            # Only half-open trials pay this round trip (a recovering instance, not the hot path).
            taken = yield ("probe", result, owners, lease_id)
            if taken is not False:  # True, or None: the store is away, and each process probes
                held = self._held.get(result)
                if held is not None:
                    held.probe = taken is True
                return result
            yield ("give_back", result, owners, lease_id)
            refused.down(result.member.name, now + RECOVERY_INTERVAL)

    def _local_lease(
        self, target: Target, ticket: Ticket, now: float, queue: Any, refused: _Refusals
    ) -> Lease | Blocked:
        if not refused.names:
            return self.local.lease(target, ticket, now, queue)
        plan = ticket.plan
        ticket.plan = _Without(plan, refused.names)
        try:
            return self.local.lease(target, ticket, now, queue)
        finally:
            ticket.plan = plan
            if ticket.waiter is not None and ticket.waiter.plan is not plan:
                ticket.waiter.plan = plan

    def _judge(
        self,
        lease: Lease,
        owners: tuple[Owner, ...],
        lease_id: str,
        answer: Admission,
        now: float,
        refused: _Refusals,
    ) -> bool:
        if answer.code == 1:
            with self.lock:
                self._held[lease] = _Held(lease_id, owners, split=False)
            return True
        self._undo(lease, now)
        member = lease.member
        if answer.code == 0:
            # A tier's limit refuses every member counted against that tier, not just this one.
            names = (
                [m.name for m in lease.target.members if m.tier == member.tier]
                if answer.owner
                else [member.name]
            )
            if answer.detail == "concurrency":
                # A slot frees on a release (a nudge wakes us) or, if its holder died, when its
                # lease expires: the watcher's tick wakes us then. Either may come any moment.
                label = owners[answer.owner].label
                with self.lock:
                    due = self._expiry_wakes.get(label)
                    if due is None or now + answer.wait < due:
                        self._expiry_wakes[label] = now + answer.wait
                refused.full(names, now)
            else:
                refused.full(names, now + answer.wait)
        elif answer.code == 3:
            self._apply_park(member.name, answer.wait, answer.detail)
            refused.down(member.name, now + answer.wait)
        else:
            self._apply_disable(member.name, answer.detail)
            refused.down(member.name, float("inf"), answer.detail)
        return False

    def _undo(self, lease: Lease, now: float) -> None:
        """Hand back a local lease the shared state refused, waking no one: a waiter woken for it
        would only be refused again, and again, with nothing changed."""
        member = lease.member
        with self.lock:
            member.gate.give_back(lease.route, None, now, None, "refused by shared state", 0)
            if member.budget is not None:
                member.budget.permits.give_back(now, 0)

    @staticmethod
    def _half_open(lease: Lease, now: float) -> bool:
        breaker = lease.member.gate.breakers.get(lease.route)
        return breaker is not None and breaker.state(now) is BreakerState.HALF_OPEN

    def _blocked(
        self, result: Blocked, refused: _Refusals, target: Target, ticket: Ticket, now: float, queue: Any
    ) -> Blocked:
        """The local answer, corrected by what the shared state refused."""
        if not refused.names:
            return result
        if refused.full_until is not None:
            until = refused.full_until if not result.full else min(result.until, refused.full_until)
            with self.lock:
                if queue is not None and not result.full:  # wait for a nudge or the window, in our FIFO
                    self.local._enqueue(ticket, target, queue, now)
                if self._nudges != refused.nudges and ticket.waiter is not None:
                    # A permit was freed somewhere after the store refused us, before we queued
                    # to hear of it: try again at once rather than miss that wake-up.
                    ticket.waiter.wake()
            return Blocked(True, until)
        if result.full:
            return result
        until = min(result.until, refused.down_until or result.until)
        return Blocked(
            False, until, result.parked_only and not refused.disabled, (*result.disabled, *refused.disabled)
        )

    def _estimate(self, lease: Lease) -> int:
        return int(self._tokens.get(lease.member.name, 0.0))

    def leave(self, ticket: Ticket, now: float) -> None:
        self.local.leave(ticket, now)

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
        shared = self._give_back_local(lease, outcome, now, retry_after, reason, tokens, pace, ttfb)
        if shared is None:
            return
        held, park = shared
        owner = held.owners[0]
        try:
            self.store.release(held.owners, held.id, tokens)
            # Before the caller moves on: the next admission anywhere must see the park.
            if park is not None:
                self.store.park(owner, *park)
            else:
                self.store.disable(owner, reason)
        except StoreUnavailable:
            pass  # the release is retried on recovery; the fact goes unshared

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
        shared = self._give_back_local(lease, outcome, now, retry_after, reason, tokens, pace, ttfb)
        if shared is None:
            return
        held, park = shared
        # Shielded: a cancelled caller must not leave its slot taken until the lease expires.
        task = asyncio.ensure_future(self._ashare(held, outcome, park, reason, tokens))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_consume)
            raise

    async def _ashare(
        self, held: _Held, outcome: Outcome | None, park: tuple[float, str] | None, reason: str, tokens: int
    ) -> None:
        owner = held.owners[0]
        try:
            await self.store.arelease(held.owners, held.id, tokens)
            if park is not None:
                await self.store.apark(owner, *park)
            elif outcome is Outcome.FATAL:
                await self.store.adisable(owner, reason)
        except StoreUnavailable:
            pass

    def _give_back_local(
        self,
        lease: Lease,
        outcome: Outcome | None,
        now: float,
        retry_after: float | None,
        reason: str,
        tokens: int,
        pace: PaceDecision | None = None,
        ttfb: float | None = None,
    ) -> tuple[_Held, tuple[float, str] | None] | None:
        """The local half of a give-back. Returns what the store must hear at once: the lease, and
        the park to share (a 429's, or one the provider's rate-limit headers asked for); None when
        nothing is to be shared now (an ordinary release goes with a later round trip)."""
        name = lease.member.name
        park = None
        parking = lease.member.gate.parking
        with self.lock:  # this process's share first: the local give-back wakes a waiter that needs it
            held = self._held.pop(lease, None)
            if held is not None and self._split:
                for owner in held.owners:
                    permits = self._split.get(owner.label)
                    if permits is not None and permits.in_flight > 0:  # 0: admitted as the store went
                        permits.give_back(now, tokens)
            if tokens:
                last = self._tokens.get(name)
                self._tokens[name] = tokens if last is None else last + _TOKEN_EWMA * (tokens - last)
            before = parking.parked_until
        self.local.give_back(
            lease, outcome, now, retry_after=retry_after, reason=reason, tokens=tokens, pace=pace, ttfb=ttfb
        )
        with self.lock:
            until = parking.parked_until
            if until is not None and until > now and until != before:
                park = (until - now, parking.reason or reason or "rate limited")
        if held is not None and held.probe:
            owner = held.owners[0]
            self._fact(lambda: self.store.end_probe(owner))
        if held is None or held.split:
            return None
        if park is None and outcome is not Outcome.FATAL:
            self._release_soon(held, tokens)
            return None
        return held, park

    # -- an outage: each process its share ------------------------------------------------------

    def _split_take(
        self, lease: Lease, owners: tuple[Owner, ...], lease_id: str, now: float, refused: _Refusals
    ) -> bool:
        if self.settings.on_outage == "closed":
            self._undo(lease, now)
            refused.down(
                lease.member.name,
                now + RECOVERY_INTERVAL,
                "shared state store unavailable (on_outage: closed)",
            )
            return False
        with self.lock:
            shares = [self._share(o) for o in owners]
            for permits in shares:
                at = permits.room_at(now)
                if at is not None:
                    break
            else:
                for permits in shares:
                    permits.take(now)
                self._held[lease] = _Held(lease_id, owners, split=True)
                return True
        self._undo(lease, now)
        refused.full([lease.member.name], at)
        return False

    def _share(self, owner: Owner) -> Permits:
        """This process's share of ``owner``'s limits for this outage (under the lock).

        It starts with the leases this process took on the store and still holds, so a process
        with its share already in flight takes nothing more until those end."""
        permits = self._split.get(owner.label)
        if permits is None:
            n = self.replicas
            permits = self._split[owner.label] = Permits(
                share(owner.concurrency, n), share(owner.rpm, n), share(owner.tpm, n)
            )
            label = owner.label
            permits.in_flight = sum(1 for h in self._held.values() if any(o.label == label for o in h.owners))
        return permits


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
