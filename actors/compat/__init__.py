"""The original design's API, as views over one ``Runtime``: a leaf on top of the core.

Nothing in the core imports this package (``tests/test_layers.py`` checks it). The original
built a ``TaskGroupManager`` from a config loader, a ``PollingPoolManager`` and an
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
breakers come from the configuration and are enforced; histories record successes too; the
manager's fallback and priority lists are the runtime's route (``actors.order``).
"""

from actors.compat.factory import LLMWrapperFactory
from actors.compat.fallback import EnhancedFallbackManager
from actors.compat.managers import TaskGroupManager, YamlConfigLoader
from actors.compat.node import LLMNode, NodeExecutionResult
from actors.compat.pools import PollingPoolManager, PollingPoolView

__all__ = [
    "EnhancedFallbackManager",
    "LLMNode",
    "LLMWrapperFactory",
    "NodeExecutionResult",
    "PollingPoolManager",
    "PollingPoolView",
    "TaskGroupManager",
    "YamlConfigLoader",
]
