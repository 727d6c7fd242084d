"""RetryBudget: the rolling window, the ratio and the floor, with a manual clock."""

from __future__ import annotations

import pytest

from actors.clock import ManualClock
from actors.resilience.budget import DEFAULT_MIN_PER_SECOND, DEFAULT_RATIO, RetryBudget


@pytest.mark.parametrize(
    "ratio,min_per_second,requests,expected_retries",
    [
        (0.2, 1, 0, 10),  # the floor alone: 1/s over 10 s
        (0.2, 1, 100, 30),  # 0.2 x 100 + 10
        (0.2, 0, 100, 20),
        (0.5, 0, 7, 3),  # 3.5 allowed: the fourth would exceed it
        (0.0, 0, 1000, 0),  # no retries at all
        (1.0, 0.5, 4, 9),
    ],
)
def test_retries_allowed_in_one_window(ratio, min_per_second, requests, expected_retries):
    clock = ManualClock()
    budget = RetryBudget(ratio, min_per_second)
    for _ in range(requests):
        budget.record_request(clock.now())
    granted = 0
    while budget.try_retry(clock.now()):
        granted += 1
        assert granted < 10_000
    assert granted == expected_retries
    assert budget.exhausted == 1


def test_the_window_rolls_off_old_requests_and_retries():
    clock = ManualClock()
    budget = RetryBudget(ratio=0.5, min_per_second=0)
    for _ in range(10):
        budget.record_request(clock.now())
    assert [budget.try_retry(clock.now()) for _ in range(6)] == [True] * 5 + [False]
    clock.advance(5)
    for _ in range(4):
        budget.record_request(clock.now())
    assert budget.try_retry(clock.now())  # 14 requests -> 7 allowed, 5 used
    assert budget.try_retry(clock.now())
    assert not budget.try_retry(clock.now())
    clock.advance(5.05)  # the first 10 requests and 5 retries have left the window
    snap = budget.snapshot(clock.now())
    assert (snap["requests"], snap["retries"]) == (4, 2)
    assert not budget.try_retry(clock.now())  # 4 requests -> 2 allowed, 2 used (at t+5)
    clock.advance(5)
    assert budget.snapshot(clock.now())["requests"] == 0


def test_a_long_quiet_empties_the_whole_window():
    clock = ManualClock()
    budget = RetryBudget(ratio=1, min_per_second=0)
    for _ in range(50):
        budget.record_request(clock.now())
        budget.try_retry(clock.now())
    clock.advance(3600)
    assert budget.snapshot(clock.now())["requests"] == 0
    assert not budget.try_retry(clock.now())


def test_a_stale_timestamp_counts_in_the_newest_bucket():
    clock = ManualClock()
    budget = RetryBudget(ratio=0, min_per_second=0.1)  # one retry per window
    assert budget.try_retry(clock.now())
    assert not budget.try_retry(clock.now() - 20)  # earlier than seen: still counted as now


def test_can_retry_spends_nothing():
    clock = ManualClock()
    budget = RetryBudget(ratio=0, min_per_second=0.1)
    assert budget.can_retry(clock.now()) and budget.can_retry(clock.now())
    assert budget.try_retry(clock.now())
    assert not budget.can_retry(clock.now())
    assert budget.exhausted == 0


def test_default_is_linkerds():
    budget = RetryBudget()
    assert (budget.ratio, budget.min_per_second) == (DEFAULT_RATIO, DEFAULT_MIN_PER_SECOND) == (0.2, 10)


@pytest.mark.parametrize("ratio,floor", [(-0.1, 1), (0.2, -1), (float("nan"), 1), (0.2, float("inf"))])
def test_bad_values_are_refused(ratio, floor):
    with pytest.raises(ValueError):
        RetryBudget(ratio, floor)
