"""Retry budget, pacing from rate-limit headers, session affinity and outlier ejection, seen from
the fake provider: which instances saw requests, and in what order."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

import actors

MSG = [{"role": "user", "content": "hi"}]
NO_BREAKER = {"failure_threshold": 1000, "recovery_time": 60, "half_open_requests": 1}


def tried(fake):
    return [instance for instance, _ in fake.log]


# -- retry budget ------------------------------------------------------------------------------


def failing_group(**budget):
    fallback = {"max_attempts": 10, "retry_delay": 0.0, "circuit_breaker": NO_BREAKER}
    if budget:
        fallback["retry_budget"] = budget
    return dict(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a", "b"], "max_retries": 1}, "fallback_config": fallback}},
    )


def test_past_the_retry_budget_a_request_ends_with_its_last_error(fake, runtime_for):
    # No ratio, 0.2 retries a second: two retries in the 10 s window, then none.
    rt = runtime_for(**failing_group(ratio=0, min_per_second=0.2))
    for name in "ab":
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)  # a, then b: the first retry
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)  # the second retry
    for _ in range(3):
        with pytest.raises(actors.ServiceUnavailableError) as info:
            w.generate(MSG)  # one attempt each: its own error, not "all attempts failed"
        assert info.value.status_code == 503
    assert len(tried(fake)) == 2 + 2 + 3
    snap = rt.stats()["resilience"]["retry_budgets"]["group:g"]
    assert snap["retries"] == 2 and snap["requests"] == 5 and snap["exhausted_total"] == 3


def test_a_request_the_budget_refused_says_so_and_a_plain_failure_does_not(fake, runtime_for):
    rt = runtime_for(**failing_group(ratio=0, min_per_second=0.1))  # one retry in the window
    for name in "ab":
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(actors.AllAttemptsFailedError) as plain:
        w.generate(MSG)  # the retry is granted: both instances fail, nothing was refused
    assert plain.value.retry_budget_exhausted is False
    assert "retry budget" not in str(plain.value)
    with pytest.raises(actors.ServiceUnavailableError) as refused:
        w.generate(MSG)
    assert refused.value.retry_budget_exhausted is True
    assert "retry budget exhausted: no retry after 1 attempt(s)" in str(refused.value)
    assert refused.value.status_code == 503  # still the last attempt's own error


async def test_an_async_request_the_budget_refused_says_so(fake, runtime_for):
    rt = runtime_for(**failing_group(ratio=0, min_per_second=0))
    for name in "ab":
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(actors.ServiceUnavailableError) as refused:
        await w.generate_async(MSG)
    assert refused.value.retry_budget_exhausted is True
    assert "retry budget exhausted" in str(refused.value)
    with pytest.raises(actors.ServiceUnavailableError) as streamed:
        async for _ in w.stream_generate_async(MSG):
            pass
    assert streamed.value.retry_budget_exhausted is True


async def test_the_budget_holds_for_async_requests_too(fake, runtime_for):
    rt = runtime_for(**failing_group(ratio=0, min_per_second=0.1))
    for name in "ab":
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    results = await asyncio.gather(*(w.generate_async(MSG) for _ in range(6)), return_exceptions=True)
    assert all(isinstance(r, actors.LLMError) for r in results)
    assert len(tried(fake)) == 6 + 1  # six first attempts, one retry


def test_the_default_budget_lets_a_quiet_service_retry(fake, runtime_for):
    rt = runtime_for(**failing_group())
    fake.configure("a", status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    for _ in range(20):
        r = w.generate(MSG)
        assert r.instance == "b"
    assert rt.stats()["resilience"]["retry_budgets"]["group:g"]["exhausted_total"] == 0


def test_requests_add_to_the_budget(fake, runtime_for):
    # ratio 0.5, no floor: one request earns half a retry.
    rt = runtime_for(**failing_group(ratio=0.5, min_per_second=0))
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    for name in "ab":
        fake.configure(name, status=503)
    with pytest.raises(actors.ServiceUnavailableError):
        w.generate(MSG)  # 1 request: 0.5 retries, not a whole one
    for name in "ab":
        fake.clear(name)
    for _ in range(3):
        w.generate(MSG)  # 4 requests
    fake.reset()
    for name in "ab":
        fake.configure(name, status=503)
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)  # 5 requests: 2.5 retries, so this one's retry fits
    assert tried(fake) == ["a", "b"] or tried(fake) == ["b", "a"]


# -- pacing from rate-limit headers -------------------------------------------------------------


def pool(models, **pool_options):
    return dict(
        models={name: spec for name, spec in models.items()},
        groups={"g": {"echelon1": {"models": list(models)}}},
        pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin", **pool_options}},
    )


EXHAUSTED_OPENAI = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}


def test_an_instance_that_says_nothing_is_left_is_parked_before_any_429(fake, runtime_for):
    rt = runtime_for(**pool({"a": {}, "b": {}}))
    fake.configure("a", headers=EXHAUSTED_OPENAI)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    instances = [w.generate(MSG).instance for _ in range(6)]
    assert instances == ["a"] + ["b"] * 5
    assert fake.stats("a")["requests"] == 1  # never called again, so never answered 429
    snap = rt.stats()["instances"]["a"]
    assert snap["state"] == "parked" and snap["reason"].startswith("paced: no requests left")
    assert 0 < snap["parked_until"] - time.monotonic() <= 30
    assert rt.stats()["resilience"]["paced"]["a"] == 1


def test_anthropic_reset_timestamps_park_until_then(fake, runtime_for):
    reset = (datetime.now(UTC) + timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    rt = runtime_for(**pool({"a": {"model_type": "anthropic"}, "b": {"model_type": "anthropic"}}))
    fake.configure(
        "a",
        headers={
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
        },
    )
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(4)] == ["a", "b", "b", "b"]
    health = {i["instance"]: i for i in w.health()["instances"]}
    assert health["a"]["state"] == "parked"


def test_pace_from_headers_false_ignores_them(fake, runtime_for):
    rt = runtime_for(**pool({"a": {"pace_from_headers": False}, "b": {}}))
    fake.configure("a", headers=EXHAUSTED_OPENAI)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(4)] == ["a", "b", "a", "b"]
    assert rt.stats()["resilience"]["paced"]["a"] == 0


def test_little_left_spaces_the_instance_calls_and_the_others_take_the_share(fake, runtime_for):
    rt = runtime_for(**pool({"a": {}, "b": {}}))
    # 2 of 100 left, resetting in 20 s: one call every 10 s.
    fake.configure(
        "a",
        headers={
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "20s",
        },
    )
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(5)] == ["a", "b", "b", "b", "b"]
    assert rt.stats()["instances"]["a"]["state"] == "closed"  # paced, not parked


def test_a_paced_lone_instance_makes_requests_wait_not_fail(fake, runtime_for):
    rt = runtime_for(**pool({"a": {}}))
    fake.configure(
        "a",
        headers={
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": "1",
            "x-ratelimit-reset-requests": "200ms",
        },
    )
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(3)] == ["a"] * 3


def test_a_stream_paces_too(fake, runtime_for):
    rt = runtime_for(**pool({"a": {}, "b": {}}))
    fake.configure("a", headers=EXHAUSTED_OPENAI)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    chunks = list(w.stream_generate(MSG))
    assert chunks[-1].instance == "a"
    assert [w.generate(MSG).instance for _ in range(3)] == ["b"] * 3


# -- session affinity -------------------------------------------------------------------------


FOUR = {n: {} for n in ("s1", "s2", "s3", "s4")}


def test_a_session_stays_on_one_instance_and_sessions_spread(fake, runtime_for):
    rt = runtime_for(**pool(FOUR, affinity="session"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    homes = {}
    for session in ("alice", "bob", "carol", "dave", "erin", "frank"):
        seen = {w.generate(MSG, session_id=session).instance for _ in range(4)}
        assert len(seen) == 1, seen
        homes[session] = seen.pop()
    assert len(set(homes.values())) >= 2
    # without a session key the pool rotates as configured
    assert len({w.generate(MSG).instance for _ in range(4)}) == 4
    # a route without affinity takes the key and rotates anyway; it never reaches the provider
    g = rt.factory.create_task_group_wrapper("g", {"target": "g.echelon1"})
    assert len({g.generate(MSG, session_id="alice").instance for _ in range(4)}) == 4
    assert all("session_id" not in r["body"] for n in FOUR for r in fake.requests(n))


async def test_session_affinity_async_and_streams(fake, runtime_for):
    rt = runtime_for(**pool(FOUR, affinity="session"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    home = (await w.generate_async(MSG, session_id="zed")).instance
    async for chunk in w.stream_generate_async(MSG, session_id="zed"):
        assert chunk.instance in ("", home)
    assert [i for i, _ in fake.log] == [home, home]
    assert [c.instance for c in w.stream_generate(MSG, session_id="zed")][-1] == home


def test_the_session_moves_only_while_its_instance_is_unavailable(fake, runtime_for):
    rt = runtime_for(**pool(FOUR, affinity="session", failure_threshold=1, recovery_time=60))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    home = w.generate(MSG, session_id="alice").instance
    fake.configure(home, status=503)
    moved = w.generate(MSG, session_id="alice").instance  # home fails, opens; the next takes it
    assert moved != home
    assert {w.generate(MSG, session_id="alice").instance for _ in range(4)} == {moved}
    # other sessions whose home is up do not move
    others = {s: w.generate(MSG, session_id=s).instance for s in ("b1", "b2", "b3", "b4", "b5")}
    assert home not in others.values()
    assert all(w.generate(MSG, session_id=s).instance == i for s, i in others.items())


def test_a_session_over_its_bound_spills_to_the_next_instance(fake, runtime_for):
    rt = runtime_for(**pool(FOUR, affinity="session"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "timeout": 20})
    home = w.generate(MSG, session_id="hot").instance
    fake.configure(home, latency=0.5)
    threads = [
        threading.Thread(target=w.generate, args=(MSG,), kwargs={"session_id": "hot"}) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    counts = fake.stats()
    # four at once over four instances: the bound (ceil(1.25 * n / 4)) keeps them from all
    # queueing on the one home instance
    assert counts[home]["peak_in_flight"] <= 2
    assert sum(s["requests"] for s in counts.values()) == 5


# -- outlier ejection -------------------------------------------------------------------------


def test_a_slow_member_is_ejected_and_the_others_serve(fake, runtime_for):
    od = {"min_requests": 3, "latency_factor": 3, "base_ejection_time": 30, "max_ejection_percent": 34}
    rt = runtime_for(**pool({"a": {}, "b": {}, "c": {}}, outlier_detection=od))
    fake.configure("c", latency=0.6)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(9):
        w.generate(MSG)
    assert fake.stats("c")["requests"] == 3  # three measurements, then out
    assert tried(fake)[-3:] != ["c"] * 3
    fake.reset()
    assert {w.generate(MSG).instance for _ in range(6)} == {"a", "b"}
    assert "c" not in tried(fake)
    res = rt.stats()["resilience"]["outlier_detection"]["pool:p"]
    assert res["ejections_total"] == 1 and list(res["ejected"]) == ["c"]


def test_a_pool_of_two_never_ejects_at_34_percent(fake, runtime_for):
    od = {"min_requests": 3, "latency_factor": 3}
    rt = runtime_for(**pool({"a": {}, "c": {}}, outlier_detection=od))
    fake.configure("c", latency=0.2)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert [w.generate(MSG).instance for _ in range(10)] == ["a", "c"] * 5
    assert rt.stats()["resilience"]["outlier_detection"]["pool:p"]["ejections_total"] == 0


def test_an_ejected_member_still_serves_when_every_other_is_down(fake, runtime_for):
    od = {"min_requests": 3, "latency_factor": 3, "max_ejection_percent": 50}
    rt = runtime_for(**pool({"a": {}, "b": {}, "c": {}}, outlier_detection=od, failure_threshold=1))
    fake.configure("c", latency=0.6)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "max_instance_attempts": 3})
    for _ in range(9):
        w.generate(MSG)
    assert rt.stats()["resilience"]["outlier_detection"]["pool:p"]["ejected"].keys() == {"c"}
    fake.clear("c")
    fake.configure("a", status=503)
    fake.configure("b", status=503)
    assert w.generate(MSG).instance == "c"
