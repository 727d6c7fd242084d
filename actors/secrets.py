"""Keeping secrets out of text: every form a key can take in a message, and credentials in URLs.

A key reaches text in more forms than itself: ``repr`` and JSON escape it, a bytes ``repr``
escapes it differently, a URL quotes it. ``Masker`` replaces each of those forms; ``hide_userinfo``
removes the ``user:password@`` part of every URL in a text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Masker", "hide_userinfo", "secret_forms"]

MASK = "***"

#: Shorter values are not masked: replacing every "ab" in a text would say more than it hides.
MIN_SECRET = 4

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@\"'<>]+@")


def secret_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in text: itself, escaped by repr or JSON, quoted in a URL."""
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    try:
        forms.add(repr(secret.encode())[2:-1])
    except UnicodeEncodeError:  # a lone surrogate: no bytes form
        pass
    forms.add(json.dumps(json.dumps(secret))[3:-3])  # escaped twice: a JSON log line of a JSON text
    return {f for f in forms if len(f) >= MIN_SECRET}


class Masker:
    """Replaces every form of some secrets with ``***``; longer forms first, so none is half masked."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET:
                forms |= secret_forms(secret)
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def __repr__(self) -> str:
        return "Masker(...)"


def hide_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
