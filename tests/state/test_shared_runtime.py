"""Two runtimes on one redis-server (two processes as the store sees them): shared facts.

Each runtime has its own store connection and process id, so it hears the other's events
exactly as another process would; the fake provider counts what reaches each instance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import async_wait_until, wait_until

from actors.errors import LLMError, NoCapacityError
from actors.fake.topology import write_topology
from actors.runtime import Runtime

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def pair(tmp_path: Path, fake: Any, redis_server: Any) -> Iterator[Callable[..., tuple[Runtime, Runtime]]]:
    """Two started runtimes on one topology and one store."""
    started: list[Runtime] = []

    def make(**topology: Any) -> tuple[Runtime, Runtime]:
        root = write_topology(tmp_path / "cfg", fake, **topology)
        for _ in range(2):
            started.append(Runtime.from_config(root, state=redis_server.url).start())
        return started[0], started[1]

    yield make
    for rt in started:
        rt.stop()


def _breaker(rt: Runtime, instance: str, route: str) -> str:
    return rt.state.snapshot(time.monotonic())[instance]["breakers"][route]["state"]


def _one_tier(models: list[str], **settings: Any) -> dict[str, Any]:
    return {
        "g": {
            "echelon1": {"models": models, "max_retries": 0},
            "fallback_config": {"circuit_breaker": {"failure_threshold": 2, "recovery_time": 30}, **settings},
        }
    }


def _opened_by_a(pair: Any, fake: Any) -> tuple[Runtime, Runtime, Any, Any]:
    """Two runtimes on one instance, whose breaker the first has opened (two 500s)."""
    a, b = pair(models={"m": {}}, groups=_one_tier(["m"]))
    fake.configure("m", status=500)
    wa, wb = (rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"}) for rt in (a, b))
    for _ in range(2):
        with pytest.raises(LLMError):
            wa.generate(MSG)
    assert _breaker(a, "m", "group:g") == "open"
    return a, b, wa, wb


def test_a_state_listener_hears_the_other_process_s_breaker_events(pair, fake):
    # What the demo listens to: the runtime's state listener, whichever owner holds the state.
    a, b = pair(models={"m": {}}, groups=_one_tier(["m"]))
    heard: list[tuple[str, str, str]] = []
    b.add_state_listener(lambda name, route, event, until: heard.append((name, route, event)))
    fake.configure("m", status=500)
    wa = a.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    for _ in range(2):
        with pytest.raises(LLMError):
            wa.generate(MSG)
    wait_until(lambda: ("m", "group:g", "open") in heard, what="the open event heard in the other process")


def test_breaker_events_reach_the_other_process(pair, fake):
    a, b, wa, wb = _opened_by_a(pair, fake)
    wait_until(lambda: _breaker(b, "m", "group:g") == "open", what="the open event in the other process")
    with pytest.raises(NoCapacityError):
        wb.generate(MSG)  # b judged nothing itself, yet skips the failing instance
    assert fake.stats("m")["requests"] == 2

    fake.clear("m")
    a.state.probe_passed("m", time.monotonic())  # half-open in a: a trial call closes it
    wait_until(lambda: _breaker(b, "m", "group:g") == "half_open", what="the half-open event")
    assert wa.generate(MSG).instance == "m"
    assert _breaker(a, "m", "group:g") == "closed"
    wait_until(lambda: _breaker(b, "m", "group:g") == "closed", what="the closed event in the other process")
    assert wb.generate(MSG).instance == "m"


def test_only_one_process_probes_a_recovering_instance(pair, fake):
    a, b, wa, wb = _opened_by_a(pair, fake)
    wait_until(lambda: _breaker(b, "m", "group:g") == "open", what="the open event")
    fake.configure("m", latency=2.0)  # healthy again, but slow: a's trial is still running...
    now = time.monotonic()
    a.state.probe_passed("m", now)
    b.state.probe_passed("m", now)  # ...when b, half-open too, would send its own trial
    trial = threading.Thread(target=wa.generate, args=(MSG,))
    trial.start()
    assert fake.wait_for_in_flight("m", 1)
    with pytest.raises(NoCapacityError):
        wb.generate(MSG, timeout=1)
    assert fake.stats("m")["requests"] == 3  # two failures and a's one trial
    trial.join(10)
    wait_until(lambda: _breaker(b, "m", "group:g") == "closed", what="the closed event after the trial")


def test_an_async_half_open_trial_takes_its_probe_lease_without_blocking_the_loop(pair, fake, redis_server):
    # The probe lease is a store round trip like the admission: on an event loop it is awaited,
    # never a blocking call that would stall every other request on the loop for up to its bound.
    a, _, wa, _ = _opened_by_a(pair, fake)
    fake.clear("m")
    a.state.probe_passed("m", time.monotonic())  # half-open: the next call is a trial
    store = a.state.store
    blocking: list[str] = []
    sync_try_probe = store.try_probe

    def recorded(owner: Any, seconds: float) -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            blocking.append(owner.label)
        return sync_try_probe(owner, seconds)

    store.try_probe = recorded
    assert asyncio.run(wa.generate_async(MSG)).instance == "m"  # the trial went, and closed the breaker
    assert blocking == []
    assert _breaker(a, "m", "group:g") == "closed"
    assert fake.stats("m")["requests"] == 3  # two failures and the one trial


def test_one_process_probes_and_the_other_brings_the_instance_back_on_its_result(pair, fake):
    fake.configure("a", status=401)  # the call and every probe, until cleared
    a, b = pair(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a", "b"], "max_retries": 1}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "rotation_strategy": "round_robin",
                "health_check_interval": 0.1,
            }
        },
    )
    wa = a.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(2):  # round robin: one of them reaches a, which is disabled for both
        assert wa.generate(MSG).instance == "b"

    def out(rt: Runtime) -> dict[str, str]:
        status = rt.pool_status("p")
        assert status is not None
        return status["out_of_rotation"]

    wait_until(lambda: "a" in out(a) and "a" in out(b), what="a out of rotation in both")
    wait_until(
        lambda: sum(rt.supervisor_stats()["probes"].get("skipped", 0) for rt in (a, b)) >= 2,
        what="a probe skipped because the other process was sending it",
    )
    fake.clear("a")
    wait_until(lambda: "a" not in out(a) and "a" not in out(b), what="a back in rotation in both")
    stats = [rt.supervisor_stats() for rt in (a, b)]
    assert sum(s["probes"].get("passed", 0) for s in stats) == 1  # one probe passed, for both
    for s in stats:  # the one that probed, and the one that heard of it
        assert "probe_passed" in [h["event"] for h in s["history"] if h["instance"] == "a"]


def test_while_the_store_is_away_every_process_probes_for_itself(pair, redis_server):
    a, b = pair(models={"m": {}}, groups=_one_tier(["m"]))
    assert a.state.claim_probe("m", 30) and not b.state.claim_probe("m", 30)
    redis_server.kill()
    wait_until(
        lambda: a.state_status()["degraded"] and b.state_status()["degraded"], what="the outage noticed"
    )
    assert a.state.claim_probe("m", 30) and b.state.claim_probe("m", 30)


def test_async_callers_share_one_concurrency_limit_with_threads_elsewhere(pair, fake):
    a, b = pair(
        models={"m": {}},
        groups={"g": {"echelon1": {"models": ["m"], "concurrency_limit": 1}}},
    )
    fake.configure("m", latency=0.02)
    wa, wb = (
        rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "timeout": 30}) for rt in (a, b)
    )

    async def many() -> list[Any]:
        return await asyncio.gather(*(wa.generate_async(MSG) for _ in range(8)))

    threads = [threading.Thread(target=wb.generate, args=(MSG,)) for _ in range(8)]
    for t in threads:
        t.start()
    answers = asyncio.run(many())
    for t in threads:
        t.join(30)
    assert len(answers) == 8
    assert fake.stats("m")["requests"] == 16
    assert fake.stats("m")["peak_in_flight"] == 1
    assert a.state_status()["backend"] == "redis" and not a.state_status()["degraded"]
    assert wa.health()["shared_state"] == {"degraded": False, "on_outage": "split"}


def test_on_outage_closed_refuses_while_the_store_is_away(tmp_path, fake, redis_server):
    root = write_topology(
        tmp_path / "cfg", fake, models={"m": {}}, groups={"g": {"echelon1": {"models": ["m"]}}}
    )
    (root / "llms" / "state.yaml").write_text(f"backend: redis\nurl: {redis_server.url}\non_outage: closed\n")
    with Runtime.from_config(root) as rt:
        w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
        assert w.generate(MSG).instance == "m"
        redis_server.kill()
        wait_until(lambda: rt.state_status()["degraded"], what="the outage to be noticed")
        with pytest.raises(NoCapacityError, match="shared state store unavailable"):
            w.generate(MSG, timeout=2)
        assert fake.stats("m")["requests"] == 1  # refused, not sent
        redis_server.start()
        wait_until(lambda: not rt.state_status()["degraded"], what="recovery")
        assert w.generate(MSG).instance == "m"


def test_an_async_request_cancelled_while_the_store_admits_gives_its_slot_back(
    tmp_path, fake, redis_server, monkeypatch
):
    # A client that goes away while its admission is on the wire (here: a store that has not
    # answered yet) must not keep the instance's local slot, nor its shared one, for good.
    monkeypatch.setenv("LLM_ACTORS_STATE_TIMEOUT", "5")
    root = write_topology(
        tmp_path / "cfg",
        fake,
        models={"m": {}},
        groups={"g": {"echelon1": {"models": ["m"], "concurrency_limit": 1}}},
    )
    with Runtime.from_config(root, state=redis_server.url) as rt:
        w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1", "timeout": 30})

        def in_flight() -> int:
            return rt.state.snapshot(time.monotonic())["m"]["in_flight"]

        async def cancelled_mid_admission() -> None:
            await w.generate_async(MSG)  # this loop's store connection is open: the admission goes out
            os.kill(redis_server.pid, signal.SIGSTOP)  # the admission waits for its answer
            try:
                task = asyncio.ensure_future(w.generate_async(MSG))
                await async_wait_until(lambda: in_flight() == 1)  # the local slot is taken
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)

        asyncio.run(cancelled_mid_admission())
        wait_until(lambda: in_flight() == 0, what="the cancelled request's local slot back")
        # The shared slot too: the next request is admitted (a leaked one refuses until its lease expires).
        assert asyncio.run(w.generate_async(MSG, timeout=2)).instance == "m"
        assert fake.stats("m")["requests"] == 2
