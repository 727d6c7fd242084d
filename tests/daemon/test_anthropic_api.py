"""The Anthropic-shaped API through the official ``anthropic`` SDK: messages, streams, tools, errors."""

from __future__ import annotations

import pytest

anthropic = pytest.importorskip("anthropic")

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_messages_with_a_system_prompt_on_an_openai_upstream(fake, anthropic_client):
    raw = anthropic_client.messages.with_raw_response.create(
        model="chat",
        max_tokens=64,
        system="be brief",
        stop_sequences=["END"],
        extra_body={"temperature": 0.5},
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " there"}],
            }
        ],
    )
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant"
    assert [b.type for b in m.content] == ["text"] and m.content[0].text == "echo: hello there"
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    instance = raw.headers["x-llm-actors-instance"]
    sent = fake.requests(instance)[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.5 and sent["stop"] == ["END"]


def test_messages_on_an_anthropic_upstream(fake, anthropic_client):
    m = anthropic_client.messages.create(
        model="claude_wrapper", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert m.content[0].text == "echo: hi"
    assert fake.log[-1] == ("anth", "anthropic")


def test_streaming_follows_anthropics_event_sequence(anthropic_client):
    with anthropic_client.messages.stream(
        model="claude_wrapper", max_tokens=32, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_start" in events and "message_delta" in events
    assert final.content[0].text == "echo: one two three"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_streaming_text_from_an_openai_upstream(anthropic_client):
    with anthropic_client.messages.stream(
        model="basic_pool", max_tokens=32, messages=[{"role": "user", "content": "a b c"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "echo: a b c"


def test_tool_use_and_tool_result_map_to_and_from_openai_messages(fake, anthropic_client):
    first = anthropic_client.messages.create(
        model="tools",
        max_tokens=64,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Oslo"}],
    )
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"input": "weather in Oslo"}
    sent = fake.requests("tool1")[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    second = anthropic_client.messages.create(
        model="tools",
        max_tokens=64,
        messages=[
            {"role": "user", "content": "weather in Oslo"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"},
                    {"type": "text", "text": "and tomorrow?"},
                ],
            },
        ],
    )
    assert second.content[0].text == "echo: and tomorrow?"
    turns = fake.requests("tool1")[-1]["body"]["messages"]
    assert turns[1]["role"] == "assistant" and turns[1]["tool_calls"][0]["id"] == use.id
    assert turns[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"input": "weather in Oslo"}',
    }
    assert turns[2] == {"role": "tool", "tool_call_id": use.id, "content": "sunny, 21 C"}
    assert turns[3] == {"role": "user", "content": "and tomorrow?"}


def test_streamed_tool_use(anthropic_client):
    with anthropic_client.messages.stream(
        model="tools", max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Oslo"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {"input": "Oslo"}


def test_errors_come_in_anthropics_shape(fake, anthropic_client):
    with pytest.raises(anthropic.NotFoundError) as info:
        anthropic_client.messages.create(
            model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "not_found_error"
    assert "chat" in info.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(
            model="chat", max_tokens=8, messages=[{"role": "robot", "content": "x"}]
        )
    assert "messages[0].role" in info.value.body["error"]["message"]
    fake.configure("down1", status=500)
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client.messages.create(
            model="down", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 503 and info.value.body["error"]["type"] == "overloaded_error"
