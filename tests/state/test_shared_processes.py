"""Several real processes on one configuration and one real redis-server: one set of limits.

Each process is ``process_runner.py`` (a Runtime driven on stdin); the fake provider, in this
process, counts what reaches each instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import wait_until

from actors.fake.process import read_line
from actors.fake.topology import write_topology

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent


class Proc:
    """One runner process."""

    def __init__(self, config: Path, url: str, wrapper: str = "w", timeout: str | None = None) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
        }
        if timeout is not None:
            env["LLM_ACTORS_STATE_TIMEOUT"] = timeout
        self.proc = subprocess.Popen(
            [sys.executable, str(_HERE / "process_runner.py"), str(config), url, wrapper],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.read(30) == {"ready": True}

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 60) -> Any:
        line = read_line(self.proc, timeout)
        assert line, "the runner process said nothing in time"
        return json.loads(line)

    def ask(self, command: str, timeout: float = 60) -> Any:
        self.send(command)
        return self.read(timeout)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def processes(tmp_path: Path, fake: Any, redis_server: Any) -> Iterator[Any]:
    """``start(n, lease_ttl=..., **topology)``: n runner processes on one topology and store."""
    started: list[Proc] = []

    def start(
        n: int, *, lease_ttl: float = 30, replicas: int = 1, timeout: str | None = "0.5", **topology: Any
    ) -> list[Proc]:
        """``timeout`` is the store call bound: generous by default, so that a starved CPU on a
        busy test machine is not taken for an outage (which would split the limits)."""
        root = write_topology(tmp_path / f"cfg{len(started)}", fake, **topology)
        state = {"backend": "redis", "lease_ttl": lease_ttl, "replicas": replicas, "key_prefix": "test"}
        (root / "llms" / "state.yaml").write_text(yaml.safe_dump(state))
        procs = [Proc(root, redis_server.url, timeout=timeout) for _ in range(n)]
        started.extend(procs)
        return procs

    yield start
    for proc in started:
        proc.stop()


def _tier(models: list[str], **limits: Any) -> dict[str, Any]:
    return {
        "g": {
            "echelon1": {"models": models, "max_retries": len(models), **limits},
            "fallback_config": {"circuit_breaker": {"failure_threshold": 100}},
        }
    }


WRAPPER = {"w": {"type": "task_group", "target": "g.echelon1"}}


def _together(procs: list[Proc], command: str, timeout: float = 60) -> list[dict[str, int]]:
    for proc in procs:
        proc.send(command)
    return [proc.read(timeout) for proc in procs]


def _ok(result: dict[str, int]) -> int:
    return sum(n for outcome, n in result.items() if outcome.startswith("ok"))


def test_four_processes_admit_at_most_one_rpm_limit(processes, fake):
    procs = processes(4, models={"m": {}}, groups=_tier(["m"], rpm_limit=10), wrappers=WRAPPER)
    results = _together(procs, "run 8 4 4")
    assert sum(_ok(r) for r in results) == 10, results
    assert fake.stats("m")["requests"] == 10  # 32 asked, the limit reached the provider


def test_four_processes_never_exceed_one_concurrency_limit(processes, fake):
    fake.configure("m1", latency=0.05)
    fake.configure("m2", latency=0.05)
    procs = processes(
        4, models={"m1": {}, "m2": {}}, groups=_tier(["m1", "m2"], concurrency_limit=3), wrappers=WRAPPER
    )
    results = _together(procs, "run 12 6 30")
    assert sum(_ok(r) for r in results) == 48  # every request waited its turn and succeeded
    assert fake.stats("m1")["peak_in_flight"] + fake.stats("m2")["peak_in_flight"] >= 3
    # Both instances' peaks may not coincide; the sum over time never does more than the limit:
    assert max(fake.stats("m1")["peak_in_flight"], fake.stats("m2")["peak_in_flight"]) <= 3


def test_a_killed_processs_slot_returns_within_lease_ttl(processes, fake):
    fake.configure("m", hang=True, times=1)  # the first call never answers
    holder, other = processes(
        2, lease_ttl=1, models={"m": {}}, groups=_tier(["m"], concurrency_limit=1), wrappers=WRAPPER
    )
    holder.send("run 1 1 60")
    assert fake.wait_for_in_flight("m", 1)
    holder.kill()  # its lease is never given back nor renewed
    # The slot is free again once the lease expires (1 s): a 10 s request gets it.
    assert other.ask("run 1 1 10") == {"ok:m": 1}


def test_a_429_parks_the_instance_for_every_other_process(processes, fake):
    fake.configure("a", status=429, retry_after=30)
    first, second = processes(
        2,
        models={"a": {}, "b": {}},
        pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin"}},
        groups=_tier(["a", "b"]),
        wrappers={"w": {"type": "polling_pool", "pool": "p"}},
    )
    # Round robin sends a request of each process to a until one of them hears the 429.
    assert first.ask("run 2 1 10") == {"ok:b": 2}
    assert fake.stats("a")["requests"] == 1
    assert second.ask("run 6 1 10") == {"ok:b": 6}  # the other process never tries a
    assert fake.stats("a")["requests"] == 1


def test_a_store_killed_mid_load_fails_no_request_and_restarted_resumes_the_limits(
    processes, fake, redis_server
):
    fake.configure("m", latency=0.02)
    procs = processes(
        2,
        replicas=2,
        timeout=None,
        models={"m": {}},
        groups=_tier(["m"], concurrency_limit=2),
        wrappers=WRAPPER,
    )
    for proc in procs:
        proc.send("run 60 4 20")
    wait_until(lambda: fake.stats("m")["requests"] >= 10, what="load under way")
    redis_server.kill()
    results = [proc.read() for proc in procs]
    assert [_ok(r) for r in results] == [60, 60], results  # not one request failed
    # Calls in flight on the store when it went keep running beside each process's share.
    assert fake.stats("m")["peak_in_flight"] <= 2 * 2
    statuses = [proc.ask("status") for proc in procs]
    assert all(s["degraded"] and s["outages"] == 1 for s in statuses), statuses

    fake.reset()
    fake.configure("m", latency=0.02)
    results = _together(procs, "run 30 4 20")
    assert [_ok(r) for r in results] == [30, 30], results
    assert fake.stats("m")["peak_in_flight"] <= 2  # split: one each (replicas: 2)

    redis_server.start()  # empty: every key and script lost
    wait_until(lambda: not any(proc.ask("status")["degraded"] for proc in procs), what="recovery")
    fake.reset()
    fake.configure("m", latency=0.02)
    results = _together(procs, "run 30 4 20")
    assert [_ok(r) for r in results] == [30, 30], results
    assert fake.stats("m")["peak_in_flight"] <= 2  # shared again


def _health(procs: list[Proc]) -> list[dict[str, Any]]:
    return [proc.ask("health") for proc in procs]


def test_one_health_probe_per_interval_across_processes(processes, fake):
    """Three processes each find an instance disabled and its probe due every interval; the
    provider sees the probes of one process's timer, not three, and all three hear it pass."""
    fake.configure("a", status=401)  # the call and every probe: a fatal disable that holds
    procs = processes(
        3,
        models={"a": {}, "b": {}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "rotation_strategy": "round_robin",
                "health_check_interval": 0.25,
            }
        },
        groups=_tier(["a", "b"]),
        wrappers={"w": {"type": "polling_pool", "pool": "p"}},
    )
    assert procs[0].ask("run 2 1 10") == {"ok:b": 2}  # a answered 401 once: disabled everywhere

    def rounds(h: dict[str, Any]) -> int:  # intervals in which the process had a probe due
        return h["probes"].get("sent", 0) + h["probes"].get("skipped", 0)

    k = 6
    wait_until(
        lambda: all(h["states"]["a"] == "disabled" and rounds(h) >= k for h in _health(procs)),
        timeout=30,
        interval=0.05,
        what=f"{k} probe intervals in every process",
    )
    fake.clear("a")  # the next probe passes, in whichever process sends it
    wait_until(
        lambda: all(h["states"]["a"] != "disabled" for h in _health(procs)),
        interval=0.05,
        what="every process to hear that the probe passed",
    )

    def accounted() -> list[dict[str, Any]] | None:  # every probe the provider saw came back
        hs = _health(procs)
        sent = sum(h["probes"].get("sent", 0) for h in hs)
        return hs if sent == fake.stats("a")["by_api"].get("models", 0) else None

    probes = wait_until(accounted, interval=0.05, what="the probes accounted for")
    seen = fake.stats("a")["by_api"]["models"]
    most = max(rounds(h) for h in probes)
    # Uncoordinated, the provider would have seen every process's rounds (about 3 * most).
    # One more for where counting starts and ends, one for the processes' timers drifting.
    assert seen <= most + 2, (seen, probes)
    assert sum(h["probes"].get("skipped", 0) for h in probes) >= k, probes  # turns left to another
    assert sum(h["probes"].get("passed", 0) for h in probes) == 1, probes  # one pass, heard by all
