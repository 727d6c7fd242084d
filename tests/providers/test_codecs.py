"""The pure codec functions: requests built, replies parsed, stream events decoded. No server."""

from __future__ import annotations

import json

import pytest

from actors.errors import LLMTimeoutError, RateLimitError, ServiceUnavailableError, StreamInterruptedError
from actors.providers.anthropic import (
    AnthropicStreamDecoder,
    build_messages_body,
    normalize_stop_reason,
    parse_message,
    to_anthropic_messages,
    to_anthropic_tool_choice,
    to_anthropic_tools,
)
from actors.providers.base import ToolCallAssembler, merge_params, text_of
from actors.providers.errors import ErrorContext
from actors.providers.openai import (
    OpenAIStreamDecoder,
    build_chat_body,
    normalize_finish_reason,
    parse_chat_completion,
)
from actors.providers.sse import SSEDecoder, SSEEvent, aiter_sse, iter_sse
from actors.response import ToolCall

CTX = ErrorContext(instance="i", provider="p", model_name="m", base_url="http://x", key_hint="KEY_VAR")
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}


# -- parameters ------------------------------------------------------------------------------


def test_merge_params_call_wins_and_none_means_not_given():
    merged = merge_params(
        {"temperature": 0.2, "top_p": 0.9, "seed": None}, {"temperature": 0.7, "top_p": None, "n": 1}
    )
    assert merged == {"temperature": 0.7, "top_p": 0.9, "n": 1}


def test_text_of():
    assert text_of("a") == "a"
    assert text_of(None) == ""
    assert text_of([{"type": "text", "text": "a"}, {"type": "image_url"}, "b"]) == "ab"


# -- OpenAI ------------------------------------------------------------------------------------


def test_openai_body_passes_parameters_through_but_not_driver_keys():
    body = build_chat_body(
        "gpt", [{"role": "user", "content": "x"}], {"model": "evil", "stream": True, "x": 1}, stream=False
    )
    assert body == {"model": "gpt", "messages": [{"role": "user", "content": "x"}], "x": 1}


def test_openai_stream_body_asks_for_usage_keeping_other_options():
    body = build_chat_body("gpt", [], {"stream_options": {"other": 1}}, stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"other": 1, "include_usage": True}


def test_parse_chat_completion_with_tool_calls_and_no_content():
    data = {
        "id": "r1",
        "model": "gpt-4o-2024",
        "choices": [{"message": {"content": None, "tool_calls": [CALL]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    reply = parse_chat_completion(data, instance="i", model="gpt")
    assert reply.content == ""
    assert reply.model == "gpt-4o-2024"
    assert reply.tool_calls == [ToolCall("c1", "f", '{"a": 1}')]
    assert reply.finish_reason == "tool_calls"
    assert (reply.token_usage.prompt_tokens, reply.token_usage.total_tokens) == (3, 5)
    assert reply.metadata == {"provider_response_id": "r1"}


def test_parse_chat_completion_legacy_function_call_and_missing_usage():
    data = {
        "choices": [
            {
                "message": {"content": "", "function_call": {"name": "f", "arguments": "{}"}},
                "finish_reason": "function_call",
            }
        ]
    }
    reply = parse_chat_completion(data, instance="i", model="gpt")
    assert reply.model == "gpt"
    assert reply.tool_calls == [ToolCall("", "f", "{}")]
    assert reply.finish_reason == "tool_calls"
    assert reply.token_usage.total_tokens == 0


@pytest.mark.parametrize("data", [{}, {"choices": []}, {"choices": [{}]}, [], "x"])
def test_parse_chat_completion_wrong_shapes_raise_lookup_or_type_errors(data):
    with pytest.raises((LookupError, TypeError, AttributeError)):
        parse_chat_completion(data, instance="i", model="gpt")


@pytest.mark.parametrize(
    "reason, expected",
    [("stop", "stop"), ("length", "length"), ("function_call", "tool_calls"), (None, None)],
)
def test_openai_finish_reasons(reason, expected):
    assert normalize_finish_reason(reason) == expected


def _openai_events(*objs: object) -> list[SSEEvent]:
    return [SSEEvent("message", o if isinstance(o, str) else json.dumps(o)) for o in objs]


def _decode(decoder, events):
    out = []
    for event in events:
        out.extend(decoder.feed(event))
    out.extend(decoder.end())
    return out


def test_openai_stream_assembles_tool_calls_by_index():
    events = _openai_events(
        {
            "model": "gpt-x",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}},
                            {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}},
                        ],
                    },
                }
            ],
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}}
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "function": {"arguments": ": 1}"}},
                            {"index": 1, "function": {"arguments": "}"}},
                        ]
                    },
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}},
        "[DONE]",
    )
    chunks = _decode(OpenAIStreamDecoder(CTX, "i", "gpt"), events)
    assert len(chunks) == 1
    final = chunks[0]
    assert final.tool_calls == [ToolCall("a", "f", '{"x": 1}'), ToolCall("b", "g", "{}")]
    assert final.finish_reason == "tool_calls"
    assert final.usage.total_tokens == 10
    assert final.model == "gpt-x"


def test_openai_stream_without_done_but_finished_is_accepted():
    events = _openai_events({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})
    chunks = _decode(OpenAIStreamDecoder(CTX, "i", "gpt"), events)
    assert [c.delta for c in chunks] == ["hi", ""]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is None


def test_openai_stream_cut_after_text_is_interrupted_with_the_partial_text():
    decoder = OpenAIStreamDecoder(CTX, "i", "gpt")
    for event in _openai_events(
        {"choices": [{"index": 0, "delta": {"content": "par"}}]},
        {"choices": [{"index": 0, "delta": {"content": "tial"}}]},
    ):
        decoder.feed(event)
    with pytest.raises(StreamInterruptedError) as info:
        decoder.end()
    assert info.value.partial_text == "partial"
    timeout = LLMTimeoutError("late", instance="i")
    assert decoder.failed(timeout).partial_text == "partial"


def test_openai_stream_error_object_before_text_is_classified():
    decoder = OpenAIStreamDecoder(CTX, "i", "gpt")
    event = _openai_events({"error": {"message": "slow down", "code": "rate_limit_exceeded"}})[0]
    with pytest.raises(RateLimitError) as info:
        decoder.feed(event)
    assert info.value.status_code == 429


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '{"choices": [{"delta": 5}]}'])
def test_openai_stream_garbage_is_malformed(data):
    with pytest.raises(ServiceUnavailableError) as info:
        OpenAIStreamDecoder(CTX, "i", "gpt").feed(SSEEvent("message", data))
    assert info.value.error_code == "malformed_response"


# -- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_messages_system_tools_and_merged_turns():
    messages = [
        {"role": "system", "content": "one"},
        {"role": "user", "content": "q1"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "q2"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "system", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "let me look", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "43"}]},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": ""},
    ]
    system, turns = to_anthropic_messages(messages)
    assert system == "one\n\ntwo"
    assert turns == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "q1"},
                {"type": "text", "text": "q2"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "let me look"},
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "42"},
                {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "43"}]},
                {"type": "text", "text": "and?"},
            ],
        },
        {"role": "assistant", "content": ""},
    ]


def test_anthropic_tool_arguments_that_are_not_json_are_kept():
    call = {"id": "c", "function": {"name": "f", "arguments": "not json"}}
    _, turns = to_anthropic_messages([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert turns[0]["content"][0]["input"] == {"input": "not json"}


def test_anthropic_tools_convert_openai_shape_and_pass_native_ones():
    native = {"name": "n", "input_schema": {"type": "object"}}
    tools = [{"type": "function", "function": {"name": "f"}}, native]
    assert to_anthropic_tools(tools) == [
        {"name": "f", "input_schema": {"type": "object", "properties": {}}},
        native,
    ]


@pytest.mark.parametrize(
    "choice, parallel, expected",
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        ({"type": "tool", "name": "f"}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_anthropic_tool_choice(choice, parallel, expected):
    assert to_anthropic_tool_choice(choice, parallel) == expected


def test_anthropic_body_maps_keeps_and_drops_parameters():
    params = {
        "max_tokens": 50,
        "temperature": 1.5,
        "top_k": 5,
        "stop": ["A", "B"],
        "user": "u1",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "required",
        "frequency_penalty": 1,
        "presence_penalty": 1,
        "seed": 3,
        "stream": False,
    }
    body = build_messages_body("claude", [{"role": "user", "content": "x"}], params, stream=True)
    assert body == {
        "model": "claude",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 1.0,  # Anthropic's range ends at 1
        "top_k": 5,
        "stop_sequences": ["A", "B"],
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"},
        "stream": True,
    }


def test_anthropic_body_defaults_max_tokens_and_ignores_tool_choice_without_tools():
    body = build_messages_body(
        "claude", [{"role": "user", "content": "x"}], {"tool_choice": "auto"}, stream=False
    )
    assert body == {"model": "claude", "max_tokens": 1024, "messages": [{"role": "user", "content": "x"}]}


def test_parse_message():
    data = {
        "id": "msg_1",
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"q": 1}},
            {"type": "text", "text": "b"},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 10},
    }
    reply = parse_message(data, instance="i", model="claude")
    assert reply.content == "ab"
    assert reply.tool_calls == [ToolCall("t", "f", '{"q": 1}')]
    assert reply.finish_reason == "tool_calls"
    assert (reply.token_usage.prompt_tokens, reply.token_usage.completion_tokens) == (13, 4)
    assert reply.metadata == {"provider_response_id": "msg_1"}


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_anthropic_stop_reasons(reason, expected):
    assert normalize_stop_reason(reason) == expected


def _anthropic_events(*pairs: tuple[str, dict]) -> list[SSEEvent]:
    return [SSEEvent(name, json.dumps({"type": name, **data})) for name, data in pairs]


def test_anthropic_stream_text_and_tool_use():
    events = _anthropic_events(
        (
            "message_start",
            {"message": {"model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}}},
        ),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"index": 0}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
        ),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q":'}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": " 2}"}}),
        ("ping", {}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {}),
    )
    chunks = _decode(AnthropicStreamDecoder(CTX, "i", "claude"), events)
    assert [c.delta for c in chunks] == ["Hi", ""]
    final = chunks[-1]
    assert final.tool_calls == [ToolCall("t1", "f", '{"q": 2}')]
    assert final.finish_reason == "tool_calls"
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (7, 9)
    assert final.model == "claude-x"


def test_anthropic_error_event_before_and_after_text():
    error = ("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    decoder = AnthropicStreamDecoder(CTX, "i", "claude")
    with pytest.raises(ServiceUnavailableError) as info:
        decoder.feed(_anthropic_events(error)[0])
    assert type(info.value) is ServiceUnavailableError and info.value.status_code == 529
    decoder = AnthropicStreamDecoder(CTX, "i", "claude")
    decoder.feed(
        _anthropic_events(
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "so far"}})
        )[0]
    )
    with pytest.raises(StreamInterruptedError) as info:
        decoder.feed(_anthropic_events(error)[0])
    assert info.value.partial_text == "so far"
    assert "Overloaded" in str(info.value)


def test_tool_call_assembler_orders_by_index():
    tools = ToolCallAssembler()
    tools.add(1, id="b", name="g")
    tools.add(0, id="a", name="f", arguments='{"x": ')
    tools.add(0, arguments="1}")
    assert tools.result() == [ToolCall("a", "f", '{"x": 1}'), ToolCall("b", "g", "{}")]


# -- SSE -----------------------------------------------------------------------------------------


def test_sse_decoder_fields_comments_and_multiline_data():
    lines = [": keep-alive", "event: delta", 'data: {"a":', "data:1}", "id: 7", "", "data: [DONE]", ""]
    events = list(iter_sse(lines))
    assert [(e.event, e.data) for e in events] == [("delta", '{"a":\n1}'), ("message", "[DONE]")]


def test_sse_decoder_flushes_a_last_event_without_a_blank_line():
    assert [e.data for e in iter_sse(["data: x"])] == ["x"]
    decoder = SSEDecoder()
    assert decoder.feed("event: ping") is None
    assert decoder.feed("") is None  # an event with no data is not dispatched
    assert decoder.feed("data: y") is None
    assert decoder.feed("").event == "message"  # the name does not leak into the next event


async def test_aiter_sse_over_an_async_line_iterator():
    async def lines():
        for line in ["event: a", "data: 1", "", "data: 2"]:
            yield line

    assert [(e.event, e.data) async for e in aiter_sse(lines())] == [("a", "1"), ("message", "2")]


def test_a_stream_answered_with_a_whole_json_body_still_yields_chunks():
    import httpx

    from actors.config.models import ModelConfig
    from actors.providers import HTTPClients, OpenAIProvider
    from actors.providers.upstream import Answer

    provider = OpenAIProvider(ModelConfig(name="i", model_type="openai", model_name="gpt"), HTTPClients())
    body = {
        "choices": [{"message": {"content": "whole"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1},
    }
    chunks = provider._whole(Answer.of(httpx.Response(200, json=body)))
    assert [c.delta for c in chunks] == ["whole", ""]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.prompt_tokens == 1
    with pytest.raises(RateLimitError):
        provider._whole(Answer.of(httpx.Response(429, json={"error": {"message": "slow"}})))
