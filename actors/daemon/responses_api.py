"""``POST /v1/responses`` (OpenAI's Responses API) over the same wrappers as chat completions.

Requests become a canonical chat request: ``instructions`` a system message; ``input`` a string
(one user message) or items: messages (``input_text``/``output_text``/``input_image`` parts),
``function_call`` items (assistant tool calls) and ``function_call_output`` items (tool
results); ``reasoning`` items are dropped, as a chat upstream cannot take them back. Function
``tools``, ``tool_choice``, ``parallel_tool_calls``, ``max_output_tokens``, ``temperature``,
``top_p``, ``text.format`` (json_object / json_schema as ``response_format``),
``reasoning.effort``, ``user`` and ``metadata`` are honoured. This gateway stores nothing, so
``previous_response_id``, ``conversation``, ``prompt`` templates, ``background`` and item
references are refused with a 400 that says so, as are built-in tools and unknown fields;
``store`` is accepted, and every response says ``store: false``.

Replies are ``response`` objects; streams are the SDKs' event sequence: ``response.created``,
``response.in_progress``, output items (``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta`` ..., ``.done`` events),
function calls (``response.function_call_arguments.delta``/``.done``), then
``response.completed`` (``response.incomplete`` when the length limit cut it short); a failure
after the first event ends with ``error`` and ``response.failed``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from actors.daemon.chat import ChatRequest, bad_field, check_int, check_number, check_type
from actors.daemon.errors import APIError
from actors.daemon.openai_api import error_body
from actors.errors import BadRequestError
from actors.messages import normalize_messages
from actors.response import LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = ["API", "EventStream", "ResponsesRequest", "parse", "response"]

API = "responses"

#: Fields that need stored state this gateway does not keep: refused, saying why.
_STORED = {
    "previous_response_id": "this gateway stores no responses; send the whole conversation in input",
    "conversation": "this gateway stores no conversations; send the whole conversation in input",
    "prompt": "this gateway stores no prompt templates; send instructions and input instead",
    "background": "background responses need storage, which this gateway does not keep",
}
_ACCEPTED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "user",
        "metadata",
        "store",
        "stream",
        "stream_options",
        "include",
        "truncation",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
    }
)
_PASSED = ("service_tier", "safety_identifier", "prompt_cache_key", "parallel_tool_calls")


@dataclass(slots=True)
class ResponsesRequest(ChatRequest):
    """A chat request, plus what the response object echoes back."""

    echo: dict[str, Any] = field(default_factory=dict)


# -- requests ---------------------------------------------------------------------------------


def parse(body: dict[str, Any]) -> ResponsesRequest:
    """A Responses API body as a chat request; ``APIError`` 400 naming the bad or unsupported field."""
    for name, why in _STORED.items():
        if body.get(name) not in (None, False):
            raise bad_field(name, f"is not supported: {why}")
    unknown = sorted(set(body) - _ACCEPTED)
    if unknown:
        raise bad_field(unknown[0], "is not supported by this gateway's Responses API")
    model = check_type(body, "model", str, required=True)
    instructions = check_type(body, "instructions", str)
    raw = body.get("input")
    if raw is None:
        raise bad_field("input", "is required")
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        messages.extend(_items(raw))
    else:
        raise bad_field("input", "must be a string or an array of input items")
    if not any(m["role"] != "system" for m in messages):
        raise bad_field("input", "must have at least one item")
    try:
        messages = normalize_messages(messages)
    except BadRequestError as exc:
        raise APIError(400, "invalid_request", str(exc), param="input") from None

    params: dict[str, Any] = {}
    if check_int(body, "max_output_tokens") is not None:
        params["max_tokens"] = body["max_output_tokens"]
    for name, high in (("temperature", 2), ("top_p", 1)):
        if check_number(body, name, 0, high) is not None:
            params[name] = body[name]
    tools = check_type(body, "tools", list)
    if tools:
        params["tools"] = [_tool(i, t) for i, t in enumerate(tools)]
    choice = check_type(body, "tool_choice", (str, dict))
    if choice is not None:
        params["tool_choice"] = _tool_choice(choice)
    check_type(body, "parallel_tool_calls", bool)
    for name in _PASSED:
        if body.get(name) is not None:
            params[name] = body[name]
    response_format = _format(check_type(body, "text", dict) or {})
    if response_format is not None:
        params["response_format"] = response_format
    reasoning = check_type(body, "reasoning", dict) or {}
    if reasoning.get("effort") is not None:
        params["reasoning_effort"] = reasoning["effort"]
    user = check_type(body, "user", str)
    if user:
        params["user"] = user
    metadata = check_type(body, "metadata", dict)
    check_type(body, "store", bool)
    check_type(body, "include", list)
    truncation = check_type(body, "truncation", str)
    if truncation not in (None, "disabled"):
        raise bad_field("truncation", "only disabled is supported: this gateway never drops input")
    echo = {
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": metadata or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "temperature": body.get("temperature"),
        "text": {"format": (body.get("text") or {}).get("format") or {"type": "text"}},
        "tool_choice": choice if choice is not None else "auto",
        "tools": tools or [],
        "top_p": body.get("top_p"),
        "user": user,
    }
    stream = bool(check_type(body, "stream", bool))
    return ResponsesRequest(model, messages, params, stream, True, echo)


def _items(items: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_field(where, "must be an input item object")
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(where, item))
        elif kind == "function_call":
            for key in ("call_id", "name"):
                if not isinstance(item.get(key), str):
                    raise bad_field(f"{where}.{key}", "is required for a function_call item")
            arguments = item.get("arguments")
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {
                    "name": item["name"],
                    "arguments": arguments if isinstance(arguments, str) else "{}",
                },
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":  # one assistant turn: text and calls
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise bad_field(f"{where}.call_id", "is required for a function_call_output item")
            output = item.get("output")
            text = output if isinstance(output, str) else _text(f"{where}.output", output)
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        elif kind == "reasoning":
            continue  # a reasoning model's own notes: a chat upstream cannot take them back
        elif kind == "item_reference":
            raise bad_field(
                f"{where}.type", "item_reference needs stored items, which this gateway does not keep"
            )
        else:
            raise bad_field(
                f"{where}.type",
                f"unsupported input item {json.dumps(kind)}; use message, function_call or function_call_output",
            )
    return out


def _message(where: str, item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise bad_field(
            f"{where}.role", f"must be user, assistant, system or developer, not {json.dumps(role)}"
        )
    role = "system" if role == "developer" else role
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise bad_field(f"{where}.content", "must be a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(part.get("text"), str):
                raise bad_field(f"{here}.text", "must be a string")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise bad_field(
                    f"{here}.image_url", "is required (a URL or data: URL); file_id needs stored files"
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise bad_field(
                f"{here}.type",
                f"unsupported content part {json.dumps(kind)}; use input_text, output_text or input_image",
            )
    if all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _text(where: str, output: Any) -> str:
    if isinstance(output, list):
        texts = [p.get("text") for p in output if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if len(texts) == len(output):
            return "".join(texts)
    raise bad_field(where, "must be a string or an array of input_text parts")


def _tool(i: int, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise bad_field(f"tools[{i}]", "must be a tool object")
    if tool.get("type") != "function":
        raise bad_field(
            f"tools[{i}].type",
            f"{json.dumps(tool.get('type'))} is not supported: this gateway serves function tools only",
        )
    if not isinstance(tool.get("name"), str):
        raise bad_field(f"tools[{i}].name", "is required")
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad_field("tool_choice", 'must be auto, none, required or {"type": "function", "name": ...}')


def _format(text: dict[str, Any]) -> dict[str, Any] | None:
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(fmt, dict)
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise bad_field("text.format", "json_schema needs a name and a schema")
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise bad_field("text.format", "type must be text, json_object or json_schema")


# -- replies ----------------------------------------------------------------------------------


def _usage(usage: TokenUsage | None) -> dict[str, Any]:
    usage = usage or TokenUsage()
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _text_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    arguments = call.arguments if status == "completed" else ""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
        "status": status,
    }


def _object(
    request: ResponsesRequest,
    response_id: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    model: str,
    usage: TokenUsage | None,
) -> dict[str, Any]:
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": model or request.model,
        "output": output,
        "previous_response_id": None,
        "store": False,
        "truncation": "disabled",
        **request.echo,
        "usage": _usage(usage) if status in ("completed", "incomplete") else None,
    }


def _status(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason == "length" else "completed"


def response(result: LLMResponse, request: ResponsesRequest, request_id: str) -> dict[str, Any]:
    """The ``response`` object for a finished reply."""
    output: list[dict[str, Any]] = []
    if result.content or not result.tool_calls:
        output.append(_text_item(f"msg_{request_id}", result.content))
    output += [_call_item(f"fc_{request_id}_{i}", c) for i, c in enumerate(result.tool_calls)]
    status = _status(result.finish_reason)
    return _object(
        request, f"resp_{request_id}", int(time.time()), status, output, result.model, result.token_usage
    )


class EventStream:
    """Renders a stream's chunks as the Responses API's event sequence, numbered in order."""

    media_type = "text/event-stream"

    def __init__(self, request: ResponsesRequest, request_id: str) -> None:
        self.request = request
        self.rid = request_id
        self.id = f"resp_{request_id}"
        self.created = int(time.time())
        self.model = ""
        self.seq = 0
        self.started = False
        self.output: list[dict[str, Any]] = []  # finished items, in order
        self.text: list[str] | None = None  # the message item being streamed, if one is open
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\ndata: ".encode() + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    def _snapshot(self, status: str) -> dict[str, Any]:
        return _object(self.request, self.id, self.created, status, list(self.output), self.model, self.usage)

    def _start(self) -> bytes:
        self.started = True
        snapshot = self._snapshot("in_progress")
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _open_text(self) -> bytes:
        self.text = []
        item_id, index = f"msg_{self.rid}", len(self.output)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return self._event(
            "response.output_item.added", output_index=index, item=_text_item(item_id, "", "in_progress")
        ) + self._event(
            "response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=part
        )

    def _close_text(self) -> bytes:
        if self.text is None:
            return b""
        text, self.text = "".join(self.text), None
        item_id, index = f"msg_{self.rid}", len(self.output)
        item = _text_item(item_id, text)
        self.output.append(item)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        return (
            self._event("response.output_text.done", **where, text=text, logprobs=[])
            + self._event("response.content_part.done", **where, part=item["content"][0])
            + self._event("response.output_item.done", output_index=index, item=item)
        )

    def chunk(self, chunk: StreamChunk) -> bytes:
        self.model = chunk.model or self.model
        out = [] if self.started else [self._start()]
        if chunk.delta:
            if self.text is None:
                out.append(self._open_text())
            assert self.text is not None
            self.text.append(chunk.delta)
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=f"msg_{self.rid}",
                    output_index=len(self.output),
                    content_index=0,
                    delta=chunk.delta,
                    logprobs=[],
                )
            )
        if chunk.tool_calls or chunk.finish_reason:
            out.append(self._close_text())
        for call in chunk.tool_calls:
            index = len(self.output)
            item_id = f"fc_{self.rid}_{index}"
            out.append(
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item=_call_item(item_id, call, "in_progress"),
                )
            )
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=call.arguments,
                )
            )
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            item = _call_item(item_id, call)
            self.output.append(item)
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        return b"".join(out)

    def end(self) -> bytes:
        out = [] if self.started else [self._start()]
        if not self.output and self.text is None:  # an empty answer is still one message
            out.append(self._open_text())
        out.append(self._close_text())
        status = _status(self.finish_reason)
        out.append(self._event(f"response.{status}", response=self._snapshot(status)))
        return b"".join(out)

    def error(self, error: APIError) -> bytes:
        body = error_body(error)["error"]
        failed = self._snapshot("failed")
        failed["error"] = {"code": body["code"] or body["type"], "message": error.message}
        return self._event(
            "error", code=body["code"], message=error.message, param=body["param"]
        ) + self._event("response.failed", response=failed)
