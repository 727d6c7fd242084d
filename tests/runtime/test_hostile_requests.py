"""Hostile requests and careless settings, through wrappers: typed errors, settings honoured."""

from __future__ import annotations

import re

import pytest

import actors

MSG = [{"role": "user", "content": "hi"}]
NAN_TOOL = [{"type": "function", "function": {"name": "f", "parameters": {"default": float("nan")}}}]


def _hanging_tier(fake, runtime_for):
    """A tier with ``timeout: 1`` over an instance whose own timeout is 60 s, and a pool over it."""
    fake.configure("h", hang=True)
    return runtime_for(
        models={"h": {"timeout": 60}},
        groups={"g": {"echelon1": {"models": ["h"], "timeout": 1, "max_retries": 0}}},
        pools={"p": {"task_groups": ["g.echelon1"], "fallback_config": {"max_instance_attempts": 1}}},
    )


@pytest.mark.parametrize("kind", ["group", "pool"])
async def test_every_route_to_a_member_honours_its_tiers_attempt_timeout(fake, runtime_for, kind):
    rt = _hanging_tier(fake, runtime_for)
    if kind == "group":
        w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    else:
        w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.LLMError) as sync_error:
        w.generate(MSG, timeout=30)
    with pytest.raises(actors.LLMError) as async_error:
        await w.generate_async(MSG, timeout=30)
    for info in (sync_error, async_error):
        [attempt] = info.value.attempts
        # The attempt ended by its tier's 1 s, not the model's 60 s nor the request's 30 s.
        assert attempt.outcome.value == "unhealthy", attempt
        assert re.search(r"(after|within) 1 s\b", str(attempt.error)), attempt.error


async def test_a_request_that_cannot_be_json_is_the_callers_fault_and_never_sent(fake, runtime_for):
    rt = runtime_for(models={"a": {}}, groups={"g": {"echelon1": {"models": ["a"], "max_retries": 2}}})
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(actors.BadRequestError):
        w.generate(MSG, tools=NAN_TOOL)
    with pytest.raises(actors.BadRequestError):
        await w.generate_async([{"role": "user", "content": "\udc80"}])
    with pytest.raises(actors.BadRequestError):
        list(w.stream_generate(MSG, stop=["\ud800"]))
    assert fake.stats("a")["requests"] == 0
    assert rt.table.gates["a"].breakers["group:g"].consecutive_failures == 0
    assert w.generate(MSG).instance == "a"
