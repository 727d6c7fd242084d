"""Backoff: growth, cap, jitter bounds, and the deadline check."""

from __future__ import annotations

import random

import pytest

from actors.backoff import Backoff, fits


@pytest.mark.parametrize(
    "base,factor,max_delay,expected",
    [
        (1.0, 2.0, 30.0, [1, 2, 4, 8, 16, 30, 30, 30]),
        (0.5, 3.0, 10.0, [0.5, 1.5, 4.5, 10, 10, 10, 10, 10]),
        (2.0, 1.0, 30.0, [2] * 8),
        (0.0, 2.0, 30.0, [0] * 8),
        (5.0, 2.0, 1.0, [1] * 8),
    ],
)
def test_growth_and_cap(base, factor, max_delay, expected):
    b = Backoff(base, factor, max_delay, jitter="none")
    assert [b.delay(i) for i in range(8)] == expected
    assert [b.ceiling(i) for i in range(8)] == expected


def test_huge_attempt_index_does_not_overflow():
    b = Backoff(1.0, 10.0, 30.0, jitter="none")
    assert b.delay(10_000) == 30.0


@pytest.mark.parametrize("seed", range(10))
def test_full_jitter_bounds(seed):
    b = Backoff(1.0, 2.0, 30.0, jitter="full", rng=random.Random(seed))
    for i in range(10):
        assert 0.0 <= b.delay(i) <= b.ceiling(i)


@pytest.mark.parametrize("seed", range(10))
def test_equal_jitter_bounds(seed):
    b = Backoff(1.0, 2.0, 30.0, jitter="equal", rng=random.Random(seed))
    for i in range(10):
        d = b.delay(i)
        assert b.ceiling(i) / 2 <= d <= b.ceiling(i)


def test_jitter_is_deterministic_with_a_seeded_rng_and_spreads():
    one = Backoff(1.0, rng=random.Random(42))
    two = Backoff(1.0, rng=random.Random(42))
    a = [one.delay(3) for _ in range(50)]
    assert a == [two.delay(3) for _ in range(50)]
    assert len(set(a)) == 50
    assert sum(a) / len(a) == pytest.approx(4.0, rel=0.25)  # full jitter averages half of 8


def test_callable_like_tenacity():
    b = Backoff(1.0, jitter="none")
    assert b(2) == 4.0


@pytest.mark.parametrize(
    "kw",
    [
        {"base": -1.0},
        {"base": 1.0, "factor": 0.5},
        {"base": 1.0, "max_delay": -1.0},
        {"base": 1.0, "jitter": "half"},
    ],
)
def test_rejects_bad_parameters(kw):
    with pytest.raises(ValueError):
        Backoff(**kw)


def test_rejects_negative_attempt():
    with pytest.raises(ValueError):
        Backoff(1.0).delay(-1)


@pytest.mark.parametrize(
    "now,delay,deadline,expected",
    [
        (10.0, 1.0, 12.0, True),
        (10.0, 2.0, 12.0, True),  # ends exactly at the deadline
        (10.0, 2.5, 12.0, False),
        (10.0, 0.0, 9.0, False),  # already past the deadline
        (10.0, 1e9, None, True),  # no deadline
    ],
)
def test_fits(now, delay, deadline, expected):
    assert fits(now, delay, deadline) is expected
