"""The drivers' ``Attempt``: every way an attempt can end gives its lease back exactly once, with
the verdict that ending means; on a manual clock, no threads, no sleeps, no HTTP."""

from __future__ import annotations

import pytest

from actors.backoff import Backoff
from actors.drivers import Attempt
from actors.errors import BadRequestError, LLMTimeoutError, RateLimitError, ServiceUnavailableError
from actors.request import Call, RequestRun
from actors.response import LLMResponse, StreamChunk

from .conftest import Waiter, tier

ROUTE = "group:g"


def start(build, clock, timeout):
    config, state, events = build(
        models={"a": {"timeout": 5}},
        groups={"g": {**tier(["a"]), "fallback_config": {"circuit_breaker": {"failure_threshold": 1}}}},
    )
    route = state.table.group_route(config, "g")
    run = RequestRun(state, route.plan(), timeout=timeout, backoff=Backoff(0.0), clock=clock)
    call = run.next(Waiter)
    assert type(call) is Call
    return state, run, call, events


class Cancelled(BaseException):
    """Stands in for CancelledError / KeyboardInterrupt: not an LLM error."""


@pytest.mark.parametrize(
    ("ending", "timeout", "raises", "state_after", "events"),
    [
        ("success", 10.0, None, "closed", []),
        ("unhealthy", 10.0, None, "open", ["open"]),
        ("rate limited", 10.0, None, "parked", ["parked"]),
        ("caller's fault", 10.0, BadRequestError, "closed", []),  # raised again, given back anyway
        ("instance timeout", 10.0, None, "open", ["open"]),  # the instance's own timeout: its fault
        ("deadline timeout", 2.0, None, "closed", []),  # the request's deadline: no verdict
        ("cancelled", 10.0, Cancelled, "closed", []),
        ("stream closed after the final chunk", 10.0, GeneratorExit, "closed", []),
        ("stream closed early", 10.0, GeneratorExit, "closed", []),
    ],
)
def test_every_ending_gives_the_lease_back_once(build, clock, ending, timeout, raises, state_after, events):
    state, run, call, heard = start(build, clock, timeout)
    assert state.snapshot(clock.now())["a"]["in_flight"] == 1
    stream = ending.startswith("stream")

    def body(attempt):
        if ending == "success":
            attempt.succeeded(LLMResponse(content="hi"))
        elif ending == "unhealthy":
            attempt.failed(ServiceUnavailableError("503"))
        elif ending == "rate limited":
            attempt.failed(RateLimitError("429", retry_after=3.0))
        elif ending == "caller's fault":
            attempt.failed(BadRequestError("400"))
        elif ending.endswith("timeout"):
            attempt.failed(LLMTimeoutError("slow"))
        elif ending == "cancelled":
            raise Cancelled
        else:
            attempt.add(StreamChunk(delta="hi"))
            if ending == "stream closed after the final chunk":
                attempt.add(StreamChunk(finish_reason="stop"))
            raise GeneratorExit

    if raises is None:
        with Attempt(run, call, stream=stream) as attempt:
            body(attempt)
    else:
        with pytest.raises(raises), Attempt(run, call, stream=stream) as attempt:
            body(attempt)
    snap = state.snapshot(clock.now())["a"]
    assert snap["in_flight"] == 0  # given back; a second give-back would raise
    assert snap["state"] == state_after
    assert [e[2] for e in heard] == events
    assert (run.response is not None) == (ending in ("success", "stream closed after the final chunk"))


@pytest.mark.parametrize(
    ("stream", "timeout", "bound"), [(False, 10.0, 5.0), (False, 2.0, 2.0), (True, 10.0, 10.0)]
)
def test_the_deadline_bounds_an_attempt_in_one_place(build, clock, stream, timeout, bound):
    _, run, call, _ = start(build, clock, timeout)
    with Attempt(run, call, stream=stream) as attempt:
        assert attempt.until == clock.now() + bound  # a reply: the nearer bound; a stream: the deadline
        attempt.succeeded(LLMResponse(content="hi"))


async def test_async_with_gives_back_through_the_async_form(build, clock):
    state, run, call, _ = start(build, clock, 10.0)
    async with Attempt(run, call) as attempt:
        attempt.failed(ServiceUnavailableError("503"))
    assert state.snapshot(clock.now())["a"]["in_flight"] == 0
    assert state.down_until("a", ROUTE, clock.now()) is not None
