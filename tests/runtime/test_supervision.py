"""The rotation supervisor: rotation out and back in, probes, half-open trials, restarts."""

from __future__ import annotations

import threading
import time

import pytest
from waiting import wait_until

import actors
from actors.fake import FakeProvider
from actors.supervisor import held_out

MSG = [{"role": "user", "content": "hi"}]


def pool_of(names, models=None, **pool):
    return dict(
        models=models or {n: {} for n in names},
        groups={"g": {"echelon1": {"models": list(names), "priority": 1}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": len(names)},
                **pool,
            }
        },
    )


def test_an_open_instance_is_rotated_out_and_back_in(fake, runtime_for):
    rt = runtime_for(
        **pool_of(["a", "b"], failure_threshold=1, recovery_time=0.2, health_check_interval=3600)
    )
    fake.configure("a", status=503, times=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    w.generate(MSG)

    def events():
        return [(h["instance"], h["event"]) for h in rt.pool_status("p")["rotation_history"]]

    wait_until(lambda: len(events()) >= 2)
    assert events()[:2] == [("a", "out"), ("a", "in")]
    assert "a" not in rt.pool_status("p")["out_of_rotation"]
    # Half-open now: the next request to a is a trial, and success closes the breaker.
    for _ in range(4):
        w.generate(MSG)
    assert rt.table.gates["a"].breakers["pool:p"].state(time.monotonic()).value == "closed"


def test_half_open_admits_exactly_half_open_requests_trials_at_once(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a"], "priority": 1, "max_retries": 0},
                "fallback_config": {
                    "max_attempts": 1,
                    "circuit_breaker": {
                        "failure_threshold": 1,
                        "recovery_time": 0.1,
                        "half_open_requests": 2,
                    },
                },
            }
        },
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    fake.configure("a", status=503, times=1)
    with pytest.raises(actors.AllAttemptsFailedError):
        w.generate(MSG)
    breaker = rt.table.gates["a"].breakers["group:g"]
    wait_until(lambda: breaker.state(time.monotonic()).value == "half_open")
    results = []
    threads = [threading.Thread(target=lambda: results.append(_outcome(w))) for _ in range(6)]
    with fake.holding("a"):  # the trials stay in flight until the other four have been turned away
        for t in threads:
            t.start()
        wait_until(lambda: len(results) == 4, what="four requests turned away")
        assert fake.wait_for_in_flight("a", 2)
    for t in threads:
        t.join(10)
    assert fake.stats("a")["peak_in_flight"] == 2
    assert results.count("ok") == 2
    assert results.count("no capacity") == 4


def _outcome(w):
    try:
        w.generate(MSG)
        return "ok"
    except actors.NoCapacityError:
        return "no capacity"


def test_probes_return_a_disabled_instance_to_service(fake, runtime_for):
    rt = runtime_for(**pool_of(["a", "b"], health_check_interval=0.1))
    fake.configure("a", status=401, times=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate(MSG)
    assert r.instance == "b" and r.attempts[0].outcome.value == "fatal"
    wait_until(lambda: rt.table.gates["a"].disabled_reason is None)
    events = [(h["instance"], h["event"]) for h in rt.supervisor_stats()["history"]]
    assert events.index(("a", "disabled")) < events.index(("a", "probe_passed"))
    assert rt.supervisor_stats()["probes"]["passed"] >= 1
    assert len(fake.requests("a")) >= 2  # the failed call and at least one probe


def test_a_crashed_instance_actor_is_restarted_while_requests_flow(fake, runtime_for):
    rt = runtime_for(**pool_of(["a", "b"]))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    stop = threading.Event()
    failures = []
    count = [0]

    def load():
        while not stop.is_set():
            try:
                w.generate(MSG)
                count[0] += 1
            except Exception as exc:  # pragma: no cover - asserted empty below
                failures.append(exc)

    t = threading.Thread(target=load)
    t.start()
    wait_until(lambda: count[0] > 10)
    old_ref = rt.handles["a"].ref
    rt.crash_instance("a")
    wait_until(lambda: rt.handles["a"].ref is not None and rt.handles["a"].ref is not old_ref)
    seen = count[0]
    wait_until(lambda: count[0] > seen + 10)
    stop.set()
    t.join(10)
    assert not failures
    assert rt.supervisor_stats()["restarts"] == 1
    assert rt.instance_stats("a")["restarts"] == 1
    assert rt.handles["a"].ref.is_alive()


def test_an_instance_killed_mid_load_is_avoided_and_used_again_when_restored(fake, runtime_for):
    other = FakeProvider("127.0.0.1", 0).start()
    try:
        rt = runtime_for(
            **pool_of(
                ["a", "b"],
                models={"a": {}, "b": {"base_url": other.openai_base_url("b")}},
                failure_threshold=1,
                recovery_time=0.2,
                health_check_interval=0.1,
            )
        )
        w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
        for _ in range(4):
            w.generate(MSG)
        assert other.stats("b")["requests"] == 2
        other.kill()
        for _ in range(10):
            assert w.generate(MSG).instance == "a"
        assert rt.table.gates["b"].breakers["pool:p"].state(time.monotonic()).value != "closed"
        other.restore()
        wait_until(lambda: w.generate(MSG).instance == "b", timeout=10, interval=0.05)
    finally:
        other.stop()


def test_stop_leaves_no_actor_thread_behind(fake, runtime_for):
    before = {t.ident for t in threading.enumerate()}
    rt = runtime_for(**pool_of(["a", "b"]))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    w.generate(MSG)
    rt.stop()
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()], timeout=5
    )


def test_probes_also_cover_instances_reached_only_through_a_group(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}},
        groups={"g": {"echelon1": {"models": ["a", "b"], "priority": 1}}},
        group_probe_interval=0.1,
    )
    fake.configure("a", status=403, times=1)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    assert w.generate(MSG).instance == "b"
    wait_until(lambda: rt.table.gates["a"].disabled_reason is None)
    assert ("a", "probe_passed") in [(h["instance"], h["event"]) for h in rt.supervisor_stats()["history"]]


def test_a_state_listener_hears_each_change_until_removed(fake, runtime_for):
    rt = runtime_for(**pool_of(["a", "b"], failure_threshold=1, recovery_time=600))
    heard: list[tuple[str, str, str]] = []

    def broken(*_):
        raise RuntimeError("a listener's bug")

    rt.add_state_listener(broken)  # logged; neither the request nor the next listener suffers
    remove = rt.add_state_listener(lambda name, route, event, until: heard.append((name, route, event)))
    fake.configure("a", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    assert w.generate(MSG).instance == "b"
    assert heard == [("a", "pool:p", "open")]
    remove()
    rt.state.probe_passed("a", time.monotonic())  # open -> half-open, unheard now
    assert heard == [("a", "pool:p", "open")]


def _snap(state="closed", parked_until=None, breaker="closed", open_until=None):
    return {
        "state": state,
        "parked_until": parked_until,
        "breakers": {"pool:p": {"state": breaker, "open_until": open_until}},
    }


@pytest.mark.parametrize(
    ("snapshot", "options", "held"),
    [
        (_snap(), {}, []),
        (_snap("open", breaker="open", open_until=9.0), {}, [("open", 9.0)]),
        (_snap("half_open", breaker="half_open"), {}, []),  # trials are in rotation
        (
            _snap("parked", parked_until=5.0, breaker="open", open_until=9.0),
            {},
            [("parked", 5.0), ("open", 9.0)],
        ),
        (_snap(), {"ejected_until": 7.0}, [("ejected", 7.0)]),
        (_snap("disabled"), {"disabled_by_answer": True}, [("disabled", None)]),
        (_snap("disabled"), {}, []),  # the configuration's disable: never listed, as at a fresh start
        (None, {"ejected_until": 7.0}, []),  # not an instance the owner knows
    ],
)
def test_held_out_reads_what_keeps_an_instance_out_of_a_pool(snapshot, options, held):
    assert held_out(snapshot, "pool:p", **options) == held


def test_a_breaker_open_on_another_route_does_not_hold_an_instance_out_of_this_pool():
    snapshot = {
        "state": "open",
        "parked_until": None,
        "breakers": {"group:g": {"state": "open", "open_until": 9.0}},
    }
    assert held_out(snapshot, "pool:p") == []
