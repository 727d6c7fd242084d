"""``llm-actors serve --workers N``: one parent process binds the port, N workers serve it.

The parent validates the configuration, binds the listening socket and starts N worker
processes (``serve`` with the parent's socket; the kernel hands each connection to one of
them). Once every worker listens it prints the URL, once. It forwards SIGTERM/SIGINT (drain;
a second one stops at once) and SIGHUP (reload) to every worker, starts a worker again if one
dies while serving, and exits when all have stopped: 0 when every one drained cleanly.

Each worker answers ``/v1/stats`` and ``/metrics`` with its own figures and says which it is
(``daemon.worker`` in the stats, ``llm_actors_worker_index`` in the metrics). Limits: with the
local state backend each worker enforces ``limit // N`` (at least 1), said at start-up; with a
Redis store every worker shares the one budget.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from typing import Any

import structlog

from actors.config import load_config
from actors.config.state import with_override
from actors.daemon.server import bind
from actors.runtime import redis_state_class

__all__ = ["serve_workers"]

_log = structlog.get_logger("llm_actors.daemon")

#: Seconds the workers have to start listening.
STARTUP_TIMEOUT = 60.0
#: A worker that dies more often than this per minute is not started again.
MAX_RESTARTS_PER_MINUTE = 5


def _worker(options: Any, sock: socket.socket, ready: Any) -> None:
    # Its own process group: a terminal's Ctrl-C reaches the parent only, which forwards it once.
    os.setpgrp()
    from actors.daemon.server import serve

    sys.exit(serve(options, sockets=[sock], on_ready=lambda url: ready.put((options.worker, url))))


class _Workers:
    def __init__(self, options: Any, sock: socket.socket) -> None:
        self.options = options
        self.sock = sock
        self.ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        self.ready = self.ctx.Queue()
        self.procs: dict[int, Any] = {}
        self.restarts: collections.deque[float] = collections.deque()

    def start(self, index: int) -> None:
        options = dataclasses.replace(self.options, worker=index)
        proc = self.ctx.Process(
            target=_worker, args=(options, self.sock, self.ready), name=f"llm-actors-worker-{index}"
        )
        proc.start()
        self.procs[index] = proc

    def signal(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.is_alive() and proc.pid is not None:
                try:
                    os.kill(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def alive(self) -> list[Any]:
        return [p for p in self.procs.values() if p.is_alive()]

    def wait_ready(self) -> str | None:
        """The URL once every worker listens; None if one died or the time ran out."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        url, listening = "", set[int]()
        while len(listening) < len(self.procs):
            if any(not p.is_alive() for p in self.procs.values()) or time.monotonic() > deadline:
                return None
            try:
                index, url = self.ready.get(timeout=0.1)
            except queue.Empty:
                continue
            listening.add(index)
        return url

    def may_restart(self) -> bool:
        now = time.monotonic()
        while self.restarts and now - self.restarts[0] > 60:
            self.restarts.popleft()
        if len(self.restarts) >= MAX_RESTARTS_PER_MINUTE:
            return False
        self.restarts.append(now)
        return True


def serve_workers(options: Any) -> int:
    """Serve with ``options.workers`` worker processes; returns the exit status."""
    from actors.daemon import accesslog

    accesslog.configure(options.log_level, options.log_format)
    config = load_config(options.config)  # a ConfigError surfaces here, once, not N times
    state = with_override(config.state, options.state)
    if state.shared:  # a missing redis extra, said once here rather than by every worker
        redis_state_class(overridden=options.state is not None)
    pending: collections.deque[int] = collections.deque()
    previous = {
        sig: signal.signal(sig, lambda sig, frame: pending.append(sig))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    sock = bind(options.host, options.port)  # PortInUse says what to do; the workers inherit it
    sock.set_inheritable(True)
    workers = _Workers(options, sock)
    try:
        for index in range(options.workers):
            workers.start(index)
        url = workers.wait_ready()
        if url is None:
            _log.error("a worker failed to start; stopping the others")
            workers.signal(signal.SIGTERM)
            for proc in workers.procs.values():
                proc.join(30)
            return 1
        print(url, flush=True)
        if state.shared:
            _log.info("workers", count=options.workers, limits=f"shared on {state.display_url}")
        else:
            _log.warning(
                "workers share no state: every limit is split between them",
                count=options.workers,
                each="limit // workers, at least 1",
                hint="configure state.yaml or --state redis://... for exact shared limits",
            )
        return _supervise(workers, pending)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _supervise(workers: _Workers, pending: collections.deque[int]) -> int:
    stopping = False
    while True:
        while pending:
            sig = pending.popleft()
            if sig == signal.SIGHUP:
                if not stopping:
                    _log.info("reloading every worker", trigger="SIGHUP")
                    workers.signal(signal.SIGHUP)
                continue
            if not stopping:
                _log.info("draining every worker", workers=len(workers.alive()))
            stopping = True
            workers.signal(signal.SIGTERM)  # a second signal makes each worker stop at once
        alive = workers.alive()
        if stopping and not alive:
            break
        for index, proc in list(workers.procs.items()):
            if not stopping and not proc.is_alive():
                if workers.may_restart():
                    _log.error("worker died; starting it again", worker=index, exitcode=proc.exitcode)
                    workers.start(index)
                else:
                    _log.error("worker keeps dying; not starting it again", worker=index)
                    del workers.procs[index]
        if not workers.procs:
            return 1
        wait([p.sentinel for p in alive], timeout=0.1)
    codes = [p.exitcode for p in workers.procs.values()]
    _log.info("stopped", workers=len(codes), exit_codes=codes)
    sys.stdout.flush()
    return 0 if all(code == 0 for code in codes) else 1
