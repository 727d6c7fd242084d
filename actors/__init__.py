"""llm-actors: many LLM endpoints behaving like one reliable, fast LLM client."""

from actors.errors import *  # noqa: F401,F403
from actors.errors import __all__ as _errors_all
from actors.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from actors.migration import ConfigMigrator
from actors.outcome import Outcome
from actors.response import Attempt, LLMResponse, StreamChunk, TokenUsage, ToolCall

__version__ = "0.1.0"

__all__ = [
    "AIMessage",
    "Attempt",
    "BaseMessage",
    "ConfigMigrator",
    "HumanMessage",
    "LLMResponse",
    "Outcome",
    "StreamChunk",
    "SystemMessage",
    "TokenUsage",
    "ToolCall",
    "ToolMessage",
    *_errors_all,
]

# Seed-compatible managers, the wrapper factory and the workflow node.
from actors.factory import LLMWrapperFactory  # noqa: E402
from actors.managers import (  # noqa: E402
    EnhancedFallbackManager,
    PollingPoolManager,
    TaskGroupManager,
    YamlConfigLoader,
)
from actors.node import LLMNode, NodeExecutionResult  # noqa: E402
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper, WrapperProxy  # noqa: E402
from actors.runtime import Runtime  # noqa: E402

__all__ += [
    "EnhancedFallbackManager",
    "LLMNode",
    "LLMWrapperFactory",
    "NodeExecutionResult",
    "PollingPoolManager",
    "PollingPoolWrapper",
    "Runtime",
    "TaskGroupManager",
    "TaskGroupWrapper",
    "WrapperProxy",
    "YamlConfigLoader",
]
