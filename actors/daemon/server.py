"""Running the daemon: uvicorn around the app, signals, draining and reloading.

- SIGTERM (or SIGINT) drains: new requests get 503 while the ones in flight finish, for up to
  ``grace`` seconds; then uvicorn closes the listener and the runtime's actors stop. A second
  signal stops at once. A drained exit is a clean exit (status 0).
- SIGHUP reloads the configuration from the config directory, as ``POST /admin/reload`` does;
  an invalid one is logged with its errors and the old one keeps serving.
- Once listening, the URL (``http://host:port``, with the real port when ``--port 0``) goes
  alone on the first line of stdout, so scripts and tests can read it; a short banner for a
  person follows it (what is served, which instances are disabled and why, how to stop).
  Logs go to stderr.
- The port is bound before anything starts: a port in use is one line, not a traceback.
- ``--workers N`` (``actors.daemon.workers``): a parent process binds the port and runs N of
  these servers as child processes on that one socket; it prints the URL once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog
import uvicorn

from actors.daemon import accesslog
from actors.daemon.app import create_app
from actors.daemon.banner import banner, disabled_instances, unserved_wrappers
from actors.daemon.errors import APIError
from actors.daemon.state import DaemonState, ReloadRejected
from actors.runtime import Runtime

__all__ = ["DaemonServer", "PortInUse", "ServeOptions", "bind", "serve"]

_log = structlog.get_logger("llm_actors.daemon")

#: Seconds uvicorn waits for connections to close after the drain (more when requests remain).
_CLOSE_WAIT = 1


@dataclass
class ServeOptions:
    """What ``llm-actors serve`` was asked to do."""

    config: str = "config"
    simulate: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 4
    api_key: str | None = None
    grace: float = 30.0
    max_body: int = 4 * 1024 * 1024
    body_timeout: float = 30.0
    log_level: str = "info"
    cors_origins: tuple[str, ...] = ()
    log_format: str = "json"
    workers: int = 1
    state: str | None = None  # overrides config/llms/state.yaml: a redis:// URL, or "local"
    worker: int | None = None  # this process's index among ``workers``, when there are several


class PortInUse(Exception):
    """The address to listen on is taken (or not ours to take); the message says what to do."""


class DaemonServer(uvicorn.Server):
    """uvicorn's server with a drain on SIGTERM/SIGINT and a reload on SIGHUP."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: DaemonState,
        grace: float,
        early: list[int] | None = None,
        config_dir: str = "config",
        on_ready: Any = None,
    ) -> None:
        super().__init__(config)
        self.on_ready = on_ready  # a worker tells its parent instead of printing the URL
        self.state = state
        self.grace = grace
        self.config_dir = config_dir
        self.early = early if early is not None else []  # signals that came during start-up
        self.drain_started: float | None = None
        self._announced = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # Runs inside a signal handler: set flags only; ``on_tick`` acts on them within 0.1 s.
    # Unlike uvicorn's own, it does not re-raise the signal at exit: a drained stop exits 0.
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_started is None and not self.should_exit:
            self.drain_started = time.monotonic()
            self.state.draining = True
        else:
            self.should_exit = True
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        started = self.drain_started
        if started is not None and not self.should_exit:
            busy = self.state.in_flight
            if not self._announced:
                self._announced = True
                _log.info("draining", in_flight=busy, grace_seconds=self.grace)
            elapsed = time.monotonic() - started
            if busy == 0 or elapsed >= self.grace:
                if busy:
                    _log.warning("grace period over; cancelling the requests still in flight", in_flight=busy)
                else:
                    _log.info("drained", seconds=round(elapsed, 3))
                self.config.timeout_graceful_shutdown = _CLOSE_WAIT
                self.should_exit = True
        return await super().on_tick(counter)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.early:  # asked to stop before uvicorn's handlers were in place: do it now
            self.handle_exit(self.early[0], None)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        runtime = self.state.runtime
        if self.on_ready is not None:  # a worker: its parent prints the URL, once
            self.on_ready(url)
        else:
            print(url, flush=True)
            from actors._version import __version__

            text = banner(
                url,
                runtime,
                config_dir=self.config_dir,
                version=__version__,
                grace=self.grace,
                auth=self.state.keys.enabled,
            )
            print(text, flush=True)
        _log.info(
            "listening",
            url=url,
            config=self.state.config_dir,
            simulate=self.state.info()["simulate"],
            auth=self.state.keys.enabled,
        )
        disabled = disabled_instances(runtime)
        if disabled:
            _log.warning(
                "instances disabled",
                disabled=disabled,
                wrappers_without_instances=unserved_wrappers(runtime, disabled),
            )

    async def shutdown(self, sockets: Any = None) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a late SIGHUP must not cut the drain short
        await super().shutdown(sockets=sockets)

    def _on_hangup(self) -> None:
        task = asyncio.get_running_loop().create_task(self._reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self) -> None:
        try:
            summary = await self.state.reload()
        except ReloadRejected as exc:
            _log.error(
                "reload rejected; the old configuration keeps serving",
                trigger="SIGHUP",
                errors=[str(i) for i in exc.error.issues],
            )
        except APIError as exc:
            _log.error("reload unavailable", trigger="SIGHUP", error=exc.message)
        except Exception as exc:  # never let a reload failure take the server down
            _log.error("reload failed; the old configuration keeps serving", trigger="SIGHUP", exc_info=exc)
        else:
            _log.info("reloaded", trigger="SIGHUP", summary=summary)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it); ``PortInUse`` saying what to do."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise PortInUse(f"cannot listen on {host!r}: {exc.strerror or exc}; pass --host ADDRESS") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use (another llm-actors serve?); stop it, or pass "
                "--port N (--port 0 picks a free one)"
            ) from None
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(options: ServeOptions, *, sockets: list[Any] | None = None, on_ready: Any = None) -> int:
    """Serve until drained; returns the exit status. ``ConfigError`` if the configuration is
    invalid, ``PortInUse`` if the address cannot be listened on.

    ``sockets`` and ``on_ready`` are for a worker of ``--workers N``: serve on its parent's socket
    and report the URL to it.
    """
    accesslog.configure(options.log_level, options.log_format)
    sock = sockets[0] if sockets else bind(options.host, options.port)
    # Until uvicorn installs its handlers (and after it restores them), a SIGTERM is recorded
    # rather than fatal: one asked for while the runtime starts becomes a drain once serving.
    with contextlib.closing(sock), _early_signals() as early:
        runtime = Runtime.from_config(
            options.config, simulate=options.simulate, state=options.state, processes=options.workers
        )
        runtime.start()
        state = DaemonState(
            runtime,
            config_dir=options.config,
            api_key=options.api_key,
            max_body=options.max_body,
            body_timeout=options.body_timeout,
            threads=options.threads,
            worker=options.worker,
            workers=options.workers,
        )
        try:
            app = create_app(state, options.cors_origins)
            # The configuration, actors, app and modules live as long as the process: kept out
            # of the collector's full passes, which would otherwise walk them all again and again.
            gc.freeze()
            config = uvicorn.Config(
                app,
                host=options.host,
                port=options.port,
                log_config=None,  # accesslog.configure has set up logging
                access_log=False,
                lifespan="off",
                server_header=False,
                backlog=2048,
                timeout_keep_alive=30,
                timeout_graceful_shutdown=math.ceil(max(options.grace, _CLOSE_WAIT)),  # uvicorn takes int
            )
            server = DaemonServer(config, state, options.grace, early, options.config, on_ready)
            server.run(sockets=[sock])
        finally:
            state.draining = True
            runtime.stop()
            state.close()
            _log.info("stopped")
            sys.stdout.flush()
    return 0 if server.started else 1


@contextlib.contextmanager
def _early_signals() -> Iterator[list[int]]:
    """Record SIGTERM and SIGINT in the list yielded, instead of dying of them; ignore SIGHUP
    (the configuration being loaded is the newest) until the server takes it over."""
    early: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield early
        return
    previous = {
        sig: signal.signal(sig, lambda sig, frame: early.append(sig))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield early
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
