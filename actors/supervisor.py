"""The rotation supervisor: instance health over time, by message passing.

It hears every state change of every instance (breaker opened or closed, parked, disabled),
rotates the instance out of the pools it belongs to and back in when its time comes, drives the
breaker timers and the active health probes from the runtime's one scheduler, and restarts an
actor that crashed. After a reload, ``Reconcile`` rebuilds the pools' rotation from the state
owner, since the events and timers behind it went to the supervisor it replaces.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pykka

from actors.actor import Actor
from actors.instance import InstanceHandle
from actors.pool import Rotate
from actors.protocol import GetStats
from actors.scheduler import Scheduler
from actors.state.table import pool_label

if TYPE_CHECKING:
    from actors.state.owner import StateOwner

__all__ = ["Crashed", "ProbeSkipped", "Prober", "Reconcile", "RotationSupervisor", "StateChanged", "held_out"]

log = logging.getLogger(__name__)

HISTORY = 500

#: Why each event takes an instance out of a pool's rotation (a disable adds its own reason).
OUT_REASONS = {
    "open": "circuit breaker open",
    "parked": "rate limited",
    "disabled": "disabled",
    "ejected": "ejected: slow outlier",
}


class StateChanged:
    """``instance`` moved to ``event`` (open, half_open, closed, parked, disabled) on ``route``;
    or, with shared state, another process's health probe of it passed (``probe_passed``)."""

    __slots__ = ("event", "instance", "route", "until")

    def __init__(self, instance: str, route: str, event: str, until: float | None) -> None:
        self.instance = instance
        self.route = route
        self.event = event
        self.until = until


class _RecoveryDue:
    __slots__ = ("instance",)

    def __init__(self, instance: str) -> None:
        self.instance = instance


class _ProbeDue:
    __slots__ = ("route",)

    def __init__(self, route: str) -> None:
        self.route = route


class ProbeSkipped(Exception):
    """Another process sends this health probe (shared state): this one skips its turn."""


class _ProbeResult:
    __slots__ = ("error", "instance")

    def __init__(self, instance: str, error: BaseException | None) -> None:
        self.instance = instance
        self.error = error


class Reconcile:
    """After a reload: bring every pool's rotation to the state owner's view of its members.

    The events that built the pools' view went to the supervisor this one replaces, and so did
    the recovery timers they set.
    """

    __slots__ = ()


def held_out(
    snapshot: Mapping[str, Any] | None,
    route: str,
    *,
    ejected_until: float | None = None,
    disabled_by_answer: bool = False,
) -> list[tuple[str, float | None]]:
    """What keeps an instance out of the rotation of the pool judging it on ``route``, as
    ``(event, until)`` pairs, worst first: the events the supervisor would have heard.

    ``snapshot`` is the state owner's snapshot of the instance, ``ejected_until`` the end of its
    ejection from the pool. A disable counts only when an answer caused it: at a fresh start a
    pool does not list the instances the configuration disables either.
    """
    if snapshot is None:
        return []
    if snapshot["state"] == "disabled":
        return [("disabled", None)] if disabled_by_answer else []
    held: list[tuple[str, float | None]] = []
    if snapshot.get("parked_until") is not None:
        held.append(("parked", snapshot["parked_until"]))
    breaker = snapshot.get("breakers", {}).get(route)
    if breaker is not None and breaker["state"] == "open":
        held.append(("open", breaker["open_until"]))
    if ejected_until is not None:
        held.append(("ejected", ejected_until))
    return held


class Crashed:
    """An instance actor died of an unexpected error; restart it."""

    __slots__ = ("error", "instance")

    def __init__(self, instance: str, error: str) -> None:
        self.instance = instance
        self.error = error


class Prober:
    """Runs health probes one at a time on its own thread, so no actor ever does I/O."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="llm-actors-prober", daemon=True)
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> Prober:
        self._thread.start()
        return self

    def submit(
        self, name: str, probe: Callable[[], None], done: Callable[[BaseException | None], None]
    ) -> bool:
        """Queue one probe of ``name`` unless one is already queued or running."""
        with self._lock:
            if name in self._busy:
                return False
            self._busy.add(name)
        self._queue.put((name, probe, done))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            name, probe, done = item
            error: BaseException | None = None
            try:
                probe()
            except BaseException as exc:
                error = exc
            with self._lock:
                self._busy.discard(name)
            try:
                done(error)
            except BaseException:
                log.exception("probe callback failed")


class RotationSupervisor(Actor):
    """Watches instance health; every other actor and every caller reaches it by ``tell``."""

    handlers = {
        StateChanged: "_on_state",
        _RecoveryDue: "_on_recovery",
        _ProbeDue: "_on_probe_due",
        _ProbeResult: "_on_probe_result",
        Reconcile: "_on_reconcile",
        Crashed: "_on_crashed",
        GetStats: "_on_get_stats",
    }

    def __init__(
        self,
        state: StateOwner,
        providers: dict[str, Any],
        handles: dict[str, InstanceHandle],
        pools: dict[str, Any],
        probe_sets: dict[str, Any],
        scheduler: Scheduler,
        prober: Prober,
        restart: Callable[[InstanceHandle], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        probe_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.state = state  # the owner of request state: reached only through its methods
        self.providers = providers  # name -> Provider, for probes
        self.handles = handles
        self.pools = pools  # name -> entry with ref, route, members
        self.probe_sets = probe_sets  # route -> entry with route, members, health_check_interval
        self.scheduler = scheduler
        self.prober = prober
        self.restart = restart
        self.clock = clock
        self.probe_timeout = probe_timeout
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.restarts = 0
        self.probes: collections.Counter[str] = collections.Counter()
        self._pools_of: dict[str, list[str]] = collections.defaultdict(list)
        for name, entry in pools.items():
            for member in entry.members:
                self._pools_of[member].append(name)

    def on_start(self) -> None:
        for route, entry in self.probe_sets.items():
            self._schedule_probe(route, entry.health_check_interval)

    # -- state changes --------------------------------------------------------------------------

    def _on_state(self, m: StateChanged) -> None:
        self.history.append(
            {
                "instance": m.instance,
                "route": m.route,
                "event": m.event,
                "until": m.until,
                "timestamp": time.time(),
            }
        )
        if m.event in OUT_REASONS:
            every_pool = m.event not in ("open", "ejected")  # both are one route's verdict
            reason = self._reason(m.instance, m.event)
            self._rotate(m.instance, m.route, out=True, reason=reason, every_pool=every_pool)
            if m.until is not None:
                self._recover_at(m.instance, m.until)
        elif m.event in ("closed", "half_open"):
            self._rotate(m.instance, m.route, out=False, reason=m.event, every_pool=False)
        elif m.event == "probe_passed":  # another process's probe (shared state): as if ours had
            self._on_recovery(_RecoveryDue(m.instance))

    def _on_reconcile(self, m: Reconcile) -> None:
        now = self.clock()
        snapshot = self.state.snapshot(now)
        targets = self.state.targets()
        due: set[tuple[str, float]] = set()
        for pool, entry in self.pools.items():
            outliers = getattr(targets.get(pool_label(pool)), "outliers", None)
            for name in entry.members:
                held = held_out(
                    snapshot.get(name),
                    entry.route,
                    ejected_until=outliers.ejected_until(name, now) if outliers is not None else None,
                    # Only an answer's disable makes the instance worth probing.
                    disabled_by_answer=self.state.needs_probe(name, entry.route, now),
                )
                if held:
                    entry.ref.tell(Rotate(name, True, self._reason(name, held[0][0])))
                    due.update((name, until) for _, until in held if until is not None)
                else:
                    entry.ref.tell(Rotate(name, False, "reloaded"))
        for name, until in due:
            self._recover_at(name, until)

    def _reason(self, instance: str, event: str) -> str:
        if event == "disabled":
            return f"disabled: {self.state.disabled_reason(instance)}"
        return OUT_REASONS[event]

    def _recover_at(self, instance: str, until: float) -> None:
        self.scheduler.call_at(until, functools.partial(self._tell, _RecoveryDue(instance)))

    def _on_recovery(self, m: _RecoveryDue) -> None:
        """A breaker's open period or a parking ended: back into rotation where it is healthy.

        ``tick`` is where the owner commits the time-driven transitions (open to half-open).
        """
        down = self.state.tick(m.instance, self.clock())
        for pool in self._pools_of.get(m.instance, ()):
            entry = self.pools[pool]
            if entry.route in down and down[entry.route] is None:
                entry.ref.tell(Rotate(m.instance, False, "recovered"))

    def _rotate(self, instance: str, route: str, *, out: bool, reason: str, every_pool: bool) -> None:
        for pool in self._pools_of.get(instance, ()):
            entry = self.pools[pool]
            if every_pool or entry.route == route:
                entry.ref.tell(Rotate(instance, out, reason))

    # -- probes ---------------------------------------------------------------------------------

    def _schedule_probe(self, route: str, interval: float) -> None:
        self.scheduler.call_later(interval, lambda: self._tell(_ProbeDue(route)))

    def _on_probe_due(self, m: _ProbeDue) -> None:
        """Probe the route's members that are not healthy on it (open, half-open, disabled)."""
        entry = self.probe_sets[m.route]
        now = self.clock()
        for name in entry.members:
            if self.state.needs_probe(name, entry.route, now):
                self.prober.submit(
                    name,
                    functools.partial(self._probe, name, entry.health_check_interval),
                    functools.partial(self._probe_done, name),
                )
        self._schedule_probe(m.route, entry.health_check_interval)

    def _probe(self, name: str, interval: float) -> None:
        """One health probe, on the prober's thread: asking a shared owner whose turn it is may
        take a store call, which no actor makes."""
        if not self.state.claim_probe(name, interval):
            raise ProbeSkipped(name)
        self.providers[name].probe(timeout=self.probe_timeout)

    def _on_probe_result(self, m: _ProbeResult) -> None:
        if isinstance(m.error, ProbeSkipped):
            self.probes["skipped"] += 1
            return
        self.probes["sent"] += 1
        self.probes["passed" if m.error is None else "failed"] += 1
        if m.error is not None:
            return
        self.state.probe_passed(m.instance, self.clock())
        self.history.append(
            {
                "instance": m.instance,
                "route": "*",
                "event": "probe_passed",
                "until": None,
                "timestamp": time.time(),
            }
        )
        self._on_recovery(_RecoveryDue(m.instance))

    # -- restarts -------------------------------------------------------------------------------

    def _on_crashed(self, m: Crashed) -> None:
        handle = self.handles.get(m.instance)
        if handle is None:
            return
        self.restarts += 1
        self.history.append(
            {
                "instance": m.instance,
                "route": "*",
                "event": "restarted",
                "until": None,
                "timestamp": time.time(),
                "error": m.error,
            }
        )
        self.restart(handle)

    def _on_get_stats(self, m: GetStats) -> None:
        m.reply.set(
            {
                "restarts": self.restarts,
                "probes": dict(self.probes),
                "history": list(self.history),
                "timers": len(self.scheduler),
            }
        )

    def _probe_done(self, name: str, error: BaseException | None) -> None:
        self._tell(_ProbeResult(name, error))

    def _tell(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:  # stopped: timers and probes outlive us by a moment
            pass
