"""What a call returns: responses, stream chunks, token usage, tool calls and attempt records."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from actors.outcome import Outcome

__all__ = ["Attempt", "EmbeddingResponse", "LLMResponse", "StreamChunk", "TokenUsage", "ToolCall"]


@dataclass(slots=True)
class TokenUsage:
    """Tokens the provider reported for one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __post_init__(self) -> None:
        if not self.total_tokens:
            self.total_tokens = self.prompt_tokens + self.completion_tokens

    def __getitem__(self, key: str) -> int:
        # Lets callers that expect the original's dict keep ``usage["total_tokens"]``.
        return getattr(self, key)


@dataclass(slots=True)
class ToolCall:
    """A tool call, normalized across providers; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"

    @property
    def args(self) -> Any:
        """The arguments parsed from JSON (``{}`` when empty)."""
        return json.loads(self.arguments) if self.arguments else {}

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class Attempt:
    """One attempt of one request: which instance, what happened, how long it took."""

    instance: str
    outcome: Outcome
    duration: float = 0.0
    error: str | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "outcome": self.outcome.value,
            "duration": self.duration,
            "error": self.error,
            "target": self.target,
        }


@dataclass(slots=True)
class LLMResponse:
    """A completed call."""

    content: str
    model: str = ""
    instance: str = ""
    target: str = ""
    token_usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    response_time: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    #: What the answer's rate-limit headers said (``actors.resilience.RateLimits``), for pacing.
    rate_limits: Any = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> dict[str, Any]:
        """The reply as a canonical assistant message, ready to append to a conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        return msg

    @property
    def function_call(self) -> dict[str, Any] | None:
        """The first tool call in OpenAI's legacy ``function_call`` shape, or None."""
        if not self.tool_calls:
            return None
        first = self.tool_calls[0]
        return {"name": first.name, "arguments": first.arguments}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("rate_limits", None)
        out["attempts"] = [a.to_dict() for a in self.attempts]
        return out


@dataclass(slots=True)
class StreamChunk:
    """A piece of a streamed reply. The last chunk carries ``finish_reason`` and usage if known."""

    delta: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    instance: str = ""
    model: str = ""
    #: On the final chunk: what the answer's rate-limit headers said, for pacing.
    rate_limits: Any = field(default=None, repr=False, compare=False)
    logprobs: Any = None  # the provider's logprobs of this piece, when they were asked for
    #: A piece of Anthropic extended thinking, in its delta shape: ``{"type": "thinking_delta",
    #: "thinking": ...}``, ``{"type": "signature_delta", "signature": ...}``, or a whole
    #: ``{"type": "redacted_thinking", "data": ...}`` block.
    thinking: dict[str, Any] | None = None

    @property
    def content(self) -> str:
        """The text of this piece, under the name LangChain's chunks use."""
        return self.delta

    def __str__(self) -> str:
        return self.delta


@dataclass(slots=True)
class EmbeddingResponse:
    """Embeddings of a list of inputs: ``embeddings[i]`` is the vector of input ``i``."""

    embeddings: list[list[float]]
    model: str = ""
    instance: str = ""
    target: str = ""
    token_usage: TokenUsage = field(default_factory=TokenUsage)
    response_time: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)
    rate_limits: Any = field(default=None, repr=False, compare=False)  # what pacing reads

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("rate_limits", None)
        out["attempts"] = [a.to_dict() for a in self.attempts]
        return out
