"""RateWindow, TokenWindow and ConcurrencyLimit."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.clock import ManualClock
from actors.window import ConcurrencyLimit, RateWindow, TokenWindow

# -- RateWindow ---------------------------------------------------------------------------------


def test_rate_window_admits_limit_then_refuses():
    clock = ManualClock()
    w = RateWindow(3, period=60.0)
    assert [w.try_acquire(clock.now()) for _ in range(5)] == [True, True, True, False, False]
    assert w.count(clock.now()) == 3
    assert w.available(clock.now()) == 0


def test_rate_window_slot_frees_exactly_one_period_after_admission():
    clock = ManualClock(0.0)
    w = RateWindow(2, period=60.0)
    assert w.try_acquire(0.0)
    assert w.try_acquire(10.0)
    assert w.next_free_at(10.0) == 60.0
    assert not w.try_acquire(59.5)
    assert w.available(60.0) == 1
    assert w.try_acquire(60.0)
    assert w.next_free_at(60.0) == 70.0
    assert w.next_free_at(70.0) == 70.0
    assert w.count(200.0) == 0
    clock.set(200.0)
    assert w.next_free_at(clock.now()) == clock.now()


@pytest.mark.parametrize(
    "limit,period,arrivals,admitted",
    [
        (1, 1.0, [0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 1.0, 2.0]),
        (2, 10.0, [0, 1, 2, 9, 10, 11, 12], [0, 1, 10, 11]),
        (3, 5.0, [0, 0, 0, 0, 5, 5, 5, 5], [0, 0, 0, 5, 5, 5]),
    ],
)
def test_rate_window_table(limit, period, arrivals, admitted):
    w = RateWindow(limit, period)
    assert [t for t in arrivals if w.try_acquire(float(t))] == admitted


def test_rate_window_stale_now_cannot_over_admit():
    w = RateWindow(1, period=10.0)
    assert w.try_acquire(100.0)
    assert not w.try_acquire(95.0)  # a timestamp from before the last one seen
    assert w.try_acquire(110.0)


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 1, "period": 0.0}, {"limit": 1, "period": -1.0}])
def test_rate_window_rejects_bad_parameters(kw):
    with pytest.raises(ValueError):
        RateWindow(**kw)


arrivals = st.lists(st.floats(min_value=0.0, max_value=500.0, allow_nan=False), min_size=1, max_size=200).map(
    sorted
)


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 8), period=st.sampled_from([0.5, 1.0, 7.0, 60.0]), times=arrivals)
def test_rate_window_never_exceeds_limit_in_any_window(limit, period, times):
    w = RateWindow(limit, period)
    admitted, refused = [], []
    for t in times:
        free_at = w.next_free_at(t)
        ok = w.try_acquire(t)
        assert ok == (free_at == t)
        if ok:
            admitted.append(t)
        else:
            assert free_at > t
            refused.append(t)
    # Every period-long window [x, x + period) holds at most `limit` admissions; the tightest
    # windows start at an admission.
    for i, start in enumerate(admitted):
        j = bisect.bisect_left(admitted, start + period)
        assert j - i <= limit
    # And it is not stingy: a refused arrival really had `limit` admissions in the window before it.
    for t in refused:
        inside = [a for a in admitted if a <= t and a + period > t]
        assert len(inside) >= limit


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(1, 5), times=arrivals)
def test_rate_window_next_free_at_is_when_it_admits(limit, times):
    period = 10.0
    w = RateWindow(limit, period)
    for t in times:
        w.try_acquire(t)
    last = times[-1]
    at = w.next_free_at(last)
    if at > last:
        probe = RateWindow(limit, period)
        for t in times:
            probe.try_acquire(t)
        assert not probe.try_acquire(math.nextafter(at, -math.inf))
        assert probe.try_acquire(at)


# -- TokenWindow --------------------------------------------------------------------------------


def test_token_window_spend_and_refuse():
    w = TokenWindow(1000, period=60.0)
    assert w.try_spend(0.0, 600)
    assert not w.try_spend(1.0, 500)
    assert w.try_spend(1.0, 400)
    assert w.used(1.0) == 1000
    assert w.available(1.0) == 0
    assert w.next_free_at(1.0, 1) == 60.0
    assert w.next_free_at(1.0, 600) == 60.0
    assert w.next_free_at(1.0, 601) == 61.0
    assert w.try_spend(60.0, 600)
    assert w.try_spend(0.0, 0)  # zero always fits


def test_token_window_record_past_the_limit():
    w = TokenWindow(100, period=10.0)
    assert w.try_spend(0.0, 50)
    w.record(1.0, 120)  # learned after the call: counted even past the limit
    assert w.used(1.0) == 170
    assert w.available(1.0) == 0
    assert not w.try_spend(2.0, 1)
    assert w.next_free_at(2.0, 1) == 11.0  # both entries must leave: 170 - 50 = 120 > 99
    assert w.next_free_at(2.0, 100) == 11.0
    assert w.try_spend(11.0, 100)


def test_token_window_too_large_never_fits():
    w = TokenWindow(100)
    assert not w.try_spend(0.0, 101)
    assert w.next_free_at(0.0, 101) == math.inf
    assert w.used(0.0) == 0


def test_token_window_rejects_negative_tokens():
    w = TokenWindow(100)
    with pytest.raises(ValueError):
        w.try_spend(0.0, -1)
    with pytest.raises(ValueError):
        w.record(0.0, -1)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 1000),
    events=st.lists(st.tuples(st.floats(0.0, 200.0, allow_nan=False), st.integers(0, 400)), max_size=100),
)
def test_token_window_never_exceeds_limit_in_any_window(limit, events):
    period = 10.0
    w = TokenWindow(limit, period)
    spent = []
    for t, tokens in sorted(events):
        free_at = w.next_free_at(t, tokens)
        ok = w.try_spend(t, tokens)
        assert ok == (free_at == t)
        if ok:
            spent.append((t, tokens))
    for t0, _ in spent:
        assert sum(n for t, n in spent if t0 <= t < t0 + period) <= limit


# -- ConcurrencyLimit ---------------------------------------------------------------------------


def test_concurrency_limit_counts_and_refuses():
    c = ConcurrencyLimit(2)
    assert c.try_acquire() and c.try_acquire()
    assert not c.try_acquire()
    assert c.in_flight == 2 and c.available == 0
    c.release()
    assert c.in_flight == 1 and c.available == 1
    assert c.try_acquire()


def test_concurrency_limit_detects_a_double_release():
    c = ConcurrencyLimit(1)
    assert c.try_acquire()
    c.release()
    with pytest.raises(RuntimeError, match="released more often than acquired"):
        c.release()
    assert c.in_flight == 0  # the bad release changed nothing


def test_concurrency_limit_rejects_zero():
    with pytest.raises(ValueError):
        ConcurrencyLimit(0)
