"""Logging for the daemon on stderr through structlog, the stdlib's records too: JSON lines
(``json``, for log shippers) or aligned, readable lines (``console``, for a person at a terminal).

The library itself never configures logging; the ``serve`` command calls ``configure`` once.
uvicorn's own records (start-up, errors) go through the same renderer; JSON is encoded by
``actors.jsonio``.

Every line is redacted as the last step before it is written, whoever logged it (httpx's request
lines, a traceback's chained cause): the configured keys in every form (``add_secrets``) and
the ``user:password@`` of any URL become ``***``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog

from actors import jsonio
from actors.secrets import Masker, hide_userinfo

__all__ = ["FORMATS", "LEVELS", "add_secrets", "configure", "default_format", "redact"]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("console", "json")

_lock = threading.Lock()
_secrets: set[str] = set()
_masker = Masker()


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Mask these in every line from now on (keys of a reload are added; old ones stay masked)."""
    global _masker
    with _lock:
        _secrets.update(s for s in secrets if s)
        _masker = Masker(_secrets)


def redact(line: str) -> str:
    """``line`` with every known secret and every URL's credentials masked."""
    return hide_userinfo(_masker.mask(line))


class _Redacted:
    """A renderer whose output is redacted."""

    def __init__(self, renderer: Any) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        return redact(self.renderer(logger, name, event_dict))


def _json(obj: Any, **options: Any) -> str:
    """structlog's JSON serializer, on ``actors.jsonio`` (orjson): one line per request."""
    return jsonio.dumps(obj, options.get("default")).decode()


def default_format() -> str:
    """``console`` when stderr is a terminal, else ``json``."""
    return "console" if sys.stderr.isatty() else "json"


def configure(level: str = "info", fmt: str = "json") -> None:
    """Logs at ``level`` and above on stderr in ``fmt``, for structlog and the stdlib alike."""
    number = getattr(logging, level.upper())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    # The console renderer prints tracebacks itself; JSON needs them turned into a field first.
    exc_info = [] if fmt == "console" else [structlog.processors.format_exc_info]
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, *exc_info, _Redacted(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _Redacted(renderer),
            ],
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                *exc_info,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(number)
    logging.getLogger("uvicorn.access").disabled = True  # the gateway writes its own access log
