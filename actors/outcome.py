"""The outcome taxonomy: what one attempt's result means for the instance and the request."""

from __future__ import annotations

import enum

__all__ = ["Outcome"]


class Outcome(str, enum.Enum):
    """Class of one attempt's result (SPEC §4); policies decide on this, never on raw errors."""

    #: 2xx with a valid body: breaker success.
    SUCCESS = "success"
    #: 429 (not quota): park the instance until the server says; not a breaker failure.
    RATE_LIMITED = "rate_limited"
    #: 5xx, 529, timeout, connection error, malformed body, mid-stream error: breaker failure.
    UNHEALTHY = "unhealthy"
    #: 400/413/422 and context length: the request is wrong; no retry, no breaker change.
    CALLER_FAULT = "caller_fault"
    #: 401/403/404 and ``insufficient_quota``: disable the instance with the reason.
    FATAL = "fatal"
