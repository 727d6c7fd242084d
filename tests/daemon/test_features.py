"""No silent drops, through the daemon and the official SDKs: each feature reaches an instance
that honours it in its own form, or the request is refused with a 400 naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helpers import STEADY, Daemon, start_daemon, write_topology
from pydantic import BaseModel

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

MSG = [{"role": "user", "content": "weather in Oslo"}]


class Answer(BaseModel):
    """The shape the fake's forced-tool answer has: ``{"input": <the last user text>}``."""

    input: str


@pytest.fixture(scope="module")
def daemon(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tier = lambda *models: {"models": list(models), "priority": 1, "max_retries": 1}  # noqa: E731
    root = write_topology(
        tmp_path_factory.mktemp("features"),
        fake_provider,
        models={"mo": {}, "ma": {"model_type": "anthropic"}, "so": {}, "sa": {"model_type": "anthropic"}},
        groups={
            "mixed": {"echelon1": tier("mo", "ma"), "fallback_config": STEADY},
            "gpt": {"echelon1": tier("so"), "fallback_config": STEADY},
            "claude": {"echelon1": tier("sa"), "fallback_config": STEADY},
        },
    )
    d = start_daemon(root)
    yield d
    d.stop()


@pytest.fixture
def oai(daemon: Daemon) -> Iterator[Any]:
    with openai.OpenAI(base_url=daemon.url + "/v1", api_key="x", max_retries=0, timeout=15) as client:
        yield client


@pytest.fixture
def anth(daemon: Daemon) -> Iterator[Any]:
    with anthropic.Anthropic(base_url=daemon.url, api_key="x", max_retries=0, timeout=15) as client:
        yield client


def test_structured_output_parses_whichever_provider_answers(fake, oai):
    answered = set()
    for _ in range(4):  # the mixed tier rotates over an OpenAI and an Anthropic instance
        raw = oai.chat.completions.with_raw_response.parse(
            model="mixed.echelon1", messages=MSG, response_format=Answer
        )
        parsed = raw.parse().choices[0].message.parsed
        assert isinstance(parsed, Answer)
        answered.add(raw.headers["x-llm-actors-instance"])
    assert answered == {"mo", "ma"}
    sent = fake.requests("ma")[-1]["body"]
    assert sent["tools"][-1]["name"] == "structured_output"
    assert sent["tools"][-1]["input_schema"]["properties"] == {"input": {"title": "Input", "type": "string"}}
    assert sent["tool_choice"] == {"type": "tool", "name": "structured_output"}


def test_structured_output_streams_as_json_text_from_anthropic(oai):
    chunks = oai.chat.completions.create(
        model="claude.echelon1", messages=MSG, response_format={"type": "json_object"}, stream=True
    )
    pieces = list(chunks)
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert json.loads(text) == {"input": "weather in Oslo"}
    assert pieces[-1].choices[0].finish_reason == "stop"


def test_thinking_and_top_k_go_only_to_anthropic_instances(fake, anth):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    for _ in range(4):
        raw = anth.messages.with_raw_response.create(
            model="mixed.echelon1", max_tokens=2000, messages=MSG, thinking=thinking, extra_body={"top_k": 5}
        )
        assert raw.headers["x-llm-actors-instance"] == "ma"
    sent = fake.requests("ma")[-1]["body"]
    assert sent["thinking"] == thinking and sent["top_k"] == 5


def test_cache_control_and_metadata_reach_an_anthropic_instance(fake, anth):
    mark = {"type": "ephemeral"}
    anth.messages.create(
        model="claude.echelon1",
        max_tokens=50,
        system=[{"type": "text", "text": "long rules", "cache_control": mark}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": mark}]}],
        tools=[{"name": "t", "input_schema": {"type": "object"}, "cache_control": mark}],
        tool_choice={"type": "none"},
        metadata={"user_id": "u-7"},
    )
    sent = fake.requests("sa")[-1]["body"]
    assert sent["system"] == [{"type": "text", "text": "long rules", "cache_control": mark}]
    assert sent["messages"][0]["content"] == [{"type": "text", "text": "q", "cache_control": mark}]
    assert sent["tools"][0]["cache_control"] == mark
    assert sent["metadata"] == {"user_id": "u-7"}


def test_logprobs_go_to_openai_instances_and_come_back(fake, oai):
    for _ in range(4):
        raw = oai.chat.completions.with_raw_response.create(
            model="mixed.echelon1", messages=MSG, logprobs=True, top_logprobs=2
        )
        assert raw.headers["x-llm-actors-instance"] == "mo"
        choice = raw.parse().choices[0]
        assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert fake.requests("mo")[-1]["body"]["top_logprobs"] == 2
    stream = oai.chat.completions.create(model="gpt.echelon1", messages=MSG, logprobs=True, stream=True)
    tokens = [
        t.token for c in stream if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content
    ]
    assert "".join(tokens) == "echo: weather in Oslo"


def test_a_feature_no_instance_honours_is_a_400_naming_it(oai, anth):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="claude.echelon1", messages=MSG, logprobs=True)
    assert "logprobs" in str(info.value) and "sa (anthropic)" in str(info.value)
    with pytest.raises(anthropic.BadRequestError) as error:
        anth.messages.create(
            model="gpt.echelon1",
            max_tokens=50,
            messages=MSG,
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
    assert "thinking needs anthropic instances" in str(error.value)


def test_n_above_one_is_refused_clearly(oai):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="gpt.echelon1", messages=MSG, n=2)
    assert "only n=1 is supported" in str(info.value)


def test_an_anthropic_reply_gives_its_thinking_blocks_back_first():
    from actors.daemon import anthropic_api
    from actors.response import LLMResponse

    thought = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    request = anthropic_api.parse({"model": "m", "max_tokens": 5, "messages": MSG})
    reply = LLMResponse(content="42", metadata={"thinking": [thought]})
    assert anthropic_api.message(reply, request, "r1")["content"] == [thought, {"type": "text", "text": "42"}]
    # ... and an assistant turn's thinking blocks go back to the instance with the conversation.
    turns = [*MSG, {"role": "assistant", "content": [thought, {"type": "text", "text": "42"}]}]
    canonical = anthropic_api.parse({"model": "m", "max_tokens": 5, "messages": turns}).messages
    assert canonical[1] == {"role": "assistant", "content": [thought, {"type": "text", "text": "42"}]}


@pytest.mark.parametrize("streamed", [False, True])
def test_thinking_blocks_come_back_and_go_back_with_a_tool_result(fake, anth, streamed):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    tool = {"name": "lookup", "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}}}
    ask = dict(model="claude.echelon1", max_tokens=2000, thinking=thinking, tools=[tool], messages=MSG)
    if streamed:
        with anth.messages.stream(**ask) as stream:
            first = stream.get_final_message()
    else:
        first = anth.messages.create(**ask)
    thought, use = first.content[0], first.content[-1]
    assert thought.type == "thinking" and thought.signature.startswith("sig-fake") and thought.thinking
    assert use.type == "tool_use" and first.stop_reason == "tool_use"

    turns = [
        *MSG,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
    ]
    second = anth.messages.create(**{**ask, "messages": turns})
    assert second.stop_reason == "end_turn"  # the fake answers in text once the result is in
    sent = fake.requests("sa")[-1]["body"]["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": thought.thinking, "signature": thought.signature}
    assert sent[1]["type"] == "tool_use" and sent[1]["id"] == use.id
