"""No silent drops: each request feature reaches an instance in its provider's form, or is refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from actors.errors import BadRequestError
from actors.features import check_request, incapable, requested
from actors.providers.anthropic import (
    STRUCTURED_OUTPUT_TOOL,
    AnthropicStreamDecoder,
    build_messages_body,
    parse_message,
)
from actors.providers.errors import ErrorContext
from actors.providers.openai import build_chat_body
from actors.providers.sse import SSEEvent

from .helpers import TOOLS, USER, collect, complete

CTX = ErrorContext(
    instance="i", provider="anthropic", model_name="claude", base_url="http://x", key_hint="KEY"
)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA, "strict": True}}


def test_json_schema_becomes_a_forced_tool_on_anthropic():
    body = build_messages_body("claude", USER, {"response_format": JSON_SCHEMA}, stream=False)
    assert body["tools"] == [
        {
            "name": STRUCTURED_OUTPUT_TOOL,
            "description": "Give your final answer by calling this tool; its input is the answer.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL}


def test_json_object_asks_for_any_object():
    body = build_messages_body("claude", USER, {"response_format": "json_object"}, stream=False)
    assert body["tools"][0]["input_schema"] == {"type": "object"}


def test_structured_output_with_the_callers_tools_lets_the_model_choose_either():
    params = {"response_format": JSON_SCHEMA, "tools": TOOLS, "tool_choice": "auto"}
    body = build_messages_body("claude", USER, params, stream=False)
    assert [t["name"] for t in body["tools"]] == ["lookup", "other", STRUCTURED_OUTPUT_TOOL]
    assert body["tool_choice"] == {"type": "any"}
    params["tool_choice"] = "none"
    body = build_messages_body("claude", USER, params, stream=False)
    assert [t["name"] for t in body["tools"]] == [STRUCTURED_OUTPUT_TOOL]
    params["tool_choice"] = {"type": "function", "function": {"name": "lookup"}}  # the caller forces one
    body = build_messages_body("claude", USER, params, stream=False)
    assert body["tool_choice"] == {"type": "tool", "name": "lookup"}


def test_only_user_id_of_metadata_reaches_anthropic():
    body = build_messages_body("claude", USER, {"metadata": {"user_id": "u", "trace": "t"}}, stream=False)
    assert body["metadata"] == {"user_id": "u"}
    assert "metadata" not in build_messages_body("claude", USER, {"metadata": {"trace": "t"}}, stream=False)


def test_structured_output_with_thinking_is_asked_for_in_words():
    thinking = {"type": "enabled", "budget_tokens": 2000}
    params = {"response_format": JSON_SCHEMA, "thinking": thinking, "max_tokens": 4000}
    body = build_messages_body("claude", USER, params, stream=False)
    assert body["thinking"] == thinking and body["tool_choice"] == {"type": "auto"}
    assert STRUCTURED_OUTPUT_TOOL in body["system"]


def test_a_non_object_schema_is_the_callers_fault():
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}
    with pytest.raises(ValueError, match="root must be an object"):
        build_messages_body("claude", USER, {"response_format": bad}, stream=False)


def test_the_structured_tool_comes_back_as_the_text_answer():
    data = {
        "id": "m",
        "content": [
            {"type": "tool_use", "id": "t", "name": STRUCTURED_OUTPUT_TOOL, "input": {"city": "Oslo"}}
        ],
        "stop_reason": "tool_use",
    }
    reply = parse_message(data, instance="i", model="claude")
    assert json.loads(reply.content) == {"city": "Oslo"}
    assert reply.tool_calls == [] and reply.finish_reason == "stop"


def test_the_structured_tool_streams_as_text():
    def event(kind, obj):
        return SSEEvent(kind, json.dumps({"type": kind, **obj}))

    block = {"type": "tool_use", "id": "t", "name": STRUCTURED_OUTPUT_TOOL, "input": {}}
    events = [
        event("message_start", {"message": {"usage": {"input_tokens": 3}}}),
        event("content_block_start", {"index": 0, "content_block": block}),
        event(
            "content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}}
        ),
        event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": 'ty": 1}'}},
        ),
        event("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
        event("message_stop", {}),
    ]
    decoder = AnthropicStreamDecoder(CTX, "i", "claude")
    chunks = [c for e in events for c in decoder.feed(e)]
    assert "".join(c.delta for c in chunks) == '{"city": 1}'
    assert chunks[-1].tool_calls == [] and chunks[-1].finish_reason == "stop"


def test_thinking_blocks_come_back_in_metadata():
    thought = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    data = {"id": "m", "content": [thought, {"type": "text", "text": "42"}], "stop_reason": "end_turn"}
    reply = parse_message(data, instance="i", model="claude")
    assert reply.content == "42" and reply.metadata["thinking"] == [thought]


def test_cache_control_reaches_anthropic_and_is_removed_for_openai():
    mark = {"type": "ephemeral"}
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "long rules", "cache_control": mark}]},
        {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": mark}]},
    ]
    tools = [{**TOOLS[0], "cache_control": mark}]
    body = build_messages_body("claude", messages, {"tools": tools, "system": "first"}, stream=False)
    assert body["system"] == [
        {"type": "text", "text": "first"},
        {"type": "text", "text": "long rules", "cache_control": mark},
    ]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "q", "cache_control": mark}]
    assert body["tools"][0]["cache_control"] == mark

    body = build_chat_body("gpt", messages, {"tools": tools}, stream=False)
    assert body["messages"] == [
        {"role": "system", "content": "long rules"},
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
    ]
    assert body["tools"] == [TOOLS[0]]


def test_an_assistant_turns_thinking_blocks_reach_anthropic_only():
    thought = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    messages = [*USER, {"role": "assistant", "content": [thought, {"type": "text", "text": "hi"}]}]
    body = build_messages_body("claude", messages, {}, stream=False)
    assert body["messages"][1]["content"] == [thought, {"type": "text", "text": "hi"}]
    assert build_chat_body("gpt", messages, {}, stream=False)["messages"][1] == {
        "role": "assistant",
        "content": "hi",
    }


async def test_logprobs_come_back_from_an_openai_instance(make, mode):
    provider = make("openai")
    reply = await complete(provider, mode, USER, {"logprobs": True, "top_logprobs": 2})
    tokens = reply.metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == reply.content
    chunks, error = await collect(provider, mode, USER, {"logprobs": True})
    assert error is None
    assert (
        "".join(t["token"] for c in chunks if c.logprobs for t in c.logprobs["content"])
        == "echo: hello there"
    )


async def test_the_fake_answers_json_for_a_schema(make, mode):
    reply = await complete(make("openai"), mode, USER, {"response_format": JSON_SCHEMA})
    assert json.loads(reply.content) == {"city": "hello there", "days": 0}


def test_requested_features():
    assert requested({"temperature": 1, "tools": []}) == []
    assert requested({"thinking": {"type": "disabled"}, "top_k": None, "logprobs": False}) == []
    params = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 3, "logprobs": True}
    assert requested({**params, "top_logprobs": 0}) == ["thinking", "top_k", "logprobs", "top_logprobs"]
    assert requested({"reasoning_effort": "low"}) == ["reasoning_effort"]


def test_incapable_members_and_the_refusal_naming_the_feature():
    def member(name, kind):
        return SimpleNamespace(name=name, gate=SimpleNamespace(client=SimpleNamespace(kind=kind)))

    mixed = [member("gpt", "openai"), member("claude", "anthropic"), member("sim", "simulated")]
    assert incapable(mixed, ["thinking"], "w") == {"gpt"}
    assert incapable(mixed, ["logprobs"], "w") == {"claude"}
    with pytest.raises(BadRequestError, match=r"w: no instance on this route can honour logprobs") as info:
        incapable([member("claude", "anthropic")], ["logprobs"], "w")
    assert "logprobs needs openai or openai_compatible instances" in str(info.value)
    assert "claude (anthropic)" in str(info.value)


def test_n_above_one_is_refused_clearly():
    check_request({"n": 1})
    with pytest.raises(BadRequestError, match="n=3: one request answers with one choice"):
        check_request({"n": 3})


async def test_thinking_streams_as_thinking_pieces_before_the_text(make, mode):
    params = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000}
    chunks, error = await collect(make("anthropic"), mode, USER, params)
    assert error is None
    pieces = [c.thinking for c in chunks if c.thinking is not None]
    assert [p["type"] for p in pieces] == ["thinking_delta", "signature_delta"]
    first_text = next(i for i, c in enumerate(chunks) if c.delta)
    assert all(c.thinking is None for c in chunks[first_text:])
    assert "".join(c.delta for c in chunks) == "echo: hello there"
    reply = await complete(make("anthropic"), mode, USER, params)
    assert reply.metadata["thinking"][0]["signature"].startswith("sig-fake")
