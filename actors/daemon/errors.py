"""What a failed request answers: one ``APIError`` (status, kind, message, headers) per failure.

Each wire module renders an ``APIError`` in its client's own error shape; this module decides
the status from the runtime's error hierarchy (``actors.errors``):

=====================================================  ======  =================================
failure                                                status  kind
=====================================================  ======  =================================
bad body, bad field, ``BadRequestError`` from upstream  400     invalid_request
our own key missing or wrong                            401     authentication
unknown ``model``                                       404     not_found
body not sent within ``--body-timeout``                 408     request_timeout
body over ``--max-body``                                413     too_large
every candidate parked (``NoCapacityError`` with      429     rate_limited (+ ``Retry-After``)
``rate_limited``; ``AllAttemptsFailedError`` whose
attempts were all rate limited)
nothing available, every attempt failed, draining       503     unavailable
the request's deadline passed (``LLMTimeoutError``)     504     timeout
anything else                                           500     internal
=====================================================  ======  =================================

A request that ended because the retry budget refused it a retry says "retry budget exhausted"
in its message and carries ``x-llm-actors-retry-budget: exhausted``.
"""

from __future__ import annotations

import math

from actors.errors import (
    AllAttemptsFailedError,
    BadRequestError,
    LLMCallError,
    LLMError,
    LLMTimeoutError,
    NoCapacityError,
    RateLimitError,
    WrapperConfigError,
)
from actors.outcome import Outcome

__all__ = ["APIError", "from_llm_error", "internal", "retry_after_header"]

#: Seconds a 429 asks the client to wait when the runtime has no better figure.
DEFAULT_RETRY_AFTER = 1.0


class APIError(Exception):
    """An HTTP error answer: ``kind`` is wire-neutral; ``param`` names the offending field."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param
        self.headers = headers or {}

    def __repr__(self) -> str:
        return f"APIError({self.status}, {self.kind!r}, {self.message!r})"


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) and ``retry-after-ms`` for a wait of ``seconds``."""
    wait = DEFAULT_RETRY_AFTER if seconds is None else max(0.0, float(seconds))
    return {
        "retry-after": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
    }


def from_llm_error(exc: BaseException) -> APIError:
    """The answer for an error a wrapper raised."""
    error = _answer(exc)
    if isinstance(exc, LLMError) and exc.retry_budget_exhausted:
        # The message says so too; the header lets a proxy or a dashboard count it.
        error.headers["x-llm-actors-retry-budget"] = "exhausted"
    return error


def _answer(exc: BaseException) -> APIError:
    if isinstance(exc, BadRequestError):
        return APIError(400, "invalid_request", str(exc), headers=_upstream_status(exc))
    if isinstance(exc, LLMTimeoutError):
        return APIError(504, "timeout", str(exc))
    if isinstance(exc, NoCapacityError):
        if exc.rate_limited:
            return APIError(429, "rate_limited", str(exc), headers=retry_after_header(exc.retry_after))
        headers = retry_after_header(exc.retry_after) if exc.retry_after is not None else None
        return APIError(503, "unavailable", str(exc), headers=headers)
    if isinstance(exc, AllAttemptsFailedError):
        if _rate_limited(exc):
            last = exc.last_error
            wait = last.retry_after if isinstance(last, LLMCallError) else None
            return APIError(429, "rate_limited", str(exc), headers=retry_after_header(wait))
        return APIError(503, "unavailable", str(exc))
    if isinstance(exc, WrapperConfigError):
        return APIError(500, "internal", str(exc))
    if isinstance(exc, LLMCallError):  # a single attempt's error escaping as is: the instance failed
        return APIError(503, "unavailable", str(exc))
    if isinstance(exc, LLMError):
        return APIError(500, "internal", str(exc))
    return internal(exc)


def internal(exc: BaseException) -> APIError:
    """The answer for a bug: its type only (its message may hold anything), and where to look."""
    return APIError(500, "internal", f"internal error: {type(exc).__name__}; see the daemon's log")


def _rate_limited(exc: AllAttemptsFailedError) -> bool:
    """Whether the request failed because of rate limits: every attempt was a 429."""
    outcomes = [getattr(a, "outcome", None) for a in exc.attempts]
    if outcomes:
        return all(o is Outcome.RATE_LIMITED for o in outcomes)
    return isinstance(exc.last_error, RateLimitError)


def _upstream_status(exc: BadRequestError) -> dict[str, str]:
    return {"x-llm-actors-upstream-status": str(exc.status_code)} if exc.status_code else {}
