"""``POST /v1/responses`` through the official ``openai`` SDK: plain, streamed, tools, refusals."""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_a_plain_response_with_instructions(fake, openai_client):
    raw = openai_client.responses.with_raw_response.create(
        model="chat", instructions="be brief", input="hello there", max_output_tokens=40, temperature=0.2
    )
    r = raw.parse()
    assert r.output_text == "echo: hello there"
    assert r.status == "completed" and r.object == "response" and r.id.startswith("resp_")
    assert r.instructions == "be brief" and r.store is False
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens > 0
    sent = fake.requests(raw.headers["x-llm-actors-instance"])[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_tokens"] == 40 and sent["temperature"] == 0.2
    assert raw.headers["x-llm-actors-target"] == "basic.echelon1"


def test_input_items_reach_an_anthropic_instance(fake, openai_client):
    r = openai_client.responses.create(
        model="claude_wrapper",
        input=[
            {"role": "developer", "content": "answer in English"},
            {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"type": "message", "role": "user", "content": "second"},
        ],
    )
    assert r.output_text == "echo: second"
    sent = fake.requests("anth")[-1]["body"]
    assert sent["system"] == "answer in English"
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def test_the_stream_follows_the_sdk_event_sequence(openai_client):
    events = list(openai_client.responses.create(model="chat", input="one two three", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: one two three"
    final = events[-1].response
    assert final.output_text == text and final.usage.total_tokens > 0


def test_the_sdks_stream_helper_assembles_the_response(openai_client):
    with openai_client.responses.stream(model="chat", input="helper works") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "echo: helper works"


def test_function_calls_and_their_outputs(fake, openai_client):
    first = openai_client.responses.create(model="tools", input="weather in Oslo", tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and call.status == "completed"
    assert json.loads(call.arguments) == {"input": "weather in Oslo"}
    sent = fake.requests("tool1")[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"

    follow = [
        {"role": "user", "content": "weather in Oslo"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = openai_client.responses.create(model="tools", input=follow)
    assert second.output_text.startswith("echo:")
    turns = fake.requests("tool1")[-1]["body"]["messages"]
    assert turns[1]["role"] == "assistant" and turns[1]["tool_calls"][0]["id"] == call.call_id
    assert turns[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


def test_a_streamed_function_call(openai_client):
    with openai_client.responses.stream(
        model="tools",
        input="weather in Rome",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"input": "weather in Rome"}


def test_structured_output_reaches_the_instance_as_response_format(fake, openai_client):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    raw = openai_client.responses.with_raw_response.create(
        model="chat",
        input="x",
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
    )
    sent = fake.requests(raw.headers["x-llm-actors-instance"])[-1]["body"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(
    "extra, param, words",
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stores no responses"),
        ({"tools": [{"type": "web_search"}]}, "tools", "function tools only"),
        ({"background": True}, "background", "storage"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input", "stored items"),
        ({"truncation": "auto"}, "truncation", "never drops input"),
    ],
)
def test_what_needs_storage_or_builtin_tools_is_refused_clearly(fake, openai_client, extra, param, words):
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.responses.create(model="chat", **{"input": "hi", **extra})
    assert info.value.status_code == 400 and info.value.body["param"] == param
    assert words in info.value.body["message"]
    assert fake.log == []  # refused before any instance was called


def test_fallback_applies_to_responses(fake, openai_client):
    fake.configure("hdr1", status=503)
    raw = openai_client.responses.with_raw_response.create(model="hdr", input="still answered")
    assert raw.parse().output_text == "echo: still answered"
    assert raw.headers["x-llm-actors-instance"] == "hdr2"
    assert raw.headers["x-llm-actors-fallback"] == "true" and raw.headers["x-llm-actors-failed"] == "hdr1"


def test_a_stream_failing_after_its_first_text_ends_with_error_and_failed(fake, openai_client):
    fake.configure("hdr1", fail_mid_stream=2)
    events = list(openai_client.responses.create(model="hdr", input="a b c d e f", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-1].response.status == "failed" and events[-1].response.error.message
    assert fake.stats("hdr2")["requests"] == 0  # no fallback once text reached the client
