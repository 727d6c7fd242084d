"""Seed-compatible managers: the original design's entry points, as views over one ``Runtime``.

The original built a ``TaskGroupManager`` from a config loader, a ``PollingPoolManager`` and an
``EnhancedFallbackManager`` over it, and a wrapper factory over all three. Here the task group
manager owns (or borrows) one running runtime and the other two are thin views over it, so code
written for the original runs with its imports changed to ``actors``::

    task_group_manager = TaskGroupManager(config_loader)      # "config", an LLMConfig, a Runtime...
    polling_pool_manager = PollingPoolManager(task_group_manager)
    fallback_manager = EnhancedFallbackManager(task_group_manager)
    wrapper_factory = LLMWrapperFactory(
        task_group_manager=task_group_manager,
        polling_pool_manager=polling_pool_manager,
        fallback_manager=fallback_manager,
    )

What differs from the original, on purpose: every call is a real call through the runtime's
actors (no mock replies); fallback strategies, ``max_attempts``, ``retry_delay`` and the circuit
breakers come from the configuration and are enforced; histories record successes too.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors.config import EchelonConfig, LLMConfig, PollingPoolConfig, TaskGroupConfig, load_config, parse_ref
from actors.config.refs import ref_problem
from actors.errors import ConfigError, WrapperConfigError
from actors.fallback import PLANS
from actors.proxy import TaskGroupWrapper
from actors.runtime import Runtime

__all__ = [
    "EnhancedFallbackManager",
    "PollingPoolManager",
    "PollingPoolView",
    "TaskGroupManager",
    "YamlConfigLoader",
]

#: Entries kept in ``EnhancedFallbackManager``'s history.
HISTORY = 100
#: Keys of ``execute_with_fallback``'s keyword arguments that shape the route, not the request.
_ROUTE_KEYS = ("strategy", "max_attempts", "retry_delay", "timeout", "queue_timeout")


class YamlConfigLoader:
    """The original's config loader, reduced to what the managers read from it.

    ``base_path`` is a ``config`` directory or its ``llms`` directory; ``simulate=True`` makes
    the manager's runtime answer every model with the in-process simulated provider.
    """

    def __init__(self, base_path: str | os.PathLike[str] = "config", *, simulate: bool = False) -> None:
        self.base_path = Path(base_path)
        self.simulate = simulate

    def load(self) -> LLMConfig:
        return load_config(self.base_path)

    def __repr__(self) -> str:
        return f"YamlConfigLoader(base_path={str(self.base_path)!r}, simulate={self.simulate})"


class TaskGroupManager:
    """Task groups and polling pools from one configuration, and the one runtime that serves them.

    ``config_loader`` may be:

    - a path (``str`` or ``Path``) to a ``config`` directory or its ``llms`` directory;
    - an ``LLMConfig``;
    - a ``Runtime``: borrowed, never started or stopped here (its owner does that);
    - any object with a ``base_path`` or ``config_base_path`` attribute, such as the original's
      ``YamlConfigLoader`` (a ``simulate`` attribute on it is honoured too);
    - ``None``: the ``config`` directory of the working directory.

    Otherwise the manager owns its runtime: it starts on first use (a wrapper created, a call
    made, a status asked) and stops in ``shutdown()`` (or at interpreter exit). ``simulate=True``
    swaps every provider for the simulated one, so the shipped config runs without keys.
    The query methods read the configuration only and never start the runtime.
    """

    def __init__(self, config_loader: Any = None, *, simulate: bool | None = None) -> None:
        self._lock = threading.RLock()
        self._factories: weakref.WeakSet[Any] = weakref.WeakSet()
        self._runtime: Runtime | None = None
        self._owns_runtime = True
        self._config_base_path: Path | None = None
        if isinstance(config_loader, Runtime):
            if simulate is not None and simulate != config_loader.simulate:
                raise ConfigError(
                    f"simulate={simulate} contradicts the runtime given (simulate={config_loader.simulate}); "
                    "a borrowed runtime keeps its own setting"
                )
            self._runtime = config_loader
            self._owns_runtime = False
            self._config = config_loader.config
            self.simulate = config_loader.simulate
            root = config_loader.config.root
            self._config_base_path = Path(root) if root is not None else None
            return
        self.simulate = bool(getattr(config_loader, "simulate", False) if simulate is None else simulate)
        if isinstance(config_loader, LLMConfig):
            self._config = config_loader
            self._config_base_path = Path(config_loader.root) if config_loader.root is not None else None
            return
        if config_loader is None:
            path: Any = "config"
        elif isinstance(config_loader, (str, os.PathLike)):
            path = config_loader
        else:
            path = getattr(config_loader, "config_base_path", None) or getattr(
                config_loader, "base_path", None
            )
            if path is None:
                raise ConfigError(
                    f"TaskGroupManager cannot read a configuration from {type(config_loader).__name__}: pass a "
                    "config directory path, an LLMConfig, a Runtime, or an object with a base_path attribute"
                )
        self._config = load_config(path)
        # The llms directory, as the original's config_base_path ("configs/llms") was.
        self._config_base_path = Path(self._config.root) if self._config.root is not None else Path(path)

    # -- the runtime ----------------------------------------------------------------------------

    @property
    def config(self) -> LLMConfig:
        """The validated configuration the queries read."""
        return self._config

    @property
    def config_base_path(self) -> Path | None:
        """The ``llms`` directory the configuration was read from (the migrator rewrites files there)."""
        return self._config_base_path

    @property
    def owns_runtime(self) -> bool:
        """Whether ``shutdown()`` stops the runtime (False for a borrowed one)."""
        return self._owns_runtime

    @property
    def running(self) -> bool:
        """Whether the runtime has been started (an owned one starts on first use)."""
        return self._runtime is not None and self._runtime.started

    @property
    def runtime(self) -> Runtime:
        """The running runtime; an owned one is started here on first use."""
        rt = self._runtime
        if rt is not None and (rt.started or not self._owns_runtime):
            return rt
        with self._lock:
            if self._runtime is None or not self._runtime.started:
                # A fresh runtime each time: a stopped (or failed) one is not restarted in place.
                rt = Runtime(self._config, simulate=self.simulate)
                rt.start()
                self._runtime = rt
            return self._runtime

    def start(self) -> TaskGroupManager:
        """Start the runtime now rather than on first use."""
        self.runtime  # noqa: B018 - the property starts it
        return self

    def reload(self) -> LLMConfig:
        """Re-read the configuration from disk (the migrator calls this after rewriting files).

        The new files are validated first: an invalid configuration raises ``ConfigError`` and
        nothing changes. An owned running runtime then switches to them without dropping a
        request (``Runtime.reload``), and the wrappers of the factories built over this manager
        are rebound to their new routes. A borrowed runtime is its owner's to reload: only the
        queries here see the new files.
        """
        if self._config_base_path is None:
            raise ConfigError("this manager was not built from a directory, so there is nothing to reload")
        with self._lock:
            new = load_config(self._config_base_path)
            rt = self._runtime
            if self._owns_runtime and rt is not None and rt.started:
                rt.reload(new)
                for factory in list(self._factories):
                    factory.rebind()
            self._config = new
            return new

    def _register_factory(self, factory: Any) -> None:
        """Rebind ``factory``'s wrappers whenever this manager reloads its runtime."""
        self._factories.add(factory)

    def shutdown(self) -> None:
        """Stop the runtime if this manager owns it; a borrowed one is left to its owner."""
        with self._lock:
            rt, self._runtime = self._runtime, (None if self._owns_runtime else self._runtime)
        if rt is not None and self._owns_runtime:
            rt.stop()

    def __enter__(self) -> TaskGroupManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- task groups ----------------------------------------------------------------------------

    def list_task_groups(self) -> list[str]:
        return list(self._config.groups)

    def get_task_group(self, name: str) -> TaskGroupConfig | None:
        return self._config.groups.get(name)

    @staticmethod
    def parse_group_reference(reference: str) -> tuple[str, str | None]:
        """``"fast_group.echelon1"`` -> ``("fast_group", "echelon1")``; ``"fast_group"`` -> ``("fast_group", None)``."""
        return parse_ref(reference)

    def validate_group_reference(self, reference: str) -> bool:
        """Whether the group exists and, when a tier is named, the group has it."""
        return ref_problem(reference, self._config.groups) is None

    def get_models_for_group(self, reference: str) -> list[str]:
        """The models a reference reaches: one tier's, or a bare group's in priority order.

        An unknown group or tier gives ``[]`` (use ``validate_group_reference`` to tell why).
        """
        if not self.validate_group_reference(reference):
            return []
        models: list[str] = []
        for group, tier in self._config.resolve(reference):
            models += [m for m in self._config.groups[group].tiers[tier].models if m not in models]
        return models

    def get_group_models_by_priority(self, group: str) -> list[tuple[str, int, list[str]]]:
        """``[(tier, priority, models)]``, best (lowest priority number) first."""
        config = self._config.groups.get(group)
        if config is None:
            return []
        return [(name, tier.priority, list(tier.models)) for name, tier in config.tiers_by_priority()]

    def get_echelon_config(self, group: str, echelon: str) -> EchelonConfig | None:
        """One tier's settings (``echelonN`` or a task-named tier), or None."""
        config = self._config.groups.get(group)
        return config.tiers.get(echelon) if config is not None else None

    def get_fallback_groups(self, reference: str, fallback_groups: Sequence[str] | None = None) -> list[str]:
        """The tiers (``group.tier``) a request to ``reference`` falls to, in order.

        Exactly the route a task-group wrapper over ``reference`` takes after its own tiers:
        under ``echelon_down`` and ``provider_failover`` the group's lower tiers by ``priority``
        (with or without a ``fallback_config``), then the ``fallback_groups`` entries' tiers;
        under ``task_group_switch`` the ``fallback_groups`` only. Never the target itself.
        ``fallback_groups`` given replaces the group's list, as a wrapper's override does.
        An unknown reference gives ``[]``.
        """
        if not self.validate_group_reference(reference):
            return []
        cfg = self._config
        own = cfg.resolve(reference)
        group = cfg.groups[own[0][0]]
        fb = group.effective_fallback
        plan = PLANS[getattr(fb.strategy, "value", fb.strategy)]
        labels = [f"{g}.{t}" for g, t in own]
        seen = set(labels)
        out: list[str] = []
        candidates: list[str] = []
        if plan.descends:
            ordered = [f"{group.name}.{t}" for t, _ in group.tiers_by_priority()]
            start = ordered.index(labels[-1]) if labels[-1] in ordered else len(ordered)
            candidates += ordered[start + 1 :]
        for ref in fb.fallback_groups if fallback_groups is None else fallback_groups:
            candidates += [f"{g}.{t}" for g, t in cfg.resolve(ref)]
        for label in candidates:
            if label not in seen:
                seen.add(label)
                out.append(label)
        return out

    def get_fallback_config(self, group: str) -> dict[str, Any] | None:
        """The group's effective fallback settings (defaults filled in), or None for an unknown group."""
        config = self._config.groups.get(group)
        if config is None:
            return None
        fb = config.effective_fallback
        return {
            "strategy": getattr(fb.strategy, "value", fb.strategy),
            "fallback_groups": list(fb.fallback_groups),
            "max_attempts": fb.max_attempts,
            "retry_delay": fb.retry_delay,
            "circuit_breaker": fb.circuit_breaker.model_dump(),
        }

    # -- polling pools --------------------------------------------------------------------------

    def list_polling_pools(self) -> list[str]:
        return list(self._config.pools)

    def get_polling_pool(self, name: str) -> PollingPoolConfig | None:
        return self._config.pools.get(name)

    def get_polling_pool_fallback_config(self, pool: str) -> dict[str, Any] | None:
        """``{strategy, max_instance_attempts}`` (default ``instance_rotation``/2), or None for an unknown pool."""
        config = self._config.pools.get(pool)
        if config is None:
            return None
        fb = config.effective_fallback
        return {
            "strategy": getattr(fb.strategy, "value", fb.strategy),
            "max_instance_attempts": fb.max_instance_attempts,
        }

    def __repr__(self) -> str:
        state = "running" if self._runtime is not None and self._runtime.started else "not started"
        return (
            f"TaskGroupManager({len(self._config.groups)} groups, {len(self._config.pools)} pools, {state})"
        )


class PollingPoolView:
    """A polling pool of the runtime, seen the way the original's ``PollingPool`` was."""

    def __init__(self, name: str, manager: TaskGroupManager) -> None:
        self.name = name
        self.task_group_manager = manager

    @property
    def config(self) -> PollingPoolConfig:
        return self.task_group_manager.config.pools[self.name]

    @property
    def members(self) -> list[str]:
        """The pool's instances (model names), in rotation order."""
        seen: list[str] = []
        for _, _, model in self.task_group_manager.config.pool_members(self.name):
            if model not in seen:
                seen.append(model)
        return seen

    def get_status(self) -> dict[str, Any]:
        """The original's keys (``name``, ``total_instances``, ``healthy_instances``,
        ``degraded_instances``, ``failed_instances``, ``stats``, ``concurrency_status``) plus
        ``healthy``, ``health_ratio``, the rotation and each instance's state and reason."""
        rt = self.task_group_manager.runtime
        return self._status(rt, rt.pool_status(self.name))

    async def get_status_async(self) -> dict[str, Any]:
        """``get_status`` without blocking the running loop on the pool actor."""
        from actors.protocol import GetStats
        from actors.reply import ask_async

        rt = self.task_group_manager.runtime
        rt.flush()  # the pool actor then counts every attempt that ended before this call
        return self._status(rt, await ask_async(rt.pool_refs[self.name], GetStats))

    def health(self) -> dict[str, Any]:
        rt = self.task_group_manager.runtime
        return rt.route_health(self._route(rt))

    async def health_check(self) -> dict[str, Any]:
        """``healthy``, ``healthy_instances``, ``total_instances``, ``health_ratio``, instances."""
        return self.health()

    def _route(self, rt: Runtime) -> Any:
        assert rt.table is not None
        return rt.table.pool_route(rt.config, self.name)

    def _status(self, rt: Runtime, actor_view: dict[str, Any] | None) -> dict[str, Any]:
        view = dict(actor_view or {})
        health = rt.route_health(self._route(rt))
        instances = health["instances"]
        degraded = [
            i["instance"] for i in instances if i["available"] and i["state"] in ("half_open", "parked")
        ]
        failed = [i["instance"] for i in instances if not i["available"]]
        in_flight = {i["instance"]: i["in_flight"] for i in instances}
        return {
            "name": self.name,
            "healthy": health["healthy"],
            "total_instances": health["total_instances"],
            "healthy_instances": health["healthy_instances"],
            "degraded_instances": len(degraded),
            "failed_instances": len(failed),
            "health_ratio": health["health_ratio"],
            "rotation_strategy": getattr(
                self.config.rotation_strategy, "value", self.config.rotation_strategy
            ),
            "in_rotation": view.get("in_rotation", []),
            "out_of_rotation": view.get("out_of_rotation", {}),
            "rotation_history": view.get("rotation_history", []),
            "stats": view.get("stats", {}),
            "members": view.get("members", {}),
            "instances": instances,
            "concurrency_status": {"in_flight": sum(in_flight.values()), "per_instance": in_flight},
        }

    async def shutdown(self) -> None:
        """Nothing to stop: the pool's actor belongs to the runtime (the original's API)."""

    def __repr__(self) -> str:
        return f"PollingPoolView({self.name!r})"


class PollingPoolManager:
    """The runtime's polling pools, by name. Pools come from the configuration files.

    Every configured pool runs as soon as the runtime does: ``create_pool`` checks the name (and
    that a ``config`` given agrees with the files) and returns the pool's view; ``get_pool``
    returns the view of any configured pool, None for an unknown one.
    """

    def __init__(self, task_group_manager: TaskGroupManager) -> None:
        self.task_group_manager = task_group_manager
        self._lock = threading.Lock()
        self._pools: dict[str, PollingPoolView] = {}

    async def create_pool(self, name: str, config: Mapping[str, Any] | None = None) -> PollingPoolView:
        """The pool ``name`` from the configuration; a ``config`` that contradicts the files is an error."""
        loaded = self.task_group_manager.config.pools.get(name)
        if loaded is None:
            pools = sorted(self.task_group_manager.config.pools)
            raise WrapperConfigError(
                f"no polling pool {name!r} in the configuration: pools come from "
                f"polling_pools/<name>.yaml; configured pools: {pools}"
            )
        if config:
            _check_agrees(name, loaded, config)
        view = self._view(name)
        self.task_group_manager.runtime  # noqa: B018 - starting it here surfaces start-up errors now
        return view

    def get_pool(self, name: str) -> PollingPoolView | None:
        if name not in self.task_group_manager.config.pools:
            return None
        return self._view(name)

    def list_pools(self) -> list[str]:
        return list(self.task_group_manager.config.pools)

    def get_all_status(self) -> dict[str, dict[str, Any]]:
        """``{pool: status}`` for every configured pool."""
        return {name: self._view(name).get_status() for name in self.task_group_manager.config.pools}

    async def shutdown_all(self) -> None:
        """Forget the views; the pools' actors stop with the runtime (``TaskGroupManager.shutdown``)."""
        with self._lock:
            self._pools.clear()

    def _view(self, name: str) -> PollingPoolView:
        with self._lock:
            view = self._pools.get(name)
            if view is None:
                view = self._pools[name] = PollingPoolView(name, self.task_group_manager)
            return view


def _check_agrees(name: str, loaded: PollingPoolConfig, config: Mapping[str, Any]) -> None:
    """Raise when ``config`` sets a value other than the one the pool's file gives."""
    try:
        given = PollingPoolConfig.model_validate({**config, "name": name})
    except Exception as exc:
        raise WrapperConfigError(f"pool {name!r}: invalid config: {exc}") from exc
    differ = [
        key
        for key in config
        if key != "name"
        and key in PollingPoolConfig.model_fields
        and getattr(given, key) != getattr(loaded, key)
    ]
    if differ:
        raise WrapperConfigError(
            f"pool {name!r}: {', '.join(differ)} differ(s) from polling_pools/{name}.yaml; pools are "
            "configured by their files: change the file, or pass no config"
        )


class EnhancedFallbackManager:
    """Calls with fallback through task-group routes, and the history of every execution.

    Each call is a real request through a task-group wrapper over the runtime, so the route's
    strategy, ``max_attempts``, ``retry_delay``, limits and breakers all apply. The history has
    one entry per attempt, successes included, and is bounded.
    """

    def __init__(
        self, task_group_manager: TaskGroupManager, polling_pool_manager: PollingPoolManager | None = None
    ) -> None:
        self.task_group_manager = task_group_manager
        self.polling_pool_manager = polling_pool_manager
        self._lock = threading.Lock()
        self._wrappers: dict[Any, tuple[Any, TaskGroupWrapper]] = {}  # key -> (table, wrapper)
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self._executions: collections.Counter[str] = collections.Counter()

    async def execute_with_fallback(
        self, primary_target: str, fallback_groups: Sequence[str] | None, prompt: Any, **kwargs: Any
    ) -> str:
        """Answer ``prompt`` (text or messages) at ``primary_target``, then ``fallback_groups``.

        ``fallback_groups`` replaces the group's own list (None keeps it); the group's strategy
        decides whether its lower tiers come first. Keyword arguments ``strategy``,
        ``max_attempts``, ``retry_delay``, ``timeout`` and ``queue_timeout`` shape the route;
        ``parameters`` and the rest go to the model. Returns the reply text, as the original
        did; raises the runtime's typed error (``AllAttemptsFailedError``, ``NoCapacityError``,
        ``BadRequestError``...) when every allowed attempt failed.
        """
        route_cfg = {k: kwargs.pop(k) for k in _ROUTE_KEYS if k in kwargs}
        parameters = dict(kwargs.pop("parameters", None) or {})
        parameters.update(kwargs)
        wrapper = self._wrapper(primary_target, fallback_groups, route_cfg)
        started = time.monotonic()
        try:
            response = await wrapper.generate_async(prompt, parameters)
        except BaseException as exc:
            self._record(
                wrapper, primary_target, getattr(exc, "attempts", []), exc, time.monotonic() - started
            )
            raise
        self._record(wrapper, primary_target, response.attempts, None, time.monotonic() - started)
        return response.content

    async def execute_with_task_group_fallback(self, primary_target: str, prompt: Any, **kwargs: Any) -> str:
        """``execute_with_fallback`` with the group's own ``fallback_config``."""
        return await self.execute_with_fallback(primary_target, None, prompt, **kwargs)

    def _wrapper(
        self, primary: str, fallback_groups: Sequence[str] | None, route_cfg: dict[str, Any]
    ) -> TaskGroupWrapper:
        from actors.factory import build_route

        rt = self.task_group_manager.runtime
        key = (
            primary,
            None if fallback_groups is None else tuple(fallback_groups),
            tuple(sorted(route_cfg.items())),
        )
        with self._lock:
            cached = self._wrappers.get(key)
        if cached is not None and cached[0] is rt.table:  # a reload makes a new table: rebuild then
            return cached[1]
        cfg: dict[str, Any] = {"target": primary, **route_cfg}
        if fallback_groups is not None:
            cfg["fallback_groups"] = [g for g in fallback_groups if g != primary]
        name = f"fallback:{primary}"
        wrapper = TaskGroupWrapper(name, rt, build_route(rt, name, TaskGroupWrapper, cfg), cfg)
        with self._lock:
            self._wrappers[key] = (rt.table, wrapper)
        return wrapper

    def _record(
        self,
        wrapper: TaskGroupWrapper,
        primary: str,
        attempts: Sequence[Any],
        error: BaseException | None,
        elapsed: float,
    ) -> None:
        first = wrapper.route.first_label or primary
        strategy = wrapper.route.plan_cls.name
        now = time.time()
        entries = []
        for i, a in enumerate(attempts, 1):
            success = a.outcome.value == "success"
            entry = {
                "attempt_number": i,
                "primary_target": primary,
                "target": a.target,
                "instance": a.instance,
                # The attempt's reason to be where it is: the primary tier, or the strategy that led on.
                "strategy": "primary" if a.target == first else strategy,
                "success": success,
                "outcome": a.outcome.value,
                "response_time": a.duration,
                "timestamp": now,
            }
            if a.error:
                entry["error"] = a.error
            entries.append(entry)
        if error is not None and not attempts:
            entries.append(
                {
                    "attempt_number": 0,
                    "primary_target": primary,
                    "target": None,
                    "instance": None,
                    "strategy": strategy,
                    "success": False,
                    "outcome": "not_attempted",
                    "response_time": elapsed,
                    "timestamp": now,
                    "error": str(error) or type(error).__name__,
                }
            )
        fell_back = any(a.target != first for a in attempts)
        with self._lock:
            self._history.extend(entries)
            self._executions["total"] += 1
            self._executions["successful" if error is None else "failed"] += 1
            if fell_back and error is None:
                self._executions["fell_back"] += 1

    def get_fallback_history(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last ``limit`` attempts (of at most 100 kept), oldest first."""
        with self._lock:
            return list(self._history)[-limit:] if limit > 0 else []

    def reset_fallback_history(self) -> None:
        with self._lock:
            self._history.clear()
            self._executions.clear()

    def get_statistics(self) -> dict[str, Any]:
        """The original's keys over the kept attempts, plus counts of whole executions."""
        with self._lock:
            history = list(self._history)
            executions = dict(self._executions)
        total = len(history)
        successful = [a for a in history if a["success"]]
        distribution = collections.Counter(a["strategy"] for a in history)
        times = [a["response_time"] for a in successful if a["response_time"] > 0]
        runs = executions.get("total", 0)
        return {
            "total_attempts": total,
            "successful_attempts": len(successful),
            "success_rate": len(successful) / total if total else 0.0,
            "avg_response_time": sum(times) / len(times) if times else 0.0,
            "most_used_strategy": distribution.most_common(1)[0][0] if distribution else None,
            "strategy_distribution": dict(distribution),
            "circuit_breakers": len(self.get_circuit_breaker_status()) if self._started() else 0,
            "total_executions": runs,
            "successful_executions": executions.get("successful", 0),
            "failed_executions": executions.get("failed", 0),
            "fallback_executions": executions.get("fell_back", 0),
            "execution_success_rate": executions.get("successful", 0) / runs if runs else 0.0,
        }

    def get_circuit_breaker_status(self) -> dict[str, dict[str, Any]]:
        """Each instance's breakers, one per route (group or pool) that reaches it."""
        rt = self.task_group_manager.runtime
        assert rt.table is not None
        out: dict[str, dict[str, Any]] = {}
        for name, snap in rt.table.snapshot(time.monotonic()).items():
            out[name] = {"state": snap["state"], "reason": snap["reason"], "breakers": snap["breakers"]}
        return out

    def _started(self) -> bool:
        return self.task_group_manager.running
