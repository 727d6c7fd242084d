"""``RedisState``: the state owner whose limits and facts are shared by every process on one store.

Decisions stay local, facts are shared (as Envoy and Resilience4j do). An in-process
``LocalState`` keeps rotation, this process's FIFO queues, breakers and the latency averages;
the store (``actors.state.store``) holds what every process must agree on:

- admission: after the local owner picks a member, one script takes the instance's and its
  tier's shared permits together (concurrency leases that expire unless renewed, an exact rpm
  log, tpm debited by an estimate and settled with the real usage at give-back), checking the
  instance's shared parking and disable in the same round trip; a refused member is handed
  back and the next one tried;
- facts: a 429's park (the later deadline wins), a fatal disable, breaker open/close events
  and the single probe lease of a recovering instance reach every process; they are sent by a
  background thread, never on the request path;
- health checks: one process per interval sends an instance's health probe (the holder of its
  health-check lease, ``claim_probe``) and shares a pass with the others (``probed``);
- waiting: a request refused by a shared limit waits in this process's FIFO until the window
  frees (rpm, tpm) or a ``free`` nudge from any process's release wakes it (concurrency).

When the store is away (``RedisStore`` marks it degraded after one failed call), each process
enforces ``limit // replicas`` of every limit on its own (``on_outage: split``) or refuses
(``closed``), and returns to the shared limits by itself when the store answers again.

The request path (admission, give-back, the outage shares) is ``SharedLeases``, in
``actors.state.shared_lease``; here are the facts to and from the other processes, the
supervisor's calls, reload and views.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from actors.breaker import BreakerState
from actors.state.gate import Permits
from actors.state.local import LocalState
from actors.state.shared_lease import SharedLeases, _Held
from actors.state.store import Owner, RedisStore, StoreUnavailable
from actors.state.target import Lease

if TYPE_CHECKING:
    from actors.config import LLMConfig, StateConfig
    from actors.state.owner import ChangeListener, StateOwner
    from actors.state.table import LeaseTable
    from actors.state.target import Target

__all__ = ["RedisState"]

#: The breaker transitions shared with the other processes (decisions stay local).
_BREAKER_EVENTS = ("open", "half_open", "closed")

#: Seconds a release waits for an admission to ride with before the facts thread sends it.
RELEASE_DELAY = 0.001


class RedisState(SharedLeases):
    """``StateOwner`` over a Redis or Valkey store; see the module docstring (the request path
    is ``SharedLeases``'s)."""

    def __init__(
        self,
        config: LLMConfig,
        providers: Mapping[str, Any],
        *,
        state: StateConfig,
        on_change: ChangeListener | None = None,
        processes: int = 1,
        store: RedisStore | None = None,
    ) -> None:
        self.settings = state
        self.on_change = on_change
        self.replicas = max(state.replicas, processes)  # the share each process keeps in an outage
        self.config = config
        self.local = LocalState(_without_windows(config), providers, on_change=self._changed)
        self.lock = self.local.lock
        self._held: dict[Lease, _Held] = {}
        self._owners: dict[tuple[str, str], tuple[Owner, ...]] = {}
        self._split: dict[str, Permits] = {}
        self._tokens: dict[str, float] = {}
        self._nudges = 0  # ``free`` nudges heard so far (a sequence, read without the lock)
        self._expiry_wakes: dict[str, float] = {}  # owner label -> when its oldest lease expires
        self._remote = threading.local()  # set while applying another process's event
        self._facts: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._flush_queued = False
        self.store = store or RedisStore(
            state, on_event=self._on_event, on_change=self._on_degraded, on_tick=self._on_tick
        )
        self.store.start()
        self._sender = threading.Thread(target=self._send, name="llm-actors-state-facts", daemon=True)
        self._sender.start()

    # -- what the local owner keeps ---------------------------------------------------------------

    @property
    def table(self) -> LeaseTable:
        """The local owner's table: rotation, queues and breakers are this process's own."""
        return self.local.table

    @table.setter
    def table(self, value: LeaseTable) -> None:  # the seam's attribute is settable; keep one table
        self.local.table = value

    # -- facts from and to the other processes --------------------------------------------------

    def _fact(self, send: Callable[[], Any]) -> None:
        self._facts.put(send)

    def _release_soon(self, held: _Held, tokens: int) -> None:
        """Off the request path: the release rides with the next admission's round trip, or the
        facts thread sends it after ``RELEASE_DELAY``. Returning a permit late only ever errs on
        the safe side."""
        self.store.release_later(held.owners, held.id, tokens)
        if not self._flush_queued:  # one flush in the queue at a time covers every release
            self._flush_queued = True
            self._fact(self._flush)

    def _flush(self) -> None:
        time.sleep(RELEASE_DELAY)  # a short wait on this thread, for an admission to take them
        self._flush_queued = False
        self.store.flush()

    def _send(self) -> None:
        while (send := self._facts.get()) is not None:
            try:
                send()
            except StoreUnavailable:
                pass  # degraded: the store's watcher has said so; this fact is lost
            except Exception:
                import logging

                logging.getLogger("actors.state").exception("sending a fact to the shared state store failed")

    def _changed(self, instance: str, route: str, event: str, until: float | None) -> None:
        """The local owner's change listener (under its lock): tell the supervisor, share breaker events."""
        if self.on_change is not None:
            self.on_change(instance, route, event, until)
        if event in _BREAKER_EVENTS and not getattr(self._remote, "on", False):
            seconds = max(0.0, until - time.monotonic()) if until is not None else 0.0
            self._fact(
                lambda: self.store.publish({"k": event, "i": f"i:{instance}", "r": route, "s": seconds})
            )

    def _on_event(self, event: dict[str, Any]) -> None:
        """An event from another process (on the store's watcher thread)."""
        kind, label = event.get("k"), str(event.get("i") or event.get("o") or "")
        now = time.monotonic()
        self._remote.on = True
        try:
            if kind == "free":
                self._wake(label)
            elif kind == "park":
                self._apply_park(
                    label.removeprefix("i:"), float(event.get("s", 0)), str(event.get("why", ""))
                )
            elif kind == "disable":
                self._apply_disable(label.removeprefix("i:"), str(event.get("why", "")))
            elif kind == "enable":
                self._apply_enable(label.removeprefix("i:"), now)
            elif kind == "probed":
                self._apply_probed(label.removeprefix("i:"), now)
            elif kind in _BREAKER_EVENTS:
                with self.lock:
                    gate = self.local.table.gates.get(label.removeprefix("i:"))
                    breaker = None if gate is None else gate.breakers.get(str(event.get("r")))
                    if breaker is not None:
                        if kind == "open":
                            breaker.open_for(now, float(event.get("s", 0)))
                        elif kind == "half_open":
                            breaker.end_open_period(now)  # trials may start here too (one probes)
                        elif breaker.state(now) is not BreakerState.CLOSED:
                            breaker.reset()
        finally:
            self._remote.on = False

    def _on_degraded(self, degraded: bool) -> None:
        """The store went away or came back: every waiter judges again under the new rules (a
        request waiting for a nudge from the store would otherwise wait for nothing)."""
        with self.lock:
            self._nudges += 1
            if not degraded:
                self._split.clear()  # back to the store's count; the next outage starts afresh
            for target in self.local.table.targets.values():
                if target.waiters:
                    target.wake_head()

    def _on_tick(self) -> None:
        """The watcher's tick (every 0.1 s at most): wake the waiters of owners whose oldest lease
        has expired since it refused them (a holder that died sends no nudge)."""
        if not self._expiry_wakes:
            return
        now = time.monotonic()
        with self.lock:
            due = [label for label, at in self._expiry_wakes.items() if at <= now]
            for label in due:
                del self._expiry_wakes[label]
        for label in due:
            self._wake(label)

    def _wake(self, label: str) -> None:
        kind, _, name = label.partition(":")
        with self.lock:
            self._nudges += 1
            table = self.local.table
            holder = table.gates.get(name) if kind == "i" else table.budgets.get(name)
            for target in getattr(holder, "watchers", ()):
                if target.waiters:
                    target.wake_head()

    def _apply_park(self, name: str, seconds: float, reason: str) -> None:
        now = time.monotonic()
        with self.lock:
            gate = self.local.table.gates.get(name)
            if gate is None or seconds <= 0:
                return
            before = gate.parking.parked_until
            until = gate.parking.park(now, seconds, reason or "rate limited (another process)")
            route = next(iter(gate.breakers), "")
        if until != before and self.on_change is not None:
            self.on_change(name, route, "parked", until)

    def _apply_disable(self, name: str, reason: str) -> None:
        with self.lock:
            gate = self.local.table.gates.get(name)
            if gate is None or gate.disabled_reason is not None:
                return
            gate.disabled_reason = reason or "disabled by another process"
            route = next(iter(gate.breakers), "")
        if self.on_change is not None:
            self.on_change(name, route, "disabled", None)

    def _apply_enable(self, name: str, now: float) -> None:
        with self.lock:
            gate = self.local.table.gates.get(name)
            if gate is None:
                return
            if not gate.config_disabled:
                gate.disabled_reason = None
            gate.parking.unpark()

    def _apply_probed(self, name: str, now: float) -> None:
        if name not in self.local.table.gates:
            return
        self.local.probe_passed(name, now)  # its breaker events are this process's own, unshared
        if self.on_change is not None:  # the supervisor brings it back where it is healthy
            self.on_change(name, "*", "probe_passed", None)

    # -- the actors and the supervisor ----------------------------------------------------------

    def record_latency(self, instance: str, seconds: float) -> None:
        self.local.record_latency(instance, seconds)

    def tick(self, instance: str, now: float) -> dict[str, float | None]:
        return self.local.tick(instance, now)

    def needs_probe(self, instance: str, route: str, now: float) -> bool:
        return self.local.needs_probe(instance, route, now)

    def claim_probe(self, instance: str, interval: float) -> bool:
        """One process per ``interval`` probes ``instance``: the holder of its health-check lease
        (the others hear how it went). While the store is away, each process probes for itself."""
        if self.store.degraded:
            return True
        try:
            return self.store.take_check(self.store.owner(f"i:{instance}", health=True), interval)
        except StoreUnavailable:
            return True

    def probe_passed(self, instance: str, now: float) -> None:
        self.local.probe_passed(instance, now)
        owner = self.store.owner(f"i:{instance}", health=True)
        self._fact(functools.partial(self._share_probe, owner))

    def _share_probe(self, owner: Owner) -> None:
        """A passing probe, for every process: the shared disable and park lifted, then the
        others told, who skipped their own probe and act as if it had passed."""
        self.store.enable(owner)
        self.store.publish({"k": "probed", "i": owner.label})

    def disabled_reason(self, instance: str) -> str | None:
        return self.local.disabled_reason(instance)

    # -- reload, views, shutdown ----------------------------------------------------------------

    def reconfigure(self, config: LLMConfig, providers: Mapping[str, Any], keep: Iterable[str]) -> None:
        keep = frozenset(keep)
        self.local.reconfigure(_without_windows(config), providers, keep)
        with self.lock:
            self.config = config
            self._owners.clear()
            self._split.clear()
        for name in config.models:
            if name not in keep:  # new settings (a new key, say): judged afresh everywhere
                owner = self.store.owner(f"i:{name}", health=True)
                self._fact(functools.partial(self.store.enable, owner))

    def targets(self) -> Mapping[str, Target]:
        return self.local.targets()

    def down_until(self, instance: str, route: str, now: float) -> float | None:
        return self.local.down_until(instance, route, now)

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        return self.local.snapshot(now)

    def health(self, targets: Iterable[Target], now: float) -> list[dict[str, Any]]:
        return self.local.health(targets, now)

    def status(self) -> dict[str, Any]:
        """Where state lives and whether it is degraded (health, ``/v1/stats``); no secrets."""
        return {**self.store.status(), "processes_sharing_in_outage": self.replicas}

    def close(self) -> None:
        """Send the facts still queued, then close the store; idempotent."""
        if self._sender.is_alive():
            self._facts.put(None)
            self._sender.join(5)
        try:
            self.store.flush()
        except StoreUnavailable:
            pass  # away: the leases expire within lease_ttl
        self.store.close()


def _without_windows(config: LLMConfig) -> LLMConfig:
    """``config`` for the local owner: the store keeps the rpm and tpm windows.

    A local window would count every admission the store then refused, and close early. The
    concurrency limits stay: a process already at a limit need not ask the store.
    """
    models = {
        n: m.model_copy(update={"rpm_limit": None, "tpm_limit": None}) for n, m in config.models.items()
    }
    groups = {
        n: g.model_copy(
            update={"tiers": {t: e.model_copy(update={"rpm_limit": None}) for t, e in g.tiers.items()}}
        )
        for n, g in config.groups.items()
    }
    return config.model_copy(update={"models": models, "groups": groups})


if TYPE_CHECKING:
    _: type[StateOwner] = RedisState  # mypy checks that RedisState implements the seam
