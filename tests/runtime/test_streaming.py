"""Streaming: chunks in both shapes, fallback before the first chunk only, partial text on failure."""

from __future__ import annotations

import time

import pytest
from waiting import async_wait_until

import actors

MSG = [{"role": "user", "content": "tell me a story"}]


def pool(*models):
    names = [m if isinstance(m, str) else m[0] for m in models]
    specs = {m if isinstance(m, str) else m[0]: ({} if isinstance(m, str) else m[1]) for m in models}
    return dict(
        models=specs,
        groups={"g": {"echelon1": {"models": names, "priority": 1}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": len(names)},
            }
        },
    )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_sync_stream_yields_the_reply_in_chunks(fake, runtime_for, kind):
    rt = runtime_for(**pool(("a", {"model_type": kind})))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    chunks = list(w.stream_generate(MSG))
    assert len([c for c in chunks if c.delta]) > 1
    assert "".join(c.delta for c in chunks) == "echo: tell me a story"
    assert w.get_stats()["successful_requests"] == 1


async def test_async_stream_yields_the_reply_in_chunks(fake, runtime_for):
    rt = runtime_for(**pool(("a", {"model_type": "anthropic"})))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    text = "".join([c.delta async for c in w.stream_generate_async(MSG)])
    assert text == "echo: tell me a story"


def test_stream_falls_back_before_the_first_chunk(fake, runtime_for):
    rt = runtime_for(**pool("a", "b"))
    fake.configure("a", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    chunks = list(w.stream_generate(MSG))
    assert {c.instance for c in chunks if c.delta} == {"b"}
    assert [i for i, _ in fake.log] == ["a", "b"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_failure_after_the_first_chunk_raises_with_the_partial_text(fake, runtime_for, kind):
    rt = runtime_for(**pool(("a", {"model_type": kind}), ("b", {"model_type": kind})))
    fake.configure("a", fail_mid_stream=2)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    received = []
    with pytest.raises(actors.StreamInterruptedError) as info:
        for chunk in w.stream_generate(MSG):
            received.append(chunk.delta)
    assert info.value.partial_text == "".join(received)
    assert info.value.partial_text
    assert [i for i, _ in fake.log] == ["a"]  # no fallback after the first chunk
    assert rt.table.gates["a"].breakers["pool:p"].consecutive_failures == 1
    assert w.get_stats()["failed_requests"] == 1


async def test_async_mid_stream_failure_raises_with_the_partial_text(fake, runtime_for):
    rt = runtime_for(**pool("a"))
    fake.configure("a", fail_mid_stream=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    got = []
    with pytest.raises(actors.StreamInterruptedError) as info:
        async for chunk in w.stream_generate_async(MSG):
            got.append(chunk.delta)
    assert info.value.partial_text == "".join(got)


def test_abandoning_a_stream_returns_its_lease(fake, runtime_for):
    rt = runtime_for(**pool("a"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    stream = w.stream_generate(MSG)
    next(stream)
    assert rt.table.gates["a"].in_flight == 1
    stream.close()
    assert rt.table.gates["a"].in_flight == 0


def test_stopping_at_the_final_chunk_is_a_success(fake, runtime_for):
    rt = runtime_for(**pool("a"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for chunk in w.stream_generate(MSG):
        if chunk.finish_reason:
            break
    stats = w.get_stats()
    assert stats["successful_requests"] == 1 and stats["cancelled_requests"] == 0
    assert rt.instance_stats("a")["outcomes"] == {"success": 1}


async def test_closing_an_async_stream_returns_its_lease_at_once(fake, runtime_for):
    rt = runtime_for(**pool("a"))
    fake.configure("a", chunk_delay=0.05)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    stream = w.stream_generate_async(MSG)
    await stream.__anext__()
    assert rt.table.gates["a"].in_flight == 1
    await stream.aclose()
    assert rt.table.gates["a"].in_flight == 0


async def test_the_deadline_passing_while_an_async_caller_is_busy_ends_the_stream_at_its_next_read(
    fake, runtime_for
):
    rt = runtime_for(**pool("a"))
    fake.configure("a", chunk_delay=0.02, reply=" ".join(["word"] * 40))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    stream = w.stream_generate_async(MSG, timeout=1.0)
    got = [(await stream.__anext__()).delta]
    # The caller is away (not reading) when the deadline passes: nothing is waiting to be cut off.
    past = time.monotonic() + 1.0
    await async_wait_until(lambda: time.monotonic() > past, timeout=5)
    with pytest.raises(actors.StreamInterruptedError) as info:
        async for chunk in stream:
            got.append(chunk.delta)
    assert info.value.partial_text == "".join(got) and got
    assert rt.table.gates["a"].breakers["pool:p"].consecutive_failures == 0
    assert rt.table.gates["a"].in_flight == 0


def test_the_request_deadline_ends_a_slow_stream_without_blaming_the_instance(fake, runtime_for):
    rt = runtime_for(**pool("a"))
    fake.configure("a", chunk_delay=0.1, reply=" ".join(["word"] * 40))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    got = []
    # The first word comes 0.1 s after the head and the whole stream takes 4 s: the deadline
    # leaves room for a slow start on a busy machine and still ends the stream mid-way.
    with pytest.raises(actors.StreamInterruptedError) as info:
        for chunk in w.stream_generate(MSG, timeout=1.0):
            got.append(chunk.delta)
    assert info.value.partial_text == "".join(got) and got
    assert rt.table.gates["a"].breakers["pool:p"].consecutive_failures == 0
