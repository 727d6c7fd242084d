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

Replies and the stream's events are built in ``actors.daemon.responses_replies``.
"""

from __future__ import annotations

import json
from typing import Any

from actors.daemon.chat import bad_field, check_int, check_number, check_type
from actors.daemon.errors import APIError
from actors.daemon.responses_replies import EventStream, ResponsesRequest, response
from actors.errors import BadRequestError
from actors.messages import normalize_messages

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
        texts: list[str] = [
            p["text"] for p in output if isinstance(p, dict) and isinstance(p.get("text"), str)
        ]
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
