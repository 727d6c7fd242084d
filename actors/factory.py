"""The wrapper factory: creates, finds and retires named wrappers over one runtime.

``LLMWrapperFactory(runtime)`` is what ``Runtime.start`` builds as ``rt.factory``; it holds the
wrappers declared in ``wrappers.yaml``. The original design's manager-shaped constructor is
``actors.compat.LLMWrapperFactory`` (what ``actors.LLMWrapperFactory`` names).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import threading
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from actors.config import LLMConfig
from actors.errors import ConfigError, WrapperConfigError, WrapperFactoryError
from actors.proxy import Host as WrapperHost
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper, WrapperProxy
from actors.state.table import Route

__all__ = ["Host", "LLMWrapperFactory", "build_route", "resolve_pool_name"]


class Host(WrapperHost, Protocol):
    """What a factory needs of the runtime it serves (``Runtime`` is one): the factory sits
    beside the runtime, which builds it, so it names the runtime only through this."""

    config: LLMConfig
    factory: LLMWrapperFactory

    def attach_factory(self, factory: LLMWrapperFactory) -> None: ...


#: Seconds ``health_check_all`` waits for a custom wrapper's async ``health_check``.
HEALTH_CHECK_TIMEOUT = 5.0


class LLMWrapperFactory:
    """Named wrappers over one runtime; safe to use from many threads."""

    def __init__(self, runtime: Host) -> None:
        self._runtime = runtime
        self._init_registry()

    def _init_registry(self) -> None:
        self._lock = threading.Lock()
        self._wrappers: dict[str, WrapperProxy] = {}
        self._types: dict[str, type[WrapperProxy]] = {
            "task_group": TaskGroupWrapper,
            "polling_pool": PollingPoolWrapper,
        }

    @property
    def runtime(self) -> Host:
        """The runtime the wrappers run on."""
        return self._runtime

    # -- creating -------------------------------------------------------------------------------

    def create_task_group_wrapper(
        self, name: str, config: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> TaskGroupWrapper:
        """A wrapper over ``config["target"]`` (default: the wrapper's name as a group ref).

        ``fallback_groups`` replaces the group's own list; ``strategy``, ``max_attempts``,
        ``retry_delay`` and ``timeout`` override the group's values for this wrapper.
        """
        return self.create_wrapper_from_config(name, "task_group", config, replace=replace)  # type: ignore[return-value]

    def create_polling_pool_wrapper(
        self, name: str, config: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> PollingPoolWrapper:
        """A wrapper over a polling pool, found as ``resolve_pool_name`` says.

        Raises ``WrapperFactoryError`` when the configuration has no polling pools at all (the
        original's "no polling pool manager"), ``WrapperConfigError`` when the pool is unknown.
        """
        return self.create_wrapper_from_config(name, "polling_pool", config, replace=replace)  # type: ignore[return-value]

    def create_wrapper_from_config(
        self, name: str, wrapper_type: str, config: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> WrapperProxy:
        """Create a wrapper of a registered type; an existing name is an error unless ``replace``."""
        cls = self._types.get(wrapper_type)
        if cls is None:
            raise WrapperFactoryError(
                f"wrapper {name!r}: unknown type {wrapper_type!r}; use one of {sorted(self._types)}"
            )
        cfg = dict(config or {})
        cfg.pop("type", None)
        runtime = self.runtime
        runtime.attach_factory(self)
        route = build_route(runtime, name, cls, cfg)
        wrapper = cls(name, runtime, route, cfg)
        with self._lock:
            if name in self._wrappers and not replace:
                raise WrapperFactoryError(
                    f"a wrapper named {name!r} exists already; remove it first or pass replace=True"
                )
            self._wrappers[name] = wrapper
        return wrapper

    def create_wrappers_from_config(
        self, mapping: Mapping[str, Mapping[str, Any]], *, strict: bool = False
    ) -> dict[str, WrapperProxy]:
        """Create every ``{name: {type: ..., ...}}`` entry.

        An invalid entry is reported: with ``strict`` the first one raises; otherwise the ones
        that failed are listed in ``WrapperFactoryError.details["errors"]`` raised after the
        valid ones are created, so nothing fails silently.
        """
        created: dict[str, WrapperProxy] = {}
        errors: dict[str, str] = {}
        for name, entry in mapping.items():
            kind = entry.get("type")
            try:
                if kind is None:
                    raise WrapperConfigError(f"wrapper {name!r}: missing 'type' (task_group or polling_pool)")
                created[name] = self.create_wrapper_from_config(name, kind, entry, replace=True)
            except (WrapperFactoryError, WrapperConfigError) as exc:
                if strict:
                    raise
                errors[name] = str(exc)
        if errors:
            detail = "; ".join(f"{n}: {e}" for n, e in errors.items())
            raise WrapperFactoryError(
                f"{len(errors)} of {len(mapping)} wrapper(s) could not be created: {detail}",
                details={"errors": errors, "created": sorted(created)},
            )
        return created

    # -- finding and retiring -------------------------------------------------------------------

    def get_wrapper(self, name: str) -> WrapperProxy | None:
        """The wrapper created under ``name`` here, or None."""
        with self._lock:
            return self._wrappers.get(name)

    def list_wrappers(self) -> dict[str, str]:
        """``{name: class name}`` of every wrapper."""
        with self._lock:
            return {name: type(w).__name__ for name, w in self._wrappers.items()}

    def remove_wrapper(self, name: str) -> bool:
        with self._lock:
            return self._wrappers.pop(name, None) is not None

    def register_wrapper_type(self, wrapper_type: str, cls: type[WrapperProxy]) -> None:
        """Make ``cls`` (a ``WrapperProxy`` subclass) creatable as ``wrapper_type``.

        It is built as ``cls(name, runtime, route, config)``; the route is a pool's when ``cls``
        subclasses ``PollingPoolWrapper``, a task-group target's otherwise.
        """
        if not (isinstance(cls, type) and issubclass(cls, WrapperProxy)):
            raise WrapperFactoryError(
                f"wrapper type {wrapper_type!r}: {cls!r} is not a WrapperProxy subclass"
            )
        with self._lock:
            self._types[wrapper_type] = cls

    # -- statistics and health ------------------------------------------------------------------

    def get_wrapper_stats(self) -> dict[str, Any]:
        with self._lock:
            wrappers = dict(self._wrappers)
        types = collections.Counter(type(w).__name__ for w in wrappers.values())
        stats: dict[str, Any] = {}
        for name, w in wrappers.items():
            try:
                stats[name] = {"type": type(w).__name__, "stats": w.get_stats()}
            except Exception as exc:  # a custom wrapper's bug must not hide the others
                stats[name] = {"type": type(w).__name__, "error": str(exc)}
        return {"total_wrappers": len(wrappers), "wrapper_types": dict(types), "wrapper_stats": stats}

    def health_check_all(self) -> dict[str, dict[str, Any]]:
        """Each wrapper's health; callable from sync code and from inside a running loop.

        A wrapper without a ``health_check`` is reported ``{healthy: True, type, note}``; one
        whose check raises is reported ``{healthy: False, type, error}``.
        """
        with self._lock:
            wrappers = dict(self._wrappers)
        out: dict[str, dict[str, Any]] = {}
        for name, w in wrappers.items():
            kind = type(w).__name__
            try:
                out[name] = _health_of(w, kind)
            except Exception as exc:
                out[name] = {"healthy": False, "type": kind, "error": str(exc) or type(exc).__name__}
        return out

    def reset_all_stats(self) -> None:
        with self._lock:
            wrappers = list(self._wrappers.values())
        for w in wrappers:
            w.reset_stats()

    def rebind(self) -> list[str]:
        """After ``Runtime.reload``: point every wrapper at its route through the new table.

        Wrappers keep their identity and statistics. One whose target no longer exists is
        removed; the names removed are returned.
        """
        with self._lock:
            wrappers = dict(self._wrappers)
        dropped = []
        for name, w in wrappers.items():
            try:
                w.rebind(build_route(self.runtime, name, type(w), w.config))
            except (WrapperConfigError, WrapperFactoryError):
                dropped.append(name)
                with self._lock:
                    if self._wrappers.get(name) is w:
                        del self._wrappers[name]
        return dropped

    def shutdown(self) -> None:
        """Forget every wrapper (the runtime's actors keep running until the runtime stops)."""
        with self._lock:
            self._wrappers.clear()

    def __repr__(self) -> str:
        with self._lock:
            n = len(self._wrappers)
        return f"LLMWrapperFactory({n} wrapper(s))"


def _health_of(w: Any, kind: str) -> dict[str, Any]:
    check = getattr(w, "health_check", None)
    if not callable(check):
        return {"healthy": True, "type": kind, "note": "no health check method"}
    if isinstance(w, WrapperProxy) and type(w).health_check is WrapperProxy.health_check:
        return w.health()  # the built-in check is synchronous underneath: no loop needed
    result = check()
    if inspect.isawaitable(result):
        result = _run_awaitable(result)
    return dict(result)


def _run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run a custom wrapper's coroutine to completion, whether or not this thread has a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(awaitable, HEALTH_CHECK_TIMEOUT))
    # A loop is running here: we may not block on it, so the check gets its own loop and thread.
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(_as_coroutine(awaitable, HEALTH_CHECK_TIMEOUT))
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=run, name="health-check", daemon=True)
    thread.start()
    thread.join(HEALTH_CHECK_TIMEOUT + 1.0)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise TimeoutError(f"health check did not finish within {HEALTH_CHECK_TIMEOUT} s")
    return box["value"]


async def _as_coroutine(awaitable: Awaitable[Any], timeout: float) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


def resolve_pool_name(runtime: Host, name: str, cfg: Mapping[str, Any]) -> str:
    """The pool a pool wrapper named ``name`` serves.

    In order: ``cfg["pool"]``; else a pool named like the wrapper (the original looked pools up
    by the wrapper's name); else the name without a ``_wrapper`` suffix, so the original's
    ``fast_pool_wrapper`` finds ``fast_pool``.
    """
    pools = runtime.config.pools
    if not pools:
        raise WrapperFactoryError(
            f"wrapper {name!r}: there is no polling pool manager to serve it: the configuration has no "
            "polling pools; add config/llms/polling_pools/<pool>.yaml"
        )
    pool = cfg.get("pool")
    if pool:
        if pool not in pools:
            raise WrapperConfigError(
                f"wrapper {name!r}: no polling pool {pool!r}; set 'pool' to one of {sorted(pools)}"
            )
        return pool
    if name in pools:
        return name
    stem = name.removesuffix("_wrapper")
    if stem != name and stem in pools:
        return stem
    raise WrapperConfigError(
        f"wrapper {name!r}: no polling pool {name!r}"
        + (f" or {stem!r}" if stem != name else "")
        + f"; set 'pool' to one of {sorted(pools)}"
    )


def build_route(runtime: Host, name: str, cls: type[WrapperProxy], cfg: Mapping[str, Any]) -> Route:
    """The precomputed route a wrapper of class ``cls`` named ``name`` takes with settings ``cfg``."""
    if runtime.table is None:
        raise WrapperFactoryError(
            f"wrapper {name!r}: the runtime is not running; start it (rt.start() or a with block) first"
        )
    try:
        if issubclass(cls, PollingPoolWrapper):
            pool = resolve_pool_name(runtime, name, cfg)
            return runtime.table.pool_route(
                runtime.config,
                pool,
                max_instance_attempts=cfg.get("max_instance_attempts"),
                strategy=cfg.get("strategy"),
                retry_delay=cfg.get("retry_delay"),
            )
        target = cfg.get("target") or name
        runtime.config.resolve(target)
        return runtime.table.group_route(
            runtime.config,
            target,
            fallback_groups=cfg.get("fallback_groups"),
            strategy=cfg.get("strategy"),
            max_attempts=cfg.get("max_attempts"),
            retry_delay=cfg.get("retry_delay"),
        )
    except ConfigError as exc:
        raise WrapperConfigError(f"wrapper {name!r}: {exc}") from exc
    except (KeyError, ValueError) as exc:
        raise WrapperConfigError(f"wrapper {name!r}: {exc}") from exc
