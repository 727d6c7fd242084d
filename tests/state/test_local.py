"""LocalState, the in-process owner of request state: leases, FIFO queueing, outcomes, breaker
transitions, parking, probes, reload; every case on a manual clock, no threads, no sleeps."""

from __future__ import annotations

import pytest

from actors.outcome import Outcome
from actors.state.gate import NEVER
from actors.state.owner import StateOwner
from actors.state.target import Blocked, Lease

from .conftest import Ticket, Waiter, tier

ROUTE = "group:g"


def group(models, *, breaker=None, **tier_settings):
    spec = tier(models, **tier_settings)
    if breaker is not None:
        spec["fallback_config"] = {"circuit_breaker": breaker}
    return {"g": spec}


def first_target(state, config):
    return state.table.group_route(config, "g").steps[0].target


def plan_of(state, config):
    return state.table.group_route(config, "g").plan()


def test_local_state_implements_the_seam(build):
    _, state, _ = build(models={"a": {}}, groups=group(["a"]))
    assert isinstance(state, StateOwner)


@pytest.mark.parametrize(
    ("model", "tier_limits", "admitted", "free_in"),
    [
        ({"concurrency_limit": 2}, {}, 2, 0.0),  # full until a release: "until" is now
        ({}, {"concurrency_limit": 1}, 1, 0.0),  # the tier's budget, shared by its models
        ({"rpm_limit": 3}, {}, 3, 60.0),  # the rolling minute frees its oldest slot then
        ({}, {"rpm_limit": 2}, 2, 60.0),
    ],
)
def test_limits_admit_up_to_the_limit_then_say_when(build, clock, model, tier_limits, admitted, free_in):
    config, state, _ = build(models={"a": model}, groups=group(["a"], **tier_limits))
    target, now = first_target(state, config), clock.now()
    leases = [state.lease(target, Ticket(plan_of(state, config)), now, None) for _ in range(admitted)]
    assert all(isinstance(lease, Lease) for lease in leases)
    refused = state.lease(target, Ticket(plan_of(state, config)), now, None)
    assert refused == Blocked(True, now + free_in)
    for lease in leases:
        state.give_back(lease, Outcome.SUCCESS, now)
    assert state.snapshot(now)["a"]["in_flight"] == 0
    later = clock.advance(free_in)
    assert isinstance(state.lease(target, Ticket(plan_of(state, config)), later, None), Lease)


def test_fifo_queue_wakes_the_first_waiter_and_keeps_newcomers_behind(build, clock):
    config, state, _ = build(models={"a": {"concurrency_limit": 1}}, groups=group(["a"]))
    target, now = first_target(state, config), clock.now()
    holder = state.lease(target, Ticket(plan_of(state, config)), now, None)
    first, second = Ticket(plan_of(state, config)), Ticket(plan_of(state, config))
    steps = [
        # (who asks, expected answer, queue afterwards (ticket order))
        (first, Blocked(True, now), [first]),
        (second, Blocked(True, NEVER), [first, second]),  # behind the first: waits for a turn
    ]
    for ticket, expected, queue in steps:
        assert state.lease(target, ticket, now, Waiter) == expected
        assert list(target.waiters) == [t.waiter for t in queue]
    state.give_back(holder, Outcome.SUCCESS, now)
    assert (first.waiter.handed, second.waiter.handed) == (True, False)  # FIFO: the head only
    # The newcomer may not take the permit the head was woken for.
    assert state.lease(target, second, now, Waiter) == Blocked(True, NEVER)
    lease = state.lease(target, first, now, Waiter)
    assert isinstance(lease, Lease) and first.waiter is None
    assert list(target.waiters) == [second.waiter] and not second.waiter.handed  # no room: not woken
    state.give_back(lease, Outcome.SUCCESS, now)
    assert second.waiter.handed
    assert isinstance(state.lease(target, second, now, Waiter), Lease)
    assert not target.waiters


def test_leaving_the_queue_head_passes_the_turn_on(build, clock):
    config, state, _ = build(models={"a": {"concurrency_limit": 1}}, groups=group(["a"]))
    target, now = first_target(state, config), clock.now()
    holder = state.lease(target, Ticket(plan_of(state, config)), now, None)
    first, second = Ticket(plan_of(state, config)), Ticket(plan_of(state, config))
    state.lease(target, first, now, Waiter)
    state.lease(target, second, now, Waiter)
    state.give_back(holder, Outcome.SUCCESS, now)
    woken = first.waiter
    state.leave(first, now)  # woken, but it gave up (deadline, cancellation)
    assert woken.gone and first.waiter is None
    assert second.waiter.handed and list(target.waiters) == [second.waiter]


@pytest.mark.parametrize(
    ("outcome", "retry_after", "down_in", "event", "shown"),
    [
        (Outcome.SUCCESS, None, None, None, "closed"),
        (Outcome.UNHEALTHY, 30.0, 30.0, "open", "open"),  # the server's Retry-After sets the period
        (Outcome.RATE_LIMITED, 12.0, 12.0, "parked", "parked"),
        (Outcome.RATE_LIMITED, None, 1.0, "parked", "parked"),  # no hint: the default backoff's first step
        (Outcome.FATAL, None, NEVER, "disabled", "disabled"),
        (Outcome.CALLER_FAULT, None, None, None, "closed"),  # the caller's fault: no verdict
        (None, None, None, None, "closed"),  # cancelled or cut by the deadline: no verdict
    ],
)
def test_give_back_records_the_outcome(build, clock, outcome, retry_after, down_in, event, shown):
    config, state, events = build(models={"a": {}}, groups=group(["a"], breaker={"failure_threshold": 1}))
    target, now = first_target(state, config), clock.now()
    lease = state.lease(target, Ticket(plan_of(state, config)), now, None)
    state.give_back(lease, outcome, now, retry_after=retry_after, reason="why")
    expected = None if down_in is None else (NEVER if down_in == NEVER else now + down_in)
    assert state.down_until("a", ROUTE, now) == expected
    assert [e[2] for e in events] == ([event] if event else [])
    assert state.snapshot(now)["a"]["state"] == shown
    assert state.snapshot(now)["a"]["in_flight"] == 0
    if outcome is Outcome.FATAL:
        assert state.disabled_reason("a") == "why"


def test_breaker_reads_are_pure_and_tick_commits_the_transition(build, clock):
    config, state, events = build(
        models={"a": {}}, groups=group(["a"], breaker={"failure_threshold": 1, "half_open_requests": 1})
    )
    target = first_target(state, config)

    def lease():
        return state.lease(target, Ticket(plan_of(state, config)), clock.now(), None)

    state.give_back(lease(), Outcome.UNHEALTHY, clock.now(), retry_after=10.0)
    opened = clock.now()
    script = [
        # (advance, action, state shown, events so far)
        (9.0, "read", "open", ["open"]),
        (1.0, "read", "half_open", ["open"]),  # the period elapsed: read as half-open, nothing fired
        (0.0, "tick", "half_open", ["open", "half_open"]),  # the supervisor's timer commits it
        (0.0, "trial fails", "open", ["open", "half_open", "open"]),
        (20.0, "probe passed", "half_open", ["open", "half_open", "open", "half_open"]),
        (0.0, "trial succeeds", "closed", ["open", "half_open", "open", "half_open", "closed"]),
    ]
    for advance, action, shown, seen in script:
        now = clock.advance(advance)
        if action == "tick":
            assert state.tick("a", now) == {ROUTE: None}
        elif action == "trial fails":
            trial = lease()
            assert isinstance(trial, Lease)
            assert isinstance(lease(), Blocked)  # one trial at a time
            state.give_back(trial, Outcome.UNHEALTHY, now, retry_after=30.0)
        elif action == "probe passed":
            assert state.needs_probe("a", ROUTE, now)
            state.probe_passed("a", now)
        elif action == "trial succeeds":
            state.give_back(lease(), Outcome.SUCCESS, now)
        assert state.snapshot(now)["a"]["breakers"][ROUTE]["state"] == shown, (action, now - opened)
        assert [e[2] for e in events] == seen, action
    assert not state.needs_probe("a", ROUTE, clock.now())


def test_an_outcome_after_the_open_period_commits_half_open_first(build, clock):
    config, state, events = build(models={"a": {}}, groups=group(["a"], breaker={"failure_threshold": 1}))
    target = first_target(state, config)
    early = state.lease(target, Ticket(plan_of(state, config)), clock.now(), None)
    late = state.lease(target, Ticket(plan_of(state, config)), clock.now(), None)
    state.give_back(early, Outcome.UNHEALTHY, clock.now(), retry_after=5.0)
    state.give_back(late, Outcome.SUCCESS, clock.advance(5.0))  # a trial's verdict, in effect
    assert [e[2] for e in events] == ["open", "half_open", "closed"]


@pytest.mark.parametrize(
    ("config_disabled", "fatal", "needs_probe", "after_probe"),
    [
        (False, True, True, None),  # disabled by an answer: a passing probe lifts it
        (True, False, False, "off in config"),  # disabled by config: only a reload lifts it
        (False, False, False, None),
    ],
)
def test_probes_and_disables(build, clock, config_disabled, fatal, needs_probe, after_probe):
    model = {"disabled_reason": "off in config"} if config_disabled else {}
    config, state, _ = build(models={"a": model, "b": {}}, groups=group(["a", "b"]))
    now = clock.now()
    if fatal:
        lease = state.lease(first_target(state, config), Ticket(plan_of(state, config)), now, None)
        state.give_back(lease, Outcome.FATAL, now, reason="key revoked")
    assert state.needs_probe("a", ROUTE, now) is needs_probe
    state.probe_passed("a", now)
    assert state.disabled_reason("a") == after_probe


def test_reload_keeps_kept_state_and_leases_in_flight(build, clock):
    config, state, _ = build(
        models={"a": {}, "b": {}}, groups=group(["a", "b"], breaker={"failure_threshold": 1})
    )
    target, now = first_target(state, config), clock.now()
    in_flight = state.lease(target, Ticket(plan_of(state, config)), now, None)
    other = state.lease(target, Ticket(plan_of(state, config)), now, None)
    state.give_back(other, Outcome.UNHEALTHY, now, retry_after=60.0)
    table = state.table
    state.reconfigure(config, dict.fromkeys(config.models), keep={"a", "b"})
    assert state.table is not table  # a new structure: caches keyed on it rebuild
    assert state.down_until(other.member.name, ROUTE, now) == now + 60.0  # kept: still open
    state.give_back(in_flight, Outcome.SUCCESS, now)  # taken before the reload, given back after
    assert all(s["in_flight"] == 0 for s in state.snapshot(now).values())
    state.reconfigure(config, dict.fromkeys(config.models), keep=set())
    assert state.down_until(other.member.name, ROUTE, now) is None  # changed: judged afresh


def test_latency_is_recorded_through_the_owner(build, clock):
    _, state, _ = build(models={"a": {}}, groups=group(["a"]))
    state.record_latency("a", 0.25)
    state.record_latency("gone", 1.0)  # removed by a reload meanwhile: ignored
    assert state.snapshot(clock.now())["a"]["latency_ewma"] == 0.25


async def test_the_async_forms_answer_like_the_sync_ones(build, clock):
    config, state, _ = build(models={"a": {"concurrency_limit": 1}}, groups=group(["a"]))
    target, now = first_target(state, config), clock.now()
    lease = await state.alease(target, Ticket(plan_of(state, config)), now, None)
    assert isinstance(lease, Lease)
    assert await state.alease(target, Ticket(plan_of(state, config)), now, None) == Blocked(True, now)
    await state.agive_back(lease, Outcome.SUCCESS, now)
    assert state.snapshot(now)["a"]["in_flight"] == 0
