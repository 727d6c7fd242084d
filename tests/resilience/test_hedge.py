"""HedgePolicy and TtfbSamples: when an attempt is late enough to hedge."""

from __future__ import annotations

import pytest

from actors.resilience.hedge import MIN_SAMPLES, HedgePolicy, TtfbSamples


def samples(values):
    s = TtfbSamples()
    for v in values:
        s.add(v)
    return s


@pytest.mark.parametrize(
    "after,max_extra,elapsed,extra,ttfb,expected",
    [
        (0.2, 1, 0.1, 0, None, False),  # not late yet
        (0.2, 1, 0.2, 0, None, True),
        (0.2, 1, 5.0, 1, None, False),  # max_extra reached
        (0.2, 2, 5.0, 1, None, True),
        ("p95", 1, 9.9, 0, None, False),  # nothing measured: never hedge on a guess
        ("p95", 1, 9.9, 0, [0.1] * (MIN_SAMPLES - 1), False),  # too few measurements
        ("p95", 1, 0.11, 0, [0.1] * MIN_SAMPLES, True),
        ("p95", 1, 0.09, 0, [0.1] * MIN_SAMPLES, False),
        # p95 of 1..100 ms is 95 ms
        ("p95", 1, 0.094, 0, [i / 1000 for i in range(1, 101)], False),
        ("p95", 1, 0.095, 0, [i / 1000 for i in range(1, 101)], True),
    ],
)
def test_should_hedge(after, max_extra, elapsed, extra, ttfb, expected):
    policy = HedgePolicy(after, max_extra)
    assert policy.should_hedge(elapsed, extra, samples(ttfb) if ttfb is not None else None) is expected


def test_p95_follows_recent_samples():
    s = samples([0.1] * 200)
    assert s.p95() == 0.1
    for _ in range(200):
        s.add(1.0)  # the window holds the last 200 only
    assert s.p95() == 1.0


def test_percentile_ignores_garbage_and_is_none_when_empty():
    s = TtfbSamples()
    assert s.percentile(0.5) is None
    s.add(float("nan"))
    s.add(-1)
    s.add(float("inf"))
    assert len(s) == 0


@pytest.mark.parametrize("after,max_extra", [(0, 1), (-1, 1), ("p99", 1), (float("inf"), 1), (0.2, 0)])
def test_bad_values_are_refused(after, max_extra):
    with pytest.raises(ValueError):
        HedgePolicy(after, max_extra)
