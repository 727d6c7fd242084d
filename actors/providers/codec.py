"""What the codecs share: the request they build, parameters, message text, JSON bodies, and the
stream decoder that turns a provider's events into chunks.

A provider's codec is pure: these pieces hold no I/O, so the drivers (``actors.providers.
http_provider``) and every codec (``openai``, ``anthropic``, ``simulated``) use them alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from actors import jsonio
from actors.errors import LLMCallError
from actors.providers.errors import ErrorContext, interrupted, malformed
from actors.providers.sse import SSEEvent
from actors.response import StreamChunk, TokenUsage, ToolCall

__all__ = [
    "HTTPRequest",
    "Messages",
    "StreamDecoder",
    "ToolCallAssembler",
    "encode_json",
    "merge_params",
    "text_of",
]

# What a codec raises when a 2xx body has the wrong shape; anything else is a bug, not the server.
_SHAPE_ERRORS = (LookupError, TypeError, ValueError, AttributeError)

Messages = Sequence[Mapping[str, Any]]


def encode_json(body: Any) -> bytes:
    """A request body as JSON bytes, as strict as a provider will parse it (no NaN, valid UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Call parameters over the model's defaults; a None value means "not given"."""
    merged = {k: v for k, v in defaults.items() if v is not None} if defaults else {}
    for key, value in params.items():
        if value is not None:
            merged[key] = value
    return merged


def text_of(content: Any) -> str:
    """The text of a message content: a string, or a list of text parts (others skipped)."""
    if isinstance(content, str):
        return content
    if not content:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


class HTTPRequest:
    """What to send: method, URL and JSON body (headers are the provider's, fixed at start)."""

    __slots__ = ("json", "method", "url")

    def __init__(self, method: str, url: str, json: Any = None) -> None:
        self.method = method
        self.url = url
        self.json = json

    def __repr__(self) -> str:
        return f"HTTPRequest({self.method} {self.url})"


class ToolCallAssembler:
    """Collects streamed tool-call pieces by index; the whole calls come out at the end."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def add(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str | None = None
    ) -> None:
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ["", "", []]
        if id:
            call[0] = id
        if name:
            call[1] = name
        if arguments:
            call[2].append(arguments)

    def result(self) -> list[ToolCall]:
        return [ToolCall(c[0], c[1], "".join(c[2]) or "{}") for _, c in sorted(self._calls.items())]


class StreamDecoder:
    """One stream's state: turns provider events into chunks, remembers the text given so far.

    Text chunks go out as they come; tool calls, ``finish_reason`` and usage go on one final
    chunk. A failure after any text was given becomes ``StreamInterruptedError`` carrying it;
    before that it stays the ordinary error, so the runtime may still fall back.
    """

    __slots__ = (
        "ctx",
        "done",
        "finish_reason",
        "instance",
        "model",
        "parts",
        "rate_limits",
        "tools",
        "usage",
    )

    def __init__(self, ctx: ErrorContext, instance: str, model: str) -> None:
        self.ctx = ctx
        self.instance = instance
        self.model = model
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.tools = ToolCallAssembler()
        self.done = False
        self.rate_limits: Any = None  # from the response's headers, handed on with the final chunk

    def feed(self, event: SSEEvent) -> Sequence[StreamChunk]:
        """The chunks one event makes (usually none or one); raises the classified error."""
        try:
            return self.decode(event)
        except _SHAPE_ERRORS as exc:
            why = f"unexpected event shape: {type(exc).__name__}: {exc}"
            raise self.failed(malformed(self.ctx, why, event.data)) from None

    def decode(self, event: SSEEvent) -> Sequence[StreamChunk]:
        """``feed`` for one provider; may raise lookup/type/value errors on a bad shape."""
        raise NotImplementedError

    def load(self, data: str) -> Any:
        """An event's JSON data, or the malformed-stream error."""
        try:
            return jsonio.loads(data)
        except ValueError:
            raise self.failed(malformed(self.ctx, "an event is not JSON", data)) from None

    def text(self, delta: str) -> Sequence[StreamChunk]:
        if not delta:
            return ()
        self.parts.append(delta)
        return (StreamChunk(delta=delta, instance=self.instance, model=self.model),)

    def final(self) -> Sequence[StreamChunk]:
        self.done = True
        chunk = StreamChunk(
            tool_calls=self.tools.result(),
            finish_reason=self.finish_reason or "stop",
            usage=self.usage,
            instance=self.instance,
            model=self.model,
            rate_limits=self.rate_limits,
        )
        return (chunk,)

    def end(self) -> Sequence[StreamChunk]:
        """At end of input: the final chunk if the reply was complete, else the error."""
        if self.done:
            return ()
        if self.finish_reason is not None:  # finished, only the terminator is missing: accept it
            return self.final()
        raise self.failed(malformed(self.ctx, "the stream ended before the reply was complete"))

    def failed(self, error: LLMCallError) -> LLMCallError:
        """``error`` as the caller should see it, given what the stream has already yielded."""
        return interrupted(error, "".join(self.parts)) if self.parts else error
