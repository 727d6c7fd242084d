"""The original design's wrapper factory constructor, over the core ``LLMWrapperFactory``.

``LLMWrapperFactory(task_group_manager=..., polling_pool_manager=..., fallback_manager=...)``
(or ``LLMWrapperFactory(task_group_manager)``) as the original design built it; the managers
share the manager's runtime, which starts on first use. ``LLMWrapperFactory(runtime)`` works
too, so ``actors.LLMWrapperFactory`` serves both designs. A manager-built factory keeps its own
registry: it lists and counts the wrappers created through it, not the ones ``wrappers.yaml``
declares (those stay reachable through ``runtime.factory``, which is where ``LLMNode`` also looks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors import factory as core
from actors.compat.managers import TaskGroupManager
from actors.errors import WrapperFactoryError
from actors.runtime import Runtime

if TYPE_CHECKING:
    from actors.compat.fallback import EnhancedFallbackManager
    from actors.compat.pools import PollingPoolManager

__all__ = ["LLMWrapperFactory"]


class LLMWrapperFactory(core.LLMWrapperFactory):
    """Named wrappers over a ``Runtime`` or over a ``TaskGroupManager``'s runtime."""

    def __init__(
        self,
        task_group_manager: TaskGroupManager | Runtime | None = None,
        polling_pool_manager: PollingPoolManager | None = None,
        fallback_manager: EnhancedFallbackManager | None = None,
    ) -> None:
        runtime = task_group_manager if isinstance(task_group_manager, Runtime) else None
        manager = task_group_manager if isinstance(task_group_manager, TaskGroupManager) else None
        if manager is None:
            for other in (polling_pool_manager, fallback_manager):
                if other is not None:
                    manager = other.task_group_manager
                    break
        if runtime is None and manager is None:
            raise WrapperFactoryError(
                "LLMWrapperFactory needs a Runtime or a TaskGroupManager, e.g. "
                "LLMWrapperFactory(task_group_manager=TaskGroupManager('config'))"
            )
        for other in (polling_pool_manager, fallback_manager):
            if other is not None and other.task_group_manager is not manager:
                raise WrapperFactoryError(
                    f"{type(other).__name__} was built over another TaskGroupManager; build every manager "
                    "over the same one so that they share one runtime"
                )
        self._given_runtime = runtime
        self.task_group_manager = manager
        self.polling_pool_manager = polling_pool_manager
        self.fallback_manager = fallback_manager
        self._init_registry()
        if manager is not None:
            manager._register_factory(self)  # rebound when the manager reloads

    @property
    def runtime(self) -> Runtime:
        """The runtime the wrappers run on; a manager-built factory starts it on first use."""
        if self.task_group_manager is not None:
            return self.task_group_manager.runtime
        assert self._given_runtime is not None
        return self._given_runtime
