"""The daemon's throughput and added latency, as ratios to the fake provider called directly.

    python bench/daemon.py                 # 3 rounds of 5 s per side (about 40 s)
    python bench/daemon.py --quick         # 2 rounds of 2 s per side
    python bench/daemon.py --seconds 10 --rounds 5 --connections 64

Three processes: the fake provider (``python -m actors fake-provider``), the daemon
(``python -m actors serve`` over a round-robin pool of three instances on that fake), and this
one, the load generator: asyncio with ``--connections`` workers, each with its own
``httpx.AsyncClient`` and keep-alive connection, each sending requests back to back for the round's
seconds. Each round measures both sides with the same generator: directly to the fake (the
exact JSON body the daemon sends upstream, built by the same provider code) and through the
daemon (an OpenAI chat completion naming the pool's wrapper). The sides alternate order from
round to round to cancel drift; each side warms up before it is timed. The daemon writes its
access log (to /dev/null), as it would in production.

Figures: throughput of each side, the ratio daemon/direct, median and p99 latency, the
daemon's added median latency, and CPU time per request of the daemon and of the fake. A third
side, a second daemon whose models are the in-process simulated provider with no latency,
shows what the daemon costs without any upstream HTTP call (``--no-simulated`` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
sys.path.insert(0, str(_HERE))
if str(_REPO) not in sys.path:
    sys.path.insert(1, str(_REPO))

import httpx  # noqa: E402
from _topology import FakeProcess, FakeURLs, write_topology  # noqa: E402

from actors.messages import normalize_messages  # noqa: E402
from actors.providers.base import merge_params  # noqa: E402
from actors.runtime import Runtime  # noqa: E402
from actors.table import pool_label  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something short about benchmarks."}]
PARAMS = {"max_tokens": 16}
MEMBERS = ("a", "b", "c")
WRAPPER = "bench"


@dataclass
class Side:
    """One way of sending the request, and what its rounds measured."""

    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    server: str = ""  # the key in ``pids`` of the daemon serving this side, if any
    done: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class DaemonProcess:
    """``python -m actors serve --port 0`` in a child process; ``url`` once it answers /healthz."""

    def __init__(self, config: Path, log_level: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
        }
        argv = [
            sys.executable,
            "-m",
            "actors",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            "--log-level",
            log_level,
            "--grace",
            "5",
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(_REPO), env=env
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise SystemExit(f"the daemon did not start (said {self.url!r}); run it by hand to see why")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("the daemon never answered /healthz")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def upstream_request(root: Path) -> tuple[str, bytes, dict[str, str]]:
    """The URL, JSON body and headers of the daemon's attempt on instance ``a``, built by the
    same code (pool defaults, model parameters, provider codec), so both sides send the same bytes."""
    with Runtime.from_config(root) as rt:
        assert rt.table is not None
        provider = rt.table.gates["a"].client
        target = rt.table.targets[pool_label("p")]
        merged = merge_params(provider.model.parameters, target.merge(dict(PARAMS)))
        request = provider.build_request(normalize_messages(MESSAGES), merged, stream=False)
        headers = {**provider._headers, "content-type": "application/json"}
        return request.url, json.dumps(request.json).encode(), headers


async def run_side(clients: list[httpx.AsyncClient], side: Side, seconds: float, record: bool) -> None:
    """One coroutine per client sending back to back for ``seconds``; counts only when ``record``."""
    perf = time.perf_counter
    stop_at = perf() + seconds
    latencies: list[float] = []
    counts = [0, 0]  # done, errors

    async def worker(client: httpx.AsyncClient) -> None:
        while (t0 := perf()) < stop_at:
            try:
                r = await client.post(side.url, content=side.body, headers=side.headers)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(perf() - t0)
            counts[0 if ok else 1] += 1

    t0 = perf()
    await asyncio.gather(*(worker(c) for c in clients))
    if record:
        side.seconds += perf() - t0
        side.done += counts[0]
        side.errors += counts[1]
        side.latencies += latencies


async def measure(
    sides: list[Side], args: argparse.Namespace, pids: dict[str, int]
) -> dict[str, dict[str, float]]:
    # One client (one keep-alive connection) per worker: httpcore's pool assigns queued requests
    # to connections in O(connections x waiting), which at 64 on one client costs the generator
    # far more CPU than either server and would measure the generator, not the servers.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    cpu: dict[str, dict[str, float]] = {s.name: {p: 0.0 for p in pids} for s in sides}
    clients = {
        s.name: [httpx.AsyncClient(limits=limits, timeout=30) for _ in range(args.connections)] for s in sides
    }
    try:
        for side in sides:  # open the connections and warm every path up
            await run_side(clients[side.name], side, args.warmup, record=False)
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                await run_side(clients[side.name], side, args.warmup / 2, record=False)
                before = {p: cpu_seconds(pid) for p, pid in pids.items()}
                await run_side(clients[side.name], side, args.seconds, record=True)
                for p, pid in pids.items():
                    cpu[side.name][p] += cpu_seconds(pid) - before[p]
    finally:
        for client in (c for cs in clients.values() for c in cs):
            await client.aclose()
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="timed seconds per side per round (default 5)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each timing both sides (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (default 64)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per side (default 1)")
    parser.add_argument(
        "--log-level", default="info", help="the daemon's log level (default info: access logs on)"
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s per side")
    parser.add_argument(
        "--no-simulated",
        dest="simulated",
        action="store_false",
        help="skip the daemon over the simulated provider",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 2.0, 2, 0.5

    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s)"
    print(
        f"llm-actors daemon benchmark: {args.connections} connections, {args.rounds} x {args.seconds:g} s per side; {machine}"
    )
    with FakeProcess() as fake, tempfile.TemporaryDirectory(prefix="llm-actors-bench-") as tmp:
        root = write_topology(
            Path(tmp),
            FakeURLs(fake.url),
            models={n: {"model_name": "bench-model", "timeout": 30} for n in MEMBERS},
            groups={"g": {"echelon1": {"models": list(MEMBERS), "priority": 1}}},
            pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin"}},
            wrappers={WRAPPER: {"type": "polling_pool", "pool": "p"}},
        )
        url, body, headers = upstream_request(root)
        sim_root = write_topology(
            Path(tmp) / "simulated",
            None,
            models={
                n: {"model_type": "simulated", "model_name": "bench-model", "simulation": {"latency": 0}}
                for n in MEMBERS
            },
            groups={"g": {"echelon1": {"models": list(MEMBERS), "priority": 1}}},
            pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin"}},
            wrappers={WRAPPER: {"type": "polling_pool", "pool": "p"}},
        )
        daemons = {"daemon": DaemonProcess(root, args.log_level)}
        try:
            if args.simulated:
                daemons["daemon/sim"] = DaemonProcess(sim_root, args.log_level)
            request = json.dumps({"model": WRAPPER, "messages": MESSAGES, **PARAMS}).encode()
            json_header = {"content-type": "application/json"}
            sides = [Side("direct", url, body, headers)]
            sides += [
                Side(name, d.url + "/v1/chat/completions", request, json_header, name)
                for name, d in daemons.items()
            ]
            check = [
                httpx.post(side.url, content=side.body, headers=side.headers, timeout=10) for side in sides
            ]
            texts = {r.json()["choices"][0]["message"]["content"] for r in check}
            if len(texts) != 1:
                raise SystemExit(f"the paths disagree: {sorted(texts)}")
            pids = {"fake": fake.pid, **{name: d.pid for name, d in daemons.items()}}
            cpu = asyncio.run(measure(sides, args, pids))
        finally:
            statuses = {name: d.stop() for name, d in daemons.items()}
    report(sides, cpu, statuses)
    return 0


def report(sides: list[Side], cpu: dict[str, dict[str, float]], statuses: dict[str, int | None]) -> None:
    direct = sides[0]
    print(
        f"  fake provider called directly: the same body the daemon sends upstream ({len(direct.body)} bytes)"
    )
    print(
        "  side         requests  errors     req/s   median ms   p90 ms   p99 ms   daemon CPU/req   fake CPU/req"
    )
    for side in sides:
        per = {p: (c / side.done * 1e6 if side.done else float("nan")) for p, c in cpu[side.name].items()}
        daemon_cpu = f"{per[side.server]:8.0f} us" if side.server else "       -   "
        print(
            f"  {side.name:<11} {side.done:9d} {side.errors:7d} {side.rate:9.0f} {side.pct(0.5) * 1e3:11.2f}"
            f" {side.pct(0.9) * 1e3:8.2f} {side.pct(0.99) * 1e3:8.2f}   {daemon_cpu}      {per['fake']:6.0f} us"
        )
    for side in sides[1:]:
        ratio = side.rate / direct.rate if direct.rate else float("nan")
        added = (statistics.median(side.latencies) - statistics.median(direct.latencies)) * 1e3
        print(
            f"  {side.name}: throughput ratio to direct {ratio:.3f} ({side.rate:.0f} vs {direct.rate:.0f} req/s),"
            f" added median latency {added:+.2f} ms"
        )
    print(
        f"  exit status after SIGTERM: {', '.join(f'{name} {status}' for name, status in statuses.items())}"
    )


if __name__ == "__main__":
    sys.exit(main())
