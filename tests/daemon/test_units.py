"""The daemon's pure parts, without a server: status mapping, key checks, wire translations."""

from __future__ import annotations

import importlib.util

import pytest

from actors.daemon import MissingDependencies, anthropic_api, openai_api, require
from actors.daemon.auth import KeyCheck
from actors.daemon.errors import APIError, from_llm_error
from actors.errors import (
    AllAttemptsFailedError,
    BadRequestError,
    ContextWindowExceededError,
    LLMTimeoutError,
    NoCapacityError,
    RateLimitError,
    ServiceUnavailableError,
)
from actors.outcome import Outcome
from actors.response import Attempt, LLMResponse, StreamChunk, TokenUsage, ToolCall


def test_require_names_the_missing_packages_and_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(MissingDependencies) as info:
        require()
    assert "uvicorn" in str(info.value) and "pip install 'llm-actors[daemon]'" in str(info.value)


def _attempts(*outcomes: Outcome) -> list[Attempt]:
    return [Attempt(f"i{n}", o, 0.01, "x", "g.echelon1") for n, o in enumerate(outcomes)]


@pytest.mark.parametrize(
    "error, status, retry_after",
    [
        (BadRequestError("bad", status_code=400), 400, None),
        (ContextWindowExceededError("too long", status_code=400), 400, None),
        (LLMTimeoutError("deadline"), 504, None),
        (NoCapacityError("parked", retry_after=2.2, rate_limited=True), 429, "3"),
        (NoCapacityError("breakers open", retry_after=2.2), 503, "3"),
        (NoCapacityError("all disabled"), 503, None),
        (
            AllAttemptsFailedError(
                "429s",
                _attempts(Outcome.RATE_LIMITED, Outcome.RATE_LIMITED),
                last_error=RateLimitError("slow down", retry_after=4),
            ),
            429,
            "4",
        ),
        (AllAttemptsFailedError("mixed", _attempts(Outcome.RATE_LIMITED, Outcome.UNHEALTHY)), 503, None),
        (AllAttemptsFailedError("5xx", _attempts(Outcome.UNHEALTHY)), 503, None),
        (ServiceUnavailableError("down"), 503, None),
        (RuntimeError("bug"), 500, None),
    ],
)
def test_errors_map_to_statuses(error, status, retry_after):
    answer = from_llm_error(error)
    assert answer.status == status
    assert answer.headers.get("retry-after") == retry_after


def test_the_key_check_takes_bearer_or_x_api_key_and_nothing_else():
    check = KeyCheck("s3cret")
    assert check.allows([(b"authorization", b"Bearer s3cret")])
    assert check.allows([(b"authorization", b"bearer s3cret")])
    assert check.allows([(b"x-api-key", b"s3cret")])
    assert not check.allows([(b"authorization", b"Bearer s3cre")])
    assert not check.allows([(b"authorization", b"Basic s3cret")])
    assert not check.allows([(b"x-other", b"s3cret")])
    assert not check.allows([])
    assert KeyCheck(None).allows([]) and "s3cret" not in repr(check)


def test_openai_parse_passes_parameters_through_and_maps_developer_to_system():
    chat = openai_api.parse(
        {
            "model": "m",
            "messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.1,
            "seed": 7,
            "response_format": {"type": "json_object"},
        }
    )
    assert chat.messages[0] == {"role": "system", "content": "rules"}
    assert chat.params == {"temperature": 0.1, "seed": 7, "response_format": {"type": "json_object"}}
    assert chat.stream and chat.include_usage


def test_anthropic_request_maps_to_canonical_messages():
    chat = anthropic_api.parse(
        {
            "model": "m",
            "max_tokens": 10,
            "system": [{"type": "text", "text": "be kind"}],
            "stop_sequences": ["X"],
            "metadata": {"user_id": "u1"},
            "top_k": 5,
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "tools": [{"name": "t", "input_schema": {"type": "object"}}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "tu1", "name": "t", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "tu1",
                            "is_error": True,
                            "content": [{"type": "text", "text": "boom"}],
                        }
                    ],
                },
            ],
        }
    )
    assert chat.messages == [
        {"role": "system", "content": "be kind"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "tu1", "type": "function", "function": {"name": "t", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "tu1", "content": "Error: boom"},
    ]
    assert chat.params == {
        "max_tokens": 10,
        "stop": ["X"],
        "user": "u1",
        "top_k": 5,  # passed on: only an instance that honours it is chosen (actors.features)
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}],
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": "m", "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "maybe"}},
            "tool_choice",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
    ],
)
def test_anthropic_bad_fields_are_named(body, field):
    with pytest.raises(APIError) as info:
        anthropic_api.parse(body)
    assert info.value.status == 400 and info.value.message.startswith(field + ":")


def test_anthropic_message_and_stream_rendering_of_tool_calls():
    request = anthropic_api.parse({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    call = ToolCall("c1", "t", '{"a": 1}')
    response = LLMResponse(
        "", model="up", tool_calls=[call], finish_reason="tool_calls", token_usage=TokenUsage(3, 4)
    )
    message = anthropic_api.message(response, request, "r1")
    assert message["content"] == [{"type": "tool_use", "id": "c1", "name": "t", "input": {"a": 1}}]
    assert message["stop_reason"] == "tool_use" and message["usage"] == {
        "input_tokens": 3,
        "output_tokens": 4,
    }
    stream = anthropic_api.EventStream(request, "r1")
    data = (
        stream.chunk(StreamChunk(delta="hi", model="up"))
        + stream.chunk(StreamChunk(tool_calls=[call], finish_reason="tool_calls", usage=TokenUsage(3, 4)))
        + stream.end()
    ).decode()
    kinds = [line.split(": ", 1)[1] for line in data.splitlines() if line.startswith("event: ")]
    assert kinds == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
