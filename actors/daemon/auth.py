"""The daemon's optional API key: ``Authorization: Bearer KEY`` or ``x-api-key: KEY``.

OpenAI clients send the first, Anthropic clients the second. Keys are compared with
``hmac.compare_digest`` so the time taken says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

__all__ = ["OPEN_PATHS", "KeyCheck"]

#: Paths that answer without a key: liveness and readiness probes.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


class KeyCheck:
    """Whether a request's headers carry the key (always true when no key is set)."""

    __slots__ = ("_key",)

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def allows(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """``headers`` are ASGI's raw (lower-case name, value) pairs."""
        key = self._key
        if key is None:
            return True
        ok = False
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    ok |= hmac.compare_digest(token.strip(), key)
            elif name == b"x-api-key":
                ok |= hmac.compare_digest(value.strip(), key)
        return ok

    def __repr__(self) -> str:
        return f"KeyCheck(enabled={self.enabled})"  # never the key
