"""The fake provider in a child process, so that a load generator never shares its GIL."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["FakeProcess", "end_process", "read_line"]

_REPO = Path(__file__).resolve().parent.parent.parent


class FakeProcess:
    """``python -m actors fake-provider --port 0`` in a child process; ``url`` once it listens."""

    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.command = ""

    def start(self) -> FakeProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
        }
        attempts = [[sys.executable, "-m", "actors", "fake-provider", "--host", "127.0.0.1", "--port", "0"]]
        errors = []
        for argv in attempts:
            # stderr goes to a file: a pipe nobody reads could fill, and a closed one would kill
            # the server on its next message.
            with tempfile.TemporaryFile("w+") as err:
                proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=str(_REPO), env=env
                )
                line = read_line(proc, self.timeout)
                if line.startswith("http://"):
                    self.proc, self.url = proc, line.strip()
                    self.command = " ".join(argv[1:])
                    return self
                end_process(proc)
                err.seek(0)
                last = err.read().strip().splitlines()[-1:]
            errors.append(f"{' '.join(argv)}: {last[0] if last else repr(line)}")
        raise RuntimeError("could not start the fake provider: " + "; ".join(errors))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None

    def __enter__(self) -> FakeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line ``proc`` writes to stdout, or "" if none comes within ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(deadline - time.monotonic()):
                return proc.stdout.readline()
    return ""


def end_process(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGTERM ``proc``, SIGKILL it if it has not exited within ``grace`` seconds; close its stdout."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()
