"""Faults under load: an upstream killed mid-stream, a silent upstream; nothing lost, nothing leaked.

Every request ends in exactly one response or one typed error, and afterwards every permit is
back (in-flight counts at zero) and the instance serves again.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import yaml
from waiting import async_wait_until, wait_until

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


@pytest.mark.timeout(120)
def test_reloads_under_load_with_changed_limits_fail_no_request(fake, runtime_for):
    """32 clients; 14 reloads that lower and raise the tier's and a model's limits meanwhile."""
    rt = runtime_for(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a", "b"], "concurrency_limit": 8, "max_retries": 1}}},
        pools={"p": {"task_groups": ["g.echelon1"]}},
        wrappers={
            "gw": {"type": "task_group", "target": "g.echelon1"},
            "pw": {"type": "polling_pool", "pool": "p"},
        },
    )
    # 32 clients keep every permit busy and a queue waiting at each reload; a longer answer would
    # only stretch the phases where the limit is 1 (40 requests one at a time).
    fake.configure("a", latency=0.005)
    fake.configure("b", latency=0.005)
    root = rt.config.root
    stop = threading.Event()
    done, failures = [], []

    def client(i: int) -> None:
        w = rt.factory.get_wrapper("gw" if i % 2 else "pw")
        while not stop.is_set():
            try:
                w.generate(MSG, timeout=30)
                done.append(i)
            except actors.LLMError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    try:
        for n in range(14):
            wait_until(lambda n=n: len(done) >= 40 * (n + 1), timeout=30, what="requests between reloads")
            limit, model_limit = (1, 1) if n % 2 == 0 else (8, None)
            _edit(root / "groups/g.yaml", lambda d, v=limit: d["echelon1"].update(concurrency_limit=v))
            _edit(root / "provider/openai/a.yaml", lambda d, v=model_limit: d.update(concurrency_limit=v))
            rt.reload(root)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, f"{len(failures)} of {len(done) + len(failures)} failed: {failures[:3]}"
    assert len(done) >= 14 * 40
    _idle(rt)


def _edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
