"""Rate-limit header parsing and the pacing decision."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from actors.resilience.pacing import Limit, RateLimits, decide, parse_rate_limits, rate_limits_from_raw

NOW_WALL = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def parse(headers):
    return parse_rate_limits(httpx.Headers(headers), now_wall=NOW_WALL)


@pytest.mark.parametrize(
    "headers,name,remaining,limit,reset",
    [
        (
            {"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s"},
            "requests",
            59,
            None,
            1.0,
        ),
        ({"X-RateLimit-Remaining-Tokens": "0", "x-ratelimit-reset-tokens": "1m20s"}, "tokens", 0, None, 80.0),
        (
            {"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "120ms"},
            "requests",
            3,
            None,
            0.12,
        ),
        (
            {
                "x-ratelimit-limit-requests": "100",
                "x-ratelimit-remaining-requests": "5",
                "x-ratelimit-reset-requests": "30s",
            },
            "requests",
            5,
            100,
            30.0,
        ),
        (
            {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2024-05-01T12:00:30Z",
            },
            "requests",
            0,
            50,
            30.0,
        ),
        (
            {
                "anthropic-ratelimit-output-tokens-remaining": "10",
                "anthropic-ratelimit-output-tokens-reset": "2024-05-01T12:00:02.5+00:00",
            },
            "output_tokens",
            10,
            None,
            2.5,
        ),
        # a reset already past means "now"; garbage numbers read as unknown
        (
            {
                "anthropic-ratelimit-tokens-remaining": "x",
                "anthropic-ratelimit-tokens-reset": "2024-05-01T11:00:00Z",
            },
            "tokens",
            None,
            None,
            0.0,
        ),
        (
            {"x-ratelimit-remaining-requests": "-4", "x-ratelimit-reset-requests": "soon"},
            "requests",
            None,
            None,
            None,
        ),
    ],
)
def test_parse(headers, name, remaining, limit, reset):
    limits = parse(headers)
    assert limits is not None
    got = limits.get(name)
    assert got is not None
    assert got.remaining == remaining
    assert got.limit == limit
    assert got.reset == (pytest.approx(reset) if reset is not None else None)


def test_no_rate_limit_headers_is_none():
    assert parse({"content-type": "application/json", "retry-after": "3"}) is None


def test_a_huge_reset_is_capped_at_an_hour():
    limits = parse({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30h"})
    assert limits.get("requests").reset == 3600.0


def L(name, remaining, limit, reset):
    return Limit(name, remaining, limit, reset)


@pytest.mark.parametrize(
    "limits,tokens,park,gap",
    [
        # nothing left: park until the reset, the latest of the exhausted ones
        ([L("requests", 0, 100, 30.0)], 10, 30.0, None),
        ([L("requests", 0, None, 5.0), L("tokens", 0, None, 50.0)], 10, 50.0, None),
        # plenty left: nothing to do
        ([L("requests", 90, 100, 30.0)], 10, None, None),
        ([L("requests", 50, None, 30.0)], 10, None, None),
        ([L("tokens", 100_000, 1_000_000, 60.0)], 100, None, None),  # 10% exactly is not low
        # little left: one call every reset / calls-left seconds
        ([L("requests", 5, 100, 30.0)], 10, None, 6.0),
        ([L("requests", 4, None, 2.0)], 10, None, 0.5),
        ([L("tokens", 2000, 100_000, 60.0)], 500, None, 15.0),  # 4 calls of 500 tokens left
        # the tightest limit decides; an exhausted one wins over pacing
        ([L("requests", 5, 100, 30.0), L("tokens", 900, 100_000, 60.0)], 100, None, 60 / 9),
        ([L("requests", 5, 100, 30.0), L("tokens", 0, 100_000, 60.0)], 100, 60.0, None),
        # less than one call's tokens left: as good as none
        ([L("tokens", 50, 100_000, 20.0)], 100, 20.0, None),
        # without a reset or a remaining count nothing can be said
        ([L("requests", 0, 100, None)], 10, None, None),
        ([L("requests", None, 100, 10.0)], 10, None, None),
    ],
)
def test_decide(limits, tokens, park, gap):
    decision = decide(RateLimits(tuple(limits)), tokens)
    if park is None and gap is None:
        assert decision is None
        return
    assert decision.park == (pytest.approx(park) if park is not None else None)
    assert decision.gap == (pytest.approx(gap) if gap is not None else None)
    assert decision.reason.startswith("paced: ")


def test_decide_without_limits():
    assert decide(None) is None


def test_from_raw_pairs_reads_only_rate_limit_headers():
    raw = [
        (b"Content-Type", b"application/json"),
        (b"X-RateLimit-Remaining-Requests", b" 0 "),
        (b"x-ratelimit-reset-requests", b"1m20s"),
        (b"anthropic-ratelimit-tokens-remaining", b"10"),
    ]
    limits = rate_limits_from_raw(raw)
    assert limits.get("requests") == Limit("requests", 0, None, 80.0)
    assert limits.get("tokens").remaining == 10
    assert rate_limits_from_raw([(b"content-type", b"text/plain")]) is None


@pytest.mark.parametrize(
    "headers,interesting",
    [
        ({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "99"}, False),
        ({"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "9"}, True),
        ({"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "0"}, True),
        ({"x-ratelimit-remaining-tokens": "5000"}, True),  # no limit: decide needs the call's tokens
        ({"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "40"}, False),
        ({"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "4"}, True),
    ],
)
def test_from_raw_skips_answers_with_plenty_left(headers, interesting):
    reset = {k.replace("remaining", "reset"): "1s" for k in headers if "remaining" in k}
    raw = [(k.encode(), v.encode()) for k, v in {**headers, **reset}.items()]
    limits = rate_limits_from_raw(raw)
    assert (limits is not None) is interesting
    if not interesting:  # nothing lost: the full parse would have decided nothing either
        assert decide(parse_rate_limits(dict(headers, **reset)), 10) is None
