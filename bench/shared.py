"""What shared state costs: the Redis backend against the local one, and ``serve --workers 2``.

    python bench/shared.py               # both figures (about a minute)
    python bench/shared.py --quick       # a short run
    python bench/shared.py --only added|events|workers

1. added: the median time of one ``wrapper.generate`` (sync, sequential) through a tier with a
   ``concurrency_limit`` and an ``rpm_limit`` and a model with a ``concurrency_limit``, with state
   in the process and with state on a private ``redis-server`` on loopback; blocks of calls
   alternate between the two runtimes to cancel drift. The difference is what the backend adds
   per request: one admission script and one release script (aim <= 0.3 ms). Also the same for
   ``generate_async`` (sequential, one event loop).
2. events: how long a breaker event published by one process takes to reach another's
   handler through the store's pub/sub channel (bar: 100 ms).
3. workers: throughput of ``serve --simulate --workers 2 --state redis://...`` against one worker,
   on simulated providers with 20 ms latency, driven by ``wrk`` (64 connections) when it is
   installed. On a machine with 2 cores shared with other work, expect noise: the ratio matters.

The fake provider runs as its own process, as does redis-server (never the default port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
sys.path.insert(0, str(_HERE))
if str(_REPO) not in sys.path:
    sys.path.insert(1, str(_REPO))

from _servers import DaemonProcess  # noqa: E402
from _topology import FakeProcess, FakeURLs, write_topology  # noqa: E402
from _wrk import available, script, wrk  # noqa: E402

from actors.fake.redis_server import RedisServer  # noqa: E402
from actors.runtime import Runtime  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something short about benchmarks."}]
LIMITS = {"concurrency_limit": 64, "rpm_limit": 1_000_000}


class Costs:
    """Per side, what its blocks cost beyond wall-clock time: this process's CPU (every thread),
    redis-server's CPU, and the reads redis-server processed (round trips; pipelined commands
    arrive in one read). Load-independent figures, unlike the medians on a shared machine."""

    def __init__(self, redis: RedisServer) -> None:
        import redis as client

        self.server = redis
        self.client = client.Redis.from_url(redis.url)
        self.totals: dict[str, list[float]] = {}

    def _now(self) -> tuple[float, float, float]:
        reads = self.client.info("stats")["total_reads_processed"]
        return time.process_time(), cpu_seconds(self.server.pid), float(reads)

    def block(self, name: str, run: Any, calls: int) -> Any:
        before = self._now()
        out = run()
        self._add(name, before, calls)
        return out

    async def ablock(self, name: str, run: Any, calls: int) -> Any:
        before = self._now()
        out = await run()
        self._add(name, before, calls)
        return out

    def _add(self, name: str, before: tuple[float, float, float], calls: int) -> None:
        after = self._now()
        total = self.totals.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        for i in range(3):
            total[i] += after[i] - before[i]
        total[2] -= 1  # the INFO that read ``before``
        total[3] += calls

    def report(self, label: str) -> None:
        (cpu_l, _, _, n_l), (cpu_r, server, reads, n_r) = self.totals["local"], self.totals["redis"]
        print(
            f"  {label}: per request, round trips to redis-server {reads / n_r:.2f}, this process's CPU "
            f"{cpu_l / n_l * 1e6:.0f} us local vs {cpu_r / n_r * 1e6:.0f} us redis "
            f"({(cpu_r / n_r - cpu_l / n_l) * 1e6:+.0f} us), redis-server CPU {server / n_r * 1e6:.0f} us"
        )
        self.totals.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def added(fake: FakeProcess, redis: RedisServer, root: Path, rounds: int, per_block: int) -> None:
    root = write_topology(
        root,
        FakeURLs(fake.url),
        models={"a": {"concurrency_limit": 64}},
        groups={"g": {"echelon1": {"models": ["a"], "max_retries": 0, **LIMITS}}},
        wrappers={"w": {"type": "task_group", "target": "g.echelon1"}},
    )
    sides = {
        "local": Runtime.from_config(root).start(),
        "redis": Runtime.from_config(root, state=redis.url).start(),
    }
    costs = Costs(redis)
    try:
        wrappers = {name: rt.factory.get_wrapper("w") for name, rt in sides.items()}
        times: dict[str, list[float]] = {name: [] for name in sides}
        for w in wrappers.values():  # warm-up: connections, scripts loaded
            for _ in range(50):
                w.generate(MESSAGES)

        def timed(w: Any, n: int) -> list[float]:
            out = []
            for _ in range(n):
                start = time.perf_counter()
                w.generate(MESSAGES)
                out.append(time.perf_counter() - start)
            return out

        for r in range(rounds):
            order = list(wrappers.items()) if r % 2 == 0 else list(wrappers.items())[::-1]
            for name, w in order:
                times[name] += costs.block(name, lambda w=w: timed(w, per_block), per_block)
        report("sync, sequential", times)
        costs.report("sync")

        async def atimed(w: Any, n: int) -> list[float]:
            out = []
            for _ in range(n):
                start = time.perf_counter()
                await w.generate_async(MESSAGES)
                out.append(time.perf_counter() - start)
            return out

        async def run() -> dict[str, list[float]]:
            atimes: dict[str, list[float]] = {name: [] for name in sides}
            for w in wrappers.values():
                await atimed(w, 50)
            for r in range(rounds):
                order = list(wrappers.items()) if r % 2 == 0 else list(wrappers.items())[::-1]
                for name, w in order:
                    atimes[name] += await costs.ablock(name, lambda w=w: atimed(w, per_block), per_block)
            return atimes

        report("async, sequential", asyncio.run(run()))
        costs.report("async")
        status = sides["redis"].state_status()
        print(f"  store: degraded={status['degraded']} outages={status['outages']}")
    finally:
        costs.client.close()
        for rt in sides.values():
            rt.stop()


def report(label: str, times: dict[str, list[float]]) -> None:
    local, shared = statistics.median(times["local"]), statistics.median(times["redis"])
    p90 = {k: statistics.quantiles(v, n=10)[-1] for k, v in times.items()}
    print(
        f"{label}: median local {local * 1e3:.3f} ms, redis {shared * 1e3:.3f} ms, "
        f"added {(shared - local) * 1e3:+.3f} ms (aim <= 0.3); p90 local {p90['local'] * 1e3:.3f} ms, "
        f"redis {p90['redis'] * 1e3:.3f} ms; {len(times['local'])} calls each"
    )


def events(redis: RedisServer, n: int) -> None:
    """How long a breaker event takes from one process's store connection to another's handler."""
    import threading

    from actors.config.state import StateConfig
    from actors.state.store import RedisStore

    config = StateConfig(backend="redis", url=redis.url, key_prefix="bench-events")
    delays: list[float] = []
    heard = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        delays.append(time.perf_counter() - float(event["t"]))
        heard.set()

    sender, receiver = RedisStore(config, timeout=0.5), RedisStore(config, timeout=0.5, on_event=on_event)
    receiver.start()
    try:
        while not heard.is_set():  # until the subscription is live
            sender.publish({"k": "warm-up", "t": time.perf_counter()})
            heard.wait(0.05)
        delays.clear()
        for _ in range(n):
            heard.clear()
            sender.publish({"k": "open", "i": "i:m", "r": "group:g", "s": 30, "t": time.perf_counter()})
            heard.wait(1)
    finally:
        sender.close()
        receiver.close()
    q = statistics.quantiles(delays, n=100)
    print(
        f"events: a breaker event reaches another process's handler in {statistics.median(delays) * 1e3:.2f} ms "
        f"(median), p99 {q[98] * 1e3:.2f} ms, max {max(delays) * 1e3:.2f} ms over {len(delays)} (bar: 100 ms)"
    )


def workers(redis: RedisServer, root: Path, seconds: int) -> None:
    if not available():
        print("workers: skipped (wrk is not installed; Debian package wrk)")
        return
    models = {
        m: {
            "model_type": "simulated",
            "provider": "simulated",
            "model_name": "sim",
            "simulation": {"latency": 0.02},
        }
        for m in ("a", "b", "c")
    }
    root = write_topology(
        root,
        None,
        models=models,
        groups={"g": {"echelon1": {"models": list(models), "max_retries": 0, **LIMITS}}},
        wrappers={"w": {"type": "task_group", "target": "g.echelon1"}},
    )
    request = {"model": "w", "messages": [{"role": "user", "content": "hi"}]}
    lua = script(root, "post", json.dumps(request).encode(), {"Content-Type": "application/json"})
    results: dict[int, list[float]] = {}
    for n in (1, 2, 1, 2):
        rate = serve_and_load(root, redis.url, n, lua, seconds)
        results.setdefault(n, []).append(rate)
        print(f"  {n} worker(s): {rate:.0f} req/s")
    one, two = statistics.median(results[1]), statistics.median(results[2])
    print(
        f"workers: 1 worker {one:.0f} req/s, 2 workers {two:.0f} req/s, ratio {two / one:.2f} (shared state on Redis)"
    )


def serve_and_load(root: Path, url: str, n: int, lua: Path, seconds: int) -> float:
    options = ["--simulate", "--workers", str(n), "--state", url]
    with DaemonProcess(root, "warning", options=options) as daemon:
        target = daemon.url + "/v1/chat/completions"
        wrk(target, lua, connections=64, seconds=2)  # warm-up
        return wrk(target, lua, connections=64, seconds=seconds).rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("added", "events", "workers"))
    args = parser.parse_args(argv)
    rounds, per_block, seconds = (6, 100, 3) if args.quick else (10, 300, 5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {load:.2f}")
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        if args.only in (None, "added"):
            with FakeProcess() as fake:
                added(fake, redis, Path(tmp) / "added", rounds, per_block)
        if args.only in (None, "events"):
            events(redis, 200 if args.quick else 1000)
        if args.only in (None, "workers"):
            workers(redis, Path(tmp) / "workers", seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
