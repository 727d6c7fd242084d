"""The runtime's overhead, as ratios to direct httpx calls to the same fake provider in the same run.

    python bench/overhead.py            # the full report (about a minute)
    python bench/overhead.py --quick    # a short run (under 30 s)
    python bench/overhead.py --only sequential|threads|async|scale
    python bench/overhead.py --check    # exit 1 when a bar fails (otherwise always 0)

The fake provider runs as a separate process (``python -m actors fake-provider --port 0``) so
the server never shares this process's GIL. Both sides of every comparison send the same body
and headers to the same server over keep-alive connections with the same connection limits,
after a warm-up, interleaved to cancel drift; nothing is logged inside the timed loops and the
garbage collector is left alone.

1. sequential sync: median time of ``wrapper.generate`` through a round-robin polling pool vs
   ``httpx.Client.post(...).json()``.                                  bar: ratio <= 1.10
2. 16 threads sync: throughput, wrapper vs direct (one shared httpx.Client). bar: ratio >= 0.90
3. asyncio: rounds of 500 concurrent ``generate_async`` vs ``httpx.AsyncClient.post``; throughput
   ratio (bar >= 1.00), the event-loop stall seen by a 5 ms ticker (the median over rounds of each
   round's longest; bar: no longer than in the direct rounds) and the most threads alive (bar: actors + scheduler + prober + a small
   constant). Every round starts both sides on fresh clients primed with a few requests: httpcore
   1.0.9's pool is quadratic in its connections (encode/httpcore#1035), so a burst that inherits
   ~200 idle connections from the previous one runs up to 20x slower, on either side, by chance.
4. scale: 1,000 simulated instances in 100 pools: load and start time (bar: start < 3 s), RSS
   growth (bar < 300 MB), and no thread left after ``stop()``.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
if str(_HERE.parent) not in sys.path:
    sys.path.insert(1, str(_HERE.parent))

import httpx  # noqa: E402
from _topology import FakeProcess, FakeURLs, write_scale_topology, write_topology  # noqa: E402

from actors.messages import normalize_messages  # noqa: E402
from actors.providers.base import merge_params  # noqa: E402
from actors.providers.clients import DEFAULT_LIMITS  # noqa: E402
from actors.runtime import Runtime  # noqa: E402
from actors.state.table import pool_label  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something short about benchmarks."}]
PARAMS = {"max_tokens": 16}
POOL_MEMBERS = ("a", "b", "c")  # a pool of 3 instances, round_robin
WRAPPER = "bench_pool"
ASYNC_CONCURRENCY = 500
THREADS = 16
TICK = 0.005
WARM_BURST = 16  # requests that prime each fresh async client before a round

BARS = {
    "sequential": "<= 1.10",
    "threads": ">= 0.90",
    "async": ">= 1.00",
    "stall": "<= direct's",
    "async threads": "<= actors + 2 + const",
    "start": "< 3 s",
    "rss": "< 300 MB",
    "leftover": "none",
}


@dataclass
class Row:
    figure: str
    value: str
    bar: str
    ok: bool


@dataclass
class Settings:
    seq_n: int
    seq_warmup: int
    seq_block: int
    thr_seconds: float
    thr_rounds: int
    thr_warmup: float
    async_rounds: int
    async_warmup: int
    scale_pools: int = 100
    scale_per_pool: int = 10


FULL = Settings(
    seq_n=3000,
    seq_warmup=300,
    seq_block=100,
    thr_seconds=2.5,
    thr_rounds=3,
    thr_warmup=0.5,
    async_rounds=6,
    async_warmup=1,
)
QUICK = Settings(
    seq_n=600,
    seq_warmup=100,
    seq_block=50,
    thr_seconds=1.0,
    thr_rounds=1,
    thr_warmup=0.3,
    async_rounds=3,
    async_warmup=1,
)


# --------------------------------------------------------------------------- the setup


@dataclass
class Bench:
    fake: FakeProcess
    rt: Runtime
    wrapper: Any
    url: str  # the direct calls' URL: instance "a" on the same fake server
    body: dict[str, Any]  # exactly what the wrapper sends
    headers: dict[str, str]  # the same headers the wrapper's provider adds
    n_actors: int
    base_threads: int  # alive before the runtime started
    rows: list[Row] = field(default_factory=list)


def build(fake: FakeProcess, root: Path) -> Bench:
    write_topology(
        root,
        FakeURLs(fake.url),
        models={n: {"model_name": "bench-model", "timeout": 30} for n in POOL_MEMBERS},
        groups={"g": {"echelon1": {"models": list(POOL_MEMBERS), "priority": 1}}},
        pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin"}},
        wrappers={WRAPPER: {"type": "polling_pool", "pool": "p"}},
    )
    base_threads = threading.active_count()
    rt = Runtime.from_config(root).start()
    wrapper = rt.factory.get_wrapper(WRAPPER)
    assert rt.table is not None
    # The body the wrapper's attempt on "a" sends, built by the same code path (target defaults,
    # model parameters, provider codec), so the direct call sends byte-for-byte the same JSON.
    provider = rt.table.gates["a"].client
    target = rt.table.targets[pool_label("p")]
    merged = merge_params(provider.model.parameters, target.merge(dict(PARAMS)))
    request = provider.build_request(normalize_messages(MESSAGES), merged, stream=False)
    body = json.loads(json.dumps(request.json))
    headers = dict(provider._headers)  # Authorization: Bearer sk-test-a (as the wrapper sends it)
    n_actors = len(rt.handles) + len(rt.group_refs) + len(rt.pool_refs) + 1  # + supervisor
    return Bench(fake, rt, wrapper, request.url, body, headers, n_actors, base_threads)


def check_same_answers(b: Bench, client: httpx.Client) -> None:
    direct = client.post(b.url, json=b.body, headers=b.headers)
    direct.raise_for_status()
    reply = b.wrapper.generate(MESSAGES, PARAMS)
    text = direct.json()["choices"][0]["message"]["content"]
    if reply.content != text:
        raise SystemExit(f"the two paths disagree: wrapper {reply.content!r} vs direct {text!r}")


# --------------------------------------------------------------------------- 1. sequential


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_sequential(b: Bench, s: Settings) -> None:
    wrapper, url, body, headers = b.wrapper, b.url, b.body, b.headers
    client = httpx.Client(limits=DEFAULT_LIMITS)
    try:
        check_same_answers(b, client)

        def via_wrapper() -> Any:
            return wrapper.generate(MESSAGES, PARAMS)

        def direct() -> Any:
            return client.post(url, json=body, headers=headers).json()

        for _ in range(s.seq_warmup):
            via_wrapper()
            direct()
        clock = time.perf_counter_ns
        times: dict[str, list[int]] = {"wrapper": [], "direct": []}
        fns: list[tuple[str, Callable[[], Any]]] = [("wrapper", via_wrapper), ("direct", direct)]
        for block in range(max(2, s.seq_n // s.seq_block)):
            for name, fn in fns if block % 2 == 0 else fns[::-1]:
                out = times[name]
                for _ in range(s.seq_block):
                    t0 = clock()
                    fn()
                    out.append(clock() - t0)
    finally:
        client.close()
    w = [t / 1000 for t in times["wrapper"]]
    d = [t / 1000 for t in times["direct"]]
    mw, md = statistics.median(w), statistics.median(d)
    ratio = mw / md
    print("1. sequential sync: wrapper.generate (pool of 3, round_robin) vs httpx.Client.post().json()")
    print(f"   requests: {len(w)} each, blocks of {s.seq_block} interleaved, {s.seq_warmup} warm-up each")
    print(f"   direct : median {md:8.1f} us   p90 {pct(d, 0.9):8.1f} us   p99 {pct(d, 0.99):8.1f} us")
    print(f"   wrapper: median {mw:8.1f} us   p90 {pct(w, 0.9):8.1f} us   p99 {pct(w, 0.99):8.1f} us")
    ok = ratio <= 1.10
    print(f"   ratio {ratio:.3f} (added {mw - md:+.1f} us per request)   bar <= 1.10: {verdict(ok)}")
    b.rows.append(
        Row("1. sequential sync, median ratio", f"{ratio:.3f} ({mw - md:+.0f} us)", BARS["sequential"], ok)
    )


# --------------------------------------------------------------------------- 2. threads


def run_threads(fn: Callable[[], Any], n: int, seconds: float) -> tuple[int, float, float]:
    """(requests done, wall seconds, process CPU seconds) of ``n`` threads calling ``fn``."""
    stop = threading.Event()
    counts = [0] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n + 1)

    def worker(i: int) -> None:
        barrier.wait()
        done = 0
        try:
            while not stop.is_set():
                fn()
                done += 1
        except BaseException as exc:  # reported after the run, never inside it
            errors.append(exc)
        counts[i] = done

    threads = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if errors:
        raise RuntimeError(f"{len(errors)} thread(s) failed; first: {errors[0]!r}") from errors[0]
    return sum(counts), wall, cpu


def bench_threads(b: Bench, s: Settings) -> None:
    wrapper, url, body, headers = b.wrapper, b.url, b.body, b.headers
    client = httpx.Client(limits=DEFAULT_LIMITS)  # one client shared by the 16 threads

    def via_wrapper() -> Any:
        return wrapper.generate(MESSAGES, PARAMS)

    def direct() -> Any:
        return client.post(url, json=body, headers=headers).json()

    fns = {"wrapper": via_wrapper, "direct": direct}
    total = {k: [0, 0.0, 0.0, 0.0] for k in fns}  # requests, wall, client cpu, server cpu
    try:
        for name in ("direct", "wrapper"):
            run_threads(fns[name], THREADS, s.thr_warmup)
        order = ["direct", "wrapper", "wrapper", "direct"] * s.thr_rounds  # ABBA cancels drift
        for name in order:
            srv0 = b.fake.cpu_seconds()
            n, wall, cpu = run_threads(fns[name], THREADS, s.thr_seconds / 2)
            acc = total[name]
            acc[0] += n
            acc[1] += wall
            acc[2] += cpu
            acc[3] += b.fake.cpu_seconds() - srv0
    finally:
        client.close()
    rate = {k: v[0] / v[1] for k, v in total.items()}
    ratio = rate["wrapper"] / rate["direct"]
    ok = ratio >= 0.90
    print(f"2. {THREADS} threads sync throughput: wrapper.generate vs one shared httpx.Client")
    print(
        f"   {s.thr_rounds * 2} x {s.thr_seconds / 2:.2f} s per side, ABBA order, {s.thr_warmup} s warm-up each"
    )
    for k in ("direct", "wrapper"):
        req, wall, cpu, srv = total[k]
        print(
            f"   {k:7}: {rate[k]:8.0f} req/s  ({req} requests; bench process CPU {100 * cpu / wall:3.0f}%, "
            f"fake server CPU {100 * srv / wall:3.0f}%)"
        )
    print(f"   ratio {ratio:.3f}   bar >= 0.90: {verdict(ok)}")
    b.rows.append(Row(f"2. {THREADS} threads sync, throughput ratio", f"{ratio:.3f}", BARS["threads"], ok))


# --------------------------------------------------------------------------- 3. asyncio


class Ticker:
    """A 5 ms sleeper: how late each wake-up is, and how many threads are alive, per phase."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.stall: dict[str, float] = {}
        self.round_stall = 0.0  # the longest wake-up delay of the round running now
        self.late: dict[str, list[float]] = {}
        self.threads: dict[str, int] = {}

    async def run(self) -> None:
        clock, sleep, count = time.perf_counter, asyncio.sleep, threading.active_count
        while True:
            t0 = clock()
            await sleep(TICK)
            late = clock() - t0 - TICK
            phase = self.phase
            if phase is not None:
                self.late.setdefault(phase, []).append(late)
                if late > self.stall.get(phase, 0.0):
                    self.stall[phase] = late
                if late > self.round_stall:
                    self.round_stall = late
                n = count()
                if n > self.threads.get(phase, 0):
                    self.threads[phase] = n


async def async_rounds(b: Bench, s: Settings) -> dict[str, Any]:
    wrapper, url, body, headers = b.wrapper, b.url, b.body, b.headers
    ticker = Ticker()
    tick_task = asyncio.create_task(ticker.run())
    clients: dict[str, httpx.AsyncClient] = {}

    async def direct() -> Any:
        return (await clients["direct"].post(url, json=body, headers=headers)).json()

    async def via_wrapper() -> Any:
        return await wrapper.generate_async(MESSAGES, PARAMS)

    fns = {"direct": direct, "wrapper": via_wrapper}
    total = {k: [0, 0.0, 0.0] for k in fns}  # requests, seconds, server cpu
    per_round: dict[str, list[float]] = {k: [] for k in fns}
    stalls: dict[str, list[float]] = {k: [] for k in fns}  # each round's longest stall

    async def fresh_clients() -> None:
        # httpcore 1.0.9's pool behaves differently depending on what earlier bursts left in it
        # (with ~200 idle connections its quadratic bookkeeping makes a burst up to 20x
        # slower), so every round starts both sides from the same state: a new client, primed
        # with a small burst that opens a few keep-alive connections.
        if "direct" in clients:
            await clients.pop("direct").aclose()
        await b.rt.clients.aclose()  # the runtime's loop clients; the next call makes new ones
        # Same limits as the runtime's own HTTPClients (actors.providers.clients.DEFAULT_LIMITS).
        clients["direct"] = httpx.AsyncClient(limits=DEFAULT_LIMITS)
        for fn in fns.values():
            await asyncio.gather(*(fn() for _ in range(WARM_BURST)))

    async def one_round(name: str, record: bool) -> None:
        fn = fns[name]
        await fresh_clients()
        srv0 = b.fake.cpu_seconds()
        ticker.phase = name if record else None
        ticker.round_stall = 0.0
        t0 = time.perf_counter()
        await asyncio.gather(*(fn() for _ in range(ASYNC_CONCURRENCY)))
        dt = time.perf_counter() - t0
        ticker.phase = None
        if record:
            total[name][0] += ASYNC_CONCURRENCY
            total[name][1] += dt
            total[name][2] += b.fake.cpu_seconds() - srv0
            per_round[name].append(ASYNC_CONCURRENCY / dt)
            stalls[name].append(ticker.round_stall)
        await asyncio.sleep(0.02)  # let the ticker settle between rounds

    try:
        for _ in range(s.async_warmup):
            for name in ("direct", "wrapper"):
                await one_round(name, record=False)
        for i in range(s.async_rounds):
            for name in ("direct", "wrapper") if i % 2 == 0 else ("wrapper", "direct"):
                await one_round(name, record=True)
    finally:
        tick_task.cancel()
        await asyncio.gather(tick_task, return_exceptions=True)
        if "direct" in clients:
            await clients.pop("direct").aclose()
        await b.rt.clients.aclose()
    return {"total": total, "ticker": ticker, "per_round": per_round, "stalls": stalls}


def bench_async(b: Bench, s: Settings) -> None:
    out = asyncio.run(async_rounds(b, s))
    total, ticker, per_round = out["total"], out["ticker"], out["per_round"]
    rate = {k: v[0] / v[1] for k, v in total.items()}
    median_rate = {k: statistics.median(v) for k, v in per_round.items()}
    ratio = rate["wrapper"] / rate["direct"]
    ok = ratio >= 1.00
    print(
        f"3. asyncio: {ASYNC_CONCURRENCY} concurrent generate_async vs httpx.AsyncClient.post, "
        f"{s.async_rounds} rounds each, alternating, {s.async_warmup} warm-up round each; every round on fresh clients "
        f"primed with {WARM_BURST} requests"
    )
    lim = DEFAULT_LIMITS
    print(
        f"   both clients: max_connections={lim.max_connections}, max_keepalive_connections="
        f"{lim.max_keepalive_connections}, keepalive_expiry={lim.keepalive_expiry} (the runtime's defaults)"
    )
    for k in ("direct", "wrapper"):
        req, secs, srv = total[k]
        late = ticker.late.get(k, [0.0])
        print(
            f"   {k:7}: {rate[k]:8.0f} req/s  ({req} requests in {secs:.2f} s; fake server CPU {100 * srv / secs:3.0f}%)"
            f"  loop stall max {1000 * ticker.stall.get(k, 0):5.1f} ms, p99 {1000 * pct(late, 0.99):4.1f} ms"
            f" over {len(late)} ticks"
        )
        print(
            f"            per round: {', '.join(f'{r:.0f}' for r in per_round[k])} req/s (median {median_rate[k]:.0f})"
        )
    print(
        f"   throughput ratio {ratio:.3f} (all rounds; of the median rounds {median_rate['wrapper'] / median_rate['direct']:.3f})   "
        f"bar >= 1.00: {verdict(ok)}"
    )
    b.rows.append(
        Row(f"3. asyncio x{ASYNC_CONCURRENCY}, throughput ratio", f"{ratio:.3f}", BARS["async"], ok)
    )

    # The median over rounds of each round's longest stall: the single longest of the whole run is
    # one scheduler hiccup on a shared machine, and flips the verdict from run to run.
    stalls = out["stalls"]
    stall_ms = 1000 * statistics.median(stalls["wrapper"])
    direct_ms = 1000 * statistics.median(stalls["direct"])
    stall_ok = stall_ms <= direct_ms
    print(
        f"   event-loop stall, median over rounds of each round's longest: wrapper {stall_ms:.1f} ms, "
        f"direct {direct_ms:.1f} ms   bar <= direct's: {verdict(stall_ok)}"
    )
    b.rows.append(
        Row(
            "3. asyncio, longest loop stall",
            f"{stall_ms:.1f} ms (direct {direct_ms:.1f})",
            BARS["stall"],
            stall_ok,
        )
    )

    # Threads: the runtime's actors (instances + groups + pools + supervisor), its scheduler and
    # prober, the main thread, plus asyncio's default executor (getaddrinfo when connecting),
    # which the direct rounds need just as much.
    executor = min(32, (os.cpu_count() or 1) + 4)
    expected = b.base_threads + b.n_actors + 2
    most = ticker.threads.get("wrapper", 0)
    most_direct = ticker.threads.get("direct", 0)
    threads_ok = most <= expected + executor and most <= max(most_direct, expected) + 1
    print(
        f"   threads: max {most} during wrapper rounds (direct rounds {most_direct}); runtime = {b.n_actors} actors "
        f"({len(b.rt.handles)} instances + {len(b.rt.group_refs)} group + {len(b.rt.pool_refs)} pool + supervisor) "
        f"+ scheduler + prober + {b.base_threads} already running = {expected}, + up to {executor} asyncio executor threads: {verdict(threads_ok)}"
    )
    b.rows.append(
        Row(
            "3. asyncio, max threads",
            f"{most} (runtime {expected}, direct {most_direct})",
            f"<= {expected} + {executor} executor",
            threads_ok,
        )
    )


# --------------------------------------------------------------------------- 4. scale


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_scale(rows: list[Row], s: Settings) -> None:
    n_inst = s.scale_pools * s.scale_per_pool
    with tempfile.TemporaryDirectory(prefix="llm-actors-scale-") as tmp:
        root = write_scale_topology(Path(tmp), s.scale_pools, s.scale_per_pool)
        before_threads = {t.ident for t in threading.enumerate()}
        rss0 = rss_mb()
        t0 = time.perf_counter()
        rt = Runtime.from_config(root)
        t1 = time.perf_counter()
        try:
            rt.start()
            t2 = time.perf_counter()
            rss1 = rss_mb()
            alive = threading.active_count()
            n_actors = len(rt.handles) + len(rt.group_refs) + len(rt.pool_refs) + 1
        finally:
            t3 = time.perf_counter()
            rt.stop()
            t4 = time.perf_counter()
        deadline = time.monotonic() + 5
        while True:
            left = [t for t in threading.enumerate() if t.ident not in before_threads]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        t5 = time.perf_counter()
    load, start, stop = t1 - t0, t2 - t1, t4 - t3
    grown = rss1 - rss0
    print(
        f"4. scale: {n_inst} simulated instances in {s.scale_pools} pools of {s.scale_per_pool} ({n_actors} actors)"
    )
    print(
        f"   config load {load:.2f} s, Runtime.start() {start:.2f} s, total {load + start:.2f} s   bar start < 3 s: {verdict(start < 3)}"
    )
    print(f"   threads while running: {alive} (before: {len(before_threads)})")
    print(
        f"   RSS {rss0:.0f} MB -> {rss1:.0f} MB: +{grown:.0f} MB ({1024 * grown / n_actors:.0f} KiB per actor)   bar < 300 MB: {verdict(grown < 300)}"
    )
    names = ", ".join(sorted({t.name for t in left})[:5])
    print(
        f"   stop() {stop:.2f} s; threads left behind: {len(left)}{' (' + names + ')' if left else ''}"
        f" after {t5 - t4:.2f} s   bar none: {verdict(not left)}"
    )
    rows.append(
        Row("4. scale, Runtime.start()", f"{start:.2f} s (load {load:.2f} s)", BARS["start"], start < 3)
    )
    rows.append(Row("4. scale, RSS increase", f"{grown:.0f} MB", BARS["rss"], grown < 300))
    rows.append(Row("4. scale, threads left after stop", str(len(left)), BARS["leftover"], not left))


# --------------------------------------------------------------------------- main


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under 30 s)")
    parser.add_argument("--only", choices=["sequential", "threads", "async", "scale"], help="run one figure")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar fails")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    wanted = [args.only] if args.only else ["sequential", "threads", "async", "scale"]
    machine = f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), Python {platform.python_version()} ({platform.python_implementation()}), httpx {httpx.__version__}, {platform.machine()}"
    print(f"llm-actors overhead benchmark{' (--quick)' if args.quick else ''}: {machine}")
    began = time.perf_counter()
    rows: list[Row] = []

    if any(k in wanted for k in ("sequential", "threads", "async")):
        with FakeProcess() as fake, tempfile.TemporaryDirectory(prefix="llm-actors-bench-") as tmp:
            print(f"fake provider: {fake.url} (pid {fake.pid}, python {fake.command})")
            b = build(fake, Path(tmp))
            b.rows = rows
            print(f"body (both ways): {json.dumps(b.body)} -> {b.url.removeprefix(fake.url)}")
            print()
            try:
                if "sequential" in wanted:
                    bench_sequential(b, s)
                    print()
                if "threads" in wanted:
                    bench_threads(b, s)
                    print()
                if "async" in wanted:
                    bench_async(b, s)
                    print()
            finally:
                b.rt.stop()
    if "scale" in wanted:
        bench_scale(rows, s)
        print()

    width = max(len(r.figure) for r in rows)
    vwidth = max(len(r.value) for r in rows)
    bwidth = max(len(r.bar) for r in rows)
    print("summary")
    print(f"  {'figure':{width}}  {'value':{vwidth}}  {'bar':{bwidth}}  result")
    for r in rows:
        print(f"  {r.figure:{width}}  {r.value:{vwidth}}  {r.bar:{bwidth}}  {verdict(r.ok)}")
    failed = [r for r in rows if not r.ok]
    print(
        f"machine: {machine}; total run {time.perf_counter() - began:.1f} s; {len(rows) - len(failed)}/{len(rows)} PASS"
    )
    return 1 if (args.check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
