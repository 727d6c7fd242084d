"""Every way a provider call fails over HTTP, and the typed error it becomes."""

from __future__ import annotations

import time
import traceback

import pytest

from actors.errors import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    LLMCallError,
    LLMTimeoutError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
    StreamInterruptedError,
)
from actors.outcome import Outcome

from .helpers import KEY, collect, failure, probe

STATUSES = [
    (400, BadRequestError, Outcome.CALLER_FAULT),
    (401, AuthenticationError, Outcome.FATAL),
    (403, AuthenticationError, Outcome.FATAL),
    (404, ModelNotFoundError, Outcome.FATAL),
    (408, ServiceUnavailableError, Outcome.UNHEALTHY),
    (409, ServiceUnavailableError, Outcome.UNHEALTHY),
    (413, BadRequestError, Outcome.CALLER_FAULT),
    (422, BadRequestError, Outcome.CALLER_FAULT),
    (429, RateLimitError, Outcome.RATE_LIMITED),
    (500, ServiceUnavailableError, Outcome.UNHEALTHY),
    (502, ServiceUnavailableError, Outcome.UNHEALTHY),
    (503, ServiceUnavailableError, Outcome.UNHEALTHY),
    (529, ServiceUnavailableError, Outcome.UNHEALTHY),
]


@pytest.mark.parametrize("status, error, outcome", STATUSES)
async def test_status_classes(provider, fake, mode, status, error, outcome):
    fake.configure("inst", status=status)
    exc = await failure(provider, mode)
    assert type(exc) is error
    assert exc.outcome is outcome
    assert exc.status_code == status
    assert exc.instance == "inst"
    assert exc.provider == provider.kind
    assert f"HTTP {status}" in str(exc) and str(exc).startswith("[inst] ")


@pytest.mark.parametrize(
    "fault, expected",
    [
        ({"status": 429, "retry_after": 2}, 2.0),
        ({"status": 429, "retry_after_ms": 1500}, 1.5),
        (
            {
                "status": 429,
                "headers": {"x-ratelimit-reset-requests": "6s", "x-ratelimit-remaining-requests": "0"},
            },
            6.0,
        ),
        ({"status": 429}, None),
        ({"status": 503, "retry_after": 3}, 3.0),
        ({"status": 529, "retry_after_ms": 250}, 0.25),
        # A failing server's rate-limit resets say nothing about when it recovers.
        ({"status": 500, "headers": {"x-ratelimit-reset-requests": "6s"}}, None),
    ],
)
async def test_retry_after(provider, fake, mode, fault, expected):
    fake.configure("inst", **fault)
    exc = await failure(provider, mode)
    assert exc.retry_after == expected
    if expected is not None:
        assert f"retry after {expected:.1f} s" in str(exc)


async def test_rate_limit_message_says_what_to_do(provider, fake, mode):
    fake.configure("inst", status=429, retry_after=2)
    exc = await failure(provider, mode)
    assert isinstance(exc, RateLimitError)
    assert "the server asked to retry after 2.0 s" in str(exc)
    assert "rate limit" in str(exc).lower()  # the provider's own words are kept


async def test_insufficient_quota(provider, fake, mode):
    fake.configure("inst", status=429, error_code="insufficient_quota")
    exc = await failure(provider, mode)
    assert type(exc) is QuotaExceededError
    assert exc.outcome is Outcome.FATAL
    assert exc.error_code == "insufficient_quota"
    assert provider.key_env in str(exc)


async def test_context_length(provider, fake, mode):
    fake.configure("inst", status=400, error_code="context_length_exceeded")
    exc = await failure(provider, mode)
    assert type(exc) is ContextWindowExceededError
    assert exc.outcome is Outcome.CALLER_FAULT
    assert "context_window" in str(exc)


async def test_authentication_message_names_the_key_variable(provider, fake, mode):
    fake.configure("inst", status=401)
    exc = await failure(provider, mode)
    assert f"check {provider.key_env}" in str(exc)


async def test_hang_times_out_within_the_timeout(provider, fake, mode):
    fake.configure("inst", hang=True)
    start = time.perf_counter()
    exc = await failure(provider, mode, timeout=0.1)
    assert type(exc) is LLMTimeoutError
    assert exc.outcome is Outcome.UNHEALTHY
    assert time.perf_counter() - start < 2.0
    assert "0.1 s" in str(exc)


@pytest.mark.parametrize("fault", [{"drop": True}, {"garbage": True}])
async def test_drop_and_garbage_are_unhealthy(provider, fake, mode, fault):
    fake.configure("inst", **fault)
    exc = await failure(provider, mode)
    assert type(exc) is ServiceUnavailableError
    assert exc.outcome is Outcome.UNHEALTHY


async def test_connection_refused(provider, fake, mode):
    fake.kill()
    try:
        exc = await failure(provider, mode)
    finally:
        fake.restore()
    assert type(exc) is ServiceUnavailableError
    assert exc.error_code == "connect_error"
    assert "could not connect" in str(exc)


async def test_disabled_model(make, fake, shape, mode):
    provider = make(shape, disabled_reason="no API key: ANTHROPIC_API_KEY is not set")
    for attempt in (failure(provider, mode), collect(provider, mode), probe(provider, mode)):
        try:
            result = await attempt
        except AuthenticationError as exc:
            result = exc
        exc = result[1] if isinstance(result, tuple) else result
        assert type(exc) is AuthenticationError
        assert exc.outcome is Outcome.FATAL
        assert "no API key: ANTHROPIC_API_KEY is not set" in str(exc)
    assert fake.stats("inst")["requests"] == 0


# -- streams ---------------------------------------------------------------------------------


async def test_mid_stream_failure_after_chunks_carries_the_partial_text(provider, fake, mode):
    fake.configure("inst", fail_mid_stream=2)
    chunks, exc = await collect(provider, mode)
    assert type(exc) is StreamInterruptedError
    assert exc.outcome is Outcome.UNHEALTHY
    assert exc.partial_text == "echo: hello" == "".join(c.delta for c in chunks)
    assert exc.instance == "inst"


async def test_stream_failure_before_the_first_chunk_is_the_ordinary_error(provider, fake, mode):
    fake.configure("inst", fail_mid_stream=0)
    chunks, exc = await collect(provider, mode)
    assert chunks == []
    assert type(exc) is ServiceUnavailableError  # not StreamInterruptedError: the runtime may fall back


@pytest.mark.parametrize(
    "fault, error",
    [
        ({"status": 429, "retry_after": 2}, RateLimitError),
        ({"status": 401}, AuthenticationError),
        ({"garbage": True}, ServiceUnavailableError),
        ({"drop": True}, ServiceUnavailableError),
        ({"hang": True}, LLMTimeoutError),
    ],
)
async def test_stream_errors_before_any_chunk(provider, fake, mode, fault, error):
    fake.configure("inst", **fault)
    # Only the hang waits for the timeout; the others must not race a short one on a busy machine.
    chunks, exc = await collect(provider, mode, timeout=0.1 if fault.get("hang") else 5.0)
    assert chunks == []
    assert type(exc) is error
    if error is RateLimitError:
        assert exc.retry_after == 2.0


async def test_stream_stalling_between_events_times_out(provider, fake, mode):
    # The fake waits before every event after the first, which carries no text in either shape:
    # the timeout bounds each wait, and nothing reached the caller, so it is the plain timeout.
    fake.configure("inst", chunk_delay=1.0)
    start = time.perf_counter()
    chunks, exc = await collect(provider, mode, timeout=0.1)
    assert chunks == []
    assert type(exc) is LLMTimeoutError
    assert time.perf_counter() - start < 2.0


async def test_probe_failures(provider, fake, mode):
    fake.configure("inst", status=503, retry_after=5)
    with pytest.raises(ServiceUnavailableError) as info:
        await probe(provider, mode)
    assert info.value.retry_after == 5.0
    fake.configure("inst", status=401)
    with pytest.raises(AuthenticationError):
        await probe(provider, mode)


# -- secrets ---------------------------------------------------------------------------------


def _texts(exc: BaseException) -> list[str]:
    out = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    out += [str(getattr(exc, name, "")) for name in ("message", "args", "partial_text")]
    return out


async def test_the_key_never_appears_in_errors_or_reprs(provider, fake, mode, clients):
    seen: list[LLMCallError] = []
    faults = [{"status": s} for s, _, _ in STATUSES] + [
        {"status": 429, "error_code": "insufficient_quota"},
        {"garbage": True},
        {"drop": True},
        {"hang": True},
    ]
    for fault in faults:
        fake.configure("inst", **fault)
        # Only the hang needs the short timeout: every other fault must be seen as itself.
        seen.append(await failure(provider, mode, timeout=0.1 if fault.get("hang") else 5.0))
    fake.configure("inst", fail_mid_stream=1)
    seen.append((await collect(provider, mode))[1])
    fake.kill()
    try:
        seen.append(await failure(provider, mode))
    finally:
        fake.restore()
    assert len(seen) == len(faults) + 2 and all(isinstance(e, LLMCallError) for e in seen)
    for exc in seen:
        for text in _texts(exc):
            assert KEY not in text
    for text in (repr(provider), str(provider), repr(provider.errors), repr(provider.model), repr(clients)):
        assert KEY not in text
