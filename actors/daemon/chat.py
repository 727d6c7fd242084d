"""A chat request in the runtime's canonical shape, whichever API it came in on, and field checks.

Both wire modules parse their body into a ``ChatRequest``: OpenAI-shaped messages and
parameters, which every provider client translates from. The checks raise ``APIError`` 400
naming the field, so a client learns which part of its body is wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.daemon.errors import APIError

__all__ = ["ChatRequest", "bad_field", "check_int", "check_number", "check_type", "parse_json", "session_key"]

_TYPE_NAMES = {str: "a string", bool: "a boolean", list: "an array", dict: "an object", int: "an integer"}


@dataclass(slots=True)
class ChatRequest:
    """What the client asked: ``model`` to route by, canonical ``messages``, provider ``params``."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def session_key(headers: Mapping[str, str], params: Mapping[str, Any]) -> str | None:
    """The request's session key, for pools with ``affinity: session``: the ``x-session-id``
    header, else OpenAI's ``prompt_cache_key`` or ``user`` (Anthropic's ``metadata.user_id``
    arrives as ``user``)."""
    key = headers.get("x-session-id")
    if key:
        return key
    for name in ("prompt_cache_key", "user"):
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    return None


# An escaped UTF-16 surrogate in the body: a pair is a character, a lone one is not text.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object of valid text and finite numbers, or a 400 saying why not.

    Strict as RFC 8259 is: UTF-8 only, no ``NaN``/``Infinity``, no lone surrogates. Anything
    else would reach a provider as a body that cannot be encoded, or one it would refuse.
    """
    if not raw:
        raise APIError(400, "invalid_request", "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"the request body is not UTF-8 (byte {exc.start}: {exc.reason}); send UTF-8 JSON"
        raise APIError(400, "invalid_request", why) from None
    try:
        body = _DECODER.decode(text)
    except ValueError as exc:
        raise APIError(400, "invalid_request", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        why = "the request body is nested too deeply to read; flatten it"
        raise APIError(400, "invalid_request", why) from None
    if not isinstance(body, dict):
        raise APIError(
            400, "invalid_request", f"the request body must be a JSON object, not {type(body).__name__}"
        )
    if _ESCAPED_SURROGATE.search(text):  # rare: only then look for a lone one
        where = _lone_surrogate(body)
        if where is not None:
            raise _bad(
                where, "contains a lone UTF-16 surrogate escape (such as \\udc80); send valid Unicode text"
            )
    return body


def _no_constant(name: str) -> Any:
    raise APIError(
        400, "invalid_request", f"the request body has {name}, which JSON does not allow; send a number"
    )


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise APIError(
            400, "invalid_request", f"the request body has the number {text[:40]}, too large for a float"
        )
    return value


# One decoder for every body: ``json.loads`` with hooks would build a decoder and its scanner per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _lone_surrogate(body: Any) -> str | None:
    """The path of the first string (or key) in ``body`` holding a lone surrogate, if any."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return path or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if _SURROGATE.search(key):
                    return path or "body"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _bad(name: str, why: str) -> APIError:
    return APIError(400, "invalid_request", f"{name}: {why}", param=name.split("[", 1)[0].split(".", 1)[0])


def check_type(
    body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False
) -> Any:
    """``body[name]`` if it has type ``kind`` (None when absent and optional); else a 400."""
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(name, "is required")
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int to Python, never to JSON.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise _bad(name, f"must be {wanted}, not {_preview(value)}")
    return value


def _preview(value: Any) -> str:
    """A short view of a value for a message; a container is named, not rendered (it may be huge)."""
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "an array"
    return json.dumps(value)[:60]


def check_number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = check_type(body, name, (int, float))
    if value is not None and not low <= value <= high:
        raise _bad(name, f"must be between {low:g} and {high:g}, not {value}")
    return value


def check_int(body: Mapping[str, Any], name: str, low: int = 1) -> int | None:
    value = check_type(body, name, int)
    if value is not None and value < low:
        raise _bad(name, f"must be at least {low}, not {value}")
    return value


def bad_field(name: str, why: str) -> APIError:
    """A 400 for field ``name`` (a path such as ``messages[2].content``)."""
    return _bad(name, why)
