"""Hedging against a long tail, and the retry budget during a full outage, side by side.

    python bench/resilience.py              # both (about a minute)
    python bench/resilience.py --quick      # fewer requests
    python bench/resilience.py --only tail|outage

The fake provider runs as its own process (``python -m actors fake-provider --port 0``).

1. tail: a round-robin pool of 4 instances where 5% of calls (a seeded draw per instance) take
   2 s longer. Asyncio callers, 8 at a time. p50, p99 and mean latency, and upstream calls per
   request, without hedging and with ``hedge: {after: 0.05}`` and ``{after: p95}``.
2. outage: a pool of 4 instances that all answer 503, ``max_instance_attempts: 4``, breakers
   kept closed (threshold 10^6) so only the budget limits retries. Upstream calls per request,
   with no effective budget (``ratio: 1000``), the default (``ratio: 0.2, min_per_second: 10``)
   and ``ratio: 0.2, min_per_second: 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
if str(_HERE.parent) not in sys.path:
    sys.path.insert(1, str(_HERE.parent))

import httpx  # noqa: E402
from _topology import FakeProcess, FakeURLs, write_topology  # noqa: E402

from actors.errors import LLMError  # noqa: E402
from actors.runtime import Runtime  # noqa: E402

MESSAGES = [{"role": "user", "content": "hi"}]
MEMBERS = ("t1", "t2", "t3", "t4")
NO_BREAKER = {"failure_threshold": 1_000_000}


def topology(fallback: dict[str, Any]) -> dict[str, Any]:
    return dict(
        models={name: {"timeout": 30} for name in MEMBERS},
        groups={"g": {"echelon1": {"models": list(MEMBERS)}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "failure_threshold": NO_BREAKER["failure_threshold"],
                "fallback_config": {"strategy": "instance_rotation", **fallback},
            }
        },
    )


def upstream_calls(control: httpx.Client) -> int:
    stats = control.get("/_stats").json()
    return sum(s["requests"] for name, s in stats.items() if name in MEMBERS)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def drive(rt: Runtime, n: int, concurrency: int) -> tuple[list[float], int]:
    w = rt.factory.create_polling_pool_wrapper("bench", {"pool": "p", "timeout": 60}, replace=True)
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            start = time.perf_counter()
            try:
                await w.generate_async(MESSAGES, max_tokens=8)
            except LLMError:
                failures += 1
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures


def run_case(
    fake: FakeProcess, tmp: Path, label: str, fallback: dict[str, Any], n: int, faults: dict
) -> dict:
    root = write_topology(tmp / label.replace(" ", "_"), FakeURLs(fake.url), **topology(fallback))
    with httpx.Client(base_url=fake.url, timeout=10) as control:
        control.post("/_reset")
        for name, fault in faults.items():
            control.post(f"/_control/{name}", json=fault).raise_for_status()
        with Runtime.from_config(root) as rt:
            asyncio.run(drive(rt, 20 if "outage" not in label else 0, 4))  # warm-up (and p95 samples)
            before = upstream_calls(control)
            latencies, failures = asyncio.run(drive(rt, n, 8))
            calls = upstream_calls(control) - before
            hedges = rt.resilience_stats()["hedges"]
    return {
        "label": label,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "mean": statistics.fmean(latencies),
        "calls_per_request": calls / n,
        "failures": failures,
        "hedges": hedges,
    }


def bench_tail(fake: FakeProcess, tmp: Path, n: int) -> None:
    faults = {name: {"latency": 2.0, "failure_rate": 0.05, "seed": i} for i, name in enumerate(MEMBERS)}
    cases = [
        ("no hedging", {}),
        ("hedge after 0.05 s", {"hedge": {"after": 0.05, "max_extra": 1}}),
        ("hedge after p95", {"hedge": {"after": "p95", "max_extra": 1}}),
    ]
    rows = [run_case(fake, tmp, label, fb, n, faults) for label, fb in cases]
    print(f"long tail: 5% of calls 2 s slower, {n} async requests, 8 at a time")
    print(f"{'':22}" + "".join(f"{r['label']:>22}" for r in rows))
    for key, fmt in (("p50", "{:.1f} ms"), ("p99", "{:.1f} ms"), ("mean", "{:.1f} ms")):
        print(f"{key:22}" + "".join(f"{fmt.format(r[key] * 1000):>22}" for r in rows))
    print(f"{'upstream calls/request':22}" + "".join(f"{r['calls_per_request']:>22.3f}" for r in rows))
    print(
        f"{'hedges won/lost':22}"
        + "".join(f"{r['hedges']['won']:>17}/{r['hedges']['lost']:<4}" for r in rows)
    )
    print(f"{'failed requests':22}" + "".join(f"{r['failures']:>22}" for r in rows))


def bench_outage(fake: FakeProcess, tmp: Path, n: int) -> None:
    faults = {name: {"status": 503} for name in MEMBERS}
    base = {"max_instance_attempts": 4}
    cases = [
        ("no budget (ratio 1000)", {**base, "retry_budget": {"ratio": 1000, "min_per_second": 1000}}),
        ("default (0.2, 10/s)", base),
        ("ratio 0.2, 1/s", {**base, "retry_budget": {"ratio": 0.2, "min_per_second": 1}}),
    ]
    rows = [run_case(fake, tmp, f"outage {label}", fb, n, faults) for label, fb in cases]
    print(f"full outage: every instance answers 503, {n} async requests, 8 at a time, up to 4 attempts")
    print(f"{'':26}" + "".join(f"{label:>26}" for label, _ in cases))
    print(f"{'upstream calls/request':26}" + "".join(f"{r['calls_per_request']:>26.2f}" for r in rows))
    print(f"{'failed requests':26}" + "".join(f"{r['failures']:>26}" for r in rows))
    print(f"{'mean time to fail':26}" + "".join(f"{r['mean'] * 1000:>23.1f} ms" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--only", choices=["tail", "outage"])
    args = parser.parse_args(argv)
    with FakeProcess() as fake, tempfile.TemporaryDirectory(prefix="llm-actors-bench-") as tmp:
        print(f"fake provider: {fake.url} (pid {fake.pid})\n")
        if args.only in (None, "tail"):
            bench_tail(fake, Path(tmp), 200 if args.quick else 800)
            print()
        if args.only in (None, "outage"):
            bench_outage(fake, Path(tmp), 200 if args.quick else 1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
