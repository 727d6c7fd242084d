"""Concurrency and rpm limits, FIFO waiting, deadlines and lease accounting under load."""

from __future__ import annotations

import asyncio
import threading

import pytest
from waiting import async_wait_until, wait_until

import actors

MSG = [{"role": "user", "content": "hi"}]


def tier(models, **limits):
    return {"echelon1": {"models": models, "priority": 1, **limits}}


def assert_no_leases(rt):
    table = rt.table
    with table.lock:
        for gate in table.gates.values():
            assert gate.in_flight == 0, gate.name
            assert gate.permits.in_flight == 0
            for b in gate.breakers.values():
                assert b.trials_in_flight == 0
        for budget in table.budgets.values():
            assert budget.in_flight == 0, budget.label
        for target in table.targets.values():
            assert not [w for w in target.waiters if not w.gone], target.label


def test_32_threads_against_concurrency_limit_3_never_exceed_3(fake, runtime_for):
    rt = runtime_for(models={"a": {}, "b": {}}, groups={"g": tier(["a", "b"], concurrency_limit=3)})
    for name in "ab":
        fake.configure(name, latency=0.02)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "timeout": 30})
    errors, done = [], []
    barrier = threading.Barrier(32)

    def worker():
        barrier.wait()
        try:
            done.append(w.generate(MSG))
        except Exception as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(done) == 32
    peak = fake.stats("a")["peak_in_flight"] + fake.stats("b")["peak_in_flight"]
    assert fake.stats("a")["peak_in_flight"] <= 3 and fake.stats("b")["peak_in_flight"] <= 3
    assert peak >= 2  # it did run concurrently
    assert_no_leases(rt)


def test_model_concurrency_limit_is_enforced_too(fake, runtime_for):
    rt = runtime_for(models={"a": {"concurrency_limit": 2}}, groups={"g": tier(["a"])})
    fake.configure("a", latency=0.02)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    threads = [threading.Thread(target=w.generate, args=(MSG,)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fake.stats("a")["requests"] == 12
    assert fake.stats("a")["peak_in_flight"] <= 2


def test_waiters_are_served_in_fifo_order(fake, runtime_for):
    rt = runtime_for(models={"a": {}}, groups={"g": tier(["a"], concurrency_limit=1)})
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "timeout": 20})
    fake.hold("a")  # the holder keeps the only permit until every waiter has queued
    holder = threading.Thread(target=w.generate, args=(MSG,))
    holder.start()
    assert fake.wait_for_in_flight("a", 1, timeout=5)
    order = []
    threads = []
    target = rt.table.targets["g.echelon1"]
    for i in range(5):
        t = threading.Thread(
            target=lambda i=i: order.append((i, w.generate([{"role": "user", "content": f"m{i}"}]).content))
        )
        t.start()
        threads.append(t)
        # Each waiter is queued before the next one starts, so the arrival order is known.
        wait_until(lambda: len(target.waiters) == i + 1)
    assert fake.release("a") == 1
    holder.join(10)
    for t in threads:
        t.join(20)
    sent = [r["body"]["messages"][-1]["content"] for r in fake.requests("a")[1:]]
    assert sent == [f"m{i}" for i in range(5)]
    assert_no_leases(rt)


def test_rpm_limit_is_never_exceeded_and_late_requests_fail_within_their_queue_time(fake, runtime_for):
    rt = runtime_for(models={"a": {}}, groups={"g": tier(["a"], rpm_limit=5)})
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "queue_timeout": 0.05})
    results = []
    for _ in range(8):
        try:
            results.append(w.generate(MSG).instance)
        except actors.NoCapacityError as exc:
            results.append(exc)
    assert results[:5] == ["a"] * 5
    assert all(isinstance(r, actors.NoCapacityError) for r in results[5:])
    assert fake.stats("a")["requests"] == 5
    assert_no_leases(rt)


def test_a_full_tier_falls_back_after_its_queue_time(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a"], "priority": 1, "rpm_limit": 1},
                "echelon2": {"models": ["b"], "priority": 2},
            }
        },
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "queue_timeout": 0.05})
    assert w.generate(MSG).instance == "a"
    assert w.generate(MSG).instance == "b"


def test_one_deadline_covers_every_attempt(fake, runtime_for):
    rt = runtime_for(models={"a": {}, "b": {}}, groups={"g": tier(["a", "b"], max_retries=5)})
    fake.configure("a", hang=True)
    fake.configure("b", hang=True)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(actors.LLMError) as info:
        w.generate(MSG, timeout=0.4)
    assert isinstance(info.value, (actors.LLMTimeoutError, actors.AllAttemptsFailedError))
    assert w.get_stats()["failed_requests"] == 1
    assert_no_leases(rt)


async def test_1000_concurrent_async_requests_all_end_in_a_response_or_a_typed_error(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}, "c": {}},
        groups={"g": tier(["a", "b", "c"], concurrency_limit=64)},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": 3},
            }
        },
    )
    fake.configure("b", status=503, failure_rate=0.3, seed=7)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 60, "queue_timeout": 60})
    results = await asyncio.gather(*(w.generate_async(MSG) for _ in range(1000)), return_exceptions=True)
    assert len(results) == 1000
    assert all(isinstance(r, (actors.LLMResponse, actors.LLMError)) for r in results)
    assert sum(isinstance(r, actors.LLMResponse) for r in results) >= 990
    assert (
        fake.stats("a")["peak_in_flight"]
        + fake.stats("b")["peak_in_flight"]
        + fake.stats("c")["peak_in_flight"]
        <= 64 * 3
    )
    stats = w.get_stats()
    assert stats["total_requests"] == 1000
    assert stats["successful_requests"] + stats["failed_requests"] == 1000
    assert_no_leases(rt)


async def test_cancelling_an_async_request_releases_its_lease(fake, runtime_for):
    rt = runtime_for(models={"a": {}}, groups={"g": tier(["a"], concurrency_limit=1)})
    fake.configure("a", hang=True, times=1)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    task = asyncio.create_task(w.generate_async(MSG))
    assert await asyncio.to_thread(fake.wait_for_in_flight, "a", 1, 5)
    queued = asyncio.create_task(w.generate_async(MSG))
    await async_wait_until(lambda: len(rt.table.targets["g.echelon1"].waiters) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await asyncio.wait_for(queued, 5)  # the freed permit went to the waiter
    assert r.instance == "a"
    assert w.get_stats()["cancelled_requests"] == 1
    assert_no_leases(rt)


def test_no_lease_leaks_after_a_mixed_run(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}, "c": {}},
        groups={"g": tier(["a", "b", "c"], concurrency_limit=4, max_retries=2)},
    )
    fake.configure("a", status=503, failure_rate=0.5, seed=1)
    fake.configure("b", latency=0.3, failure_rate=0.3, seed=2)
    fake.configure("c", status=400, failure_rate=0.2, seed=3)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "retry_delay": 0.01})

    def worker(i):
        try:
            w.generate(MSG, timeout=0.2 if i % 3 == 0 else 5)
        except actors.LLMError:
            pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    async def cancelled():
        tasks = [asyncio.create_task(w.generate_async(MSG)) for _ in range(10)]
        await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(cancelled())
    assert_no_leases(rt)
    assert w.get_stats()["total_requests"] == 50


def test_a_newcomer_is_not_held_behind_a_waiter_that_cannot_use_the_free_instance(fake, runtime_for):
    rt = runtime_for(
        models={"a": {"concurrency_limit": 1}, "b": {"concurrency_limit": 1}},
        groups={"g": tier(["a", "b"])},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": 2},
            }
        },
    )
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert w.generate(MSG).instance == "a"  # the round robin's next turn is b
    fake.hold("b")  # the holder keeps b busy until the test releases it
    holder = threading.Thread(target=w.generate, args=(MSG,), kwargs={"timeout": 20})
    holder.start()
    assert fake.wait_for_in_flight("b", 1, timeout=5)
    fake.configure("a", status=503, times=1)
    queued = []
    r1 = threading.Thread(target=lambda: queued.append(w.generate(MSG, timeout=10)))
    r1.start()  # fails on a, then waits for b, which only the hung request holds
    target = rt.table.targets["pool:p"]
    wait_until(lambda: len(target.waiters) == 1)
    r2 = w.generate(MSG)  # a is idle and the waiter cannot use it: no need to queue
    assert r2.instance == "a"
    assert fake.stats("b")["in_flight"] == 1  # b still held: r2 did not wait for it
    fake.release("b")
    holder.join(10)
    r1.join(10)
    assert queued and queued[0].instance == "b"
    assert_no_leases(rt)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_slot_beyond_the_queue_wait_fails_at_once_saying_when_it_frees(fake, runtime_for, mode):
    rt = runtime_for(models={"a": {}}, groups={"g": tier(["a"], rpm_limit=1)})
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "queue_timeout": 20})
    assert w.generate(MSG).instance == "a"
    with pytest.raises(actors.NoCapacityError) as info:
        if mode == "sync":
            w.generate(MSG, timeout=30)
        else:
            await w.generate_async(MSG, timeout=30)
    # The window frees its slot a minute after the first request: past the 20 s queue wait, so
    # the request did not wait (else the slot would be 40 s away) and says when to come back.
    assert 45 < info.value.retry_after <= 60 and info.value.rate_limited
    assert fake.stats("a")["requests"] == 1
    assert_no_leases(rt)


def test_the_earliest_of_a_window_and_a_parked_instance_is_the_retry_time(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a"], "rpm_limit": 1}, "echelon2": {"models": ["b"]}}},
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "queue_timeout": 1})
    assert w.generate(MSG).instance == "a"
    fake.configure("b", status=429, retry_after=7)
    with pytest.raises(actors.LLMError):
        w.generate(MSG)  # a's slot is a minute away; b answers 429 and is parked for 7 s
    with pytest.raises(actors.NoCapacityError) as info:
        w.generate(MSG)
    assert 3 < info.value.retry_after <= 7  # b's parking ends before a's window frees
