"""Wrappers the original design's objects make on demand, cached per route and lease table."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any, TypeVar, cast

from actors.factory import Host, build_route
from actors.proxy import WrapperProxy

__all__ = ["WrapperCache"]

W = TypeVar("W", bound=WrapperProxy)


class WrapperCache:
    """Wrappers by key; one made before a reload (another lease table) is made again over the
    new routes, so the fallback manager and the node never call through a stale route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[Hashable, tuple[object, WrapperProxy]] = {}

    def get(self, key: Hashable, rt: Host, name: str, cls: type[W], cfg: dict[str, Any]) -> W:
        with self._lock:
            cached = self._made.get(key)
        if cached is not None and cached[0] is rt.table:
            return cast(W, cached[1])
        wrapper = cls(name, rt, build_route(rt, name, cls, cfg), cfg)
        with self._lock:
            self._made[key] = (rt.table, wrapper)
        return wrapper
