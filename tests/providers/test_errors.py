"""The translation boundary on its own: statuses, bodies and headers in, typed errors out."""

from __future__ import annotations

import json

import httpx
import pytest

from actors.errors import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    LLMTimeoutError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
    StreamInterruptedError,
)
from actors.providers.errors import (
    ErrorContext,
    classify_payload,
    classify_status,
    classify_transport,
    disabled,
    interrupted,
    malformed,
)

SECRET = "sk-live-SECRET-0123456789"
CTX = ErrorContext(
    instance="gpt-a",
    provider="openai",
    model_name="gpt-4",
    base_url="https://api.example/v1",
    key_hint="OPENAI_API_KEY",
    secret=SECRET,
)


def _body(message: str = "boom", code: str | None = None, kind: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


@pytest.mark.parametrize(
    "status, body, error",
    [
        (400, _body(), BadRequestError),
        (400, _body("This model's maximum context length is 8192 tokens"), ContextWindowExceededError),
        (400, _body("x", code="context_length_exceeded"), ContextWindowExceededError),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 5 > 4"}}',
            ContextWindowExceededError,
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}',
            QuotaExceededError,
        ),
        (402, _body(), QuotaExceededError),
        (401, _body(), AuthenticationError),
        (403, _body(), AuthenticationError),
        (404, _body(), ModelNotFoundError),
        (413, _body(), BadRequestError),
        (418, _body(), BadRequestError),
        (422, b'{"detail": "field required"}', BadRequestError),
        (429, _body(code="rate_limit_exceeded", kind="requests"), RateLimitError),
        (429, _body(kind="insufficient_quota", code="insufficient_quota"), QuotaExceededError),
        (408, b"", ServiceUnavailableError),
        (409, b"", ServiceUnavailableError),
        (500, b"", ServiceUnavailableError),
        (529, b"", ServiceUnavailableError),
        (302, b"", ServiceUnavailableError),
    ],
)
def test_status_table(status, body, error):
    exc = classify_status(CTX, status, {}, body)
    assert type(exc) is error
    assert (exc.status_code, exc.instance, exc.provider) == (status, "gpt-a", "openai")


def test_codes_and_messages():
    exc = classify_status(
        CTX,
        429,
        {"retry-after": "2"},
        _body("Rate limit reached", code="rate_limit_exceeded", kind="requests"),
    )
    assert exc.error_code == "rate_limit_exceeded"
    assert exc.retry_after == 2.0
    assert str(exc) == (
        "[gpt-a] openai rate limited (HTTP 429, rate_limit_exceeded): Rate limit reached; "
        "the server asked to retry after 2.0 s"
    )
    exc = classify_status(CTX, 404, {}, _body("no such model", code="model_not_found"))
    assert "check model_name 'gpt-4' and base_url 'https://api.example/v1'" in str(exc)
    exc = classify_status(CTX, 403, {}, _body("nope"))
    assert "OPENAI_API_KEY" in str(exc) and "'gpt-4'" in str(exc)


def test_html_bodies_are_stripped_and_long_messages_trimmed():
    exc = classify_status(CTX, 502, {}, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    assert "502 Bad Gateway" in str(exc) and "<h1>" not in str(exc)
    exc = classify_status(CTX, 400, {}, _body("x" * 5000))
    assert len(str(exc)) < 500


def test_the_key_is_masked_in_echoed_text():
    exc = classify_status(CTX, 401, {}, _body(f"Incorrect API key provided: {SECRET}"))
    assert SECRET not in str(exc) and "***" in str(exc)
    assert SECRET not in str(malformed(CTX, "bad", f"echo {SECRET}".encode()))
    assert SECRET not in repr(CTX)


def test_server_errors_read_only_explicit_retry_headers():
    reset_only = {"x-ratelimit-reset-requests": "6s", "x-ratelimit-remaining-requests": "0"}
    assert classify_status(CTX, 503, reset_only, b"").retry_after is None
    assert classify_status(CTX, 429, reset_only, b"").retry_after == 6.0
    assert classify_status(CTX, 503, httpx.Headers({"Retry-After": "4"}), b"").retry_after == 4.0
    assert classify_status(CTX, 500, {"retry-after-ms": "100", **reset_only}, b"").retry_after == 0.1


@pytest.mark.parametrize(
    "payload, error, status",
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ServiceUnavailableError,
            529,
        ),
        ({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}, RateLimitError, 429),
        (
            {"type": "error", "error": {"type": "authentication_error", "message": "bad"}},
            AuthenticationError,
            401,
        ),
        ({"error": {"message": "?", "type": "weird"}}, ServiceUnavailableError, 500),
        ({"error": "plain text"}, ServiceUnavailableError, 500),
    ],
)
def test_payload_errors(payload, error, status):
    exc = classify_payload(CTX, payload)
    assert type(exc) is error and exc.status_code == status
    assert "error object in the reply" in str(exc)


@pytest.mark.parametrize(
    "exc, error, code",
    [
        (httpx.ReadTimeout("t"), LLMTimeoutError, "timeout"),
        (httpx.ConnectTimeout("t"), LLMTimeoutError, "timeout"),
        (httpx.PoolTimeout("t"), LLMTimeoutError, "timeout"),
        (httpx.ConnectError("refused"), ServiceUnavailableError, "connect_error"),
        (httpx.RemoteProtocolError("peer closed"), ServiceUnavailableError, "connection_dropped"),
        (httpx.ReadError("reset"), ServiceUnavailableError, "connection_dropped"),
        (httpx.ProxyError("proxy"), ServiceUnavailableError, "transport_error"),
    ],
)
def test_transport_errors(exc, error, code):
    out = classify_transport(CTX, exc, 1.5)
    assert type(out) is error and out.error_code == code and out.status_code is None
    if error is LLMTimeoutError:
        assert "1.5 s" in str(out)


def test_interrupted_keeps_the_cause_and_adds_the_partial_text():
    cause = classify_status(CTX, 503, {"retry-after": "1"}, b"")
    out = interrupted(cause, "abc")
    assert type(out) is StreamInterruptedError
    assert (out.partial_text, out.status_code, out.retry_after, out.instance) == ("abc", 503, 1.0, "gpt-a")
    assert interrupted(out, "other") is out


def test_disabled_names_the_reason_and_what_to_set():
    exc = disabled(CTX, "OPENAI_API_KEY is not set")
    assert type(exc) is AuthenticationError
    assert "OPENAI_API_KEY is not set" in str(exc) and "reload" in str(exc)
