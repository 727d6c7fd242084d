"""Exceptions raised by llm-actors.

Provider failures are translated into this hierarchy at one boundary
(``actors.providers.errors``), so policies and callers only ever see these types::

    LLMError
    ├── ConfigError                      file + field path
    ├── LLMCallError                     one attempt failed; carries ``outcome``
    │   ├── RateLimitError               429: instance parked for ``retry_after``
    │   ├── ServiceUnavailableError      5xx, 529, connection refused/dropped, garbage body
    │   │   ├── LLMTimeoutError          no answer within the timeout
    │   │   └── StreamInterruptedError   failed after the first chunk; carries ``partial_text``
    │   ├── BadRequestError              400/413/422: the caller's fault
    │   │   └── ContextWindowExceededError
    │   └── InstanceUnusableError        the instance is disabled until reload or a probe passes
    │       ├── AuthenticationError      401/403, or no API key configured
    │       ├── ModelNotFoundError       404
    │       └── QuotaExceededError       ``insufficient_quota``
    ├── AllAttemptsFailedError           every attempt failed; carries ``attempts``
    ├── NoCapacityError                  nothing available now; says when something will be
    └── WrapperError
        ├── TaskGroupWrapperError
        ├── PollingPoolWrapperError
        ├── WrapperFactoryError
        ├── WrapperConfigError
        └── WrapperExecutionError

Messages say what failed and what to do about it; they never contain API keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.outcome import Outcome

__all__ = [
    "AllAttemptsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConfigIssue",
    "ContextWindowExceededError",
    "InstanceUnusableError",
    "LLMCallError",
    # Names the original design used.
    "LLMConfigurationError",
    "LLMError",
    "LLMFallbackError",
    "LLMRateLimitError",
    "LLMServiceUnavailableError",
    "LLMTimeoutError",
    "ModelNotFoundError",
    "NoCapacityError",
    "PollingPoolWrapperError",
    "QuotaExceededError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamInterruptedError",
    "TaskGroupWrapperError",
    "WrapperConfigError",
    "WrapperError",
    "WrapperExecutionError",
    "WrapperFactoryError",
]


class LLMError(Exception):
    """Base class of every error raised by llm-actors."""

    #: True when the retry budget refused this request a retry, so it ended with this error.
    retry_budget_exhausted: bool = False


class ConfigIssue:
    """One problem in a configuration: where it is and what is wrong."""

    __slots__ = ("file", "message", "path")

    def __init__(self, file: str | None, path: str, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.path:
            where = f"{where}: {self.path}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigIssue({str(self)!r})"


class ConfigError(LLMError):
    """A configuration is invalid; ``issues`` lists every problem with its file and field path."""

    def __init__(
        self, issues: Sequence[ConfigIssue] | str, *, file: str | None = None, path: str = ""
    ) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(file, path, issues)]
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__(self._render())

    @property
    def file(self) -> str | None:
        return self.issues[0].file if self.issues else None

    @property
    def path(self) -> str:
        return self.issues[0].path if self.issues else ""

    def _render(self) -> str:
        if len(self.issues) == 1:
            return f"invalid configuration: {self.issues[0]}"
        lines = [f"invalid configuration ({len(self.issues)} problems):"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


class LLMCallError(LLMError):
    """One call to one instance failed.

    ``outcome`` tells the policies what it means; ``retry_after`` (seconds) is the server's
    word on when to come back, when it gave one.
    """

    outcome: Outcome = Outcome.UNHEALTHY

    def __init__(
        self,
        message: str,
        *,
        instance: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        error_code: str | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.instance = instance
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        self.error_code = error_code
        if outcome is not None:
            self.outcome = outcome

    def __str__(self) -> str:
        prefix = f"[{self.instance}] " if self.instance else ""
        return prefix + self.message


class RateLimitError(LLMCallError):
    """The instance answered 429; it is parked for ``retry_after`` seconds."""

    outcome = Outcome.RATE_LIMITED


class ServiceUnavailableError(LLMCallError):
    """The instance is unhealthy: 5xx, 529, connection refused or dropped, or a garbage body."""

    outcome = Outcome.UNHEALTHY


class LLMTimeoutError(ServiceUnavailableError):
    """The instance did not answer within the timeout."""


class StreamInterruptedError(ServiceUnavailableError):
    """A stream failed after its first chunk reached the caller; ``partial_text`` holds what came."""

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.partial_text = partial_text


class BadRequestError(LLMCallError):
    """The request itself is wrong (400/413/422); fix the request, retrying will not help."""

    outcome = Outcome.CALLER_FAULT


class ContextWindowExceededError(BadRequestError):
    """The prompt does not fit the model's context window; a larger-context target may take it."""


class InstanceUnusableError(LLMCallError):
    """The instance cannot serve anyone until the configuration is reloaded or a probe passes."""

    outcome = Outcome.FATAL


class AuthenticationError(InstanceUnusableError):
    """The API key is missing, invalid or not allowed to use this model (401/403)."""


class ModelNotFoundError(InstanceUnusableError):
    """The endpoint does not know this model (404): check ``model_name`` and ``base_url``."""


class QuotaExceededError(InstanceUnusableError):
    """The account behind the key has no quota left (``insufficient_quota``)."""


class AllAttemptsFailedError(LLMError):
    """Every attempt of one request failed; ``attempts`` has one record per attempt."""

    def __init__(
        self, message: str, attempts: Sequence[Any] = (), *, last_error: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.attempts = list(attempts)
        self.last_error = last_error


class NoCapacityError(LLMError):
    """No instance could take the request in time; ``retry_after`` says when one is expected.

    ``rate_limited`` is True when every candidate was held back by rate limits (parked after a
    429, or at an rpm/concurrency limit): a gateway answers 429 then, and 503 otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        attempts: Sequence[Any] = (),
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.attempts = list(attempts)
        self.rate_limited = rate_limited


class WrapperError(LLMError):
    """Base class of the errors raised by wrappers and the wrapper factory."""

    error_code = "WRAPPER_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class TaskGroupWrapperError(WrapperError):
    """A task-group wrapper could not serve the request."""

    error_code = "TASK_GROUP_WRAPPER_ERROR"


class PollingPoolWrapperError(WrapperError):
    """A polling-pool wrapper could not serve the request."""

    error_code = "POLLING_POOL_WRAPPER_ERROR"


class WrapperFactoryError(WrapperError):
    """The wrapper factory could not create, find or register a wrapper."""

    error_code = "WRAPPER_FACTORY_ERROR"


class WrapperConfigError(WrapperError):
    """A wrapper's configuration is invalid."""

    error_code = "WRAPPER_CONFIG_ERROR"


class WrapperExecutionError(WrapperError):
    """A wrapper failed while executing a request."""

    error_code = "WRAPPER_EXECUTION_ERROR"


def mark_retry_budget_exhausted(error: BaseException, attempts: int) -> BaseException:
    """``error``, marked (attribute and message) as ending a request the retry budget refused
    a retry: an operator can then tell it from a request that ran out of candidates."""
    if not isinstance(error, LLMError) or error.retry_budget_exhausted:
        return error
    error.retry_budget_exhausted = True
    note = (
        f"; retry budget exhausted: no retry after {attempts} attempt(s), as retries are at their "
        "limit (fallback_config.retry_budget); the route's upstream is failing often"
    )
    if isinstance(error, LLMCallError):
        error.message += note  # its __str__ shows ``message``
    else:
        error.args = (f"{error.args[0] if error.args else type(error).__name__}{note}", *error.args[1:])
    return error


# Names the original design used, kept so its code ports with import changes only.
LLMConfigurationError = ConfigError
LLMRateLimitError = RateLimitError
LLMServiceUnavailableError = ServiceUnavailableError
LLMFallbackError = AllAttemptsFailedError
