"""The request's decision core (``RequestRun``) over a LocalState on a manual clock: when it calls,
waits, backs off and fails, and why; no threads, no sleeps, no HTTP."""

from __future__ import annotations

import pytest

from actors.backoff import Backoff
from actors.errors import AllAttemptsFailedError, LLMTimeoutError, NoCapacityError, ServiceUnavailableError
from actors.outcome import Outcome
from actors.request import Call, Fail, RequestRun, Sleep, Wait
from actors.state.target import Lease

from .conftest import Ticket, Waiter, tier


def pool(models, strategy="instance_rotation", attempts=2):
    return {
        "models": {n: {"timeout": 5} for n in models},
        "groups": {"g": tier(list(models))},
        "pools": {
            "p": {
                "task_groups": ["g.echelon1"],
                "failure_threshold": 100,
                "fallback_config": {"strategy": strategy, "max_instance_attempts": attempts},
            }
        },
    }


def start(state, config, clock, *, timeout=10.0, queue_timeout=None, strategy=None, retry_delay=1.0):
    route = state.table.pool_route(config, "p", strategy=strategy)
    backoff = Backoff(retry_delay, jitter="none")
    return RequestRun(
        state, route.plan(), timeout=timeout, backoff=backoff, queue_timeout=queue_timeout, clock=clock
    )


def attempt(run, call, error=None):
    """What a driver's ``Attempt`` does: judge, then give the lease back."""
    now = run.clock()
    if error is None:
        run.state.give_back(call.lease, Outcome.SUCCESS, now)
        return
    run.failed(call.lease, error, 0.1)
    run.state.give_back(call.lease, error.outcome, now, retry_after=error.retry_after, reason=str(error))


@pytest.mark.parametrize(
    ("timeout", "expected_timeout", "clipped"),
    [
        (10.0, 5.0, False),  # the instance's own timeout bounds the attempt
        (2.0, 2.0, True),  # the request's deadline does: a timeout then is not the instance's fault
    ],
)
def test_call_is_bounded_by_the_nearer_of_timeout_and_deadline(
    build, clock, timeout, expected_timeout, clipped
):
    config, state, _ = build(**pool("a"))
    action = start(state, config, clock, timeout=timeout).next(Waiter)
    assert type(action) is Call
    assert (action.timeout, action.clipped) == (expected_timeout, clipped)


def test_past_the_deadline_the_request_fails_with_a_timeout(build, clock):
    config, state, _ = build(**pool("a"))
    run = start(state, config, clock, timeout=3.0)
    clock.advance(3.0)
    action = run.next(Waiter)
    assert type(action) is Fail and isinstance(action.error, LLMTimeoutError)


@pytest.mark.parametrize(
    ("queue_timeout", "deadline", "wait"),
    [
        (2.0, 10.0, 2.0),  # the queue timeout bounds the wait
        (None, 10.0, 10.0),  # no queue timeout: wait up to the deadline
        (30.0, 4.0, 4.0),  # never past the deadline
    ],
)
def test_a_full_target_queues_the_request_then_gives_up(build, clock, queue_timeout, deadline, wait):
    config, state, _ = build(**pool({"a": None}) | {"models": {"a": {"concurrency_limit": 1}}})
    holder = start(state, config, clock).next(Waiter)
    run = start(state, config, clock, timeout=deadline, queue_timeout=queue_timeout)
    action = run.next(Waiter)
    assert type(action) is Wait and action.timeout == wait
    target = holder.lease.target
    waiter = action.waiter
    assert list(target.waiters) == [waiter]
    clock.advance(wait)
    action = run.next(Waiter)
    assert type(action) is Fail
    expected = LLMTimeoutError if wait == deadline else NoCapacityError
    assert isinstance(action.error, expected)
    run.leave()  # what every driver does when the request ends, however it ends
    assert not target.waiters and waiter.gone and run.waiter is None


def test_a_released_permit_goes_to_the_queued_request(build, clock):
    config, state, _ = build(**pool({"a": None}) | {"models": {"a": {"concurrency_limit": 1}}})
    holder = start(state, config, clock).next(Waiter)
    run = start(state, config, clock, queue_timeout=5.0)
    wait = run.next(Waiter)
    assert type(wait) is Wait
    state.give_back(holder.lease, Outcome.SUCCESS, clock.now())
    assert wait.waiter.handed
    action = run.next(Waiter)
    assert type(action) is Call and run.waiter is None


@pytest.mark.parametrize(
    ("strategy", "timeout", "after_failure"),
    [
        ("simple_retry", 10.0, Sleep),  # back off, then the same instance
        ("simple_retry", 0.8, Fail),  # the backoff would not fit the deadline: no useless sleep
        ("instance_rotation", 10.0, Call),  # the next instance at once
    ],
)
def test_a_failure_backs_off_or_moves_on(build, clock, strategy, timeout, after_failure):
    config, state, _ = build(**pool("ab", strategy=strategy, attempts=2))
    run = start(state, config, clock, timeout=timeout, strategy=strategy, retry_delay=1.0)
    first = run.next(Waiter)
    attempt(run, first, ServiceUnavailableError("503", instance=first.lease.member.name))
    clock.advance(0.6)
    action = run.next(Waiter)
    assert type(action) is after_failure
    if after_failure is Sleep:
        assert action.delay == 1.0
        clock.advance(action.delay)
        again = run.next(Waiter)
        assert type(again) is Call and again.lease.member is first.lease.member
    elif after_failure is Call:
        assert action.lease.member is not first.lease.member
    else:
        assert isinstance(action.error, AllAttemptsFailedError)


def test_when_every_instance_is_parked_it_says_when_one_is_back(build, clock):
    config, state, _ = build(**pool("ab"))
    now = clock.now()
    target = state.table.pool_route(config, "p").steps[0].target
    for _ in "ab":
        lease = state.lease(target, Ticket(state.table.pool_route(config, "p").plan()), now, None)
        assert isinstance(lease, Lease)
        state.give_back(lease, Outcome.RATE_LIMITED, now, retry_after=7.0)
    action = start(state, config, clock).next(Waiter)
    assert type(action) is Fail and isinstance(action.error, NoCapacityError)
    assert action.error.rate_limited and action.error.retry_after == 7.0


def tiers(retry_delay=1.0):
    """Tier 1 [a, b] with a retry in it, tier 2 [c]."""
    return {
        "models": {n: {"timeout": 5} for n in "abc"},
        "groups": {
            "g": {
                "echelon1": {"models": ["a", "b"], "max_retries": 1},
                "echelon2": {"models": ["c"]},
                "fallback_config": {"strategy": "echelon_down", "retry_delay": retry_delay},
                "circuit_breaker": {"failure_threshold": 100},
            }
        },
    }


@pytest.mark.parametrize(
    ("b_is", "after_failure"),
    [
        ("up", Sleep),  # a retry in the tier is worth a backoff
        ("parked 0.5 s", Sleep),  # back before the backoff ends
        ("parked 7 s", Call),  # down past the backoff: on to tier 2 at once
        ("disabled", Call),
    ],
)
def test_a_backoff_waits_only_for_a_member_up_by_its_end(build, clock, b_is, after_failure):
    config, state, _ = build(**tiers(retry_delay=1.0))
    route = state.table.group_route(config, "g.echelon1")
    now = clock.now()
    if b_is != "up":
        only_b = route.plan()
        only_b.tried.add("a")
        lease = state.lease(route.steps[0].target, Ticket(only_b), now, None)
        assert isinstance(lease, Lease) and lease.member.name == "b"
        outcome = Outcome.FATAL if b_is == "disabled" else Outcome.RATE_LIMITED
        retry_after = None if b_is == "disabled" else float(b_is.split()[1])
        state.give_back(lease, outcome, now, retry_after=retry_after, reason="401")
    run = RequestRun(
        state, route.plan(), timeout=30.0, backoff=Backoff(1.0, jitter="none"), clock=clock, label="g"
    )
    first = run.next(Waiter)
    assert type(first) is Call and first.lease.member.name == "a"
    attempt(run, first, ServiceUnavailableError("503", instance="a"))
    action = run.next(Waiter)
    assert type(action) is after_failure
    if after_failure is Sleep:
        assert action.delay == 1.0
    else:
        assert action.lease.member.name == "c" and run.plan.index == 1
