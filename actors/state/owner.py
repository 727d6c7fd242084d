"""The seam: ``StateOwner``, the one owner of request state, and what passes through it.

Request state is every gate (an instance's breakers, parking, disable reason, permits, latency)
and every echelon budget. Nothing outside an owner writes it: callers lease and give back
through ``lease``/``give_back`` (the decision core in ``actors.request`` calls them), the
instance actors report latency with ``record_latency``, the rotation supervisor drives time
with ``tick``, asks before each health probe (``claim_probe``) and reports one that passed with
``probe_passed``, and a reload calls ``reconfigure``.

Reads are pure: ``down_until``, ``needs_probe``, ``snapshot`` and ``health`` never move a
breaker. Time-driven transitions (an elapsed open period becoming half-open) happen only where
the owner changes state: on admission (``lease``), on an outcome (``give_back``) and in
``tick``, which the supervisor's timer calls when an open period or a parking ends.

Two implementations sit behind it: ``LocalState`` (in-process, one lock, no I/O) and a shared
one on Redis. The operations that may do I/O come in pairs: ``lease``/``alease`` and
``give_back``/``agive_back``; sync callers (a thread) use the first, async callers (an event
loop) await the second. ``LocalState`` answers the async form without awaiting anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from actors.config import LLMConfig
    from actors.outcome import Outcome
    from actors.resilience import PaceDecision
    from actors.state.table import LeaseTable
    from actors.state.target import Blocked, Lease, Target

__all__ = ["ChangeListener", "StateOwner", "Ticket", "Waiter"]

#: Called as ``(instance, route, event, until)`` when an instance opens, goes half-open, closes,
#: is parked or is disabled. It runs inside the owner (under its lock): keep it a ``tell``.
ChangeListener = Callable[[str, str, str, "float | None"], None]


class Waiter(Protocol):
    """A queued request's wake-up handle (``ThreadWaiter`` or ``LoopWaiter``, made by the driver).

    ``wake`` may be called from any thread (a releasing caller, a pub/sub listener); it returns
    False when the waiter is gone (timed out, cancelled) so the next one can be woken instead.
    """

    gone: bool
    handed: bool
    plan: Any

    def wake(self) -> bool: ...

    def rearm(self) -> None: ...


class Ticket(Protocol):
    """One request as the owner sees it when it asks for a lease (``RequestRun`` is one).

    ``plan`` says which members the request may use and in which order it prefers them;
    ``deadline`` (monotonic seconds) bounds every lease it takes, so a shared owner can let an
    abandoned lease expire then without renewing it. ``waiter`` and ``waiting_at`` are the
    request's place in a target's FIFO: written only by the owner.
    """

    plan: Any
    deadline: float
    waiter: Any
    waiting_at: Any


@runtime_checkable
class StateOwner(Protocol):
    """The closed API through which everything reads and changes request state."""

    #: The targets, gates and budgets routes are built from (``actors.state.table``); read it,
    #: never change it. A reconfigure replaces it, so its identity tells a cache a reload happened.
    table: LeaseTable

    # -- the request path (callers; one call per admission, one per give-back) -------------------

    def lease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        """Admit ``ticket`` to one member of ``target`` now, or say when and why not.

        FIFO within the target: while others queue there, a newcomer takes only members the
        first of them cannot use. A woken waiter whose permit is of no use to it hands the turn
        on. When the answer is ``Blocked(full=True)`` and ``queue`` is given (the request may
        still wait at this step), the ticket is queued atomically with the refusal (``queue``
        makes its waiter the first time), so a release between the two cannot be missed; the
        caller then waits on ``ticket.waiter`` until woken or ``Blocked.until``. A lease leaves
        any queue the ticket was in.
        """
        ...

    async def alease(
        self, target: Target, ticket: Ticket, now: float, queue: Callable[[], Waiter] | None
    ) -> Lease | Blocked:
        """``lease`` for a caller on an event loop."""
        ...

    def leave(self, ticket: Ticket, now: float) -> None:
        """The request stops waiting (it moves on, fails or is cancelled); never does I/O.

        If it was first in line and room remains, the next waiter is woken.
        """
        ...

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
        """Return ``lease``'s permits and record its outcome, atomically; exactly once per lease.

        The outcome feeds every breaker of the instance (success, unhealthy), parks it
        (rate limited, ``retry_after`` seconds or the default backoff) or disables it (fatal,
        ``reason``); None (cancelled, cut by the request's deadline, the caller's fault) frees a
        half-open trial slot without a verdict. ``tokens`` is the attempt's real usage for
        ``tpm`` limits. Wakes the first waiter of every target the permits serve.

        On a success, ``pace`` is what the answer's rate-limit headers asked for: park the
        instance until the reset (nothing left) or space its calls (little left). These are
        facts like a 429's parking, to share across processes. ``ttfb`` is the attempt's time to
        first byte: it feeds the instance's p95 (for hedging) and its pool's outlier detection,
        whose ejections are facts to share too (the detection itself may stay local).
        """
        ...

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
        """``give_back`` for a caller on an event loop; must complete even when it is cancelled."""
        ...

    # -- the actors and the rotation supervisor (off the request path) ----------------------------

    def record_latency(self, instance: str, seconds: float) -> None:
        """The instance actor's latency average, read by ``lowest_latency`` rotations."""
        ...

    def tick(self, instance: str, now: float) -> dict[str, float | None]:
        """Apply ``instance``'s time-driven transitions (elapsed open periods become half-open).

        Returns, per route judging it, None when it may be tried now, else when it is expected
        back; the supervisor calls it when an open period or a parking it heard of ends.
        """
        ...

    def needs_probe(self, instance: str, route: str, now: float) -> bool:
        """Whether a health probe would help: disabled by an answer (not by config), or its
        breaker on ``route`` is not closed. Pure."""
        ...

    def claim_probe(self, instance: str, interval: float) -> bool:
        """Whether this process is to send the health probe of ``instance`` due now (on the
        prober's thread, never in an actor: a shared owner may ask its store). In-process
        always; a shared owner lets one process per ``interval`` probe, and shares its result."""
        ...

    def probe_passed(self, instance: str, now: float) -> None:
        """A health probe passed: lift a disable that came from an answer, end open periods
        (half-open: trust is earned by trial calls, not granted)."""
        ...

    def disabled_reason(self, instance: str) -> str | None:
        """Why ``instance`` is disabled, if it is."""
        ...

    # -- reload and views ------------------------------------------------------------------------

    def reconfigure(self, config: LLMConfig, providers: Mapping[str, Any], keep: Iterable[str]) -> None:
        """Adopt a new configuration without dropping a lease.

        Instances in ``keep`` (settings unchanged) keep breakers, parking, permits and their
        pools' outlier ejections; changed ones adopt their new settings and are judged afresh;
        leases taken before give back to what the new limits count; a disable that came from an
        answer is lifted.
        """
        ...

    def targets(self) -> Mapping[str, Target]:
        """The targets (tiers and pools) routes are built from, by label."""
        ...

    def down_until(self, instance: str, route: str, now: float) -> float | None:
        """None when ``instance`` may be tried on ``route`` now; else when it is expected back. Pure."""
        ...

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """Every instance's state for stats and health, by name; never contains secrets. Pure."""
        ...

    def health(self, targets: Iterable[Target], now: float) -> list[dict[str, Any]]:
        """Each instance reachable through ``targets`` once: available, state, reason, in flight. Pure."""
        ...
