"""wrk as the load generator: a Lua script per request shape, and its summary read back as numbers.

wrk (Debian's package ``wrk``) is C with an event loop per thread: at 64 connections it needs a
fraction of the CPU either server does, so the figures measure the servers, not the generator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Run", "available", "script", "wrk"]

# wrk calls ``done`` once with every thread's numbers merged; latencies are in microseconds.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,\\"status_errors\\":%d,"
    .. "\\"p50\\":%d,\\"p90\\":%d,\\"p99\\":%d,\\"mean\\":%.1f}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def script(directory: Path, name: str, body: bytes, headers: dict[str, str]) -> Path:
    """A wrk script POSTing ``body`` with ``headers``."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    text = "\n".join(lines) + "\n" + _DONE
    path = directory / f"{name}.lua"
    path.write_text(text)
    return path


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for this ASCII text


@dataclass
class Run:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int  # socket errors and timeouts
    status_errors: int  # answers other than 2xx/3xx
    p50: float  # seconds
    p90: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(url: str, lua: Path, *, connections: int, seconds: int, threads: int = 2, timeout: int = 10) -> Run:
    """Run wrk against ``url`` and return its summary."""
    threads = max(1, min(threads, connections))
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, int(seconds))}s",
        f"--timeout={timeout}s",
        "-s",
        str(lua),
        url,
    ]
    with tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
        if done.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"wrk failed ({done.returncode}): {err.read().strip()[-300:]}")
    for line in done.stdout.splitlines():
        if line.startswith("WRK-JSON "):
            d = json.loads(line[len("WRK-JSON ") :])
            return Run(
                requests=d["requests"],
                seconds=d["duration_us"] / 1e6,
                errors=d["errors"],
                status_errors=d["status_errors"],
                p50=d["p50"] / 1e6,
                p90=d["p90"] / 1e6,
                p99=d["p99"] / 1e6,
            )
    raise RuntimeError(f"wrk printed no summary: {done.stdout[-300:]!r}")
