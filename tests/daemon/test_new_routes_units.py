"""The pure parts of the new routes: Responses API parsing, its stream renderer, embeddings,
the fallback headers; and any JSON body gets a typed 400 or a request, never a crash."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.daemon import embeddings_api, responses_api
from actors.daemon.errors import APIError
from actors.daemon.trail import trail
from actors.outcome import Outcome
from actors.response import Attempt, EmbeddingResponse, StreamChunk, TokenUsage, ToolCall

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "metadata",
        "max_output_tokens",
        "temperature",
        "stream",
        "encoding_format",
        "dimensions",
        "user",
        "truncation",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(_keys, _json, max_size=6), st.sampled_from([responses_api.parse, embeddings_api.parse])
)
def test_any_body_is_a_request_or_a_400(body, parse):
    try:
        parse(body)
    except APIError as err:
        assert err.status == 400 and err.message


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["type", "role", "content", "call_id", "name", "arguments", "output"]),
            _json,
            max_size=5,
        ),
        max_size=4,
    )
)
def test_any_input_items_are_messages_or_a_400(items):
    try:
        request = responses_api.parse({"model": "m", "input": items})
    except APIError as err:
        assert err.status == 400 and err.param == "input"
    else:
        assert request.messages


def test_items_become_canonical_messages():
    request = responses_api.parse(
        {
            "model": "m",
            "instructions": "sys",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "q"},
                        {"type": "input_image", "image_url": "data:x"},
                    ],
                },
                {"type": "reasoning", "id": "r1", "summary": []},
                {"role": "assistant", "content": [{"type": "output_text", "text": "let me check"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "two"}],
                },
            ],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_object"}},
            "reasoning": {"effort": "low"},
            "max_output_tokens": 9,
        }
    )
    roles = [m["role"] for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    assert request.messages[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:x"}}
    assistant = request.messages[2]
    assert assistant["content"] == "let me check" and [c["id"] for c in assistant["tool_calls"]] == [
        "c1",
        "c2",
    ]
    assert request.messages[4]["content"] == "two"
    assert request.params == {
        "max_tokens": 9,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
    }


def _events(data: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in data.decode().splitlines() if line.startswith("data: ")]


def test_the_stream_renderer_numbers_events_and_closes_items_in_order():
    request = responses_api.parse({"model": "m", "input": "x"})
    stream = responses_api.EventStream(request, "abc")
    out = stream.chunk(StreamChunk(delta="hi", model="up"))
    out += stream.chunk(StreamChunk(delta=" there"))
    out += stream.chunk(
        StreamChunk(
            tool_calls=[ToolCall("c1", "f", '{"a":1}')], finish_reason="tool_calls", usage=TokenUsage(3, 4)
        )
    )
    out += stream.end()
    events = _events(out)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "hi there" and final["model"] == "up"
    assert final["usage"]["input_tokens"] == 3 and final["usage"]["total_tokens"] == 7


def test_a_length_cut_is_incomplete():
    request = responses_api.parse({"model": "m", "input": "x"})
    stream = responses_api.EventStream(request, "abc")
    events = _events(stream.chunk(StreamChunk(delta="a", finish_reason="length")) + stream.end())
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_embeddings_render_floats_or_base64():
    result = EmbeddingResponse([[0.5, -0.25]], model="e", token_usage=TokenUsage(prompt_tokens=2))
    plain = embeddings_api.render(result, embeddings_api.parse({"model": "m", "input": "x"}))
    assert plain["data"][0]["embedding"] == [0.5, -0.25] and plain["usage"] == {
        "prompt_tokens": 2,
        "total_tokens": 2,
    }
    encoded = embeddings_api.render(
        result, embeddings_api.parse({"model": "m", "input": "x", "encoding_format": "base64"})
    )
    assert struct.unpack("<2f", base64.b64decode(encoded["data"][0]["embedding"])) == (0.5, -0.25)


@pytest.mark.parametrize(
    "outcomes, targets, fallback, failed",
    [
        ([Outcome.SUCCESS], ["g.echelon1"], "false", ""),
        ([Outcome.UNHEALTHY, Outcome.SUCCESS], ["g.echelon1", "g.echelon1"], "false", "i0"),
        (
            [Outcome.RATE_LIMITED, Outcome.UNHEALTHY, Outcome.SUCCESS],
            ["g.echelon1", "g.echelon1", "g.echelon2"],
            "true",
            "i0,i1",
        ),
    ],
)
def test_trail_headers(outcomes, targets, fallback, failed):
    attempts = [
        Attempt(f"i{n}", o, 0.01, None, t) for n, (o, t) in enumerate(zip(outcomes, targets, strict=True))
    ]
    headers = trail(attempts, first_target="g.echelon1", overhead=0.0012)
    assert headers["x-llm-actors-fallback"] == fallback and headers["x-llm-actors-failed"] == failed
    assert headers["x-llm-actors-attempts"] == str(len(attempts))
    assert headers["x-llm-actors-overhead-ms"] == "1.200"
