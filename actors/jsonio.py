"""JSON for the hot paths (request and reply bodies, SSE events, access logs): orjson when installed.

orjson (the ``daemon`` extra) encodes and decodes several times faster than the standard
library. What it refuses (integers past 64 bits, non-string keys, ``NaN`` in input) falls back
to the standard library, so the accepted documents are exactly the standard library's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["FAST", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - the daemon extra is not installed
    orjson = None  # type: ignore[assignment]

#: Whether orjson does the work.
FAST = orjson is not None


def _std_dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=default).encode()


if orjson is not None:
    _Encode = orjson.JSONEncodeError
    _Decode = orjson.JSONDecodeError
    _dumps = orjson.dumps
    _loads = orjson.loads

    def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
        """``obj`` as compact UTF-8 JSON; ``default`` turns an unknown object into a known one."""
        try:
            return _dumps(obj, default)
        except _Encode:
            return _std_dumps(obj, default)

    def loads(data: bytes | bytearray | str) -> Any:
        """The document in ``data``; ``ValueError`` (``json.JSONDecodeError``) if it is not JSON."""
        try:
            return _loads(data)
        except _Decode:
            return json.loads(data)  # the standard library's verdict and message

else:  # pragma: no cover

    def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
        """``obj`` as compact UTF-8 JSON; ``default`` turns an unknown object into a known one."""
        return _std_dumps(obj, default)

    def loads(data: bytes | bytearray | str) -> Any:
        """The document in ``data``; ``ValueError`` (``json.JSONDecodeError``) if it is not JSON."""
        return json.loads(data)
