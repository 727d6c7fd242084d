"""OutlierDetector: who is ejected, for how long, and never too many at once."""

from __future__ import annotations

import pytest

from actors.clock import ManualClock
from actors.resilience.ejection import OutlierDetector


def feed(detector, clock, latencies, rounds):
    """``rounds`` measurements of each member at its latency; returns the ejections seen."""
    ejected = []
    for _ in range(rounds):
        for name, seconds in latencies.items():
            if detector.record(name, seconds, clock.now()) is not None:
                ejected.append(name)
    return ejected


@pytest.mark.parametrize(
    "latencies,rounds,percent,expected",
    [
        ({"a": 0.1, "b": 0.1, "c": 1.0}, 5, 34, ["c"]),  # 10x the median: out
        ({"a": 0.1, "b": 0.1, "c": 0.25}, 5, 34, []),  # 2.5x: under latency_factor 3
        ({"a": 0.1, "b": 0.1, "c": 1.0}, 4, 34, []),  # fewer than min_requests
        ({"a": 0.1, "b": 1.0}, 10, 34, []),  # a pool of two never ejects at 34%
        ({"a": 0.1, "b": 0.1, "c": 1.0, "d": 1.0, "e": 0.1, "f": 0.1}, 5, 34, ["c", "d"]),
        ({"a": 0.1, "b": 0.1, "c": 1.0, "d": 1.0, "e": 0.1, "f": 0.1}, 5, 20, ["c"]),  # floor(1.2)
        ({"a": 0.1, "b": 0.1, "c": 1.0, "d": 1.0}, 5, 0, []),
    ],
)
def test_who_is_ejected(latencies, rounds, percent, expected):
    clock = ManualClock()
    detector = OutlierDetector(latencies, max_ejection_percent=percent)
    assert feed(detector, clock, latencies, rounds) == expected
    assert sorted(n for n in latencies if detector.is_ejected(n, clock.now())) == expected


def test_ejection_time_grows_with_each_ejection_and_the_member_starts_afresh():
    clock = ManualClock()
    detector = OutlierDetector("abc", base_ejection_time=30)
    slow = {"a": 0.1, "b": 0.1, "c": 1.0}
    assert feed(detector, clock, slow, 5) == ["c"]
    assert detector.ejected_until("c", clock.now()) == clock.now() + 30
    clock.advance(29.9)
    assert detector.is_ejected("c", clock.now())
    clock.advance(0.1)
    assert not detector.is_ejected("c", clock.now())
    # back: four fresh measurements are not enough to judge it again
    assert feed(detector, clock, {"c": 1.0}, 4) == []
    until = detector.record("c", 1.0, clock.now())
    assert until == clock.now() + 60  # the second ejection lasts twice as long
    assert detector.ejections == 2


def test_a_member_that_recovers_is_not_ejected():
    clock = ManualClock()
    detector = OutlierDetector("abc")
    feed(detector, clock, {"a": 0.1, "b": 0.1, "c": 0.1}, 5)
    # one slow blip does not move the median of the last 20
    assert detector.record("c", 5.0, clock.now()) is None


def test_unknown_members_and_garbage_are_ignored():
    clock = ManualClock()
    detector = OutlierDetector("ab")
    assert detector.record("zz", 9.0, clock.now()) is None
    assert detector.record("a", float("nan"), clock.now()) is None
    assert not detector.is_ejected("zz", clock.now())


@pytest.mark.parametrize(
    "kwargs",
    [{"latency_factor": 1}, {"min_requests": 0}, {"max_ejection_percent": 101}, {"base_ejection_time": 0}],
)
def test_bad_values_are_refused(kwargs):
    with pytest.raises(ValueError):
        OutlierDetector("ab", **kwargs)
