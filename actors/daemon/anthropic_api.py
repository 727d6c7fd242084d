"""``POST /v1/messages`` in Anthropic's shapes, mapped to and from the runtime's canonical messages.

Requests: ``system`` (a string or text blocks) becomes a system message; ``tool_use`` blocks of
an assistant turn become OpenAI ``tool_calls``; ``tool_result`` blocks of a user turn become
``tool`` messages (placed before the turn's other content, as OpenAI wants them right after the
calls); image blocks become ``image_url`` parts. ``tools`` (``input_schema``), ``tool_choice``
(``auto/any/tool/none``, ``disable_parallel_tool_use``), ``stop_sequences`` and
``metadata.user_id`` become their OpenAI equivalents. ``thinking`` and ``top_k`` pass through
as they are (only Anthropic instances are chosen for them: ``actors.features``), and so do
``cache_control`` markers on system, text and tool definitions and the ``thinking`` blocks of
assistant turns (an OpenAI instance gets neither). Replies and streams follow Anthropic's
message object and event sequence (``message_start``, content blocks, ``message_delta``,
``message_stop``); a reply's thinking blocks come first in its content, streamed as thinking
and signature deltas.
"""

from __future__ import annotations

import json
from typing import Any

from actors import jsonio
from actors.daemon.chat import ChatRequest, bad_field, check_int, check_number, check_type
from actors.daemon.errors import APIError
from actors.response import LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = ["API", "EventStream", "error_body", "message", "parse", "to_canonical"]

API = "anthropic"

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "not_found": "not_found_error",
    "no_route": "not_found_error",
    "too_large": "request_too_large",
    "request_timeout": "invalid_request_error",
    "rate_limited": "rate_limit_error",
    "unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}


# -- requests ---------------------------------------------------------------------------------


def parse(body: dict[str, Any]) -> ChatRequest:
    """A messages body as a ``ChatRequest``; ``APIError`` 400 naming the bad field."""
    model = check_type(body, "model", str, required=True)
    raw = check_type(body, "messages", list, required=True)
    if not raw:
        raise bad_field("messages", "must have at least one message")
    params: dict[str, Any] = {}
    max_tokens = check_int(body, "max_tokens")
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    for name, high in (("temperature", 1), ("top_p", 1)):
        if check_number(body, name, 0, high) is not None:
            params[name] = body[name]
    stop = check_type(body, "stop_sequences", list)
    if stop:
        if not all(isinstance(s, str) for s in stop):
            raise bad_field("stop_sequences", "must be an array of strings")
        params["stop"] = list(stop)
    metadata = check_type(body, "metadata", dict)
    if metadata and metadata.get("user_id"):
        params["user"] = str(metadata["user_id"])
    thinking = check_type(body, "thinking", dict)
    if thinking:
        params["thinking"] = thinking
    if check_int(body, "top_k") is not None:
        params["top_k"] = body["top_k"]
    tools = check_type(body, "tools", list)
    if tools:
        params["tools"] = [_tool(i, t) for i, t in enumerate(tools)]
    choice = check_type(body, "tool_choice", dict)
    if choice:
        params.update(_tool_choice(choice))
    messages = to_canonical(check_type(body, "system", (str, list)), raw)
    return ChatRequest(model, messages, params, bool(check_type(body, "stream", bool)), True)


def _tool(i: int, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise bad_field(f"tools[{i}]", 'must be {"name": ..., "input_schema": {...}}')
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    out = {"type": "function", "function": function}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise bad_field(
            "tool_choice", 'must be {"type": "auto" | "any" | "none"} or {"type": "tool", "name": ...}'
        )
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _part(where: str, block: dict[str, Any]) -> dict[str, Any] | None:
    """An OpenAI content part for a user block (None to drop it)."""
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise bad_field(f"{where}.text", "must be a string")
        part = {"type": "text", "text": block["text"]}
        if "cache_control" in block:
            part["cache_control"] = block["cache_control"]
        return part
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        else:
            url = source.get("url", "")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind in ("thinking", "redacted_thinking"):
        return None
    raise bad_field(
        f"{where}.type",
        f"unsupported content block {json.dumps(kind)}; use text, image, tool_use or tool_result",
    )


def to_canonical(system: Any, turns: list[Any]) -> list[dict[str, Any]]:
    """Canonical (OpenAI-shaped) messages for Anthropic's ``system`` and ``messages``."""
    out: list[dict[str, Any]] = []
    if isinstance(system, list) and any(isinstance(b, dict) and "cache_control" in b for b in system):
        parts = [_part(f"system[{i}]", b) for i, b in enumerate(system) if isinstance(b, dict)]
        out.append({"role": "system", "content": [p for p in parts if p is not None]})
    elif system:
        text = _text(system)
        if text:
            out.append({"role": "system", "content": text})
    for i, turn in enumerate(turns):
        where = f"messages[{i}]"
        if not isinstance(turn, dict):
            raise bad_field(where, "must be an object with a role and content")
        role, content = turn.get("role"), turn.get("content")
        if role not in ("user", "assistant"):
            raise bad_field(f"{where}.role", f"must be user or assistant, not {json.dumps(role)}")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise bad_field(f"{where}.content", "must be a string or an array of content blocks")
        for j, block in enumerate(content):
            if not isinstance(block, dict):
                raise bad_field(f"{where}.content[{j}]", "must be a content block object")
        if role == "assistant":
            out.append(_assistant(where, content))
        else:
            out.extend(_user(where, content))
    return out


def _assistant(where: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(dict(block))  # Anthropic needs them back with tool results
        elif kind == "tool_use":
            if not isinstance(block.get("name"), str):
                raise bad_field(f"{where}.content[{j}].name", "is required for a tool_use block")
            arguments = json.dumps(block.get("input") or {})
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        else:
            raise bad_field(
                f"{where}.content[{j}].type", f"unsupported in an assistant turn: {json.dumps(kind)}"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
        if not message["content"]:
            message["content"] = None
    if thinking:
        text = [{"type": "text", "text": message["content"]}] if message["content"] else []
        message["content"] = [*thinking, *text]
    return message


def _user(where: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        if block.get("type") == "tool_result":
            text = _text(block.get("content"))
            if block.get("is_error"):
                text = f"Error: {text}"
            results.append(
                {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}
            )
        else:
            part = _part(f"{where}.content[{j}]", block)
            if part is not None:
                parts.append(part)
    out = results
    if parts:
        only_text = all(p["type"] == "text" and "cache_control" not in p for p in parts)
        content: Any = "".join(p["text"] for p in parts) if only_text else parts
        out.append({"role": "user", "content": content})
    return out


# -- replies ----------------------------------------------------------------------------------


def _input(call: ToolCall) -> Any:
    try:
        value = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        return {"input": call.arguments}  # the model wrote invalid JSON: keep it rather than fail
    return value if isinstance(value, dict) else {"input": value}


def _usage(usage: TokenUsage | None) -> dict[str, int]:
    usage = usage or TokenUsage()
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def message(response: LLMResponse, request: ChatRequest, request_id: str) -> dict[str, Any]:
    """Anthropic's message object for a finished response."""
    content: list[dict[str, Any]] = list(response.metadata.get("thinking") or ())
    if response.content:
        content.append({"type": "text", "text": response.content})
    for call in response.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)})
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": response.model or request.model,
        "content": content,
        "stop_reason": _STOP_REASONS.get(response.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(response.token_usage),
    }


def error_body(error: APIError) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(error.kind, "api_error"), "message": error.message},
    }


def _event(kind: str, obj: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + jsonio.dumps({"type": kind, **obj}) + b"\n\n"


class EventStream:
    """Renders a stream's chunks as Anthropic's event sequence."""

    media_type = "text/event-stream"

    def __init__(self, request: ChatRequest, request_id: str) -> None:
        self.request = request
        self.id = f"msg_{request_id}"
        self.started = False
        self.text_open = False
        self.thinking_open = False
        self.blocks = 0  # content blocks started so far
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None

    def _start(self, model: str) -> bytes:
        self.started = True
        start: dict[str, Any] = {
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": model or self.request.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
        }
        return _event("message_start", start) + _event("ping", {})

    def chunk(self, chunk: StreamChunk) -> bytes:
        out = [] if self.started else [self._start(chunk.model)]
        if chunk.thinking is not None:
            out.append(self._thinking(chunk.thinking))
        if chunk.delta or chunk.tool_calls or chunk.finish_reason:
            out.append(self._close_thinking())
        if chunk.delta:
            if not self.text_open:
                self.text_open = True
                out.append(
                    _event(
                        "content_block_start",
                        {"index": self.blocks, "content_block": {"type": "text", "text": ""}},
                    )
                )
                self.blocks += 1
            delta = {"type": "text_delta", "text": chunk.delta}
            out.append(_event("content_block_delta", {"index": self.blocks - 1, "delta": delta}))
        if chunk.tool_calls or chunk.finish_reason:
            out.append(self._close_text())
        for call in chunk.tool_calls:
            index = self.blocks
            self.blocks += 1
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            out.append(_event("content_block_start", {"index": index, "content_block": block}))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(_input(call))}
            out.append(_event("content_block_delta", {"index": index, "delta": delta}))
            out.append(_event("content_block_stop", {"index": index}))
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        return b"".join(out)

    def _thinking(self, piece: dict[str, Any]) -> bytes:
        """A thinking delta into the open thinking block (opened first), or a redacted block whole."""
        out = [self._close_text()]
        if piece.get("type") == "redacted_thinking":
            out.append(self._close_thinking())
            index = self.blocks
            self.blocks += 1
            out.append(_event("content_block_start", {"index": index, "content_block": piece}))
            out.append(_event("content_block_stop", {"index": index}))
            return b"".join(out)
        if not self.thinking_open:
            self.thinking_open = True
            block = {"type": "thinking", "thinking": "", "signature": ""}
            out.append(_event("content_block_start", {"index": self.blocks, "content_block": block}))
            self.blocks += 1
        out.append(_event("content_block_delta", {"index": self.blocks - 1, "delta": piece}))
        return b"".join(out)

    def _close_thinking(self) -> bytes:
        if not self.thinking_open:
            return b""
        self.thinking_open = False
        return _event("content_block_stop", {"index": self.blocks - 1})

    def _close_text(self) -> bytes:
        if not self.text_open:
            return b""
        self.text_open = False
        return _event("content_block_stop", {"index": self.blocks - 1})

    def end(self) -> bytes:
        out = [] if self.started else [self._start("")]
        out.append(self._close_thinking())
        out.append(self._close_text())
        delta = {
            "stop_reason": _STOP_REASONS.get(self.finish_reason or "stop", "end_turn"),
            "stop_sequence": None,
        }
        out.append(_event("message_delta", {"delta": delta, "usage": _usage(self.usage)}))
        out.append(_event("message_stop", {}))
        return b"".join(out)

    def error(self, error: APIError) -> bytes:
        return _event("error", {"error": error_body(error)["error"]})
