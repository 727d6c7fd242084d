"""Wire shapes of the fake provider: the reply to a request, rendered as OpenAI or Anthropic JSON.

``Reply`` decides *what* to answer from a request body (provider-neutral); ``OpenAIShape`` and
``AnthropicShape`` render it, its stream events and error bodies the way each provider does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GARBAGE_BODY",
    "GARBAGE_EVENT",
    "SHAPES",
    "AnthropicShape",
    "OpenAIShape",
    "Reply",
    "Shape",
    "logprobs_of",
]

GARBAGE_BODY = b"<html><body>upstream said: this is not JSON {"
GARBAGE_EVENT = b"data: {this is not json\n\n"

_PIECE = re.compile(r"\s*\S+|\s+$")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _text(content: Any) -> str:
    """The text of a message content: a string, or a list of text / tool_result blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif "content" in block:
                    parts.append(_text(block["content"]))
        return " ".join(p for p in parts if p)
    return ""


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function")
    if isinstance(function, dict):
        return function.get("name")
    return tool.get("name")


def _chosen_tool(body: dict[str, Any]) -> str | None:
    """The tool to call: the one ``tool_choice`` names, else the first; None for no tool call."""
    tools = body.get("tools")
    if not tools or not isinstance(tools, list):
        return None
    choice = body.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if isinstance(choice, dict):
        named = _tool_name(
            choice
        )  # OpenAI {"type":"function","function":{...}} or Anthropic {"type":"tool","name":..}
        if named:
            return named
    return _tool_name(tools[0])


def _answers_a_tool(messages: list[Any]) -> bool:
    """Whether a tool result came after the last user message of plain text.

    An agent loop ends once the model has its tool's result, so the fake answers in text then,
    rather than calling a tool on every turn.
    """
    answered = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role == "tool":
            answered = True
        elif role == "user":
            blocks = content if isinstance(content, list) else ()
            results = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
            answered = results
    return answered


def _example(schema: Any, text: str) -> Any:
    """A value that fits a JSON schema: ``text`` for strings, zero, false, empty arrays."""
    if not isinstance(schema, dict):
        return text
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return {name: _example(sub, text) for name, sub in (schema.get("properties") or {}).items()}
    defaults: dict[Any, Any] = {"integer": 0, "number": 0, "boolean": False, "array": [], "null": None}
    return defaults.get(kind, text)


def _json_answer(response_format: Any, text: str) -> str | None:
    """The answer to a ``response_format`` asking for JSON (OpenAI's shape), or None."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return json.dumps({"echo": text}, ensure_ascii=False)
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return json.dumps(_example(schema, text), ensure_ascii=False)
    return None


def _pieces(text: str, size: int = 0) -> list[str]:
    """Split text for streaming: one word (with its leading space) each, or ``size`` characters."""
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return _PIECE.findall(text)


@dataclass(slots=True)
class Reply:
    """What the fake answers to one request, before any provider's shape is applied."""

    seq: int
    model: str
    text: str
    tool: str | None  # name of the tool called; ``arguments`` is then its JSON input
    arguments: str
    prompt_tokens: int
    completion_tokens: int
    include_usage: bool = False
    logprobs: bool = False
    thinking: bool = False  # Anthropic's extended thinking was asked for: a thinking block comes first

    @classmethod
    def build(cls, body: dict[str, Any], seq: int, reply: str | None = None) -> Reply:
        messages = body.get("messages") or []
        words = len(_text(body.get("system")).split())  # Anthropic's system prompt is a message too
        last_user = ""
        for message in messages:
            if isinstance(message, dict):
                text = _text(message.get("content"))
                words += len(text.split())
                if message.get("role") == "user":
                    last_user = text
        tool = None if _answers_a_tool(messages) else _chosen_tool(body)
        if tool is not None:
            text = ""
            arguments = json.dumps({"input": last_user}, ensure_ascii=False)
            completion = len(arguments.split())
        else:
            as_json = _json_answer(body.get("response_format"), last_user)
            if as_json is not None:
                text = as_json
            else:
                text = reply if reply is not None else "echo: " + last_user
            arguments = ""
            completion = len(text.split())
        options = body.get("stream_options")
        return cls(
            seq=seq,
            model=str(body.get("model") or ""),
            text=text,
            tool=tool,
            arguments=arguments,
            prompt_tokens=max(words, 1),
            completion_tokens=completion,
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
            logprobs=bool(body.get("logprobs")),
            thinking=isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled",
        )


def logprobs_of(pieces: list[str]) -> dict[str, Any]:
    """OpenAI's logprobs object for these tokens (a made-up, fixed probability each)."""
    tokens = [{"token": p, "logprob": -0.25, "bytes": list(p.encode()), "top_logprobs": []} for p in pieces]
    return {"content": tokens, "refusal": None}


class Shape:
    """How one provider's API looks on the wire."""

    api: str
    request_id_header: str

    def validate(self, body: Any) -> str | None:
        """Why the request body is invalid, or None."""
        raise NotImplementedError

    def completion(self, reply: Reply) -> bytes:
        raise NotImplementedError

    def stream(self, reply: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """SSE events split as (opening, content pieces, closing), so a fault can cut the middle."""
        raise NotImplementedError

    def stream_error(self) -> bytes | None:
        """The event a failing stream ends with; None means the connection is cut instead."""
        raise NotImplementedError

    def error(
        self,
        status: int,
        code: str | None = None,
        *,
        model: str = "",
        prompt_tokens: int = 1,
        message: str | None = None,
    ) -> bytes:
        """The provider's error body for ``status``; ``code`` picks a specific error, ``message`` sets the text."""
        raise NotImplementedError

    def models(self) -> bytes:
        raise NotImplementedError


class OpenAIShape(Shape):
    """OpenAI chat completions: ``/v1/chat/completions`` and ``/v1/models``."""

    api = "openai"
    request_id_header = "x-request-id"

    _ERRORS = {  # status -> (type, code, message)
        400: ("invalid_request_error", None, "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: (
            "invalid_request_error",
            "unsupported_country_region_territory",
            ("Country, region, or territory not supported."),
        ),
        404: (
            "invalid_request_error",
            "model_not_found",
            ("The model `{model}` does not exist or you do not have access to it."),
        ),
        413: ("invalid_request_error", None, "Request too large."),
        422: ("invalid_request_error", None, "Unprocessable request."),
        429: (
            "requests",
            "rate_limit_exceeded",
            (
                "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
                "Limit 3, Used 3, Requested 1. Please try again in 20s."
            ),
        ),
        500: (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        502: ("server_error", None, "Bad gateway."),
        503: ("server_error", None, "The server is overloaded or not ready yet."),
    }

    def validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        if not body.get("model"):
            return "you must provide a model parameter"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "'messages' is a required property and must be a non-empty array"
        return None

    def _base(self, reply: Reply, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake{reply.seq}",
            "object": kind,
            "created": int(time.time()),
            "model": reply.model,
        }

    def _tool_call(self, reply: Reply) -> dict[str, Any]:
        function = {"name": reply.tool, "arguments": reply.arguments}
        return {"id": f"call_fake{reply.seq}", "type": "function", "function": function}

    def _usage(self, reply: Reply) -> dict[str, int]:
        total = reply.prompt_tokens + reply.completion_tokens
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": total,
        }

    def completion(self, reply: Reply) -> bytes:
        out = self._base(reply, "chat.completion")
        if reply.tool:
            message = {"role": "assistant", "content": None, "tool_calls": [self._tool_call(reply)]}
        else:
            message = {"role": "assistant", "content": reply.text}
        finish = "tool_calls" if reply.tool else "stop"
        logprobs = logprobs_of(_pieces(reply.text)) if reply.logprobs and not reply.tool else None
        out["choices"] = [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}]
        out["usage"] = self._usage(reply)
        return _dumps(out)

    def stream(self, reply: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
        base = self._base(reply, "chat.completion.chunk")
        if reply.include_usage:
            base["usage"] = None  # OpenAI sends a null usage on every chunk but the last

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            text = delta.get("content")
            logprobs = logprobs_of([text]) if reply.logprobs and text else None
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return b"data: " + _dumps({**base, "choices": [choice]}) + b"\n\n"

        if reply.tool:
            call = self._tool_call(reply)
            call["index"] = 0
            call["function"] = {"name": reply.tool, "arguments": ""}
            opening = [chunk({"role": "assistant", "content": None, "tool_calls": [call]})]
            content = [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in _pieces(reply.arguments, 8)
            ]
            closing = [chunk({}, "tool_calls")]
        else:
            opening = [chunk({"role": "assistant", "content": ""})]
            content = [chunk({"content": piece}) for piece in _pieces(reply.text)]
            closing = [chunk({}, "stop")]
        if reply.include_usage:
            closing.append(b"data: " + _dumps({**base, "choices": [], "usage": self._usage(reply)}) + b"\n\n")
        closing.append(b"data: [DONE]\n\n")
        return opening, content, closing

    def stream_error(self) -> bytes | None:
        return None  # OpenAI streams just stop: the connection drops mid-body

    def error(
        self,
        status: int,
        code: str | None = None,
        *,
        model: str = "",
        prompt_tokens: int = 1,
        message: str | None = None,
    ) -> bytes:
        kind, default_code, text = self._ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}.")
        )
        param = None
        if code == "insufficient_quota":
            kind = "insufficient_quota"
            text = "You exceeded your current quota, please check your plan and billing details."
        elif code == "context_length_exceeded":
            kind, param = "invalid_request_error", "messages"
            text = (
                f"This model's maximum context length is 8192 tokens. However, your messages resulted in "
                f"{8192 + prompt_tokens} tokens. Please reduce the length of the messages."
            )
        text = message if message is not None else text.format(model=model)
        error = {"message": text, "type": kind, "param": param, "code": code or default_code}
        return _dumps({"error": error})

    def models(self) -> bytes:
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "llm-actors"}
        return _dumps({"object": "list", "data": [model]})


class AnthropicShape(Shape):
    """Anthropic messages: ``/v1/messages`` and ``/v1/models``."""

    api = "anthropic"
    request_id_header = "request-id"

    _ERRORS = {  # status -> (type, message)
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "model: {model}"),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
        500: ("api_error", "Internal server error"),
        529: ("overloaded_error", "Overloaded"),
    }

    def validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "There was an error parsing the body of your request."
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return f"{field}: Field required"
        if not isinstance(body["messages"], list):
            return "messages: Input should be a valid list"
        return None

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens}

    def _block(self, reply: Reply) -> dict[str, Any]:
        if reply.tool:
            arguments = json.loads(reply.arguments)
            return {
                "type": "tool_use",
                "id": f"toolu_fake{reply.seq}",
                "name": reply.tool,
                "input": arguments,
            }
        return {"type": "text", "text": reply.text}

    def _message(
        self, reply: Reply, content: list[Any], stop: str | None, usage: dict[str, int]
    ) -> dict[str, Any]:
        return {
            "id": f"msg_fake{reply.seq}",
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    @staticmethod
    def _thought(reply: Reply) -> tuple[str, str]:
        """The fake's thinking and its signature (which a later turn must send back unchanged)."""
        return f"thinking about request {reply.seq}", f"sig-fake{reply.seq}"

    def completion(self, reply: Reply) -> bytes:
        stop = "tool_use" if reply.tool else "end_turn"
        content = [self._block(reply)]
        if reply.thinking:
            thought, signature = self._thought(reply)
            content.insert(0, {"type": "thinking", "thinking": thought, "signature": signature})
        return _dumps(self._message(reply, content, stop, self._usage(reply)))

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps({"type": name, **data}) + b"\n\n"

    def stream(self, reply: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
        ev = self._event
        start = self._message(reply, [], None, {"input_tokens": reply.prompt_tokens, "output_tokens": 1})
        opening = [ev("message_start", {"message": start})]
        at = 0  # the answer's block index: 1 after a thinking block
        if reply.thinking:
            at = 1
            thought, signature = self._thought(reply)
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            opening += [
                ev("content_block_start", {"index": 0, "content_block": empty}),
                ev(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "thinking_delta", "thinking": thought}},
                ),
                ev(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "signature_delta", "signature": signature}},
                ),
                ev("content_block_stop", {"index": 0}),
            ]
        block = self._block(reply)
        if reply.tool:
            block["input"] = {}
            content = [
                ev(
                    "content_block_delta",
                    {"index": at, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
                for piece in _pieces(reply.arguments, 8)
            ]
        else:
            block["text"] = ""
            content = [
                ev("content_block_delta", {"index": at, "delta": {"type": "text_delta", "text": piece}})
                for piece in _pieces(reply.text)
            ]
        opening += [ev("content_block_start", {"index": at, "content_block": block}), ev("ping", {})]
        stop = "tool_use" if reply.tool else "end_turn"
        closing = [
            ev("content_block_stop", {"index": at}),
            ev(
                "message_delta",
                {
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": reply.completion_tokens},
                },
            ),
            ev("message_stop", {}),
        ]
        return opening, content, closing

    def stream_error(self) -> bytes | None:
        return self._event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})

    def error(
        self,
        status: int,
        code: str | None = None,
        *,
        model: str = "",
        prompt_tokens: int = 1,
        message: str | None = None,
    ) -> bytes:
        kind, text = self._ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}.")
        )
        if code == "context_length_exceeded":
            kind = "invalid_request_error"
            text = f"prompt is too long: {200000 + prompt_tokens} tokens > 200000 maximum"
        elif code == "insufficient_quota":
            # Anthropic has no such type; the code is kept so adapters can tell, with the real message.
            kind = code
            text = (
                "Your credit balance is too low to access the Anthropic API. "
                "Please go to Plans & Billing to upgrade or purchase credits."
            )
        elif code:
            kind = code
        text = message if message is not None else text.format(model=model)
        return _dumps({"type": "error", "error": {"type": kind, "message": text}})

    def models(self) -> bytes:
        model = {
            "type": "model",
            "id": "fake-model",
            "display_name": "Fake model",
            "created_at": "2025-01-01T00:00:00Z",
        }
        return _dumps({"data": [model], "has_more": False, "first_id": "fake-model", "last_id": "fake-model"})


SHAPES: dict[str, Shape] = {"openai": OpenAIShape(), "anthropic": AnthropicShape()}
