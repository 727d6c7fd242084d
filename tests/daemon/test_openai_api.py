"""The OpenAI-shaped API through the official ``openai`` SDK: sync, async, streaming, tools, failover."""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")

MSG = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_sync_completion_through_a_declared_wrapper(fake, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "system", "content": "be brief"}, *MSG],
        max_tokens=40,
        temperature=0.3,
        stop=["\n\n"],
        extra_headers={"x-request-id": "req-abc.123"},
    )
    r = raw.parse()
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    assert raw.headers["x-llm-actors-instance"] in ("ok1", "ok2")
    assert raw.headers["x-llm-actors-attempts"] == "1"
    assert raw.headers["x-llm-actors-target"] == "basic.echelon1"
    assert raw.headers["x-request-id"] == "req-abc.123"  # the client's id is echoed
    sent = fake.requests(raw.headers["x-llm-actors-instance"])[-1]["body"]
    assert sent["max_tokens"] == 40 and sent["temperature"] == 0.3 and sent["stop"] == ["\n\n"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


def test_a_request_id_is_made_when_the_client_sends_none(openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(model="chat", messages=MSG)
    assert len(raw.headers["x-request-id"]) >= 16


@pytest.mark.parametrize("model", ["basic_pool", "basic.echelon1", "basic"])
def test_pools_and_group_references_are_models_too(openai_client, model):
    raw = openai_client.chat.completions.with_raw_response.create(model=model, messages=MSG)
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert raw.headers["x-llm-actors-target"] == (
        "pool:basic_pool" if model == "basic_pool" else "basic.echelon1"
    )


async def test_async_client_concurrent_requests(daemon):
    async with openai.AsyncOpenAI(
        base_url=daemon.url + "/v1", api_key="x", max_retries=0, timeout=15
    ) as client:
        import asyncio

        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="basic_pool", messages=[{"role": "user", "content": f"n{i}"}]
                )
                for i in range(20)
            )
        )
    assert sorted(r.choices[0].message.content for r in results) == sorted(f"echo: n{i}" for i in range(20))


def test_streaming_with_usage(openai_client):
    stream = openai_client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three four"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_streaming_without_usage_has_no_usage_chunk(openai_client):
    chunks = list(openai_client.chat.completions.create(model="chat", messages=MSG, stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_streaming_from_an_anthropic_upstream(fake, openai_client):
    with openai_client.chat.completions.with_streaming_response.create(
        model="claude_wrapper", messages=MSG, stream=True
    ) as raw:
        assert raw.headers["x-llm-actors-instance"] == "anth"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: hello there"
    assert fake.log[-1] == ("anth", "anthropic")


def test_tool_calls_come_back_in_openai_shape(fake, openai_client):
    r = openai_client.chat.completions.create(
        model="tools",
        messages=[{"role": "user", "content": "weather in Oslo"}],
        tools=[WEATHER],
        tool_choice="auto",
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert json.loads(call.function.arguments) == {"input": "weather in Oslo"}
    sent = fake.requests("tool1")[-1]["body"]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"


def test_tool_round_trip_to_an_anthropic_upstream(fake, openai_client):
    first = openai_client.chat.completions.create(model="claude.echelon1", messages=MSG, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    follow = [
        *MSG,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = openai_client.chat.completions.create(model="claude.echelon1", messages=follow)
    assert second.choices[0].message.content.startswith("echo:")
    turns = fake.requests("anth")[-1]["body"]["messages"]
    assert turns[1]["content"][0]["type"] == "tool_use" and turns[1]["content"][0]["id"] == call.id
    assert turns[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}


def test_streamed_tool_calls(openai_client):
    chunks = list(
        openai_client.chat.completions.create(model="tools", messages=MSG, tools=[WEATHER], stream=True)
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    assert (
        calls[0].function.name == "get_weather"
        and json.loads(calls[0].function.arguments)["input"] == "hello there"
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_failover_is_visible_in_the_headers(fake, openai_client):
    fake.configure("fo1", status=500)
    raw = openai_client.chat.completions.with_raw_response.create(model="fo", messages=MSG)
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert raw.headers["x-llm-actors-instance"] == "fo2"
    assert raw.headers["x-llm-actors-attempts"] == "2"
    assert raw.headers["x-llm-actors-target"] == "fo.echelon2"
    assert fake.stats("fo1")["requests"] >= 1


def test_streaming_failover_before_the_first_chunk(fake, openai_client):
    fake.configure("fo1", status=503)
    with openai_client.chat.completions.with_streaming_response.create(
        model="fo", messages=MSG, stream=True
    ) as raw:
        assert raw.headers["x-llm-actors-instance"] == "fo2"
        assert raw.headers["x-llm-actors-attempts"] == "2"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "echo: hello there"


def test_a_failure_mid_stream_ends_with_an_error_event(fake, openai_client):
    fake.configure("ok1", fail_mid_stream=1)
    fake.configure("ok2", fail_mid_stream=1)
    stream = openai_client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a b c d"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert received  # the first chunk had gone out: no fallback after it
    assert "stream" in str(info.value).lower() or info.value.message


def test_models_lists_every_name_model_may_take(openai_client):
    ids = [m.id for m in openai_client.models.list()]
    assert ids[:3] == ["chat", "claude_wrapper", "deadline"]  # declared wrappers first
    assert {"basic_pool", "basic", "basic.echelon1", "fo.echelon2"} <= set(ids)
