"""Faults under load: an upstream killed mid-stream, a silent upstream; nothing lost, nothing leaked.

Every request ends in exactly one response or one typed error, and afterwards every permit is
back (in-flight counts at zero) and the instance serves again.
"""

from __future__ import annotations

import asyncio

import pytest
from waiting import async_wait_until

import actors

MSG = [{"role": "user", "content": "tell me a long story"}]


def _idle(rt) -> None:
    assert all(g.in_flight == 0 for g in rt.table.gates.values())
    assert all(b.permits.in_flight == 0 for b in rt.table.budgets.values())


@pytest.mark.timeout(60)
async def test_an_upstream_killed_under_50_streams_ends_each_in_one_typed_outcome(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a"], "max_retries": 0, "concurrency_limit": 64},
                "fallback_config": {"circuit_breaker": {"failure_threshold": 100}},
            }
        },
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "timeout": 30})
    fake.configure("a", chunk_delay=0.2, reply="word " * 200)

    streaming = set()

    async def one(i: int) -> str:
        parts = []
        try:
            async for chunk in w.stream_generate_async(MSG):
                parts.append(chunk.delta)
                streaming.add(i)
        except actors.StreamInterruptedError as exc:
            assert exc.partial_text == "".join(parts)
            return "interrupted"
        except actors.LLMError:
            return "failed before a chunk"
        return "complete"

    tasks = [asyncio.create_task(one(i)) for i in range(50)]
    await async_wait_until(lambda: len(streaming) == 50, timeout=30)  # every stream is mid-way
    fake.kill()
    try:
        outcomes = await asyncio.gather(*tasks)  # an exception of another kind fails the test here
    finally:
        fake.restore()
    assert outcomes == ["interrupted"] * 50
    _idle(rt)
    fake.clear("a")
    assert (await w.generate_async(MSG)).instance == "a"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", [{"hang": True}, {"chunk_delay": 30}])
async def test_a_silent_upstream_ends_each_request_kind_at_its_deadline(fake, runtime_for, fault):
    rt = runtime_for(models={"a": {"timeout": 60}}, groups={"g": {"echelon1": {"models": ["a"]}}})
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    fake.configure("a", **fault)

    async def astream() -> None:
        async for _ in w.stream_generate_async(MSG, timeout=0.5):
            pass

    def stream() -> None:
        for _ in w.stream_generate(MSG, timeout=0.5):
            pass

    kinds = {
        "sync": lambda: asyncio.to_thread(w.generate, MSG, timeout=0.5),
        "async": lambda: w.generate_async(MSG, timeout=0.5),
        "sync stream": lambda: asyncio.to_thread(stream),
        "async stream": astream,
    }
    if "chunk_delay" in fault:  # only streams are sent in chunks
        kinds = {k: v for k, v in kinds.items() if "stream" in k}
    for kind, call in kinds.items():
        with pytest.raises(actors.LLMError) as info:
            await call()
        # Silence is a timeout (or a stream cut off after its first chunk), never another error.
        assert isinstance(info.value, (actors.LLMTimeoutError, actors.StreamInterruptedError)), (
            kind,
            info.value,
        )
    _idle(rt)
