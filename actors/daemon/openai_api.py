"""``POST /v1/chat/completions`` in OpenAI's shapes: request parsing, completions, SSE chunks, errors.

Messages are already canonical; every parameter other than ``model``, ``messages``, ``stream``,
``stream_options`` and ``n`` passes through to the runtime (``tools``, ``tool_choice``,
``response_format``, ``temperature``, ``max_tokens``, ``stop``, ...). A stream is OpenAI's
``chat.completion.chunk`` objects ending with ``data: [DONE]``; with
``stream_options.include_usage`` a last chunk with no choices carries the usage.
"""

from __future__ import annotations

import json
import time
from typing import Any

from actors import jsonio
from actors.daemon.chat import ChatRequest, bad_field, check_int, check_number, check_type
from actors.daemon.errors import APIError
from actors.errors import BadRequestError
from actors.messages import normalize_messages
from actors.response import LLMResponse, StreamChunk, TokenUsage

__all__ = ["API", "ChunkStream", "completion", "error_body", "parse"]

API = "openai"

_NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "n"})
_ROLES = ("system", "developer", "user", "assistant", "tool")
_ERROR_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "not_found": ("invalid_request_error", "model_not_found"),
    "no_route": ("invalid_request_error", "not_found"),
    "too_large": ("invalid_request_error", "request_too_large"),
    "request_timeout": ("invalid_request_error", "request_timeout"),
    "rate_limited": ("rate_limit_error", "rate_limit_exceeded"),
    "unavailable": ("server_error", "service_unavailable"),
    "timeout": ("server_error", "timeout"),
    "internal": ("server_error", None),
}


def parse(body: dict[str, Any]) -> ChatRequest:
    """A chat completion body as a ``ChatRequest``; ``APIError`` 400 naming the bad field."""
    model = check_type(body, "model", str, required=True)
    raw = check_type(body, "messages", list, required=True)
    if not raw:
        raise bad_field("messages", "must have at least one message")
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise bad_field(f"messages[{i}]", "must be an object with a role and content")
        role = message.get("role")
        if role not in _ROLES:
            raise bad_field(
                f"messages[{i}].role", f"must be one of {', '.join(_ROLES)}, not {json.dumps(role)}"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_field(f"messages[{i}].content", "must be a string or an array of content parts")
    messages = [{**m, "role": "system"} if m["role"] == "developer" else m for m in raw]
    try:
        messages = normalize_messages(messages)
    except BadRequestError as exc:
        raise APIError(400, "invalid_request", str(exc), param="messages") from None
    stream = bool(check_type(body, "stream", bool))
    options = check_type(body, "stream_options", dict) or {}
    n = check_int(body, "n")
    if n not in (None, 1):
        raise bad_field("n", "only n=1 is supported: each request gets one choice; send n requests instead")
    check_number(body, "temperature", 0, 2)
    check_number(body, "top_p", 0, 1)
    check_int(body, "max_tokens")
    check_int(body, "max_completion_tokens")
    stop = check_type(body, "stop", (str, list))
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise bad_field("stop", "must be a string or an array of strings")
    for i, tool in enumerate(check_type(body, "tools", list) or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_field(
                f"tools[{i}]", 'must be {"type": "function", "function": {"name": ..., "parameters": ...}}'
            )
    check_type(body, "tool_choice", (str, dict))
    check_type(body, "response_format", dict)
    params = {k: v for k, v in body.items() if k not in _NOT_PARAMS}
    return ChatRequest(model, messages, params, stream, bool(options.get("include_usage")))


def _usage(usage: TokenUsage | None) -> dict[str, int]:
    usage = usage or TokenUsage()
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def completion(response: LLMResponse, request: ChatRequest, request_id: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished response."""
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in response.tool_calls]
        if not response.content:
            message["content"] = None
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model or request.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": response.finish_reason or "stop",
                "logprobs": response.metadata.get("logprobs"),
            }
        ],
        "usage": _usage(response.token_usage),
        "system_fingerprint": None,
    }


def error_body(error: APIError) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(error.kind, ("invalid_request_error", None))
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}


def _event(obj: Any) -> bytes:
    return b"data: " + jsonio.dumps(obj) + b"\n\n"


class ChunkStream:
    """Renders a stream's chunks as OpenAI's SSE events, in order."""

    media_type = "text/event-stream"

    def __init__(self, request: ChatRequest, request_id: str) -> None:
        self.request = request
        self.base = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }
        self.model = request.model
        self.started = False
        self.usage: TokenUsage | None = None

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        obj = {**self.base, "model": self.model, "choices": [choice]}
        if self.request.include_usage:
            obj["usage"] = None
        return _event(obj)

    def chunk(self, chunk: StreamChunk) -> bytes:
        """The events for one runtime chunk (text, or the final one with tool calls and finish)."""
        self.model = chunk.model or self.model
        out = []
        delta: dict[str, Any] = {}
        if not self.started:
            self.started = True
            delta["role"] = "assistant"
        if chunk.delta or delta:
            delta["content"] = chunk.delta
            out.append(self._chunk(delta, logprobs=chunk.logprobs))
        if chunk.tool_calls:
            calls = [{"index": i, **call.to_openai()} for i, call in enumerate(chunk.tool_calls)]
            out.append(self._chunk({"tool_calls": calls}))
        if chunk.finish_reason:
            out.append(self._chunk({}, chunk.finish_reason))
        if chunk.usage is not None:
            self.usage = chunk.usage
        return b"".join(out)

    def end(self) -> bytes:
        """The usage chunk (if asked for) and ``[DONE]``."""
        out = b""
        if self.request.include_usage:
            out += _event({**self.base, "model": self.model, "choices": [], "usage": _usage(self.usage)})
        return out + b"data: [DONE]\n\n"

    def error(self, error: APIError) -> bytes:
        """A failure after the first chunk: an error event; the stream ends without ``[DONE]``."""
        return _event(error_body(error))
