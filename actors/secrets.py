"""Keeping secrets out of text: every form a key can take in a message, and credentials in URLs.

A key reaches text in more forms than itself: ``repr`` and JSON escape it, a bytes ``repr``
escapes it differently, a URL quotes it. ``Masker`` replaces each of those forms; ``hide_userinfo``
removes the ``user:password@`` part of every URL in a text, ``shown_url`` what may hold a key from
one URL; ``mask_in_httpx_log`` keeps keys that
must travel in a URL's query out of httpx's request log lines.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import httpx

__all__ = ["MASK", "Masker", "hide_userinfo", "mask_in_httpx_log", "secret_forms", "shown_url"]

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


def shown_url(url: str) -> str:
    """``url`` fit to show: without a ``user:password@`` part or a query (either may hold a key)."""
    if "@" not in url and "?" not in url and "#" not in url:
        return url
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None, query=None, fragment=None))
    except httpx.InvalidURL:  # not a URL we can parse: show nothing of it rather than a secret
        return "(a URL with credentials)"


class _LogMasker(logging.Filter):
    """Masks known secrets in the records of the logger it is added to; secrets are only added."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._masker = Masker()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)
            self._masker = Masker(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        masker = self._masker
        if masker:
            message = record.getMessage()
            masked = masker.mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


_httpx_masker: _LogMasker | None = None
_httpx_lock = threading.Lock()


#: The loggers that write each request's URL: httpx's, and the aiohttp path's (debug).
_URL_LOGGERS = ("httpx", "actors.upstream")


def mask_in_httpx_log(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in the request lines (``HTTP Request: POST <url>``) of httpx and of the
    aiohttp path (``actors.providers.upstream``) from now on.

    Only for keys that must stay in a request URL's query: the library configures no logging, but
    it must not hand a key to whatever handler the application configured. The filter is added on
    first use, so a process without such keys keeps httpx's logger as it was.
    """
    global _httpx_masker
    with _httpx_lock:
        if _httpx_masker is None:
            _httpx_masker = _LogMasker()
            for name in _URL_LOGGERS:
                logging.getLogger(name).addFilter(_httpx_masker)
        _httpx_masker.add(secrets)
