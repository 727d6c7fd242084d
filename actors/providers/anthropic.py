"""Anthropic messages (``{base_url}/v1/messages``), translated from and to OpenAI's shapes.

Requests: system messages become the top-level ``system``; assistant ``tool_calls`` become
``tool_use`` blocks and ``tool`` messages ``tool_result`` blocks in a user turn; consecutive turns
of one role are merged. Parameters with an Anthropic equivalent are mapped (``stop`` ->
``stop_sequences``, OpenAI tools -> ``input_schema`` tools, ``tool_choice``, ``user`` ->
``metadata.user_id``, ``parallel_tool_calls=False`` -> ``disable_parallel_tool_use``), Anthropic's
own pass through, the rest (``frequency_penalty``, ``response_format``, ``seed``, ...) are dropped.
``max_tokens`` is required by the API and defaults to 1024; ``temperature`` is capped at 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from actors.providers.base import HTTPProvider, HTTPRequest, Messages, StreamDecoder, text_of
from actors.providers.errors import classify_payload
from actors.providers.sse import SSEEvent
from actors.response import LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "AnthropicProvider",
    "AnthropicStreamDecoder",
    "anthropic_usage",
    "build_messages_body",
    "normalize_stop_reason",
    "parse_message",
    "to_anthropic_messages",
    "to_anthropic_tool_choice",
    "to_anthropic_tools",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024

_PASSTHROUGH = ("top_p", "top_k", "metadata", "stop_sequences", "thinking", "service_tier")
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_NATIVE_BLOCKS = frozenset({"image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def normalize_stop_reason(reason: Any) -> str | None:
    """Anthropic's ``stop_reason`` in OpenAI's words."""
    if reason is None:
        return None
    return _STOP_REASONS.get(reason, str(reason))


def anthropic_usage(usage: Any) -> TokenUsage:
    """Usage with cached input counted as prompt tokens (Anthropic reports them apart)."""
    if not isinstance(usage, Mapping):
        return TokenUsage()
    prompt = sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return TokenUsage(prompt_tokens=prompt, completion_tokens=int(usage.get("output_tokens") or 0))


# -- requests ---------------------------------------------------------------------------------


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[5:].partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Anthropic content blocks for an OpenAI message content; empty text is dropped (the API refuses it)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not content:
        return []
    if not isinstance(content, list):
        return [{"type": "text", "text": str(content)}]
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            if part:
                out.append({"type": "text", "text": part})
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "text":
                if part.get("text"):
                    block = {"type": "text", "text": part["text"]}
                    if "cache_control" in part:
                        block["cache_control"] = part["cache_control"]
                    out.append(block)
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url", "") if isinstance(image, Mapping) else str(image or "")
                out.append(_image_block(url))
            elif kind in _NATIVE_BLOCKS:
                out.append(dict(part))
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {"input": raw}  # the model wrote invalid JSON; keep it rather than fail the turn
    return parsed if isinstance(parsed, dict) else {"input": parsed}


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": function.get("name", ""),
        "input": _arguments(function.get("arguments")),
    }


def _tool_result(message: Mapping[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    result: Any = content if isinstance(content, str) else _blocks(content)
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or "", "content": result}


def to_anthropic_messages(messages: Messages) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, turns)`` for canonical messages; consecutive turns of one role are merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            text = text_of(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            blocks += [_tool_use(call) for call in message.get("tool_calls") or ()]
        else:
            role, blocks = "user", _blocks(message.get("content"))
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # a lone text block is sent as a plain string: smaller and equivalent
        blocks = turn["content"]
        if not blocks:
            turn["content"] = ""
        elif len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
            turn["content"] = blocks[0]["text"]
    return ("\n\n".join(system) or None), turns


def to_anthropic_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenAI ``{"type": "function", "function": {...}}`` tools as Anthropic tools; native ones pass."""
    out = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping):
            out.append(tool)
            continue
        converted = {
            "name": function.get("name", ""),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            converted["description"] = function["description"]
        out.append(converted)
    return out


def to_anthropic_tool_choice(choice: Any, parallel: Any = None) -> dict[str, Any] | None:
    """OpenAI's ``tool_choice`` (and ``parallel_tool_calls``) in Anthropic's shape."""
    if choice is None or choice == "auto":
        out: dict[str, Any] | None = {"type": "auto"} if choice or parallel is False else None
    elif choice == "required" or choice == "any":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        out = {"type": "tool", "name": choice["function"].get("name", "")}
    elif isinstance(choice, Mapping):
        out = dict(choice)  # already Anthropic's shape
    else:
        out = None
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def build_messages_body(
    model_name: str, messages: Messages, params: Mapping[str, Any], *, stream: bool
) -> dict[str, Any]:
    """The JSON body of a messages request."""
    system, turns = to_anthropic_messages(messages)
    body: dict[str, Any] = {
        "model": model_name,
        "max_tokens": params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    extra_system = params.get("system")
    if extra_system:
        system = f"{extra_system}\n\n{system}" if system else extra_system
    if system:
        body["system"] = system
    if "temperature" in params:
        body["temperature"] = min(params["temperature"], 1.0)
    for key in _PASSTHROUGH:
        if key in params:
            body[key] = params[key]
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if params.get("user"):
        body["metadata"] = {**(body.get("metadata") or {}), "user_id": str(params["user"])}
    tools = params.get("tools")
    if tools:
        body["tools"] = to_anthropic_tools(tools)
        choice = to_anthropic_tool_choice(params.get("tool_choice"), params.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    if stream:
        body["stream"] = True
    return body


# -- replies ----------------------------------------------------------------------------------


def parse_message(data: Any, *, instance: str, model: str) -> LLMResponse:
    """A messages reply body as an ``LLMResponse``; KeyError and the like on a bad shape."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data["content"]:
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {})))
    return LLMResponse(
        content="".join(texts),
        model=data.get("model") or model,
        instance=instance,
        token_usage=anthropic_usage(data.get("usage")),
        finish_reason=normalize_stop_reason(data.get("stop_reason")),
        tool_calls=calls,
        metadata={"provider_response_id": data.get("id")},
    )


class AnthropicStreamDecoder(StreamDecoder):
    """``message_start``, content block events, ``message_delta``, ``message_stop``; or ``error``."""

    __slots__ = ()

    def decode(self, event: SSEEvent) -> Sequence[StreamChunk]:
        obj = self.load(event.data)
        kind = obj.get("type", event.event)
        if kind == "content_block_delta":
            delta = obj["delta"]
            if delta.get("type") == "text_delta":
                return self.text(delta.get("text") or "")
            if delta.get("type") == "input_json_delta":
                self.tools.add(obj.get("index", 0), arguments=delta.get("partial_json"))
        elif kind == "content_block_start":
            block = obj["content_block"]
            if block.get("type") == "tool_use":
                initial = block.get("input")
                self.tools.add(
                    obj.get("index", 0),
                    id=block.get("id"),
                    name=block.get("name"),
                    arguments=json.dumps(initial) if initial else None,
                )
            elif block.get("type") == "text":
                return self.text(block.get("text") or "")
        elif kind == "message_start":
            message = obj.get("message") or {}
            self.model = message.get("model") or self.model
            self.usage = anthropic_usage(message.get("usage"))
        elif kind == "message_delta":
            self.finish_reason = normalize_stop_reason((obj.get("delta") or {}).get("stop_reason")) or "stop"
            usage = obj.get("usage")
            if usage:
                before = self.usage or TokenUsage()
                now = anthropic_usage(usage)
                self.usage = TokenUsage(
                    prompt_tokens=now.prompt_tokens or before.prompt_tokens,
                    completion_tokens=now.completion_tokens or before.completion_tokens,
                )
        elif kind == "message_stop":
            return self.final()
        elif kind == "error":
            raise self.failed(classify_payload(self.ctx, obj))
        return ()


class AnthropicProvider(HTTPProvider):
    """Anthropic's messages API."""

    default_base_url = "https://api.anthropic.com"
    key_env = "ANTHROPIC_API_KEY"

    def auth_headers(self, key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def build_request(self, messages: Messages, params: dict[str, Any], *, stream: bool) -> HTTPRequest:
        body = build_messages_body(self.model.model_name, messages, params, stream=stream)
        return HTTPRequest("POST", self.base_url + "/v1/messages", body)

    def parse_response(self, data: Any) -> LLMResponse:
        if isinstance(data, dict) and data.get("type") == "error":
            raise classify_payload(self.errors, data)
        return parse_message(data, instance=self.name, model=self.model.model_name)

    def stream_decoder(self) -> StreamDecoder:
        return AnthropicStreamDecoder(self.errors, self.name, self.model.model_name)

    def probe_request(self) -> HTTPRequest:
        return HTTPRequest("GET", self.base_url + "/v1/models?limit=1")

    async def acount_tokens(self, body: Mapping[str, Any], *, timeout: float | None = None) -> int:
        """Anthropic's own count of a messages body's input tokens (``/v1/messages/count_tokens``)."""
        self.check_enabled()
        sent = {k: v for k, v in body.items() if k in _COUNTED}
        request = HTTPRequest(
            "POST", self.base_url + "/v1/messages/count_tokens", {**sent, "model": self.model.model_name}
        )
        return self.parsed(await self._asend(request, timeout), _input_tokens)


#: The parts of a messages body that count_tokens takes.
_COUNTED = ("messages", "system", "tools", "tool_choice", "thinking")


def _input_tokens(data: Any) -> int:
    return int(data["input_tokens"])
