"""Replies of ``POST /v1/responses``: the ``response`` object and the SDKs' stream event sequence.

A finished reply is one ``response`` object (a message item with ``output_text``, then one
``function_call`` item per tool call). A stream is ``response.created``, ``response.in_progress``,
each output item (``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` ..., the ``.done`` events; for tool calls
``response.function_call_arguments.delta`` / ``.done``), then ``response.completed`` (or
``response.incomplete`` when the length limit cut it short); every event carries its
``sequence_number``. A failure after the first event ends with ``error`` and ``response.failed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from actors import jsonio
from actors.daemon.chat import ChatRequest
from actors.daemon.errors import APIError
from actors.daemon.openai_api import error_body
from actors.response import LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = ["EventStream", "ResponsesRequest", "response"]


@dataclass(slots=True)
class ResponsesRequest(ChatRequest):
    """A chat request, plus what the response object echoes back."""

    echo: dict[str, Any] = field(default_factory=dict)


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
        return f"event: {kind}\ndata: ".encode() + jsonio.dumps(data) + b"\n\n"

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
