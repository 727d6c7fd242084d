"""Both HTTP providers against the fake server, through the sync and the async drivers."""

from __future__ import annotations

import logging

import pytest

from actors.config.models import ModelConfig
from actors.errors import ConfigError, LLMCallError
from actors.providers import (
    AnthropicProvider,
    HTTPClients,
    OpenAICompatibleProvider,
    OpenAIProvider,
    make_provider,
)

from .helpers import KEY, TOOLS, USER, collect, complete, probe

CONVERSATION = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello there"},
]


async def test_reply(provider, mode):
    reply = await complete(provider, mode, CONVERSATION)
    assert reply.content == "echo: hello there"
    assert reply.finish_reason == "stop"
    assert reply.model == provider.model.model_name  # what the server reported
    assert reply.instance == "inst"
    assert reply.token_usage.completion_tokens == 3
    assert reply.token_usage.total_tokens == reply.token_usage.prompt_tokens + 3
    assert reply.tool_calls == []
    assert reply.response_time > 0
    assert reply.metadata["provider_response_id"]


async def test_openai_request_shape(make, fake, mode):
    provider = make("openai", parameters={"temperature": 0.2, "top_p": 0.9}, headers={"X-Team": "core"})
    await complete(
        provider,
        mode,
        CONVERSATION,
        {"temperature": 0.7, "max_tokens": 50, "frequency_penalty": 0.5, "custom": 1},
    )
    sent = fake.requests("inst")[-1]
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["x-team"] == "core"
    assert sent["body"] == {
        "model": "openai-model",
        "messages": CONVERSATION,
        "temperature": 0.7,  # the call's value wins over the model's
        "top_p": 0.9,
        "max_tokens": 50,
        "frequency_penalty": 0.5,
        "custom": 1,  # unknown parameters pass through
    }


async def test_anthropic_request_shape(make, fake, mode):
    provider = make("anthropic", parameters={"temperature": 0.2, "top_p": 0.9})
    await complete(
        provider, mode, CONVERSATION, {"temperature": 0.7, "stop": "END", "frequency_penalty": 0.5}
    )
    sent = fake.requests("inst")[-1]
    assert sent["headers"]["x-api-key"] == KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent["headers"]
    assert sent["body"] == {
        "model": "anthropic-model",
        "max_tokens": 1024,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}],
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_sequences": ["END"],
    }


async def test_no_cookie_from_one_answer_goes_out_with_the_next(provider, fake, mode):
    # The clients are shared by every caller: one caller's cookies must not reach the next.
    fake.configure("inst", headers={"set-cookie": "session=s3cr3t; Path=/"})
    await complete(provider, mode)
    await complete(provider, mode)
    sent = fake.requests("inst")
    assert len(sent) == 2
    assert "cookie" not in sent[-1]["headers"]


def test_a_sync_call_sends_what_the_httpx_client_would_and_logs_its_request_line(make, fake, clients, caplog):
    # Sync calls skip httpx.Client.send for the client's transport; the request must not change.
    caplog.set_level(logging.INFO, logger="httpx")
    provider = make("openai", headers={"Accept": "application/json"})  # over a client default
    assert provider.call(USER, {"max_tokens": 5}, timeout=5).content
    request = provider.build_request(USER, {"max_tokens": 5}, stream=False)
    headers, content = provider._wire(request)
    client = clients.sync_client(provider._origin)
    assert client.post(request.url, content=content, headers=headers).status_code == 200
    ours, httpx_own = fake.requests("inst")
    assert ours["headers"] == httpx_own["headers"] and ours["body"] == httpx_own["body"]
    assert ours["headers"]["accept"] == "application/json"
    assert ours["headers"]["user-agent"].startswith("python-httpx/")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0] == f'HTTP Request: POST {request.url} "HTTP/1.1 200 OK"'


def test_sync_calls_honour_a_proxy_from_the_environment(fake, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with HTTPClients() as clients:
        model = ModelConfig(
            name="inst",
            model_type="openai",
            model_name="m",
            base_url=fake.openai_base_url("inst"),
            api_key=KEY,
        )
        provider = make_provider(model, clients)
        with pytest.raises(LLMCallError, match="connect"):
            provider.call(USER, {}, timeout=5)
    assert fake.requests("inst") == []


async def test_stream(provider, fake, mode):
    chunks, error = await collect(provider, mode, CONVERSATION)
    assert error is None
    assert "".join(c.delta for c in chunks) == "echo: hello there"
    assert all(c.delta for c in chunks[:-1])  # text chunks carry text; the last one closes
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens == 3
    assert {(c.instance, c.model) for c in chunks} == {("inst", provider.model.model_name)}
    body = fake.requests("inst")[-1]["body"]
    assert body["stream"] is True
    if provider.kind == "openai":
        assert body["stream_options"] == {"include_usage": True}


async def test_a_stream_yields_each_piece_before_the_next_one_exists(provider, fake, mode):
    # The fake sends the head, the opening events and the first piece of text, then holds the
    # rest until released: a reader that waited for more bytes to delimit an event (a line, a
    # chunk, a buffer) would time out here instead of yielding the piece.
    with fake.holding("inst", after=1):
        if mode == "sync":
            chunks = provider.stream(CONVERSATION, {}, timeout=5)
            first = next(chunks)
        else:
            achunks = provider.astream(CONVERSATION, {}, timeout=5)
            first = await achunks.__anext__()
        assert first.delta == "echo:"
        assert fake.release("inst") == 1  # only now does the rest of the stream exist
        rest = list(chunks) if mode == "sync" else [c async for c in achunks]
    assert "".join(c.delta for c in rest) == " hello there"
    assert rest[-1].finish_reason == "stop"


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_call(provider, fake, mode, streamed):
    params = {"tools": TOOLS, "tool_choice": "auto"}
    if streamed:
        chunks, error = await collect(provider, mode, USER, params)
        assert error is None
        assert "".join(c.delta for c in chunks) == ""
        final = chunks[-1]
        calls, finish = final.tool_calls, final.finish_reason
    else:
        reply = await complete(provider, mode, USER, params)
        calls, finish = reply.tool_calls, reply.finish_reason
        assert reply.content == ""
        assert reply.function_call == {"name": "lookup", "arguments": calls[0].arguments}
    assert finish == "tool_calls"
    assert len(calls) == 1
    assert calls[0].name == "lookup"
    assert calls[0].id
    assert calls[0].args == {"input": "hello there"}


async def test_named_tool_choice_reaches_the_server_in_its_shape(provider, fake, mode):
    choice = {"type": "function", "function": {"name": "other"}}
    reply = await complete(provider, mode, USER, {"tools": TOOLS, "tool_choice": choice})
    assert [c.name for c in reply.tool_calls] == ["other"]
    body = fake.requests("inst")[-1]["body"]
    if provider.kind == "anthropic":
        assert body["tool_choice"] == {"type": "tool", "name": "other"}
        assert body["tools"][0] == {
            "name": "lookup",
            "description": "find",
            "input_schema": {"type": "object"},
        }
    else:
        assert body["tool_choice"] == choice


async def test_tool_round_trip_conversation(provider, fake, mode):
    first = await complete(provider, mode, USER, {"tools": TOOLS})
    conversation = [
        *USER,
        first.message,
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "42"},
        {"role": "user", "content": "thanks"},
    ]
    reply = await complete(provider, mode, conversation)
    if provider.kind == "openai":
        assert reply.content == "echo: thanks"
    else:  # the tool result and the text are one user turn: the fake echoes both
        assert reply.content == "echo: 42 thanks"
        sent = fake.requests("inst")[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[1]["content"][0]["type"] == "tool_use"
        assert sent[1]["content"][0]["input"] == {"input": "hello there"}
        assert sent[2]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": first.tool_calls[0].id,
            "content": "42",
        }
        assert sent[2]["content"][1] == {"type": "text", "text": "thanks"}


async def test_probe(provider, fake, mode):
    await probe(provider, mode)
    assert fake.log[-1] == ("inst", "models")


async def test_many_threads_share_one_sync_client(make, fake, clients):
    from concurrent.futures import ThreadPoolExecutor

    provider = make("openai")
    with ThreadPoolExecutor(8) as pool:
        with fake.holding("inst"):  # all eight threads call at once before any answer comes
            answers = pool.map(
                lambda i: provider.call([{"role": "user", "content": f"n{i}"}], {}, timeout=20), range(32)
            )
            assert fake.wait_for_in_flight("inst", 8)
        replies = list(answers)
    assert sorted(r.content for r in replies) == sorted(f"echo: n{i}" for i in range(32))
    assert len(clients._sync) == 1
    assert fake.stats("inst")["peak_in_flight"] > 1


def test_make_provider_by_model_type(make):
    assert type(make("openai")) is OpenAIProvider
    assert type(make("anthropic")) is AnthropicProvider
    compatible = make("openai_compatible")
    assert type(compatible) is OpenAICompatibleProvider and compatible.kind == "openai_compatible"


def test_base_url_defaults_and_requirements():
    official = make_provider(ModelConfig(name="o", model_type="openai", model_name="gpt"))
    assert official.base_url == "https://api.openai.com/v1"
    assert (
        make_provider(ModelConfig(name="a", model_type="anthropic", model_name="c")).base_url
        == "https://api.anthropic.com"
    )
    # The config loader checks these too; the provider does not rely on it (model_construct skips it).
    unchecked = ModelConfig.model_construct
    with pytest.raises(ConfigError, match="needs a base_url"):
        make_provider(unchecked(name="c", model_type="openai_compatible", model_name="m", base_url=None))
    with pytest.raises(ConfigError, match="http:// or https://"):
        make_provider(
            unchecked(name="c", model_type="openai_compatible", model_name="m", base_url="localhost:8000/v1")
        )
