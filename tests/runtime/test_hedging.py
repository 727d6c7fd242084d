"""Hedged requests against the fake provider: a late first byte sends the request elsewhere too;
the first answer wins and the others are cancelled, with their leases returned."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from waiting import wait_until

import actors

MSG = [{"role": "user", "content": "hi"}]


def hedged_pool(hedge=None, budget=None, **pool):
    fallback = {"strategy": "instance_rotation", "max_instance_attempts": 3}
    if hedge is not None:
        fallback["hedge"] = hedge
    if budget is not None:
        fallback["retry_budget"] = budget
    return dict(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a", "b"]}}},
        pools={"p": {"task_groups": ["g.echelon1"], "fallback_config": fallback, **pool}},
    )


def no_leases(rt):
    with rt.table.lock:
        return all(g.in_flight == 0 for g in rt.table.gates.values())


def hedges(rt):
    return rt.resilience_stats()["hedges"]


def test_a_late_answer_is_hedged_and_the_hedge_wins_sync(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 0.1}))
    fake.configure("a", latency=5)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    r = w.generate(MSG)
    assert r.instance == "b"
    assert [i for i, _ in fake.log] == ["a", "b"]
    assert [a.instance for a in r.attempts] == ["b"]  # the cancelled one is no failed attempt
    assert hedges(rt) == {"won": 1, "lost": 0, "failed": 0, "refused": 0}
    assert fake.wait_for_idle("a", timeout=5)  # the loser's call was abandoned, not waited for
    wait_until(lambda: no_leases(rt), what="every lease returned")
    snap = rt.stats()["instances"]["a"]
    assert snap["state"] == "closed" and snap["breakers"]["pool:p"]["consecutive_failures"] == 0


async def test_a_late_answer_is_hedged_async(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 0.1}))
    fake.configure("a", latency=5)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    r = await w.generate_async(MSG)
    assert r.instance == "b"
    assert [i for i, _ in fake.log] == ["a", "b"]
    assert hedges(rt)["won"] == 1
    assert no_leases(rt)


def test_a_prompt_answer_is_not_hedged(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 2}))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(4)] == ["a", "b", "a", "b"]
    assert len(fake.log) == 4
    assert hedges(rt) == {"won": 0, "lost": 0, "failed": 0, "refused": 0}


def test_when_the_original_answers_first_the_hedge_is_cancelled(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 0.05}))
    fake.configure("b", latency=5)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    with ThreadPoolExecutor(1) as pool, fake.holding("a"):
        answer = pool.submit(w.generate, MSG)
        assert fake.wait_for_in_flight("b", 1)  # the hedge went out while a was held
        fake.release("a")
        r = answer.result()
    assert r.instance == "a"
    assert [i for i, _ in fake.log] == ["a", "b"]
    assert hedges(rt)["lost"] == 1
    assert fake.wait_for_idle("b", timeout=5)
    wait_until(lambda: no_leases(rt), what="every lease returned")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_streams_hedge_on_the_first_chunk(fake, runtime_for, kind):
    rt = runtime_for(**hedged_pool({"after": 0.1}))
    fake.configure("a", latency=5)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    if kind == "sync":
        chunks = list(w.stream_generate(MSG))
    else:
        chunks = [c async for c in w.stream_generate_async(MSG)]
    assert "".join(c.delta for c in chunks) == "echo: hi"
    assert {c.instance for c in chunks if c.instance} == {"b"}
    assert [i for i, _ in fake.log] == ["a", "b"]
    assert hedges(rt)["won"] == 1
    wait_until(lambda: no_leases(rt), what="every lease returned")


def test_hedges_count_against_the_retry_budget(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 0.05}, budget={"ratio": 0, "min_per_second": 0}))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    with ThreadPoolExecutor(1) as pool, fake.holding("a"):
        answer = pool.submit(w.generate, MSG)
        wait_until(lambda: hedges(rt)["refused"] == 1, what="the hedge to be refused while a is held")
        fake.release("a")
        r = answer.result()
    assert r.instance == "a"  # no budget for a hedge: the original is waited for
    assert [i for i, _ in fake.log] == ["a"]
    assert hedges(rt)["refused"] == 1


def test_p95_hedges_only_once_the_instance_is_measured(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": "p95"}))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    fake.configure("a", latency=0.3)
    assert w.generate(MSG).instance == "a"  # unmeasured: waited for, not hedged
    fake.clear("a")
    for _ in range(39):
        w.generate(MSG)  # b, a, ... b: a has 20 measurements, the first slow one the slowest
    fake.reset()
    fake.configure("a", latency=5)
    r = w.generate(MSG)  # a's turn; far past its p95
    assert r.instance == "b"
    assert [i for i, _ in fake.log] == ["a", "b"]
    assert hedges(rt)["won"] == 1


def test_when_every_contender_fails_the_plan_goes_on(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 0.05}, failure_threshold=100))
    fake.configure("a", latency=0.3, status=503)
    fake.configure("b", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 10})
    with pytest.raises(actors.LLMError):
        w.generate(MSG)
    assert sorted(i for i, _ in fake.log) == ["a", "b"]
    wait_until(lambda: no_leases(rt), what="every lease returned")


def test_stopping_the_runtime_ends_a_sync_hedged_request_in_flight(fake, runtime_for):
    rt = runtime_for(**hedged_pool({"after": 5}))
    fake.configure("a", hang=True)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 30})
    errors = []

    def call():
        try:
            w.generate(MSG)
        except BaseException as exc:  # cancelled by the stop
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    assert fake.wait_for_in_flight("a", 1, timeout=5)
    rt.stop()
    t.join(10)
    assert not t.is_alive() and errors
