"""The runtime: builds the state owner and starts every actor from one configuration.

``Runtime.from_config("config")`` is a context manager: entering starts the instance, group
and pool actors, the rotation supervisor, its scheduler and prober, in dependency order;
leaving stops them in reverse, closes the HTTP clients, and leaves no thread behind.
"""

from __future__ import annotations

import atexit
import collections
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pykka

from actors.config import LLMConfig, StateConfig, load_config
from actors.config.state import with_override
from actors.errors import ConfigError
from actors.factory import LLMWrapperFactory
from actors.group import TaskGroupActor
from actors.hedging import HedgeCounts, HedgeLoop
from actors.instance import InstanceActor, InstanceHandle
from actors.outcome import Outcome
from actors.pool import PoolActor
from actors.protocol import AttemptBatch, AttemptDone, GetStats
from actors.providers import HTTPClients, SimulatedProvider, SimulationControl, make_provider
from actors.reply import ask_sync
from actors.response import EmbeddingResponse, LLMResponse
from actors.scheduler import Scheduler
from actors.state.gate import InstanceGate
from actors.state.local import LocalState
from actors.state.owner import ChangeListener, StateOwner
from actors.state.split import split_limits
from actors.state.table import LeaseTable, Route, group_route, pool_label
from actors.state.target import Lease
from actors.supervisor import Crashed, Prober, Reconcile, RotationSupervisor, StateChanged

__all__ = ["FLUSH_INTERVAL", "Runtime", "StateFactory"]


class StateFactory(Protocol):
    """Makes a runtime's state owner from its configuration and providers."""

    def __call__(
        self, config: LLMConfig, providers: Mapping[str, Any], *, on_change: ChangeListener | None = None
    ) -> StateOwner: ...


log = logging.getLogger(__name__)

#: Seconds between deliveries of attempt reports to the actors.
FLUSH_INTERVAL = 0.5


#: Seconds between health probes of a task group's unhealthy instances (pools set their own).
GROUP_PROBE_INTERVAL = 30.0


@dataclass
class _Members:
    """A pool's or group's instances as the supervisor sees them (``ref`` only for pools)."""

    ref: pykka.ActorRef[PoolActor] | None
    route: str
    members: list[str]
    health_check_interval: float


def redis_state_class(*, overridden: bool) -> Any:
    """``RedisState``; a ``ConfigError`` saying what to install when the redis client is missing
    (``overridden``: the backend came from ``state=`` / ``--state``, not ``state.yaml``)."""
    try:
        from actors.state.redis import RedisState  # needs the redis extra
    except ModuleNotFoundError as exc:
        if exc.name != "redis":
            raise
        # A missing extra is a setup mistake: say what to install, not a traceback.
        raise ConfigError(
            "backend redis needs the redis client, which is not installed: "
            "pip install 'llm-actors[redis]' (in a checkout: pip install -e '.[redis]')",
            file="<state override>" if overridden else "llms/state.yaml",
            path="url" if overridden else "backend",
        ) from None
    return RedisState


class Runtime:
    """One configuration, running: its state owner, actors, wrapper factory and HTTP clients."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        simulate: bool = False,
        group_probe_interval: float = GROUP_PROBE_INTERVAL,
        state_owner: StateFactory | None = None,
        state: str | StateConfig | None = None,
        processes: int = 1,
    ) -> None:
        """``state`` overrides ``state.yaml`` (a ``redis://`` URL, or ``"local"``); ``processes``
        says this runtime is one of that many processes serving one deployment (``serve
        --workers``): with in-process state each then enforces its share of every limit.
        ``state_owner`` replaces the owner ``state`` would choose."""
        self.state_config = with_override(config.state, state)
        self.processes = processes
        if not self.state_config.shared:
            config = split_limits(config, processes)
        self.config = _simulated(config) if simulate else config
        # Makes the owner of request state: in-process by default; a shared one plugs in here.
        self.state_owner: StateFactory = state_owner or (
            self._shared_owner(overridden=state is not None) if self.state_config.shared else LocalState
        )
        self.group_probe_interval = group_probe_interval
        self.simulate = simulate
        self.clients = HTTPClients()
        self.state: StateOwner | None = None  # the one owner of request state
        self.providers: dict[str, Any] = {}  # model name -> the Provider that speaks its API
        self.handles: dict[str, InstanceHandle] = {}
        self.group_refs: dict[str, pykka.ActorRef[TaskGroupActor]] = {}
        self.pool_refs: dict[str, pykka.ActorRef[PoolActor]] = {}
        self.owner_of: dict[
            str, pykka.ActorRef[Any]
        ] = {}  # target label -> the group or pool actor counting it
        self.supervisor: pykka.ActorRef[Any] | None = None
        self.scheduler: Scheduler | None = None
        self.prober: Prober | None = None
        self.factory = LLMWrapperFactory(self)  # its wrappers need a started runtime
        self.hedges = HedgeCounts()  # hedged attempts by outcome, over reloads
        self.hedge_loop = HedgeLoop()  # where sync callers' hedged requests run
        self._state_listeners: tuple[ChangeListener, ...] = ()  # replaced, never changed in place
        self.started = False
        self._stop_lock = threading.Lock()
        # Attempt reports wait here until the next flush: telling an actor per attempt would
        # wake its thread on every request and cost the caller a GIL hand-off.
        self._outbox: collections.deque[AttemptDone] = collections.deque()
        self._flush_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._listeners_lock = threading.Lock()  # writers only: readers take the tuple as it is
        self._factories: weakref.WeakSet[LLMWrapperFactory] = weakref.WeakSet()  # rebound on reload

    @classmethod
    def from_config(cls, path: str | Path, *, simulate: bool = False, **options: Any) -> Runtime:
        """A runtime for the configuration at ``path`` (``config`` or ``config/llms``)."""
        return cls(load_config(path), simulate=simulate, **options)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Runtime:
        if self.started:
            return self
        cfg = self.config
        self.providers = {name: make_provider(model, self.clients) for name, model in cfg.models.items()}
        self.state = self.state_owner(cfg, self.providers, on_change=self._on_state_change)
        try:
            for gate in self.state.table.gates.values():
                self._add_instance(gate)
            self.scheduler = Scheduler().start()
            self.prober = Prober().start()
            self._start_topology()
            self._schedule_flush()
            self.factory = LLMWrapperFactory(self)
            self.factory.create_wrappers_from_config(
                {name: w.model_dump(exclude_none=True) for name, w in cfg.wrappers.items()}, strict=True
            )
        except BaseException:
            self.stop()
            raise
        self.started = True
        _live.add(self)
        return self

    def _shared_owner(self, *, overridden: bool) -> StateFactory:
        """Makes the owner of state shared on a Redis store (``state.yaml``, ``state=``)."""
        owner = redis_state_class(overridden=overridden)
        return functools.partial(owner, state=self.state_config, processes=self.processes)

    def _sync_declared_wrappers(self, old: LLMConfig, new: LLMConfig) -> None:
        """Make ``rt.factory`` match the new ``wrappers.yaml``: new and changed wrappers are
        (re)created, removed ones are removed; wrappers made in code are left alone."""
        factory = self.factory
        for name in old.wrappers:
            if name not in new.wrappers:
                factory.remove_wrapper(name)
        for name, w in new.wrappers.items():
            if old.wrappers.get(name) != w or factory.get_wrapper(name) is None:
                kind = getattr(w.type, "value", w.type)
                factory.create_wrapper_from_config(name, kind, w.model_dump(exclude_none=True), replace=True)

    def attach_factory(self, factory: LLMWrapperFactory) -> None:
        """Have ``factory``'s wrappers rebound to the new routes on every ``reload``."""
        self._factories.add(factory)

    def _add_instance(self, gate: InstanceGate) -> None:
        handle = InstanceHandle(gate)
        self.handles[gate.name] = handle
        self._start_instance(handle)

    def _start_topology(self, previous: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Start the group and pool actors and the supervisor for the current configuration.

        ``previous`` (a reload) holds the status of the pool actors stopped before: the new ones
        carry their rotation history on, and the supervisor brings who is out of rotation up to
        the state owner's view.
        """
        cfg, state = self.config, self.state
        assert state is not None and self.scheduler is not None and self.prober is not None
        targets = state.targets()
        owner_of: dict[str, pykka.ActorRef[Any]] = {}
        for gname, group in cfg.groups.items():
            group_ref = TaskGroupActor.start(gname, group)
            self.group_refs[gname] = group_ref
            for tname, _ in group.tiers_by_priority():
                owner_of[f"{gname}.{tname}"] = group_ref
        pools: dict[str, _Members] = {}
        for pname, pool in cfg.pools.items():
            target = targets[pool_label(pname)]
            ref = PoolActor.start(pname, list(target.names), pool, (previous or {}).get(pname))
            self.pool_refs[pname] = ref
            owner_of[target.label] = ref
            pools[pname] = _Members(ref, target.route, list(target.names), float(pool.health_check_interval))
        self.owner_of = owner_of
        probe_sets = {entry.route: entry for entry in pools.values()}
        for gname, group in cfg.groups.items():
            names = list(dict.fromkeys(m for _, tier in group.tiers_by_priority() for m in tier.models))
            entry = _Members(None, group_route(gname), names, self.group_probe_interval)
            probe_sets[entry.route] = entry
        self.supervisor = RotationSupervisor.start(
            state,
            dict(self.providers),
            self.handles,
            pools,
            probe_sets,
            self.scheduler,
            self.prober,
            self._restart_instance,
        )
        if previous is not None:
            # Told once the runtime forwards state changes to it: none falls between its read and them.
            self.supervisor.tell(Reconcile())
        ask_sync(self.supervisor, GetStats)  # surfaces a start-up failure now, not later

    def _pool_views(self, timeout: float = 5.0) -> dict[str, dict[str, Any]]:
        """Each pool actor's status, for the actor a reload starts in its place."""
        views = {}
        for name, ref in self.pool_refs.items():
            try:
                views[name] = ask_sync(ref, GetStats, timeout)
            except (pykka.ActorDeadError, pykka.Timeout):  # the new one starts without its history
                log.warning("pool %r did not report its rotation before the reload", name)
        return views

    def _stop_topology(self) -> None:
        refs = [self.supervisor, *self.pool_refs.values(), *self.group_refs.values()]
        self.supervisor = None
        self.pool_refs.clear()
        self.group_refs.clear()
        _stop_refs(refs)

    def reload(self, source: str | Path | LLMConfig) -> dict[str, Any]:
        """Switch to a new configuration without dropping a request.

        The new configuration is validated first: an invalid one raises ``ConfigError`` and the
        current one keeps serving. Instances whose settings did not change keep their gate
        (breakers, parking, permits in flight) and their actor; tiers whose limits did not
        change keep their budgets. Requests in flight finish on what they leased. Wrappers keep
        their identity and statistics and are rebound to the new routes; a wrapper created in
        code whose target no longer exists is removed. Returns a summary of what changed.
        """
        new = source if isinstance(source, LLMConfig) else load_config(source)
        if not self.state_config.shared:  # where state lives is chosen at start; limits split the same way
            new = split_limits(new, self.processes)
        if self.simulate:
            new = _simulated(new)
        state = self.state
        if not self.started or state is None:
            raise RuntimeError("start the runtime before reloading it")
        with self._reload_lock:
            old = self.config
            keep = frozenset(n for n, m in new.models.items() if old.models.get(n) == m)
            providers = {
                n: (self.providers[n] if n in keep else make_provider(m, self.clients))
                for n, m in new.models.items()
            }
            state.reconfigure(new, providers, keep)
            self.providers = providers
            self.flush()
            previous = self._pool_views()
            self._stop_topology()
            removed = [n for n in old.models if n not in keep]
            for name in removed:
                handle = self.handles.pop(name)
                _stop_refs([handle.ref])
            self.config = new
            for name in new.models:
                if name not in keep:
                    self._add_instance(state.table.gates[name])
            self._start_topology(previous)
            dropped = [name for factory in list(self._factories) for name in factory.rebind()]
            self._sync_declared_wrappers(old, new)
        return {
            "kept": sorted(keep),
            "added": sorted(n for n in new.models if n not in old.models),
            "changed": sorted(n for n in new.models if n in old.models and n not in keep),
            "removed": sorted(n for n in old.models if n not in new.models),
            "wrappers_dropped": dropped,
        }

    def stop(self) -> None:
        """Stop every actor (reverse start order), the timer and probe threads, and the clients."""
        with self._stop_lock:
            if self.started:
                self.flush()
            self._stop_topology()
            _stop_refs([h.ref for h in self.handles.values()])
            for h in self.handles.values():
                h.ref = None
            if self.scheduler is not None:
                self.scheduler.stop()
            if self.prober is not None:
                self.prober.stop()
            self.hedge_loop.stop()
            self.clients.close()
            close = getattr(self.state, "close", None)
            if callable(close):
                close()  # a shared owner's store connections and threads
            self.started = False
            _live.discard(self)

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _start_instance(self, handle: InstanceHandle) -> None:
        name = handle.gate.name
        assert self.state is not None
        handle.ref = InstanceActor.start(
            handle.gate,
            handle.restarts,
            lambda actor, exc: self._on_crash(name, exc),
            self.config.models.get(name),
            self.state.record_latency,
        )

    def _restart_instance(self, handle: InstanceHandle) -> None:
        handle.restarts += 1
        self._start_instance(handle)

    def _on_crash(self, name: str, exc: BaseException | None) -> None:
        handle = self.handles.get(name)
        if handle is not None:
            handle.ref = None
        if self.supervisor is not None:
            self.supervisor.tell(Crashed(name, repr(exc)))

    # -- what callers and the state owner tell-----------------------------------------------------

    def report(
        self,
        lease: Lease,
        outcome: Outcome | None,
        duration: float,
        result: LLMResponse | EmbeddingResponse | BaseException | None,
    ) -> None:
        """One attempt ended; its instance's actor and its target's actor hear of it at the next flush."""
        # A success: a reply, or embeddings (whose tokens count the same way).
        usage = result.token_usage if isinstance(result, (LLMResponse, EmbeddingResponse)) else None
        error = str(result) if isinstance(result, BaseException) else None
        self._outbox.append(
            AttemptDone(lease.member.name, lease.target.label, outcome, duration, usage, error)
        )

    def flush(self) -> None:
        """Deliver the pending attempt reports, one batch per actor.

        Runs every ``FLUSH_INTERVAL`` on the scheduler, and before every statistics read, so a
        read sees every attempt that ended before it.
        """
        with self._flush_lock:
            outbox = self._outbox
            by_instance: dict[str, list[AttemptDone]] = collections.defaultdict(list)
            by_target: dict[str, list[AttemptDone]] = collections.defaultdict(list)
            while outbox:
                item = outbox.popleft()
                by_instance[item.instance].append(item)
                by_target[item.target].append(item)
            for name, items in by_instance.items():
                handle = self.handles.get(name)  # None: removed by a reload meanwhile
                if handle is not None:
                    handle.tell(AttemptBatch(items))
            for label, items in by_target.items():
                owner = self.owner_of.get(label)
                if owner is not None:
                    try:
                        owner.tell(AttemptBatch(items))
                    except pykka.ActorDeadError:  # stopped by a reload or stop() meanwhile
                        pass

    def _schedule_flush(self) -> None:
        scheduler = self.scheduler
        if scheduler is None:
            return

        def tick() -> None:
            self.flush()
            self._schedule_flush()

        scheduler.call_later(FLUSH_INTERVAL, tick)

    def add_state_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(instance, route, event, until)`` on every change the state owner
        publishes (a breaker opens, turns half-open or closes; an instance is parked, disabled
        or ejected), whichever owner holds the state; returns a function that removes it.

        It is called on the thread that made the change, inside the owner: keep it as short as
        a queue append. An exception it raises is logged and does not reach the request.
        """
        with self._listeners_lock:  # two threads adding at once must not lose one
            self._state_listeners = (*self._state_listeners, listener)

        def remove() -> None:
            with self._listeners_lock:
                self._state_listeners = tuple(x for x in self._state_listeners if x is not listener)

        return remove

    def _on_state_change(self, instance: str, route: str, event: str, until: float | None) -> None:
        supervisor = self.supervisor
        if supervisor is not None:
            try:
                supervisor.tell(StateChanged(instance, route, event, until))
            except pykka.ActorDeadError:  # stopped by a reload or stop() meanwhile
                pass
        for listener in self._state_listeners:
            try:
                listener(instance, route, event, until)
            except Exception:
                log.exception("a state listener failed on %s %s %s", instance, route, event)

    # -- views ----------------------------------------------------------------------------------

    @property
    def table(self) -> LeaseTable | None:
        """The targets, gates and budgets routes are built from (the state owner's; read only)."""
        return None if self.state is None else self.state.table

    def route_health(self, route: Route) -> dict[str, Any]:
        """The original health keys over every instance a route may reach, plus each one's state."""
        assert self.state is not None
        instances = self.state.health(route.targets, time.monotonic())
        seen = {s["instance"]: s for s in instances}
        total = len(seen)
        healthy = sum(1 for s in seen.values() if s["available"])
        report = {
            "healthy": total > 0 and healthy > total / 2,
            "available": healthy > 0,
            "healthy_instances": healthy,
            "total_instances": total,
            "health_ratio": healthy / total if total else 0.0,
            "instances": list(seen.values()),
        }
        if self.state_config.shared:  # whether the limits are shared right now, or split
            status = self.state_status()
            report["shared_state"] = {"degraded": status["degraded"], "on_outage": status["on_outage"]}
        return report

    def route_supports_tools(self, route: Route) -> bool:
        """Whether the route's first tier declares ``function_calling`` (pools: every member tier)."""
        tiers: set[str] = set()
        for step in route.steps[:1]:
            tiers.update(m.tier for m in step.target.members)
        if not tiers:
            return False
        for label in tiers:
            group, tier = label.split(".", 1)
            if not self.config.groups[group].tiers[tier].function_calling:
                return False
        return True

    def instance_stats(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        self.flush()
        return ask_sync(_running(self.handles[name].ref, f"instance {name!r}"), GetStats, timeout)

    def pool_status(self, pool: str, timeout: float = 5.0) -> dict[str, Any] | None:
        ref = self.pool_refs.get(pool)
        if ref is None:
            return None
        self.flush()
        return ask_sync(ref, GetStats, timeout)

    def group_stats(self, group: str, timeout: float = 5.0) -> dict[str, Any]:
        self.flush()
        return ask_sync(self.group_refs[group], GetStats, timeout)

    def supervisor_stats(self, timeout: float = 5.0) -> dict[str, Any]:
        return ask_sync(_running(self.supervisor, "the supervisor"), GetStats, timeout)

    def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """Everything: instances, groups, pools, wrappers and the supervisor."""
        # A reload swaps the state, the actors and the topology: wait for it rather than read half.
        with self._reload_lock:
            assert self.state is not None
            gates = self.state.snapshot(time.monotonic())
            out = {
                "instances": {n: {**self.instance_stats(n, timeout), **gates[n]} for n in self.handles},
                "groups": {g: self.group_stats(g, timeout) for g in self.group_refs},
                "pools": {p: self.pool_status(p, timeout) for p in self.pool_refs},
                "supervisor": self.supervisor_stats(timeout),
                "resilience": self.resilience_stats(),
            }
            out["wrappers"] = self.factory.get_wrapper_stats()
        return out

    def simulation_control(self, name: str) -> SimulationControl:
        """The run-time overrides of the simulated instance ``name`` (this runtime's only)."""
        assert self.table is not None, "start the runtime first"
        client = self.table.gates[name].client
        if not isinstance(client, SimulatedProvider):
            raise ValueError(f"instance {name!r} is not simulated; start the runtime with simulate=True")
        return client.control

    def resilience_stats(self) -> dict[str, Any]:
        """Retry budgets by route, hedges by outcome, pacing by instance, ejections by pool."""
        table = self.table
        out = table.resilience(time.monotonic()) if table is not None else {}
        return {**out, "hedges": self.hedges.snapshot()}

    def state_status(self) -> dict[str, Any]:
        """Where request state lives and whether it is degraded, for health and stats."""
        status = getattr(self.state, "status", None)
        if callable(status):
            return status()
        return {"backend": "local", "degraded": False, "processes": self.processes}

    def crash_instance(self, name: str) -> None:
        """Drill hook: make an instance actor fail; the supervisor restarts it."""
        from actors.actor import Crash

        self.handles[name].tell(Crash())

    def __repr__(self) -> str:
        state = "running" if self.started else "stopped"
        return f"Runtime({state}, {len(self.handles)} instances, simulate={self.simulate})"


def _simulated(config: LLMConfig) -> LLMConfig:
    """The same topology with every model answered by the in-process simulated provider.

    Models disabled only for a missing key come back enabled: a simulation needs no keys.
    """
    models = {
        name: m.model_copy(update={"model_type": "simulated", "disabled_reason": None})
        for name, m in config.models.items()
    }
    return config.model_copy(update={"models": models})


def _running(ref: pykka.ActorRef[Any] | None, what: str) -> pykka.ActorRef[Any]:
    if ref is None:  # not started, stopped, or restarting after a crash
        raise pykka.ActorDeadError(f"{what} is not running")
    return ref


def _stop_refs(refs: list[pykka.ActorRef[Any] | None]) -> None:
    for ref in refs:
        if ref is not None:
            try:
                ref.stop(block=True, timeout=5)  # False, not an error, when already dead
            except pykka.Timeout:
                log.warning(
                    "%s did not stop within 5 s; its thread is a daemon and dies with the process", ref
                )


# Runtimes still running at interpreter exit are stopped, so no actor thread outlives main.
_live: weakref.WeakSet[Runtime] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for rt in list(_live):
        try:
            rt.stop()
        except Exception:  # at exit: the other runtimes still get stopped
            log.exception("stopping %r at exit failed", rt)
