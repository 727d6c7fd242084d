"""What a request's ``model`` may name, and the wrapper that serves it.

In order: a wrapper declared in ``wrappers.yaml``; a polling pool; a task-group reference
(``group.tier`` or ``group``). Pools and references get a wrapper on first use, registered in
the runtime's factory under the name itself, so their statistics show in ``/v1/stats`` and a
reload rebinds them like any other wrapper. Wrappers are looked up in the factory on every
request, so a reload takes effect at once.

Everything here runs on the serving event loop and asks no actor anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.config.diagnostics import did_you_mean
from actors.daemon.errors import APIError

if TYPE_CHECKING:
    from actors.proxy import WrapperProxy
    from actors.runtime import Runtime

__all__ = ["ModelDirectory"]

#: Names shown in a 404 before the list is cut short.
SHOWN = 40

_CREATE = {
    "polling_pool": ("polling_pool", "pool"),
    "task_group": ("task_group", "target"),
    "task_group_tier": ("task_group", "target"),
}


class ModelDirectory:
    """Finds (and on demand creates) the wrapper for a ``model`` name."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._config: Any = None
        self._kinds: dict[str, str] = {}
        self._modes: dict[str, str] = {}

    def get(self, name: Any, *, listed_by: str = "GET /v1/models") -> WrapperProxy:
        """The wrapper for ``name``; ``APIError`` 404 listing the valid names when there is none
        (and ``listed_by``, where the caller sees them all: an endpoint, or a command in-process)."""
        kind = self.kinds().get(name) if isinstance(name, str) else None
        if kind is not None:
            factory = self.runtime.factory
            wrapper = factory.get_wrapper(name)
            if wrapper is not None:
                return wrapper
            if kind in _CREATE:
                wrapper_type, key = _CREATE[kind]
                return factory.create_wrapper_from_config(name, wrapper_type, {key: name}, replace=True)
        raise self.not_found(name, listed_by=listed_by)

    def not_found(self, name: Any, *, listed_by: str = "GET /v1/models") -> APIError:
        """The 404 for a ``model`` that names nothing here, listing what it may name."""
        names = self.names()
        shown = ", ".join(names[:SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "")
        hint = (
            (_instance_hint(self.runtime.config, name) or did_you_mean(name, names))
            if isinstance(name, str)
            else ""
        ) or "."
        return APIError(
            404,
            "not_found",
            f"model {repr(name)[:120]} does not exist here{hint} Use a wrapper, a polling pool or a task-group "
            f"reference: {shown} ({listed_by} lists them)",
            param="model",
        )

    def names(self) -> list[str]:
        """Every name ``model`` may take: wrappers, pools, groups and their tiers."""
        return list(self.kinds())

    def kinds(self) -> dict[str, str]:
        """``{name: what it is}`` for every name ``model`` may take, wrappers first."""
        config = self.runtime.config
        if config is not self._config:  # a reload: work the names out again, once
            kinds = self._kinds_of(config)
            self._modes = {name: _mode_of(config, name, kind) for name, kind in kinds.items()}
            self._kinds, self._config = kinds, config
        return self._kinds

    @staticmethod
    def _kinds_of(config: Any) -> dict[str, str]:
        kinds = {name: "wrapper" for name in config.wrappers}
        for name in config.pools:
            kinds.setdefault(name, "polling_pool")
        for group, spec in config.groups.items():
            kinds.setdefault(group, "task_group")
            for tier, _ in spec.tiers_by_priority():
                kinds.setdefault(f"{group}.{tier}", "task_group_tier")
        return kinds

    def listing(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: OpenAI's model object plus what each name is (``kind``) and what
        it serves (``mode``: chat or embedding)."""
        return [_entry(name, kind, self._modes[name]) for name, kind in self.kinds().items()]

    def entry(self, name: str) -> dict[str, Any] | None:
        """The ``/v1/models/{id}`` object for ``name``, or None if it names nothing here."""
        kind = self.kinds().get(name)
        return None if kind is None else _entry(name, kind, self._modes[name])


def _instance_hint(config: Any, name: str) -> str:
    """For a ``model`` naming an instance, or the upstream model of one (as a client written for
    the provider does): the tiers that reach it, which are what a request names."""
    instances = [m for m, spec in config.models.items() if name in (m, spec.model_name)]
    if not instances:
        return ""
    what = (
        f"; {name!r} is an instance"
        if instances == [name]
        else f"; {name!r} is the upstream model of instance{'s' * (len(instances) > 1)} {', '.join(instances)}"
    )
    tiers = [
        f"{group}.{tier}"
        for group, spec in config.groups.items()
        for tier, _ in spec.tiers_by_priority()
        if set(spec.tiers[tier].models) & set(instances)
    ]
    if not tiers:
        return f"{what}, and no tier lists it: add it to one."
    return f"{what}: name a tier that lists it ({', '.join(tiers)}) or a wrapper or pool over one."


def _entry(name: str, kind: str, mode: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "llm-actors", "kind": kind, "mode": mode}


def _mode_of(config: Any, name: str, kind: str) -> str:
    """``chat`` or ``embedding``: the mode of the first model the name reaches (the
    configuration keeps each route to one mode)."""
    ref = name
    if kind == "wrapper":
        wrapper = config.wrappers[name]
        kind, ref = ("polling_pool", wrapper.pool) if wrapper.pool else ("task_group", wrapper.target)
    if kind == "polling_pool":
        models = [model for _, _, model in config.pool_members(ref)]
    else:
        group, tier = config.resolve(ref)[0]
        models = config.groups[group].tiers[tier].models
    return config.models[models[0]].mode if models else "chat"
