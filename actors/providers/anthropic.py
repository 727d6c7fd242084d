"""Anthropic messages (``{base_url}/v1/messages``), translated from and to OpenAI's shapes.

Requests: system messages become the top-level ``system`` (as blocks when one carries
``cache_control``); assistant ``tool_calls`` become ``tool_use`` blocks and ``tool`` messages
``tool_result`` blocks in a user turn; consecutive turns of one role are merged. Parameters with
an Anthropic equivalent are mapped (``stop`` -> ``stop_sequences``, OpenAI tools ->
``input_schema`` tools, ``tool_choice``, ``user`` -> ``metadata.user_id``,
``parallel_tool_calls=False`` -> ``disable_parallel_tool_use``), Anthropic's own (``thinking``,
``top_k``, ``metadata``, ``cache_control`` on blocks and tools) pass through.

``response_format`` (``json_object`` or ``json_schema``) becomes a forced tool whose input
schema is the requested one; its input comes back as the reply's text content, so callers see
what an OpenAI instance would have answered. Parameters no Anthropic model honours
(``logprobs``, ``top_logprobs``) never reach this provider: ``actors.features`` routes them
elsewhere. ``frequency_penalty``, ``presence_penalty`` and ``seed`` are sampling hints without an
equivalent and are left out. ``max_tokens`` is required by the API and defaults to 1024;
``temperature`` is capped at 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from actors.providers.base import HTTPProvider, HTTPRequest, Messages, StreamDecoder
from actors.providers.errors import classify_payload
from actors.providers.sse import SSEEvent
from actors.response import LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "STRUCTURED_OUTPUT_TOOL",
    "AnthropicProvider",
    "AnthropicStreamDecoder",
    "anthropic_usage",
    "build_messages_body",
    "normalize_stop_reason",
    "parse_message",
    "structured_output_schema",
    "to_anthropic_messages",
    "to_anthropic_tool_choice",
    "to_anthropic_tools",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
#: The tool a ``response_format`` becomes; its input is turned back into the reply's text.
STRUCTURED_OUTPUT_TOOL = "structured_output"

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


def to_anthropic_messages(messages: Messages) -> tuple[Any, list[dict[str, Any]]]:
    """``(system, turns)`` for canonical messages; consecutive turns of one role are merged.

    ``system`` is a string, or a list of text blocks when one of them carries ``cache_control``.
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            system.extend(b for b in _blocks(message.get("content")) if b["type"] == "text")
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
    if any("cache_control" in b for b in system):
        return system, turns
    return ("\n\n".join(b["text"] for b in system) or None), turns


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
        if "cache_control" in tool:
            converted["cache_control"] = tool["cache_control"]
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
        if isinstance(system, list):
            system = [{"type": "text", "text": extra_system}, *system]
        else:
            system = f"{extra_system}\n\n{system}" if system else extra_system
    if system:
        body["system"] = system
    if "temperature" in params:
        body["temperature"] = min(params["temperature"], 1.0)
    for key in _PASSTHROUGH:
        if key in params:
            body[key] = params[key]
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):  # Anthropic's metadata has user_id only; OpenAI's is free-form
        body["metadata"] = {"user_id": metadata["user_id"]} if metadata.get("user_id") else {}
        if not body["metadata"]:
            del body["metadata"]
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
    schema = structured_output_schema(params.get("response_format"))
    if schema is not None:
        _force_structured_output(body, schema)
    if stream:
        body["stream"] = True
    return body


def structured_output_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (``{"type": "object"}`` for json_object), or None."""
    if isinstance(response_format, str):
        response_format = {"type": response_format}
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise ValueError("response_format json_schema needs json_schema.schema, a JSON schema object")
        return dict(schema)
    if kind in (None, "text"):
        return None
    raise ValueError(f"response_format type {kind!r} is not one of text, json_object, json_schema")


def _force_structured_output(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """Ask for the answer as the input of a tool with ``schema``; the reply turns it back to text."""
    if schema.get("type", "object") != "object":
        raise ValueError("response_format json_schema: the schema's root must be an object")
    tool = {
        "name": STRUCTURED_OUTPUT_TOOL,
        "description": "Give your final answer by calling this tool; its input is the answer.",
        "input_schema": {"type": "object", **schema},
    }
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "none":  # no other tool may be called: only the answer's
        body.pop("tools", None)
    tools = body.setdefault("tools", [])
    tools.append(tool)
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") == "enabled":
        # Anthropic refuses a forced tool with extended thinking: ask in words instead.
        body["tool_choice"] = {"type": "auto"}
        note = f"Give your final answer by calling the {STRUCTURED_OUTPUT_TOOL} tool."
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [*system, {"type": "text", "text": note}]
        else:
            body["system"] = f"{system}\n\n{note}" if system else note
    elif len(tools) == 1:
        body["tool_choice"] = {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL}
    elif choice.get("type") != "tool":  # the caller's tools, or the answer through the structured one
        body["tool_choice"] = {**choice, "type": "any"}


# -- replies ----------------------------------------------------------------------------------


def parse_message(data: Any, *, instance: str, model: str) -> LLMResponse:
    """A messages reply body as an ``LLMResponse``; KeyError and the like on a bad shape."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[dict[str, Any]] = []
    structured = None
    for block in data["content"]:
        kind = block["type"]
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            if block["name"] == STRUCTURED_OUTPUT_TOOL:
                structured = json.dumps(block.get("input") or {})
            else:
                calls.append(ToolCall(block["id"], block["name"], json.dumps(block.get("input") or {})))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(block)
    finish = normalize_stop_reason(data.get("stop_reason"))
    if structured is not None:  # the answer itself, as an OpenAI instance would give it
        texts = [structured]
        if not calls and finish == "tool_calls":
            finish = "stop"
    metadata: dict[str, Any] = {"provider_response_id": data.get("id")}
    if thinking:
        metadata["thinking"] = thinking
    return LLMResponse(
        content="".join(texts),
        model=data.get("model") or model,
        instance=instance,
        token_usage=anthropic_usage(data.get("usage")),
        finish_reason=finish,
        tool_calls=calls,
        metadata=metadata,
    )


class AnthropicStreamDecoder(StreamDecoder):
    """``message_start``, content block events, ``message_delta``, ``message_stop``; or ``error``.

    The structured-output tool's input streams out as text, as it is the answer; thinking streams
    out as ``StreamChunk.thinking`` pieces, so an Anthropic client gets its thinking blocks back.
    """

    __slots__ = ("structured",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.structured: int | None = None  # the index of the structured-output block

    def decode(self, event: SSEEvent) -> Sequence[StreamChunk]:
        obj = self.load(event.data)
        kind = obj.get("type", event.event)
        if kind == "content_block_delta":
            delta = obj["delta"]
            if delta.get("type") == "text_delta":
                return self.text(delta.get("text") or "")
            if delta.get("type") in ("thinking_delta", "signature_delta"):
                return (StreamChunk(thinking=dict(delta), instance=self.instance, model=self.model),)
            if delta.get("type") == "input_json_delta":
                if obj.get("index", 0) == self.structured:
                    return self.text(delta.get("partial_json") or "")
                self.tools.add(obj.get("index", 0), arguments=delta.get("partial_json"))
        elif kind == "content_block_start":
            block = obj["content_block"]
            if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_OUTPUT_TOOL:
                self.structured = obj.get("index", 0)
                return self.text(json.dumps(block["input"]) if block.get("input") else "")
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
            elif block.get("type") == "redacted_thinking":
                return (StreamChunk(thinking=dict(block), instance=self.instance, model=self.model),)
        elif kind == "message_start":
            message = obj.get("message") or {}
            self.model = message.get("model") or self.model
            self.usage = anthropic_usage(message.get("usage"))
        elif kind == "message_delta":
            self.finish_reason = normalize_stop_reason((obj.get("delta") or {}).get("stop_reason")) or "stop"
            if self.structured is not None and self.finish_reason == "tool_calls" and not self.tools.result():
                self.finish_reason = "stop"
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
        return HTTPRequest("POST", self.url("/v1/messages"), body)

    def parse_response(self, data: Any) -> LLMResponse:
        if isinstance(data, dict) and data.get("type") == "error":
            raise classify_payload(self.errors, data)
        return parse_message(data, instance=self.name, model=self.model.model_name)

    def stream_decoder(self) -> StreamDecoder:
        return AnthropicStreamDecoder(self.errors, self.name, self.model.model_name)

    def probe_request(self) -> HTTPRequest:
        return HTTPRequest("GET", self.url("/v1/models", "limit=1"))

    async def acount_tokens(self, body: Mapping[str, Any], *, timeout: float | None = None) -> int:
        """Anthropic's own count of a messages body's input tokens (``/v1/messages/count_tokens``)."""
        self.check_enabled()
        sent = {k: v for k, v in body.items() if k in _COUNTED}
        request = HTTPRequest(
            "POST", self.url("/v1/messages/count_tokens"), {**sent, "model": self.model.model_name}
        )
        return self.parsed(await self._afetch(request, timeout), _input_tokens)


#: The parts of a messages body that count_tokens takes.
_COUNTED = ("messages", "system", "tools", "tool_choice", "thinking")


def _input_tokens(data: Any) -> int:
    return int(data["input_tokens"])
