"""Applying a fault: what the server sends for one request, as a plan the connection carries out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from actors.fake.embeddings import DEFAULT_DIMENSIONS, input_problem, token_count, vector
from actors.fake.faults import Fault
from actors.fake.shapes import GARBAGE_BODY, GARBAGE_EVENT, Reply, Shape

__all__ = ["Plan", "plan_chat", "plan_count_tokens", "plan_embeddings", "plan_models"]

_NORMAL = Fault()


@dataclass(slots=True)
class Plan:
    """A response to send: an optional wait, then nothing (hang/drop), a JSON body, or SSE events."""

    status: int | None = 200  # None: no response at all (hang or drop)
    headers: list[tuple[str, str]] = field(default_factory=list)  # beyond the framing ones
    body: bytes | None = None  # a complete body, sent with Content-Length
    events: list[bytes] = field(default_factory=list)  # stream pieces, sent chunked when body is None
    opening: int = 0  # how many of the events come before the first piece of content
    cut: bool = False  # close the connection after the events instead of ending the body
    latency: float = 0.0
    chunk_delay: float = 0.0
    hang: bool = False
    close_after: bool = False  # close the connection once the answer is out, without saying so
    close_on_reuse: bool = False  # reset the connection when its next request arrives
    reset: bool = False  # with no status: reset the connection rather than close it


def _plan(fault: Fault) -> Plan:
    """A plan with what every answer takes from the fault: headers, latency, connection ends."""
    return Plan(
        headers=fault.response_headers(),
        latency=fault.latency,
        close_after=fault.close_after,
        close_on_reuse=fault.close_on_reuse,
    )


def _replace(plan: Plan, fault: Fault, shape: Shape, body: Any, stream: bool) -> bool:
    """Fill ``plan`` with what the fault sends instead of an answer; False if it sends none."""
    if fault.hang:
        plan.status, plan.hang = None, True
    elif fault.drop or fault.reset:
        plan.status, plan.reset = None, fault.reset
    elif fault.status is not None:
        valid = isinstance(body, dict)
        model = str(body.get("model") or "") if valid else ""
        prompt = Reply.build(body, 0).prompt_tokens if valid else 1
        plan.status = fault.status
        plan.body = shape.error(fault.status, fault.error_code, model=model, prompt_tokens=prompt)
    elif fault.garbage:
        if stream:
            plan.events = [GARBAGE_EVENT]
        else:
            plan.body = GARBAGE_BODY
    else:
        return False
    return True


def plan_chat(shape: Shape, body: Any, fault: Fault | None, seq: int) -> Plan:
    """The plan for a chat request (``body`` is the parsed JSON, or None if it did not parse)."""
    fault = fault or _NORMAL
    stream = isinstance(body, dict) and body.get("stream") is True
    plan = _plan(fault)
    if _replace(plan, fault, shape, body, stream):
        return plan
    problem = shape.validate(body)
    if problem is not None:
        plan.status, plan.body = 400, shape.error(400, message=problem)
        return plan
    reply = Reply.build(body, seq, fault.reply)
    if not stream:
        plan.body = shape.completion(reply)
        return plan
    opening, content, closing = shape.stream(reply)
    plan.chunk_delay = fault.chunk_delay
    plan.opening = len(opening)
    if fault.fail_mid_stream is None:
        plan.events = opening + content + closing
    else:
        plan.events = opening + content[: fault.fail_mid_stream]
        failure = shape.stream_error()
        if failure is None:
            plan.cut = True
        else:
            plan.events.append(failure)
    return plan


def plan_models(shape: Shape, fault: Fault | None) -> Plan:
    """The plan for a model listing, the cheap call health probes make."""
    fault = fault or _NORMAL
    plan = _plan(fault)
    if not _replace(plan, fault, shape, None, False):
        plan.body = shape.models()
    return plan


def plan_embeddings(shape: Shape, body: Any, fault: Fault | None) -> Plan:
    """The plan for an embeddings request (OpenAI's ``/v1/embeddings``)."""
    fault = fault or _NORMAL
    plan = _plan(fault)
    if _replace(plan, fault, shape, body, False):
        return plan
    problem = "We could not parse the JSON body of your request." if not isinstance(body, dict) else None
    if problem is None:
        problem = (
            "you must provide a model parameter"
            if not body.get("model")
            else input_problem(body.get("input"))
        )
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS) if isinstance(body, dict) else 0
    if problem is None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        problem = "'dimensions' must be a positive integer"
    if problem is not None:
        plan.status, plan.body = 400, shape.error(400, message=problem)
        return plan
    assert isinstance(body, dict)
    items = body["input"]
    if isinstance(items, str) or (items and isinstance(items[0], int)):
        items = [items]
    data = [
        {"object": "embedding", "index": i, "embedding": vector(x, dimensions)} for i, x in enumerate(items)
    ]
    tokens = sum(token_count(x) for x in items)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    reply = {"object": "list", "data": data, "model": body["model"], "usage": usage}
    plan.body = json.dumps(reply, separators=(",", ":")).encode()
    return plan


def plan_count_tokens(shape: Shape, body: Any, fault: Fault | None) -> Plan:
    """The plan for Anthropic's ``/v1/messages/count_tokens``: the words of system and messages."""
    fault = fault or _NORMAL
    plan = _plan(fault)
    if _replace(plan, fault, shape, body, False):
        return plan
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
        plan.status, plan.body = 400, shape.error(400, message="model and messages are required")
        return plan
    count = Reply.build(body, 0).prompt_tokens
    plan.body = json.dumps({"input_tokens": count}).encode()
    return plan
