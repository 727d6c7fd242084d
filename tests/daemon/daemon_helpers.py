"""Helpers for daemon tests: ``llm-actors serve`` as a real process in front of the fake provider.

A daemon is started with ``python -m actors serve --config DIR --port 0``; it prints its URL
on stdout once listening, and ``start_daemon`` then waits for ``/healthz``. Its log goes to a
file in the config directory and is shown when a daemon fails to start or stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from waiting import wait_until  # noqa: F401  (re-exported for the daemon tests)

from actors.fake.process import read_line
from actors.fake.topology import write_topology  # noqa: F401  (re-exported for the daemon tests)

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent

STARTUP_TIMEOUT = 20.0


class Daemon:
    """One ``llm-actors serve`` process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, config: Path, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.config = config
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def log_text(self) -> str:
        try:
            return self.log.read_text()
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the daemon did not exit within {timeout} s; log:\n{self.log_text()[-3000:]}"
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kwargs)


def start_daemon(config: Path, *args: str, env: dict[str, str] | None = None) -> Daemon:
    """Start a daemon on ``config`` (with extra CLI ``args``) and wait until ``/healthz`` answers."""
    log = config / f"daemon-{time.monotonic_ns()}.log"
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-m",
        "actors",
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        "--grace",
        "10",
        *args,
    ]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=str(_REPO), env=environ
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = read_line(proc, deadline - time.monotonic()).strip()
    daemon = Daemon(proc, url, config, log)
    if not url.startswith("http://"):
        daemon.stop()
        raise AssertionError(f"the daemon did not start (said {url!r}); log:\n{daemon.log_text()[-3000:]}")
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return daemon
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            daemon.stop()
            raise AssertionError(f"/healthz never answered; log:\n{daemon.log_text()[-3000:]}")
        time.sleep(0.05)


# -- the shared topology ------------------------------------------------------------------------

STEADY = {"strategy": "echelon_down", "circuit_breaker": {"failure_threshold": 100, "recovery_time": 1}}


def main_topology() -> dict[str, Any]:
    """One instance (or pair) per scenario, so scenarios sharing a daemon never disturb each other."""
    tier = lambda *models, **kw: {"models": list(models), "priority": 1, "max_retries": 0, **kw}  # noqa: E731
    return dict(
        models={
            "ok1": {},
            "ok2": {},
            "anth": {"model_type": "anthropic"},
            "fo1": {},
            "fo2": {},
            "slow1": {},
            "rl1": {},
            "down1": {},
            "off1": {"api_key": None},
            "bad1": {},
            "met1": {},
            "tool1": {},
            "emb1": {"mode": "embedding"},
            "emb2": {"mode": "embedding"},
            "hdr1": {},
            "hdr2": {},
            "fz1": {},
            "fz2": {"model_type": "anthropic"},
            "fl1": {},
            "fl2": {},
            "rpm1": {},
        },
        groups={
            "basic": {"echelon1": tier("ok1", "ok2", max_retries=1), "fallback_config": STEADY},
            "claude": {"echelon1": tier("anth"), "fallback_config": STEADY},
            "fo": {
                "echelon1": tier("fo1"),
                "echelon2": {**tier("fo2"), "priority": 2},
                "fallback_config": STEADY,
            },
            "slow": {"echelon1": tier("slow1"), "fallback_config": STEADY},
            "rl": {"echelon1": tier("rl1"), "fallback_config": STEADY},
            "down": {"echelon1": tier("down1"), "fallback_config": STEADY},
            "off": {"echelon1": tier("off1"), "fallback_config": STEADY},
            "bad": {"echelon1": tier("bad1"), "fallback_config": STEADY},
            "met": {"echelon1": tier("met1"), "fallback_config": STEADY},
            "tools": {"echelon1": tier("tool1"), "fallback_config": STEADY},
            "emb": {
                "echelon1": tier("emb1"),
                "echelon2": {**tier("emb2"), "priority": 2},
                "fallback_config": STEADY,
            },
            "hdr": {
                "echelon1": tier("hdr1"),
                "echelon2": {**tier("hdr2"), "priority": 2},
                "fallback_config": STEADY,
            },
            "fuzz": {"echelon1": tier("fz1", "fz2"), "fallback_config": STEADY},
            # fl1 fails a third of its answers and, listed first, takes over half the first
            # attempts: about 19% of requests need a retry, at the default budget's 20%. The
            # load test is about failover, so the budget is not what decides it.
            "flaky": {
                "echelon1": tier("fl1", "fl2", max_retries=1),
                "fallback_config": {**STEADY, "retry_budget": {"ratio": 1.0}},
            },
            "rpm": {"echelon1": tier("rpm1", rpm_limit=1), "fallback_config": STEADY},
        },
        pools={"basic_pool": {"task_groups": ["basic.echelon1"], "rotation_strategy": "round_robin"}},
        wrappers={
            "chat": {"type": "task_group", "target": "basic.echelon1"},
            "claude_wrapper": {"type": "task_group", "target": "claude.echelon1"},
            "deadline": {"type": "task_group", "target": "slow.echelon1", "timeout": 0.5},
        },
    )


MAX_BODY = 64 * 1024
