"""The fault model: what an instance of the fake provider should do wrong, and to which requests."""

from __future__ import annotations

import random
import re
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["Fault", "FaultBook"]

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Fault(BaseModel):
    """How one instance misbehaves; every field is optional and the defaults answer normally.

    When several fields are set they apply in this order: ``latency``, then ``hang``, ``drop``
    (closed cleanly) or ``reset`` (a reset, as by a server that crashed), ``status``, ``garbage``, and for streams ``chunk_delay`` / ``fail_mid_stream``. ``headers``,
    ``retry_after`` and ``retry_after_ms`` go on whatever response is sent, and ``close_after``
    closes the connection once it is out, unannounced (no ``Connection: close``), as a server
    whose keep-alive timer fires right then: a client may try to reuse the closed connection.
    ``close_on_reuse`` answers normally, then resets the connection, unread, when its next
    request arrives (a server that closed it just as that request crossed its FIN).
    ``failure_rate`` and ``times`` choose which requests the fault applies to; ``reply`` is not
    a fault and applies to every normal answer until the instance is cleared.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int | None = Field(None, ge=400, le=599)
    error_code: str | None = None
    retry_after: float | None = Field(None, ge=0)
    retry_after_ms: float | None = Field(None, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)
    latency: float = Field(0.0, ge=0)
    chunk_delay: float = Field(0.0, ge=0)
    hang: bool = False
    drop: bool = False
    reset: bool = False
    garbage: bool = False
    close_after: bool = False
    close_on_reuse: bool = False
    fail_mid_stream: int | None = Field(None, ge=0)
    failure_rate: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    times: int | None = Field(None, ge=1)
    reply: str | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _check_headers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, val in value.items():
            text = str(val)
            if not isinstance(name, str) or not _TOKEN.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if "\r" in text or "\n" in text:
                raise ValueError(f"header {name!r} has a line break in its value")
            # Numbers are the common case (reset times); the wire only carries text.
            out[name.lower()] = text
        return out

    @classmethod
    def parse(cls, fields: dict[str, Any]) -> Fault:
        """Build a fault from loose fields; raises ``ValueError`` naming each bad field."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"invalid fault: {problems}") from None

    def response_headers(self) -> list[tuple[str, str]]:
        """The extra headers this fault puts on a response."""
        out = []
        if self.retry_after is not None:
            out.append(("retry-after", _number(self.retry_after)))
        if self.retry_after_ms is not None:
            out.append(("retry-after-ms", _number(self.retry_after_ms)))
        out.extend(self.headers.items())
        return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _Switch:
    """One instance's configured fault with its own random stream and remaining count."""

    __slots__ = ("fault", "quiet", "remaining", "rng")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        # What requests the fault skips get: a normal answer that still uses ``reply``.
        self.quiet = Fault(reply=fault.reply) if fault.reply is not None else None
        self.rng = random.Random(fault.seed)
        self.remaining = fault.times

    def draw(self) -> Fault | None:
        if self.remaining == 0:
            return self.quiet
        rate = self.fault.failure_rate
        if rate is not None and self.rng.random() >= rate:
            return self.quiet
        if self.remaining is not None:
            self.remaining -= 1
        return self.fault


class FaultBook:
    """The faults of every instance; thread-safe, so tests may change them while requests run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: dict[str, _Switch] = {}

    def set(self, instance: str, fault: Fault) -> None:
        with self._lock:
            self._switches[instance] = _Switch(fault)

    def get(self, instance: str) -> Fault | None:
        with self._lock:
            switch = self._switches.get(instance)
            return switch.fault if switch else None

    def clear(self, instance: str | None = None) -> None:
        with self._lock:
            if instance is None:
                self._switches.clear()
            else:
                self._switches.pop(instance, None)

    def draw(self, instance: str) -> Fault | None:
        """The fault to apply to the next request of ``instance`` (None: answer normally)."""
        switch = self._switches.get(instance)
        if switch is None:
            # Unlocked read on purpose: a dict lookup is atomic and most instances have no fault.
            return None
        with self._lock:
            return switch.draw()
