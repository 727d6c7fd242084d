"""The original design's task group manager and config loader, as views over one ``Runtime``."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actors.config import EchelonConfig, LLMConfig, PollingPoolConfig, TaskGroupConfig, load_config, parse_ref
from actors.config.refs import ref_problem
from actors.errors import ConfigError
from actors.order import group_plan, tier_order
from actors.runtime import Runtime

__all__ = ["TaskGroupManager", "YamlConfigLoader"]


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
        """The models a reference reaches: one tier's, or a bare group's in the route's order.

        An unknown group or tier gives ``[]`` (use ``validate_group_reference`` to tell why).
        """
        if not self.validate_group_reference(reference):
            return []
        models: list[str] = []
        for group, tier in self._config.resolve(reference):
            models += [m for m in self._config.groups[group].tiers[tier].models if m not in models]
        return models

    def get_group_models_by_priority(self, group: str) -> list[tuple[str, int, list[str]]]:
        """``[(tier, priority, models)]`` in the order a request to the bare group visits them."""
        config = self._config.groups.get(group)
        if config is None:
            return []
        return [
            (t, config.tiers[t].priority, list(config.tiers[t].models))
            for _, t in self._config.resolve(group)
        ]

    def get_echelon_config(self, group: str, echelon: str) -> EchelonConfig | None:
        """One tier's settings (``echelonN`` or a task-named tier), or None."""
        config = self._config.groups.get(group)
        return config.tiers.get(echelon) if config is not None else None

    def get_fallback_groups(self, reference: str, fallback_groups: Sequence[str] | None = None) -> list[str]:
        """The tiers (``group.tier``) a request to ``reference`` falls to, in order.

        Exactly the route a task-group wrapper over ``reference`` takes after its own tiers
        (``actors.order.tier_order``, which the runtime's routes are built from). Never the
        target itself. ``fallback_groups`` given replaces the group's list, as a wrapper's
        override does. An unknown reference gives ``[]``.
        """
        if not self.validate_group_reference(reference):
            return []
        cfg = self._config
        own = set(cfg.resolve(reference))
        order = tier_order(cfg, reference, fallback_groups, group_plan(cfg, reference))
        return [f"{g}.{t}" for g, t in order if (g, t) not in own]

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
