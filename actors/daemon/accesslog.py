"""Logging for the daemon: JSON lines on stderr through structlog, the stdlib's records too.

The library itself never configures logging; the ``serve`` command calls ``configure`` once.
uvicorn's own records (start-up, errors) go through the same JSON renderer.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["LEVELS", "configure"]

LEVELS = ("debug", "info", "warning", "error")


def configure(level: str = "info") -> None:
    """JSON logs at ``level`` and above on stderr, for structlog and the stdlib alike."""
    number = getattr(logging, level.upper())
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(number)
    logging.getLogger("uvicorn.access").disabled = True  # the gateway writes its own access log
