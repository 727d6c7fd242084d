"""The original design's polling pools, as views over the runtime's pool actors."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from actors.compat.managers import TaskGroupManager
from actors.config import PollingPoolConfig
from actors.errors import ConfigError, WrapperConfigError
from actors.protocol import GetStats
from actors.reply import ask_async
from actors.runtime import Runtime
from actors.state.table import Route

__all__ = ["PollingPoolManager", "PollingPoolView"]


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
        rt = self.task_group_manager.runtime
        rt.flush()  # the pool actor then counts every attempt that ended before this call
        return self._status(rt, await ask_async(rt.pool_refs[self.name], GetStats))

    def health(self) -> dict[str, Any]:
        rt = self.task_group_manager.runtime
        return rt.route_health(self._route(rt))

    async def health_check(self) -> dict[str, Any]:
        """``healthy``, ``healthy_instances``, ``total_instances``, ``health_ratio``, instances."""
        return self.health()

    def _route(self, rt: Runtime) -> Route:
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
    except (ValidationError, ConfigError) as exc:
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
