"""llm-actors: many LLM endpoints behaving like one reliable, fast LLM client."""

from actors.errors import *  # noqa: F401,F403
from actors.errors import __all__ as _errors_all
from actors.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from actors.outcome import Outcome
from actors.response import Attempt, LLMResponse, StreamChunk, TokenUsage, ToolCall

__version__ = "0.1.0"

__all__ = [
    "AIMessage",
    "Attempt",
    "BaseMessage",
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
