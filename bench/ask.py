"""What an ``ask`` on the request path would cost, against what the state owner costs instead.

    python bench/ask.py

Admission is one call into the state owner (``LocalState.lease`` then ``give_back``, one lock
each). The alternative design, an actor that owns the state and grants leases, costs the caller
one ``ask`` (the lease; the give-back can be a ``tell``). Both are timed here on the same
simulated topology, sequentially (median of many rounds) and from 16 threads at once
(throughput), so the README can compare them with a loopback HTTP call (``bench/overhead.py``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from actors.actor import Actor  # noqa: E402
from actors.config import load_config  # noqa: E402
from actors.fake.topology import write_topology  # noqa: E402
from actors.outcome import Outcome  # noqa: E402
from actors.reply import ask_sync  # noqa: E402
from actors.state.local import LocalState  # noqa: E402
from actors.state.table import pool_label  # noqa: E402

ROUNDS = 20_000
THREADS = 16


class _Ticket:
    __slots__ = ("deadline", "plan", "waiter", "waiting_at")

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        self.deadline = time.monotonic() + 60.0
        self.waiter = self.waiting_at = None


class _Lease:
    __slots__ = ("reply",)

    def __init__(self, reply: Any) -> None:
        self.reply = reply


class _GiveBack:
    __slots__ = ("lease",)

    def __init__(self, lease: Any) -> None:
        self.lease = lease


class LeaseActor(Actor):
    """The design not taken: an actor owns the state; callers ask it for each lease."""

    handlers = {_Lease: "_on_lease", _GiveBack: "_on_give_back"}

    def __init__(self, state: LocalState, route: Any) -> None:
        super().__init__()
        self.state = state
        self.route = route

    def _on_lease(self, m: _Lease) -> None:
        m.reply.set(
            self.state.lease(self.route.steps[0].target, _Ticket(self.route.plan()), time.monotonic(), None)
        )

    def _on_give_back(self, m: _GiveBack) -> None:
        self.state.give_back(m.lease, Outcome.SUCCESS, time.monotonic())


def _direct(state: LocalState, route: Any) -> None:
    lease = state.lease(route.steps[0].target, _Ticket(route.plan()), time.monotonic(), None)
    state.give_back(lease, Outcome.SUCCESS, time.monotonic())


def _asked(ref: Any) -> None:
    lease = ask_sync(ref, _Lease)
    ref.tell(_GiveBack(lease))


def _median_us(fn: Any, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def _throughput(fn: Any, per_thread: int) -> float:
    barrier = threading.Barrier(THREADS + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            fn()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return THREADS * per_thread / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        models = {n: {"model_type": "simulated"} for n in "abc"}
        root = write_topology(
            Path(tmp),
            None,
            models=models,
            groups={"g": {"echelon1": {"models": list(models), "priority": 1}}},
            pools={"p": {"task_groups": ["g.echelon1"]}},
        )
        config = load_config(root)
    state = LocalState(config, dict.fromkeys(config.models))
    route = state.table.pool_route(config, "p")
    assert state.table.targets[pool_label("p")] is route.steps[0].target
    ref = LeaseActor.start(state, route)
    try:
        for _ in range(2_000):  # warm-up
            _direct(state, route)
            _asked(ref)
        direct = _median_us(lambda: _direct(state, route), ROUNDS)
        asked = _median_us(lambda: _asked(ref), ROUNDS // 4)
        direct_tp = _throughput(lambda: _direct(state, route), 5_000)
        asked_tp = _throughput(lambda: _asked(ref), 500)
    finally:
        ref.stop()
    print(f"sequential, median per request: owner call {direct:.1f} µs; ask an actor {asked:.1f} µs")
    print(f"{THREADS} threads, requests/s: owner call {direct_tp:,.0f}; ask an actor {asked_tp:,.0f}")


if __name__ == "__main__":
    main()
