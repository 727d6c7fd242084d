"""The one boundary where provider failures become ``actors.errors`` types.

Policies never see an HTTP status or an httpx exception; everything a provider can do wrong is
translated here::

    HTTP status + headers + body ──► classify_status ───► an LLMCallError subclass (table below)
    an error object in a 2xx body
    or in a stream (Anthropic ``event: error``) ──► classify_payload ──► the same, by error type
    httpx or aiohttp exception ───► classify_transport ─► LLMTimeoutError / ServiceUnavailableError
    2xx with a body we cannot read ─► malformed ─────────► ServiceUnavailableError
    any of these after a stream's first chunk ─► interrupted ─► StreamInterruptedError

    status                       error                          retry_after from
    401, 403                     AuthenticationError            -
    402, any 4xx quota error     QuotaExceededError             -
    404                          ModelNotFoundError             -
    429                          RateLimitError                 every rate-limit header
    400, 413, 422, other 4xx     BadRequestError                -
      ... a context-length error ContextWindowExceededError     -
    408, 409, 5xx, 529, other    ServiceUnavailableError        Retry-After / retry-after-ms only

A 5xx's ``retry_after`` reads only the explicit Retry-After headers: OpenAI sends its rate-limit
reset headers on every response, and those say nothing about when a failing server recovers.

Messages name the provider, the status, the provider's own words (trimmed, with the key masked)
and what to do; ``LLMCallError.__str__`` adds the instance name. They never contain the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

try:
    import aiohttp
except ImportError:  # pragma: no cover - the daemon extra is not installed
    aiohttp = None  # type: ignore[assignment]

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
from actors.parking import parse_retry_after
from actors.secrets import Masker, hide_userinfo

__all__ = [
    "ErrorContext",
    "classify_payload",
    "classify_status",
    "classify_transport",
    "disabled",
    "interrupted",
    "malformed",
    "unencodable",
    "unexpected",
]

_MAX_TEXT = 300
_SPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]{0,200}>")
_CONTEXT = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|input is too long|too many input tokens",
    re.IGNORECASE,
)
_QUOTA = re.compile(
    r"insufficient_quota|credit balance is too low|exceeded your current quota", re.IGNORECASE
)

_STATUS_ERRORS: dict[int, type[LLMCallError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: AuthenticationError,
    404: ModelNotFoundError,
    408: ServiceUnavailableError,
    409: ServiceUnavailableError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}

_LABELS: dict[type[LLMCallError], str] = {
    RateLimitError: "rate limited",
    QuotaExceededError: "quota exhausted",
    AuthenticationError: "refused the credentials",
    ModelNotFoundError: "does not know the model",
    ContextWindowExceededError: "context window exceeded",
    BadRequestError: "rejected the request",
    ServiceUnavailableError: "unavailable",
}

# Error types a provider puts in an error object, mapped to the status they come with, for error
# objects that arrive without one (mid-stream, or in a 2xx body).
_PAYLOAD_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "context_length_exceeded": 400,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}

_SERVER_RETRY_HEADERS = ("retry-after", "retry-after-ms")


class ErrorContext:
    """Who is failing, for error messages: instance, provider, model, URL, and which key to check.

    It holds the key only to mask it (in every form: escaped, quoted) in text the provider or a
    library echoes back; ``repr`` never shows it. Credentials in URLs are hidden too.
    """

    __slots__ = ("_masker", "base_url", "instance", "key_hint", "model_name", "provider")

    def __init__(
        self,
        *,
        instance: str,
        provider: str,
        model_name: str,
        base_url: str,
        key_hint: str,
        secret: str | None = None,
        secrets: tuple[str | None, ...] = (),
    ) -> None:
        self.instance = instance
        self.provider = provider
        self.model_name = model_name
        self.base_url = base_url
        self.key_hint = key_hint
        self._masker = Masker(s for s in (secret, *secrets) if s)

    def clean(self, text: str) -> str:
        """``text`` on one line, markup stripped, secrets masked, trimmed for a message."""
        text = hide_userinfo(self._masker.mask(text))
        if "<" in text:
            text = _TAG.sub(" ", text)
        text = _SPACE.sub(" ", text).strip()
        if len(text) > _MAX_TEXT:
            text = text[: _MAX_TEXT - 1] + "…"
        return text

    def error(self, cls: type[LLMCallError], message: str, **fields: Any) -> LLMCallError:
        return cls(message, instance=self.instance, provider=self.provider, **fields)

    def __repr__(self) -> str:
        return f"ErrorContext(instance={self.instance!r}, provider={self.provider!r})"


def classify_status(ctx: ErrorContext, status: int, headers: Mapping[str, str], body: bytes) -> LLMCallError:
    """The error for a non-2xx response."""
    text, code = _read_error_body(body)
    return _classify(ctx, status, headers, text, code)


def classify_payload(ctx: ErrorContext, payload: Any, status: int | None = None) -> LLMCallError:
    """The error for an error object found where a reply was expected (a stream event, a 2xx body).

    ``status_code`` is the status such an error comes with over HTTP (529 for Anthropic's
    ``overloaded_error``, 500 when the type is unknown), so policies treat both alike.
    """
    text, code = _error_fields(payload)
    if status is None:
        status = _PAYLOAD_STATUS.get(code or "", 500)
    return _classify(ctx, status, {}, text, code, where="error object in the reply")


def classify_transport(ctx: ErrorContext, exc: BaseException, timeout: float) -> LLMCallError:
    """The error for an httpx or aiohttp exception: timeouts, refused or dropped connections."""
    detail = ctx.clean(str(exc)) or type(exc).__name__
    kind = _transport_kind(exc)
    if kind == "timeout":
        phase = _TIMEOUT_PHASES.get(type(exc), "waiting")
        return ctx.error(
            LLMTimeoutError,
            f"{ctx.provider} timed out after {timeout:g} s {phase}; raise the timeout or check the server at "
            f"{ctx.base_url}",
            error_code="timeout",
        )
    if kind == "connect":
        return ctx.error(
            ServiceUnavailableError,
            f"{ctx.provider} could not connect to {ctx.base_url} ({detail}); check base_url and that the "
            "server is up",
            error_code="connect_error",
        )
    if kind == "dropped":
        return ctx.error(
            ServiceUnavailableError,
            f"{ctx.provider} at {ctx.base_url} dropped the connection ({detail}); another instance may "
            "take the request",
            error_code="connection_dropped",
        )
    return ctx.error(
        ServiceUnavailableError,
        f"{ctx.provider} transport error {type(exc).__name__} ({detail}); check base_url {ctx.base_url}",
        error_code="transport_error",
    )


def _transport_kind(exc: BaseException) -> str:
    """``timeout``, ``connect``, ``dropped`` or ``other``, for either library's exceptions."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        return "dropped"
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return "timeout"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return "connect"
        # A connection closed or reset mid-exchange, a body cut short, or one that breaks HTTP.
        if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return "dropped"
        if isinstance(exc, aiohttp.ClientResponseError) and exc.status in (0, 400):
            return "dropped"
    return "other"


def malformed(
    ctx: ErrorContext, why: str, body: bytes | str = b"", *, status_code: int | None = 200
) -> LLMCallError:
    """The error for a successful status whose body is not the reply the API promises."""
    if isinstance(body, bytes):
        body = body[: _MAX_TEXT * 2].decode("utf-8", "replace")
    seen = ctx.clean(body)
    tail = f"; got: {seen}" if seen else ""
    return ctx.error(
        ServiceUnavailableError,
        f"{ctx.provider} sent a malformed response ({why}){tail}; the server is misbehaving, another "
        "instance will be tried",
        status_code=status_code,
        error_code="malformed_response",
    )


def unencodable(ctx: ErrorContext, exc: BaseException) -> LLMCallError:
    """The error for a request whose body cannot be sent as JSON (NaN, lone surrogates, objects)."""
    return ctx.error(
        BadRequestError,
        f"the request cannot be sent to {ctx.provider} as JSON ({type(exc).__name__}: {ctx.clean(str(exc))}); "
        "send finite numbers, valid Unicode text and plain JSON values",
        error_code="unencodable_request",
    )


def unexpected(ctx: ErrorContext, exc: BaseException) -> LLMCallError:
    """The error for anything else a provider call raised: never a bare exception to the caller."""
    detail = ctx.clean(str(exc))
    return ctx.error(
        ServiceUnavailableError,
        f"{ctx.provider} call failed unexpectedly ({type(exc).__name__}{': ' + detail if detail else ''}); "
        "another instance may take the request; report it if it persists",
        error_code="unexpected_error",
    )


def interrupted(error: LLMCallError, partial_text: str) -> StreamInterruptedError:
    """``error`` re-raised for a stream that already gave the caller ``partial_text``."""
    if isinstance(error, StreamInterruptedError):
        return error
    return StreamInterruptedError(
        f"stream interrupted after {len(partial_text)} characters: {error.message}",
        partial_text=partial_text,
        instance=error.instance,
        provider=error.provider,
        status_code=error.status_code,
        retry_after=error.retry_after,
        error_code=error.error_code,
    )


def disabled(ctx: ErrorContext, reason: str) -> LLMCallError:
    """The error for a call to an instance the configuration disabled."""
    return ctx.error(
        AuthenticationError,
        f"{ctx.provider} instance is disabled: {ctx.clean(reason)}; fix its configuration (e.g. set "
        f"{ctx.key_hint}) and reload",
        error_code="disabled",
    )


_TIMEOUT_PHASES: dict[type, str] = {
    httpx.ConnectTimeout: "connecting",
    httpx.ReadTimeout: "waiting for the answer",
    httpx.WriteTimeout: "sending the request",
    httpx.PoolTimeout: "waiting for a free connection",
}
if aiohttp is not None:
    _TIMEOUT_PHASES[aiohttp.ConnectionTimeoutError] = "connecting"
    _TIMEOUT_PHASES[aiohttp.SocketTimeoutError] = "waiting for the answer"


def _classify(
    ctx: ErrorContext,
    status: int,
    headers: Mapping[str, str],
    text: str,
    code: str | None,
    *,
    where: str = "",
) -> LLMCallError:
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = BadRequestError if 400 <= status < 500 else ServiceUnavailableError
    if 400 <= status < 500 and _QUOTA.search(f"{code or ''} {text}"):
        cls = QuotaExceededError
    elif cls is BadRequestError and (code == "context_length_exceeded" or _CONTEXT.search(text)):
        cls = ContextWindowExceededError

    retry_after = None
    if cls is RateLimitError:
        retry_after = parse_retry_after(headers)
    elif cls is ServiceUnavailableError:
        picked = {name: headers[name] for name in _SERVER_RETRY_HEADERS if name in headers}
        retry_after = parse_retry_after(picked) if picked else None

    head = f"{ctx.provider} {_LABELS[cls]} ({where or f'HTTP {status}'}" + (f", {code})" if code else ")")
    said = ctx.clean(text)
    message = f"{head}: {said}" if said else head
    return ctx.error(
        cls,
        f"{message}; {_advice(ctx, cls, status, retry_after)}",
        status_code=status,
        retry_after=retry_after,
        error_code=code,
    )


def _advice(ctx: ErrorContext, cls: type[LLMCallError], status: int, retry_after: float | None) -> str:
    if cls is RateLimitError:
        if retry_after is not None:
            return f"the server asked to retry after {retry_after:.1f} s"
        return "no retry hint was given; the instance is parked with backoff"
    if cls is ServiceUnavailableError:
        if retry_after is not None:
            return f"the server asked to retry after {retry_after:.1f} s"
        return "the server is failing; another instance may take the request"
    if cls is QuotaExceededError:
        return f"add credits or quota to the account behind {ctx.key_hint}, or use another key"
    if cls is AuthenticationError:
        if status == 403:
            return f"check that the key in {ctx.key_hint} may use model {ctx.model_name!r}"
        return f"check {ctx.key_hint}"
    if cls is ModelNotFoundError:
        return f"check model_name {ctx.model_name!r} and base_url {ctx.base_url!r}"
    if cls is ContextWindowExceededError:
        return "shorten the conversation or route it to a model with a larger context_window"
    return "fix the request; retrying it will not help"


def _read_error_body(body: bytes) -> tuple[str, str | None]:
    """The provider's error message and code from an error response body, JSON or not."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body[: _MAX_TEXT * 2].decode("utf-8", "replace"), None
    return _error_fields(payload)


def _error_fields(payload: Any) -> tuple[str, str | None]:
    """``(message, code)`` of an error object in OpenAI's or Anthropic's shape (or close to it)."""
    if not isinstance(payload, dict):
        return str(payload), None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error, _code(payload.get("code") or payload.get("type"))
    if not isinstance(error, dict):
        return json.dumps(payload)[: _MAX_TEXT * 2], None
    message = error.get("message") or error.get("detail") or payload.get("message") or ""
    # OpenAI's ``code`` is the specific one ("insufficient_quota"); its ``type`` ("requests") is
    # a class. Anthropic has only ``type``. Quota errors carry the word in either.
    code = error.get("code") or error.get("type")
    if error.get("type") == "insufficient_quota":
        code = "insufficient_quota"
    return str(message), _code(code)


def _code(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
