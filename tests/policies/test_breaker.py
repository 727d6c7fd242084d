"""CircuitBreaker: transitions, open periods, half-open trials, listeners; all on a ManualClock."""

from __future__ import annotations

import random

import pytest

from actors.breaker import BreakerState, CircuitBreaker
from actors.clock import ManualClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def make(**kw) -> CircuitBreaker:
    kw.setdefault("jitter", 0.0)
    return CircuitBreaker(**kw)


def trip(b: CircuitBreaker, now: float, n: int | None = None) -> None:
    for _ in range(b.failure_threshold if n is None else n):
        b.record_failure(now)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_opens_at_exactly_the_threshold(clock, threshold):
    b = make(failure_threshold=threshold)
    for i in range(threshold - 1):
        b.record_failure(clock.now())
        assert b.state(clock.now()) is CLOSED
        assert b.allow(clock.now())
        assert b.consecutive_failures == i + 1
    b.record_failure(clock.now())
    assert b.state(clock.now()) is OPEN
    assert not b.allow(clock.now())


def test_success_in_closed_resets_the_count(clock):
    b = make(failure_threshold=3)
    trip(b, clock.now(), 2)
    b.record_success(clock.now())
    assert b.consecutive_failures == 0
    trip(b, clock.now(), 2)
    assert b.state(clock.now()) is CLOSED  # 2 + 2 failures, but not consecutive


def test_open_period_then_half_open(clock):
    b = make(failure_threshold=1, recovery_time=30.0)
    trip(b, clock.now())
    t0 = clock.now()
    assert b.open_until == t0 + 30.0
    assert b.retry_at(t0) == t0 + 30.0
    clock.advance(29.999)
    assert not b.allow(clock.now())
    assert b.state(clock.now()) is OPEN
    clock.set(t0 + 30.0)
    assert b.state(clock.now()) is HALF_OPEN  # an elapsed period reads as half-open
    b.tick(clock.now())  # reads are pure: a write (here tick) commits the transition
    assert b.open_until is None
    assert b.retry_at(clock.now()) == clock.now()


def test_allow_moves_open_to_half_open(clock):
    b = make(failure_threshold=1, recovery_time=10.0)
    trip(b, clock.now())
    clock.advance(10.0)
    assert b.allow(clock.now())
    assert b.trials_in_flight == 1
    assert b.state(clock.now()) is HALF_OPEN


@pytest.mark.parametrize("n", [1, 2, 3])
def test_half_open_admits_exactly_n_at_once(clock, n):
    b = make(failure_threshold=1, recovery_time=1.0, half_open_requests=n)
    trip(b, clock.now())
    clock.advance(1.0)
    assert [b.allow(clock.now()) for _ in range(n + 2)] == [True] * n + [False, False]
    assert b.trials_in_flight == n
    assert b.retry_at(clock.now()) is None  # waiting on a trial's verdict
    b.release_trial()
    assert b.trials_in_flight == n - 1
    assert b.retry_at(clock.now()) == clock.now()
    assert b.allow(clock.now())
    assert not b.allow(clock.now())


def test_release_trial_never_goes_negative_or_acts_outside_half_open(clock):
    b = make(failure_threshold=1, recovery_time=1.0)
    b.release_trial()
    assert b.trials_in_flight == 0
    trip(b, clock.now())
    b.release_trial()
    clock.advance(1.0)
    assert b.allow(clock.now())
    b.release_trial()
    b.release_trial()
    assert b.trials_in_flight == 0
    assert b.allow(clock.now())
    assert not b.allow(clock.now())


def test_trial_success_closes_and_resets(clock):
    b = make(failure_threshold=2, recovery_time=1.0, half_open_requests=2)
    trip(b, clock.now())
    clock.advance(1.0)
    assert b.allow(clock.now()) and b.allow(clock.now())
    b.record_success(clock.now())
    assert b.state(clock.now()) is CLOSED
    assert b.trials_in_flight == 0
    assert b.consecutive_failures == 0
    assert b.reopen_count == 0
    # The other trial's late verdict lands in CLOSED and changes nothing harmful.
    b.release_trial()
    assert b.trials_in_flight == 0
    assert b.allow(clock.now())


def test_failure_in_half_open_reopens_with_a_longer_period(clock):
    b = make(failure_threshold=1, recovery_time=10.0, growth=2.0, max_recovery_time=1000.0)
    trip(b, clock.now())
    expected = [10.0, 20.0, 40.0, 80.0]
    for i, period in enumerate(expected):
        assert b.reopen_count == i
        assert b.open_until == clock.now() + period
        clock.advance(period)
        assert b.allow(clock.now())
        b.record_failure(clock.now())
        assert b.state(clock.now()) is OPEN
    assert b.reopen_count == 4
    assert b.open_until == clock.now() + 160.0


def test_open_period_is_capped(clock):
    b = make(failure_threshold=1, recovery_time=10.0, growth=3.0, max_recovery_time=100.0)
    periods = []
    trip(b, clock.now())
    for _ in range(6):
        periods.append(b.open_until - clock.now())
        clock.advance(periods[-1])
        assert b.allow(clock.now())
        b.record_failure(clock.now())
    assert periods == [10.0, 30.0, 90.0, 100.0, 100.0, 100.0]
    assert b.open_period(10_000) == 100.0  # no overflow for absurd counts


def test_close_resets_growth(clock):
    b = make(failure_threshold=1, recovery_time=10.0)
    trip(b, clock.now())
    clock.advance(10.0)
    b.allow(clock.now())
    b.record_failure(clock.now())  # re-open: 20 s
    clock.advance(20.0)
    b.allow(clock.now())
    b.record_success(clock.now())
    assert b.state(clock.now()) is CLOSED and b.reopen_count == 0
    trip(b, clock.now())
    assert b.open_until == clock.now() + 10.0


@pytest.mark.parametrize("seed", range(20))
def test_jitter_stays_within_bounds_and_is_deterministic(seed):
    def periods(rng):
        clock = ManualClock()
        b = CircuitBreaker(1, 100.0, jitter=0.1, growth=2.0, max_recovery_time=300.0, rng=rng)
        out = []
        trip(b, clock.now())
        for _ in range(4):
            out.append(b.open_until - clock.now())
            clock.set(b.open_until)
            assert b.allow(clock.now())
            b.record_failure(clock.now())
        return out

    first = periods(random.Random(seed))
    assert first == periods(random.Random(seed))
    for got, base in zip(first, [100.0, 200.0, 300.0, 300.0], strict=False):
        assert base * 0.9 <= got <= base * 1.1


def test_jitter_spreads_periods():
    rng = random.Random(7)
    seen = set()
    for _ in range(50):
        b = CircuitBreaker(1, 60.0, rng=rng)
        b.record_failure(0.0)
        seen.add(b.open_until)
    assert len(seen) > 40
    assert min(seen) >= 54.0 and max(seen) <= 66.0


@pytest.mark.parametrize("retry_after", [0.0, 3.5, 45.0, 5000.0])
def test_retry_after_sets_the_period_exactly(clock, retry_after):
    b = CircuitBreaker(1, 60.0, jitter=0.5, max_recovery_time=600.0, rng=random.Random(1))
    b.record_failure(clock.now(), retry_after=retry_after)
    assert b.open_until == clock.now() + retry_after


def test_retry_after_on_reopen_is_exact_but_growth_still_counts(clock):
    b = make(failure_threshold=1, recovery_time=10.0)
    trip(b, clock.now())
    clock.advance(10.0)
    b.allow(clock.now())
    b.record_failure(clock.now(), retry_after=7.0)
    assert b.open_until == clock.now() + 7.0
    assert b.reopen_count == 1
    clock.advance(7.0)
    b.allow(clock.now())
    b.record_failure(clock.now())
    assert b.open_until == clock.now() + 40.0


def test_retry_after_below_threshold_only_counts(clock):
    b = make(failure_threshold=3)
    b.record_failure(clock.now(), retry_after=30.0)
    assert b.state(clock.now()) is CLOSED


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_retry_after_is_ignored(clock, bad):
    b = make(failure_threshold=1, recovery_time=10.0)
    b.record_failure(clock.now(), retry_after=bad)
    assert b.open_until == clock.now() + 10.0


def test_late_verdicts_while_open(clock):
    b = make(failure_threshold=1, recovery_time=10.0)
    trip(b, clock.now())
    until = b.open_until
    b.record_success(clock.now())  # a call admitted before opening
    assert b.state(clock.now()) is OPEN and b.open_until == until
    b.record_failure(clock.now())
    assert b.open_until == until
    b.record_failure(clock.now(), retry_after=3.0)  # never shortens
    assert b.open_until == until
    b.record_failure(clock.now(), retry_after=25.0)  # the server's word may extend it
    assert b.open_until == clock.now() + 25.0


def test_reset(clock):
    events = []
    b = make(failure_threshold=1, on_change=lambda old, new: events.append((old, new)))
    trip(b, clock.now())
    b.reset()
    assert b.state(clock.now()) is CLOSED
    assert b.consecutive_failures == 0 and b.reopen_count == 0 and b.open_until is None
    assert events == [(CLOSED, OPEN), (OPEN, CLOSED)]
    b.reset()
    assert len(events) == 2  # no change, no event


def test_listener_sees_every_transition(clock):
    events = []
    b = make(failure_threshold=1, recovery_time=5.0)
    b.on_change = lambda old, new: events.append((old, new, b.state(clock.now())))
    trip(b, clock.now())
    clock.advance(5.0)
    b.allow(clock.now())
    b.record_failure(clock.now())
    clock.advance(10.0)
    b.state(clock.now())
    b.record_success(clock.now())
    assert [(o, n) for o, n, _ in events] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    # The state is committed before the listener runs.
    assert all(seen is new for _, new, seen in events)


def test_raising_listener_is_contained(clock, caplog):
    def boom(old, new):
        raise RuntimeError("listener bug")

    b = make(failure_threshold=1, recovery_time=5.0, on_change=boom)
    trip(b, clock.now())
    assert b.state(clock.now()) is OPEN
    clock.advance(5.0)
    assert b.allow(clock.now())
    assert b.trials_in_flight == 1
    assert not b.allow(clock.now())
    b.record_success(clock.now())
    assert b.state(clock.now()) is CLOSED
    assert "listener" in caplog.text


def test_snapshot(clock):
    b = make(failure_threshold=2, recovery_time=10.0)
    assert b.snapshot(clock.now()) == {
        "state": "closed",
        "consecutive_failures": 0,
        "open_until": None,
        "reopen_count": 0,
        "trials_in_flight": 0,
    }
    trip(b, clock.now())
    snap = b.snapshot(clock.now())
    assert snap["state"] == "open" and snap["open_until"] == clock.now() + 10.0
    assert snap["consecutive_failures"] == 2
    clock.advance(10.0)
    b.allow(clock.now())
    assert b.snapshot(clock.now())["state"] == "half_open"
    assert b.snapshot(clock.now())["trials_in_flight"] == 1


def test_state_is_a_str_enum():
    assert BreakerState.HALF_OPEN == "half_open"
    assert BreakerState("open") is OPEN


@pytest.mark.parametrize(
    "kw",
    [
        {"failure_threshold": 0},
        {"recovery_time": -1.0},
        {"half_open_requests": 0},
        {"growth": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_rejects_bad_parameters(kw):
    with pytest.raises(ValueError):
        CircuitBreaker(**kw)


def test_max_below_base_keeps_the_base(clock):
    b = make(failure_threshold=1, recovery_time=100.0, max_recovery_time=10.0)
    trip(b, clock.now())
    assert b.open_until == clock.now() + 100.0


def test_table_of_transitions(clock):
    """A scripted run: (action, expected state after, expected allow())."""
    b = make(failure_threshold=2, recovery_time=10.0, half_open_requests=1)
    script = [
        ("fail", CLOSED),
        ("ok", CLOSED),
        ("fail", CLOSED),
        ("fail", OPEN),
        ("wait 9.5", OPEN),
        ("wait 0.5", HALF_OPEN),
        ("allow", HALF_OPEN),
        ("fail", OPEN),
        ("wait 19.5", OPEN),
        ("wait 0.5", HALF_OPEN),
        ("allow", HALF_OPEN),
        ("release", HALF_OPEN),
        ("allow", HALF_OPEN),
        ("ok", CLOSED),
        ("fail", CLOSED),
    ]
    for step, (action, expected) in enumerate(script):
        now = clock.now()
        if action == "fail":
            b.record_failure(now)
        elif action == "ok":
            b.record_success(now)
        elif action == "allow":
            assert b.allow(now), step
        elif action == "release":
            b.release_trial()
        else:
            clock.advance(float(action.split()[1]))
        assert b.state(clock.now()) is expected, (step, action)
