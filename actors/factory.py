"""The wrapper factory: creates, finds and retires named wrappers over one runtime."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Mapping

from actors.errors import ConfigError, WrapperConfigError, WrapperFactoryError
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper, WrapperProxy

if TYPE_CHECKING:
    from actors.runtime import Runtime

__all__ = ["LLMWrapperFactory"]


class LLMWrapperFactory:
    """Named wrappers over one runtime; safe to use from many threads."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._wrappers: dict[str, WrapperProxy] = {}
        self._types: dict[str, type[WrapperProxy]] = {
            "task_group": TaskGroupWrapper,
            "polling_pool": PollingPoolWrapper,
        }

    # -- creating -------------------------------------------------------------------------------

    def create_task_group_wrapper(
        self, name: str, config: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> TaskGroupWrapper:
        """A wrapper over ``config["target"]`` (default: the wrapper's name as a group ref)."""
        return self.create_wrapper_from_config(name, "task_group", config, replace=replace)  # type: ignore[return-value]

    def create_polling_pool_wrapper(
        self, name: str, config: Mapping[str, Any] | None = None, *, replace: bool = False
    ) -> PollingPoolWrapper:
        """A wrapper over ``config["pool"]`` (default: the wrapper's name as a pool name)."""
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
        route = self._route(name, cls, cfg)
        wrapper = cls(name, self.runtime, route, cfg)
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

    def _route(self, name: str, cls: type[WrapperProxy], cfg: dict[str, Any]) -> Any:
        rt = self.runtime
        assert rt.table is not None
        try:
            if issubclass(cls, PollingPoolWrapper):
                pool = cfg.get("pool") or name
                if pool not in rt.config.pools:
                    raise WrapperConfigError(
                        f"wrapper {name!r}: no polling pool {pool!r}; set 'pool' to one of {sorted(rt.config.pools)}"
                    )
                return rt.table.pool_route(
                    rt.config,
                    pool,
                    max_instance_attempts=cfg.get("max_instance_attempts"),
                    strategy=cfg.get("strategy"),
                    retry_delay=cfg.get("retry_delay"),
                )
            target = cfg.get("target") or name
            rt.config.resolve(target)
            return rt.table.group_route(
                rt.config,
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

    # -- finding and retiring -------------------------------------------------------------------

    def get_wrapper(self, name: str) -> WrapperProxy | None:
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
        """Make ``cls`` (a ``WrapperProxy`` subclass) creatable as ``wrapper_type``."""
        if not (isinstance(cls, type) and issubclass(cls, WrapperProxy)):
            raise WrapperFactoryError(f"wrapper type {wrapper_type!r}: {cls!r} is not a WrapperProxy subclass")
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
        """Each wrapper's health; callable from sync code and from inside a running loop."""
        with self._lock:
            wrappers = dict(self._wrappers)
        out: dict[str, dict[str, Any]] = {}
        for name, w in wrappers.items():
            try:
                out[name] = w.health()
            except Exception as exc:
                out[name] = {"healthy": False, "error": str(exc)}
        return out

    def reset_all_stats(self) -> None:
        with self._lock:
            wrappers = list(self._wrappers.values())
        for w in wrappers:
            w.reset_stats()

    def shutdown(self) -> None:
        """Forget every wrapper (the runtime's actors keep running until the runtime stops)."""
        with self._lock:
            self._wrappers.clear()
