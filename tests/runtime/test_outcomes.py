"""The outcome taxonomy through the runtime: parking, disabling, caller's faults, escalation."""

from __future__ import annotations

import time

import pytest

import actors
from actors.outcome import Outcome

MSG = [{"role": "user", "content": "hi"}]


def pool_of(*names, **pool):
    return dict(
        models={n: {} for n in names},
        groups={"g": {"echelon1": {"models": list(names), "priority": 1}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "rotation_strategy": "round_robin",
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": len(names)},
                **pool,
            }
        },
    )


def instance_state(wrapper, name):
    return next(i for i in wrapper.health()["instances"] if i["instance"] == name)


def test_429_parks_the_instance_for_exactly_the_servers_retry_after(fake, runtime_for):
    rt = runtime_for(**pool_of("a", "b"))
    fake.configure("a", status=429, retry_after=30)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    before = time.monotonic()
    r = w.generate(MSG)
    after = time.monotonic()
    assert [a.outcome for a in r.attempts] == [Outcome.RATE_LIMITED, Outcome.SUCCESS]
    gate = rt.table.gates["a"]
    assert before + 30 <= gate.parking.parked_until <= after + 30
    for _ in range(5):
        assert w.generate(MSG).instance == "b"
    assert fake.stats("a")["requests"] == 1
    state = instance_state(w, "a")
    assert state["state"] == "parked" and not state["available"]


def test_429_with_retry_after_ms_parks_for_milliseconds(fake, runtime_for):
    rt = runtime_for(**pool_of("a", "b"))
    fake.configure("a", status=429, retry_after_ms=1500, times=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    before = time.monotonic()
    w.generate(MSG)
    assert before + 1.5 <= rt.table.gates["a"].parking.parked_until <= time.monotonic() + 1.5


def test_429_is_not_a_breaker_failure(fake, runtime_for):
    rt = runtime_for(**pool_of("a", "b", failure_threshold=1))
    fake.configure("a", status=429, retry_after=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    w.generate(MSG)
    assert rt.table.gates["a"].breakers["pool:p"].consecutive_failures == 0


@pytest.mark.parametrize(
    "fault, error",
    [
        ({"status": 401}, actors.AuthenticationError),
        ({"status": 403}, actors.AuthenticationError),
        ({"status": 404}, actors.ModelNotFoundError),
        ({"status": 429, "error_code": "insufficient_quota"}, actors.QuotaExceededError),
    ],
)
def test_fatal_outcomes_disable_the_instance_with_the_reason(fake, runtime_for, fault, error):
    rt = runtime_for(**pool_of("a", "b"))
    fake.configure("a", **fault)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate(MSG)
    assert r.instance == "b" and r.attempts[0].outcome is Outcome.FATAL
    state = instance_state(w, "a")
    assert state["state"] == "disabled"
    assert str(fault["status"]) in state["reason"]
    assert rt.table.gates["a"].disabled_reason is not None
    for _ in range(3):
        w.generate(MSG)
    assert fake.stats("a")["requests"] == 1


@pytest.mark.parametrize("status", [400, 413, 422])
def test_callers_fault_is_raised_without_retry_or_breaker_change(fake, runtime_for, status):
    rt = runtime_for(**pool_of("a", "b", failure_threshold=1))
    fake.configure("a", status=status)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.BadRequestError) as info:
        w.generate(MSG)
    assert info.value.status_code == status
    assert len(fake.log) == 1
    breaker = rt.table.gates["a"].breakers["pool:p"]
    assert breaker.consecutive_failures == 0
    assert instance_state(w, "a")["available"]


def test_context_length_escalates_to_a_larger_context_target(fake, runtime_for):
    rt = runtime_for(
        models={
            "small": {"context_window": 8000},
            "same": {"context_window": 8000},
            "big": {"context_window": 128000},
        },
        groups={
            "g": {
                "echelon1": {"models": ["small"], "priority": 1},
                "echelon2": {"models": ["same"], "priority": 2},
                "echelon3": {"models": ["big"], "priority": 3},
                "fallback_config": {"strategy": "echelon_down", "max_attempts": 5},
            }
        },
    )
    fake.configure("small", status=400, error_code="context_length_exceeded")
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG)
    assert r.instance == "big"
    assert [i for i, _ in fake.log] == ["small", "big"]


def test_context_length_without_a_larger_target_is_raised(fake, runtime_for):
    rt = runtime_for(**pool_of("a"))
    fake.configure("a", status=400, error_code="context_length_exceeded")
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.ContextWindowExceededError):
        w.generate(MSG)


def test_unhealthy_outcomes_open_the_breaker_at_the_threshold(fake, runtime_for):
    rt = runtime_for(**pool_of("a", "b", failure_threshold=2, recovery_time=60))
    fake.configure("a", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(6):
        assert w.generate(MSG).instance == "b"
    assert fake.stats("a")["requests"] == 2
    assert instance_state(w, "a")["state"] == "open"


@pytest.mark.parametrize("fault", [{"drop": True}, {"garbage": True}, {"status": 529}, {"status": 502}])
def test_transport_and_server_failures_are_unhealthy(fake, runtime_for, fault):
    rt = runtime_for(**pool_of("a", "b"))
    fake.configure("a", **fault)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate(MSG)
    assert [a.outcome for a in r.attempts] == [Outcome.UNHEALTHY, Outcome.SUCCESS]


def test_when_every_candidate_is_open_it_fails_fast_saying_when_one_is_back(fake, runtime_for):
    rt = runtime_for(**pool_of("a", failure_threshold=1, recovery_time=30))
    fake.configure("a", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)
    with pytest.raises(actors.NoCapacityError) as info:
        w.generate(MSG)
    assert 25 <= info.value.retry_after <= 33
    assert "expected back" in str(info.value)
    assert len(fake.log) == 1


def test_a_short_deadline_does_not_count_against_the_instance(fake, runtime_for):
    rt = runtime_for(**pool_of("a", failure_threshold=2))
    fake.configure("a", latency=1.0)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(3):
        with pytest.raises(actors.LLMTimeoutError):
            w.generate(MSG, timeout=0.1)
    assert rt.table.gates["a"].breakers["pool:p"].consecutive_failures == 0
    fake.clear("a")
    assert w.generate(MSG).instance == "a"


async def test_the_request_deadline_bounds_an_async_call(fake, runtime_for):
    rt = runtime_for(**pool_of("a"))
    fake.configure("a", hang=True)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.LLMTimeoutError, match="deadline"):
        await w.generate_async(MSG, timeout=0.3)


def test_no_capacity_says_whether_rate_limits_or_failures_are_to_blame(fake, runtime_for):
    rt = runtime_for(**pool_of("a", failure_threshold=1, recovery_time=30))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    fake.configure("a", status=429, retry_after=30, times=1)
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)
    with pytest.raises(actors.NoCapacityError) as parked:
        w.generate(MSG)
    assert parked.value.rate_limited and "rate limited" in str(parked.value)
    rt.table.gates["a"].parking.unpark()
    fake.configure("a", status=503, times=1)
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)
    with pytest.raises(actors.NoCapacityError) as opened:
        w.generate(MSG)
    assert not opened.value.rate_limited and opened.value.retry_after > 20


def test_no_capacity_names_disabled_instances_and_why(fake, runtime_for):
    rt = runtime_for(**pool_of("a"))
    fake.configure("a", status=401)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)
    with pytest.raises(actors.NoCapacityError, match=r"disabled: a: .*401"):
        w.generate(MSG)
