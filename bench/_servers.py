"""The servers a benchmark measures, as child processes: the daemon, and the LiteLLM proxy if installed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from actors.fake.process import end_process, read_line

__all__ = ["DaemonProcess", "LiteLLMProcess", "RelayProcess", "litellm_available", "rss_bytes"]

_REPO = Path(__file__).resolve().parent.parent


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _env(repo: Path = _REPO) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _wait_healthy(url: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({proc.returncode}) before it answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


class _Child:
    proc: subprocess.Popen[str] | None = None
    url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        end_process(proc, grace=15)  # a draining daemon may take a while
        return proc.returncode

    def __enter__(self) -> _Child:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> _Child:
        raise NotImplementedError


class DaemonProcess(_Child):
    """``python -m actors serve --port 0`` (access log at ``log_level`` to /dev/null); ``url`` once it
    answers. ``repo`` is the checkout whose code serves (another one, to compare versions);
    ``options`` are more of ``serve``'s (``--workers 2``, ``--state URL``...)."""

    def __init__(
        self, config: Path, log_level: str = "info", repo: Path = _REPO, options: Sequence[str] = ()
    ) -> None:
        self.config = config
        self.log_level = log_level
        self.repo = repo
        self.options = options

    def start(self) -> DaemonProcess:
        argv = [sys.executable, "-m", "actors", "serve", "--config", str(self.config), "--port", "0"]
        argv += ["--log-level", self.log_level, "--grace", "5", *self.options]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=str(self.repo),
            env=_env(self.repo),
        )
        self.url = read_line(self.proc, 30).strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise SystemExit(f"the daemon did not start (said {self.url!r}); run it by hand to see why")
        _wait_healthy(self.url + "/healthz", self.proc, 20)
        return self


class RelayProcess(_Child):
    """``bench/_relay.py``: a byte relay to ``host:port``; ``url`` is its origin once it listens."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)

    def start(self) -> RelayProcess:
        argv = [
            sys.executable,
            str(Path(__file__).with_name("_relay.py")),
            self.target[0],
            str(self.target[1]),
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = read_line(self.proc, 15).strip()
        if not line.isdigit():
            self.stop()
            raise SystemExit(f"the relay did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{line}"
        return self


def litellm_available() -> bool:
    """Whether the LiteLLM proxy can be started: its ``litellm`` command on PATH (any environment,
    e.g. a virtualenv of its own), or the package in this interpreter."""
    return shutil.which("litellm") is not None or importlib.util.find_spec("litellm") is not None


class LiteLLMProcess(_Child):
    """The LiteLLM proxy with one model, ``bench``, on the fake provider's instance ``a``; clients
    send ``headers`` (its master key, which it refuses to start without)."""

    def __init__(self, fake_url: str, tmp: Path, key: str = "sk-test-a") -> None:
        self.master_key = "sk-bench-" + os.urandom(16).hex()
        self.headers = {"authorization": f"Bearer {self.master_key}", "content-type": "application/json"}
        self.config = tmp / "litellm.yaml"
        self.config.write_text(
            "model_list:\n"
            "  - model_name: bench\n"
            "    litellm_params:\n"
            "      model: openai/bench-model\n"
            f"      api_base: {fake_url}/a/v1\n"
            f"      api_key: {key}\n"
        )

    def start(self) -> LiteLLMProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cli = shutil.which("litellm")
        argv = [cli] if cli else [sys.executable, "-m", "litellm.proxy.proxy_cli"]
        argv += ["--config", str(self.config)]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        env = {**_env(), "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": self.master_key}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, cwd=str(_REPO), env=env
        )
        self.url = f"http://127.0.0.1:{port}"
        _wait_healthy(self.url + "/health/liveliness", self.proc, 120)
        return self
