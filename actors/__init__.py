"""llm-actors: many LLM endpoints behaving like one reliable, fast LLM client.

Start with ``Runtime.from_config("config")`` (a context manager) and its ``factory``; the
seed-compatible managers, ``LLMNode`` and ``ConfigMigrator`` (``actors.compat``,
``actors.migration``) serve code written for the original design. Every error is an ``LLMError`` (see ``actors.errors``).
"""

from actors._version import __version__ as __version__
from actors.compat import (
    EnhancedFallbackManager,
    LLMNode,
    LLMWrapperFactory,
    NodeExecutionResult,
    PollingPoolManager,
    TaskGroupManager,
    YamlConfigLoader,
)
from actors.errors import *  # noqa: F403
from actors.errors import __all__ as _errors_all
from actors.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from actors.migration import ConfigMigrator
from actors.outcome import Outcome
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper, WrapperProxy
from actors.response import Attempt, EmbeddingResponse, LLMResponse, StreamChunk, TokenUsage, ToolCall
from actors.runtime import Runtime

__all__ = [
    # Running
    "Runtime",
    "LLMWrapperFactory",
    "WrapperProxy",
    "TaskGroupWrapper",
    "PollingPoolWrapper",
    # Messages and results
    "BaseMessage",
    "HumanMessage",
    "SystemMessage",
    "AIMessage",
    "ToolMessage",
    "EmbeddingResponse",
    "LLMResponse",
    "StreamChunk",
    "TokenUsage",
    "ToolCall",
    "Attempt",
    "Outcome",
    # The original design's API
    "TaskGroupManager",
    "PollingPoolManager",
    "EnhancedFallbackManager",
    "YamlConfigLoader",
    "LLMNode",
    "NodeExecutionResult",
    "ConfigMigrator",
    *_errors_all,
]
