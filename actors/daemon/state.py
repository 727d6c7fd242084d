"""What the app serves from: the runtime, the model directory, metrics, the key, reloads, draining.

The counters here (``in_flight``, ``draining``) are touched only on the serving event loop.
Blocking work (statistics that ask actors, reloads) runs on the daemon's own small thread pool,
never on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from actors.daemon import accesslog
from actors.daemon.auth import KeyCheck
from actors.daemon.errors import APIError
from actors.daemon.metrics import Metrics
from actors.daemon.models import ModelDirectory
from actors.errors import ConfigError

if TYPE_CHECKING:
    from actors.runtime import Runtime

__all__ = ["DaemonState", "ReloadRejected"]

T = TypeVar("T")


class ReloadRejected(Exception):
    """A reload was refused (an invalid configuration); the old one keeps serving."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error

    def issues(self) -> list[dict[str, Any]]:
        return [{"file": i.file, "path": i.path, "message": i.message} for i in self.error.issues]


class DaemonState:
    """One daemon's shared state."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        config_dir: str | Path,
        api_key: str | None = None,
        max_body: int = 4 * 1024 * 1024,
        body_timeout: float = 30.0,
        threads: int = 4,
        worker: int | None = None,
        workers: int = 1,
    ) -> None:
        self.runtime = runtime
        self.config_dir = str(config_dir)
        self.models = ModelDirectory(runtime)
        self.keys = KeyCheck(api_key)
        self.max_body = max_body
        self.body_timeout = body_timeout  # seconds a client has to send its whole request body
        self.executor = ThreadPoolExecutor(max(1, threads), thread_name_prefix="llm-actors-daemon")
        self.in_flight = 0
        self.draining = False
        self.started_at = time.time()
        self.worker = worker  # this process's index under ``serve --workers N``
        self.workers = workers
        self.reloads = {"ok": 0, "failed": 0}
        self.last_reload: dict[str, Any] | None = None
        self.metrics = Metrics(runtime, self.gauges)
        self._reload_lock: asyncio.Lock | None = None
        accesslog.add_secrets([api_key, *_secrets(runtime)])

    def gauges(self) -> dict[str, float]:
        """The daemon's own gauges, read at scrape time."""
        return {
            "http_requests_in_flight": self.in_flight,
            "draining": 1.0 if self.draining else 0.0,
            "state_degraded": 1.0 if self._state_status().get("degraded") else 0.0,
            "worker_index": float(self.worker or 0),
            "uptime_seconds": time.time() - self.started_at,
        }

    def info(self) -> dict[str, Any]:
        """The daemon's figures, as a request asks for them: ``in_flight`` leaves that request out."""
        return {
            "config_dir": self.config_dir,
            "simulate": bool(getattr(self.runtime, "simulate", False)),
            "in_flight": max(0, self.in_flight - 1),
            "draining": self.draining,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "auth": self.keys.enabled,
            "reloads": dict(self.reloads),
            "last_reload": self.last_reload,
            # Every figure here and in /metrics is this worker's own; see README "Workers".
            "worker": {"index": self.worker or 0, "of": self.workers, "pid": os.getpid()},
            "state": self._state_status(),
        }

    def _state_status(self) -> dict[str, Any]:
        status = getattr(self.runtime, "state_status", None)
        return status() if callable(status) else {"backend": "local", "degraded": False}

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the daemon's thread pool; the loop keeps serving meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    async def reload(self) -> dict[str, Any]:
        """Reload the configuration from ``config_dir``; one at a time.

        Returns the runtime's summary; raises ``ReloadRejected`` for an invalid configuration
        (the old one keeps serving) and ``APIError`` 501 when the runtime cannot reload.
        """
        rt = self.runtime
        if not callable(getattr(rt, "reload", None)):
            raise APIError(
                501, "internal", "this runtime cannot reload its configuration; restart the daemon instead"
            )
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            started = time.time()
            try:
                summary = await self.blocking(rt.reload, self.config_dir)
            except ConfigError as exc:
                self.reloads["failed"] += 1
                self.metrics.reloads.labels("failed").inc()
                self.last_reload = {"ok": False, "at": started, "error": str(exc)}
                raise ReloadRejected(exc) from None
            accesslog.add_secrets(_secrets(rt))
            self.reloads["ok"] += 1
            self.metrics.reloads.labels("ok").inc()
            self.last_reload = {"ok": True, "at": started, "summary": summary}
            return summary if isinstance(summary, dict) else {"result": summary}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _secrets(runtime: Any) -> list[str]:
    """The credentials of every configured model, for the log's redaction."""
    config = getattr(runtime, "config", None)
    models = getattr(config, "models", None) or {}
    return [secret for model in models.values() for secret in model.secrets()]
