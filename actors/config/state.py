"""``config/llms/state.yaml``: where request state (limits, leases, parking, breaker events) lives.

Absent, it lives in the process (``backend: local``). With ``backend: redis`` every process that
points at the same server and ``key_prefix`` shares one set of limits.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from actors.config.base import MAX_PORT, Strict

__all__ = ["DEFAULT_REDIS_URL", "StateConfig", "redact_url", "with_override"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_SCHEMES = ("redis", "rediss", "unix")


class StateConfig(Strict):
    """The ``state.yaml`` keys; the defaults are the in-process behaviour."""

    backend: Literal["local", "redis"] = "local"
    # The URL may carry a password: shown only through ``display_url``, never in repr.
    url: str = Field(DEFAULT_REDIS_URL, repr=False)
    key_prefix: str = Field("llm-actors", min_length=1, max_length=64)
    lease_ttl: float = Field(30.0, ge=1, le=3600, description="seconds a concurrency lease lives unrenewed")
    on_outage: Literal["split", "closed"] = "split"
    replicas: int = Field(1, ge=1, le=10_000, description="processes sharing the limits, for split")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in _SCHEMES:
            raise ValueError(
                "must be a redis://, rediss:// or unix:// URL, e.g. redis://127.0.0.1:6379/0 "
                "(Valkey speaks the same protocol)"
            )
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("has no host; e.g. redis://127.0.0.1:6379/0")
        try:
            port = parts.port  # raises on a port that is not a number, or is above 65535
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= MAX_PORT:
            raise ValueError(f"has an invalid port (1-{MAX_PORT}); e.g. redis://127.0.0.1:6379/0")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        # Braces would break the hash tags that keep one instance's keys in one cluster slot.
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", value):
            raise ValueError("may hold only letters, digits and _ . : - (e.g. llm-actors or prod:llm)")
        return value

    @property
    def shared(self) -> bool:
        return self.backend == "redis"

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """``url`` with any password replaced, for logs, health and errors."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    query = "***" if "password" in parts.query.lower() else parts.query
    if parts.password is None:
        return urlunsplit((*parts[:3], query, parts.fragment))
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_override(config: StateConfig, override: str | StateConfig | None) -> StateConfig:
    """``config`` with ``Runtime.from_config(state=...)`` / ``serve --state`` applied.

    A URL means ``backend: redis`` at that URL (the file's other keys stay); ``"local"`` means
    in-process. Raises ``ConfigError`` naming the override for a bad URL.
    """
    from pydantic import ValidationError

    from actors.errors import ConfigError, ConfigIssue

    if override is None:
        return config
    if isinstance(override, StateConfig):
        return override
    if override == "local":
        return config.model_copy(update={"backend": "local"})
    try:
        return StateConfig.model_validate({**config.model_dump(), "backend": "redis", "url": override})
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError([ConfigIssue("<state override>", "url", message)]) from None
