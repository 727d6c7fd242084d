"""The simulated provider: replies, latency, seeded failures, run-time control, streams."""

from __future__ import annotations

import pytest

from actors.config.models import ModelConfig, SimulationConfig
from actors.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    LLMCallError,
    LLMTimeoutError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from actors.outcome import Outcome
from actors.providers import SimulatedProvider, SimulationControl, make_provider

from .helpers import TOOLS, USER, collect, complete, failure, probe


def sim(name: str = "sim", **simulation) -> SimulatedProvider:
    simulation.setdefault("latency", 0.0)
    model = ModelConfig(
        name=name, model_type="simulated", model_name="sim-model", simulation=SimulationConfig(**simulation)
    )
    provider = make_provider(model)
    assert isinstance(provider, SimulatedProvider)
    return provider


async def test_echo_reply(mode):
    reply = await complete(sim(), mode, [{"role": "system", "content": "s"}, *USER])
    assert reply.content == "echo: hello there"
    assert (reply.instance, reply.model, reply.finish_reason) == ("sim", "sim-model", "stop")
    assert reply.token_usage.prompt_tokens == 3 and reply.token_usage.completion_tokens == 3
    assert reply.metadata["provider_response_id"]


async def test_fixed_reply(mode):
    assert (await complete(sim(reply="fixed text"), mode)).content == "fixed text"


async def test_latency(mode):
    reply = await complete(sim(latency=0.05), mode)
    assert reply.response_time == 0.05


async def test_latency_beyond_the_timeout_times_out(mode):
    exc = await failure(sim(latency=5.0), mode, timeout=0.05)
    assert type(exc) is LLMTimeoutError
    assert exc.outcome is Outcome.UNHEALTHY


async def test_seeded_failure_rate_is_repeatable(mode):
    async def pattern(provider):
        out = []
        for _ in range(40):
            try:
                await complete(provider, mode)
                out.append(True)
            except ServiceUnavailableError as exc:
                assert exc.status_code == 503
                out.append(False)
        return out

    first = await pattern(sim("a", failure_rate=0.5, seed=7))
    second = await pattern(sim("b", failure_rate=0.5, seed=7))
    assert first == second
    assert 5 < first.count(False) < 35


@pytest.mark.parametrize(
    "status, error",
    [
        (429, RateLimitError),
        (401, AuthenticationError),
        (503, ServiceUnavailableError),
        (529, ServiceUnavailableError),
    ],
)
async def test_failure_status_gives_the_http_error_type(mode, status, error):
    exc = await failure(sim(failure_rate=1.0, failure_status=status), mode)
    assert type(exc) is error
    assert exc.status_code == status and exc.instance == "sim" and exc.provider == "simulated"


async def test_control_fail_and_heal(mode):
    provider = sim("openai-gpt4")
    control = provider.control
    assert control is not sim("openai-gpt4").control  # each provider its own: runtimes share none
    control.fail(status=503, rate=1.0, retry_after=2)
    exc = await failure(provider, mode)
    assert type(exc) is ServiceUnavailableError and exc.retry_after == 2.0
    with pytest.raises(ServiceUnavailableError):
        await probe(provider, mode)
    control.heal()
    assert (await complete(provider, mode)).content == "echo: hello there"
    await probe(provider, mode)


async def test_control_error_codes(mode):
    provider = sim()
    provider.control.fail(status=400, error_code="context_length_exceeded")
    assert type(await failure(provider, mode)) is ContextWindowExceededError
    provider.control.fail(status=429, error_code="insufficient_quota")
    assert type(await failure(provider, mode)) is QuotaExceededError


async def test_control_latency(mode):
    provider = sim()
    provider.control.set_latency(0.03)
    assert (await complete(provider, mode)).response_time == 0.03
    provider.control.set_latency(None)
    assert (await complete(provider, mode)).response_time == 0.0


def test_control_rejects_nonsense():
    control = SimulationControl("x")
    with pytest.raises(ValueError):
        control.fail(status=200)
    with pytest.raises(ValueError):
        control.fail(rate=2)
    with pytest.raises(ValueError):
        control.set_latency(-1)


async def test_stream(mode):
    chunks, error = await collect(sim(), mode, [{"role": "user", "content": "one two three four five"}])
    assert error is None
    assert len(chunks) >= 3
    assert "".join(c.delta for c in chunks) == "echo: one two three four five"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.completion_tokens == 6
    assert {c.instance for c in chunks} == {"sim"}


async def test_stream_failure_is_raised_before_any_chunk(mode):
    provider = sim()
    provider.control.fail(status=503)
    chunks, error = await collect(provider, mode)
    assert chunks == [] and type(error) is ServiceUnavailableError


@pytest.mark.parametrize("streamed", [False, True])
async def test_tool_calls_like_the_fake_server(mode, streamed):
    params = {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "other"}}}
    if streamed:
        chunks, _ = await collect(sim(), mode, USER, params)
        calls, finish = chunks[-1].tool_calls, chunks[-1].finish_reason
    else:
        reply = await complete(sim(), mode, USER, params)
        calls, finish = reply.tool_calls, reply.finish_reason
    assert finish == "tool_calls"
    assert [(c.name, c.args) for c in calls] == [("other", {"input": "hello there"})]
    reply = await complete(sim(), mode, USER, {"tools": TOOLS, "tool_choice": "none"})
    assert reply.tool_calls == [] and reply.content == "echo: hello there"


async def test_disabled(mode):
    model = ModelConfig(
        name="off", model_type="simulated", model_name="m", disabled_reason="turned off for a test"
    )
    exc = await failure(make_provider(model), mode)
    assert type(exc) is AuthenticationError and "turned off for a test" in str(exc)
    assert isinstance(exc, LLMCallError)


async def test_an_agent_loop_ends_once_the_tool_result_is_in(mode):
    provider = sim()
    first = await complete(provider, mode, USER, {"tools": TOOLS})
    assert first.tool_calls
    conversation = [
        *USER,
        first.message,
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "42"},
    ]
    second = await complete(provider, mode, conversation, {"tools": TOOLS})
    assert second.tool_calls == [] and second.finish_reason == "stop"
    assert second.content == "echo: hello there"
    # A new question after the result asks for the tool again.
    third = await complete(
        provider,
        mode,
        [*conversation, second.message, {"role": "user", "content": "again"}],
        {"tools": TOOLS},
    )
    assert [c.args for c in third.tool_calls] == [{"input": "again"}]


async def test_logprobs_and_json_answers_like_the_fake_server(mode):
    reply = await complete(sim(), mode, USER, {"logprobs": True})
    assert "".join(t["token"] for t in reply.metadata["logprobs"]["content"]) == reply.content
    chunks, _ = await collect(sim(), mode, USER, {"logprobs": True})
    assert all(c.logprobs for c in chunks if c.delta)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert (await complete(sim(), mode, USER, {"response_format": fmt})).content == '{"n": 0}'
