"""parse_retry_after (every header format) and Parking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actors.clock import ManualClock
from actors.parking import MAX_RETRY_AFTER, Parking, parse_duration, parse_retry_after

# 2024-05-01T12:00:00Z
NOW_WALL = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def parse(headers):
    return parse_retry_after(headers, now_wall=NOW_WALL)


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("250ns", 2.5e-7),
        ("2m", 120.0),
        (" 7s ", 7.0),
        ("3", 3.0),
        (".5s", 0.5),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "1x", "1s garbage", "-1s", "1.2.3s", "ms", "1 s", "nan", "inf", "-3"]
)
def test_parse_duration_garbage(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "headers,expected",
    [
        # retry-after in seconds
        ({"retry-after": "30"}, 30.0),
        ({"Retry-After": "0"}, 0.0),
        ({"RETRY-AFTER": "1.5"}, 1.5),
        ({"retry-after": " 12 "}, 12.0),
        # retry-after as an HTTP date: IMF-fixdate, RFC 850, asctime
        ({"retry-after": "Wed, 01 May 2024 12:00:45 GMT"}, 45.0),
        ({"retry-after": "Wednesday, 01-May-24 12:01:00 GMT"}, 60.0),
        ({"retry-after": "Wed May  1 12:00:10 2024"}, 10.0),
        ({"retry-after": "Wed, 01 May 2024 11:00:00 GMT"}, 0.0),  # already past: now
        # retry-after-ms
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "20"}, 0.02),
        # OpenAI reset durations
        ({"x-ratelimit-reset-requests": "1s"}, 1.0),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"X-RateLimit-Reset-Tokens": "20ms"}, 0.02),
        ({"x-ratelimit-reset-requests": "0h2m3.5s"}, 123.5),
        # Anthropic RFC 3339 resets
        ({"anthropic-ratelimit-requests-reset": "2024-05-01T12:00:30Z"}, 30.0),
        ({"anthropic-ratelimit-tokens-reset": "2024-05-01T12:01:00.500Z"}, 60.5),
        ({"anthropic-ratelimit-input-tokens-reset": "2024-05-01T14:00:05+02:00"}, 5.0),
        ({"Anthropic-RateLimit-Output-Tokens-Reset": "2024-05-01t12:00:07z"}, 7.0),
        ({"anthropic-ratelimit-tokens-reset": "2024-05-01T11:59:00Z"}, 0.0),
        # nothing
        ({}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_each_header_format(headers, expected):
    got = parse(headers)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers,expected",
    [
        # retry-after-ms beats retry-after beats resets
        ({"retry-after-ms": "250", "retry-after": "3", "x-ratelimit-reset-requests": "9s"}, 0.25),
        ({"retry-after": "3", "x-ratelimit-reset-requests": "9s"}, 3.0),
        # garbage at a higher level falls through to the next
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "later", "x-ratelimit-reset-tokens": "2s"}, 2.0),
        # no remaining info: the latest reset (never too early)
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        # remaining says which limit is exhausted: its reset wins even if another is later
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-remaining-tokens": "1500",
            },
            2.0,
        ),
        (
            {
                "anthropic-ratelimit-requests-reset": "2024-05-01T12:00:50Z",
                "anthropic-ratelimit-requests-remaining": "12",
                "anthropic-ratelimit-tokens-reset": "2024-05-01T12:00:20Z",
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-input-tokens-reset": "2024-05-01T12:00:10Z",
                "anthropic-ratelimit-input-tokens-remaining": "0",
            },
            20.0,
        ),
        # several exhausted: the latest of those
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "5s",
                "x-ratelimit-remaining-tokens": "0",
            },
            5.0,
        ),
        # remaining present but none exhausted: the latest of all
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "3",
                "x-ratelimit-reset-tokens": "5s",
                "x-ratelimit-remaining-tokens": "garbage",
            },
            5.0,
        ),
        # a garbage reset is skipped, the valid one used
        ({"x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "4s"}, 4.0),
    ],
)
def test_precedence(headers, expected):
    assert parse(headers) == pytest.approx(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "-5"},
        {"retry-after": "nan"},
        {"retry-after": "inf"},
        {"retry-after": "1e3"},
        {"retry-after": "soon"},
        {"retry-after": ""},
        {"retry-after": "Wed, 99 Foo 2024 99:99:99 GMT"},
        {"retry-after-ms": "-1"},
        {"retry-after-ms": "1.5s"},
        {"x-ratelimit-reset-requests": "-1s"},
        {"x-ratelimit-reset-tokens": "forever"},
        {"anthropic-ratelimit-requests-reset": "2024-13-45T99:00:00Z"},
        {"anthropic-ratelimit-tokens-reset": "tomorrow"},
    ],
)
def test_garbage_is_ignored(headers):
    assert parse(headers) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "86400"},
        {"retry-after-ms": "99999999999"},
        {"x-ratelimit-reset-tokens": "100h"},
        {"anthropic-ratelimit-requests-reset": "2024-05-09T00:00:00Z"},
        {"retry-after": "Thu, 01 Jan 2099 00:00:00 GMT"},
    ],
)
def test_absurd_values_are_capped(headers):
    assert parse(headers) == MAX_RETRY_AFTER


def test_custom_cap_and_wall_clock_default():
    assert parse_retry_after({"retry-after": "600"}, cap=60.0) == 60.0
    assert parse_retry_after({"retry-after": "5"}) == 5.0  # no date: the wall clock is not needed


def test_accepts_any_mapping_of_headers():
    class Headers:
        def items(self):
            return [("Retry-After", "7")]

    assert parse_retry_after(Headers()) == 7.0  # type: ignore[arg-type]


# -- Parking ------------------------------------------------------------------------------------


def test_park_and_unpark():
    clock = ManualClock()
    p = Parking()
    assert not p.is_parked(clock.now())
    assert p.parked_until is None and p.reason is None
    until = p.park(clock.now(), 30.0, "429 from server")
    assert until == clock.now() + 30.0 == p.parked_until
    assert p.is_parked(clock.now())
    assert p.reason == "429 from server"
    clock.advance(29.5)
    assert p.is_parked(clock.now())
    clock.advance(0.5)
    assert not p.is_parked(clock.now())  # parked_until itself is free
    p.park(clock.now(), 10.0)
    p.unpark()
    assert not p.is_parked(clock.now())
    assert p.parked_until is None


def test_park_never_shortens_an_existing_park():
    clock = ManualClock()
    p = Parking()
    p.park(clock.now(), 30.0, "long")
    p.park(clock.now(), 5.0, "short")
    assert p.parked_until == clock.now() + 30.0 and p.reason == "long"
    p.park(clock.now(), 40.0, "longer")
    assert p.parked_until == clock.now() + 40.0 and p.reason == "longer"
    clock.advance(100.0)
    p.park(clock.now(), 1.0, "new")  # the old park is over: a new one starts
    assert p.parked_until == clock.now() + 1.0 and p.reason == "new"


@pytest.mark.parametrize("bad", [-3.0, float("nan")])
def test_park_with_a_bad_duration_parks_for_no_time(bad):
    p = Parking()
    p.park(100.0, bad)
    assert not p.is_parked(100.0)


def test_default_backoff_grows_caps_and_resets():
    clock = ManualClock()
    p = Parking()
    chosen = []
    for _ in range(9):
        chosen.append(p.park_default(clock.now()))
        assert p.parked_until == clock.now() + chosen[-1]
        clock.advance(chosen[-1])
    assert chosen == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert p.streak == 9
    p.record_success()
    assert p.streak == 0
    assert p.park_default(clock.now()) == 1.0


def test_hinted_parks_count_toward_the_streak():
    p = Parking()
    p.park(0.0, 0.5)
    p.park(1.0, 0.5)
    assert p.park_default(2.0) == 4.0


def test_parking_snapshot():
    p = Parking()
    assert p.snapshot(0.0) == {"parked": False, "parked_until": None, "reason": None, "rate_limit_streak": 0}
    p.park(0.0, 10.0, "rpm")
    assert p.snapshot(5.0) == {"parked": True, "parked_until": 10.0, "reason": "rpm", "rate_limit_streak": 1}
    assert p.snapshot(10.0)["parked"] is False


def test_parking_rejects_bad_parameters():
    with pytest.raises(ValueError):
        Parking(base=0.0)
    with pytest.raises(ValueError):
        Parking(base=10.0, max_delay=5.0)
