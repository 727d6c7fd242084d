"""Runtime.reload: a new configuration without dropping a request or forgetting health."""

from __future__ import annotations

import threading
import time

import pytest
import yaml
from waiting import wait_until

import actors

MSG = [{"role": "user", "content": "hi"}]


def topology(models="ab", **pool):
    return dict(
        models={n: {} for n in models},
        groups={"g": {"echelon1": {"models": list(models), "priority": 1, "concurrency_limit": 8}}},
        pools={"p": {"task_groups": ["g.echelon1"], "failure_threshold": 1, "recovery_time": 600, **pool}},
        wrappers={"pw": {"type": "polling_pool", "pool": "p"}},
    )


def config_dir(rt):
    return rt.config.root.parent


def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_reload_keeps_unchanged_instances_state_and_wrapper_identity(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    w = rt.factory.get_wrapper("pw")
    fake.configure("a", status=503, times=1)
    w.generate(MSG)
    gate_a = rt.table.gates["a"]
    assert gate_a.breakers["pool:p"].state(time.monotonic()).value == "open"
    root = config_dir(rt)
    (root / "llms/provider/openai/c.yaml").write_text(
        yaml.safe_dump(
            {
                "model_type": "openai",
                "model_name": "c-model",
                "base_url": fake.openai_base_url("c"),
                "api_key": "k",
            }
        )
    )
    edit(root / "llms/groups/g.yaml", lambda d: d["echelon1"]["models"].append("c"))
    summary = rt.reload(root)
    assert summary["added"] == ["c"] and "a" in summary["kept"]
    assert rt.table.gates["a"] is gate_a  # same breaker, still open
    assert rt.factory.get_wrapper("pw") is w
    served = {w.generate(MSG).instance for _ in range(6)}
    assert served == {"b", "c"}
    assert w.get_stats()["total_requests"] == 7


def test_an_invalid_reload_is_rejected_and_the_old_config_keeps_serving(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    root = config_dir(rt)
    edit(root / "llms/groups/g.yaml", lambda d: d["echelon1"]["models"].append("nope"))
    with pytest.raises(actors.ConfigError, match="nope"):
        rt.reload(root)
    assert rt.factory.get_wrapper("pw").generate(MSG).instance in {"a", "b"}


def test_requests_in_flight_during_a_reload_all_complete(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    fake.hold("a", "b")  # all six stay in flight through the reload
    w = rt.factory.get_wrapper("pw")
    results, errors = [], []

    def call():
        try:
            results.append(w.generate(MSG))
        except Exception as exc:  # pragma: no cover - asserted empty
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    assert fake.wait_for_in_flight("a", 3, timeout=5) and fake.wait_for_in_flight("b", 3, timeout=5)
    root = config_dir(rt)
    edit(root / "llms/polling_pools/p.yaml", lambda d: d.update(rotation_strategy="least_busy"))
    rt.reload(root)
    assert fake.release("a", "b") == 6
    for t in threads:
        t.join(10)
    assert not errors and len(results) == 6
    with rt.table.lock:
        assert all(g.in_flight == 0 for g in rt.table.gates.values())
        assert all(b.in_flight == 0 for b in rt.table.budgets.values())


def test_a_removed_instance_stops_and_changed_settings_take_effect(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    root = config_dir(rt)
    edit(root / "llms/groups/g.yaml", lambda d: d["echelon1"].update(models=["a"]))
    (root / "llms/provider/openai/b.yaml").unlink()
    old_ref = rt.handles["b"].ref
    summary = rt.reload(root)
    assert summary["removed"] == ["b"]
    assert "b" not in rt.handles and not old_ref.is_alive()
    assert {rt.factory.get_wrapper("pw").generate(MSG).instance for _ in range(3)} == {"a"}


def test_every_factory_over_the_runtime_is_rebound(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    own = actors.LLMWrapperFactory(rt)
    w = own.create_polling_pool_wrapper("mine", {"pool": "p"})
    root = config_dir(rt)
    edit(root / "llms/groups/g.yaml", lambda d: d["echelon1"].update(models=["b"]))
    rt.reload(root)
    assert w.route.steps[0].target is rt.table.targets["pool:p"]
    assert {w.generate(MSG).instance for _ in range(3)} == {"b"}


def test_a_reload_that_lowers_a_limit_counts_the_requests_already_in_flight(fake, runtime_for):
    rt = runtime_for(**topology("a"))
    fake.hold("a")  # the two old requests stay in flight until the late one has queued behind them
    w = rt.factory.get_wrapper("pw")
    threads = [threading.Thread(target=w.generate, args=(MSG,)) for _ in range(2)]
    for t in threads:
        t.start()
    assert fake.wait_for_in_flight("a", 2, timeout=5)
    root = config_dir(rt)
    edit(root / "llms/groups/g.yaml", lambda d: d["echelon1"].update(concurrency_limit=1))
    edit(root / "llms/provider/openai/a.yaml", lambda d: d.update(timeout=7))  # a changed model too
    rt.reload(root)
    late = threading.Thread(target=w.generate, args=(MSG,), kwargs={"timeout": 10})
    late.start()
    wait_until(lambda: len(rt.table.targets["pool:p"].waiters) == 1, what="the late request to queue")
    assert fake.release("a") == 2
    for t in [*threads, late]:
        t.join(10)
    # The late request waited for both old ones: never more than the old two in flight at once.
    assert fake.stats("a")["peak_in_flight"] == 2
    assert rt.table.budgets["g.echelon1"].in_flight == 0 and rt.table.gates["a"].in_flight == 0


def test_reload_applies_wrappers_yaml_and_re_enables_instances_disabled_by_errors(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    fake.configure("a", status=401, times=1)
    w = rt.factory.get_wrapper("pw")
    w.generate(MSG)
    assert rt.table.gates["a"].disabled_reason is not None
    root = config_dir(rt)
    (root / "llms/wrappers.yaml").write_text(
        yaml.safe_dump({"gw": {"type": "task_group", "target": "g.echelon1", "timeout": 9}})
    )
    rt.reload(root)
    assert rt.table.gates["a"].disabled_reason is None
    assert rt.factory.get_wrapper("pw") is None  # no longer declared
    assert rt.factory.get_wrapper("gw").timeout == 9


def test_stats_read_while_reloading_never_fail(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    root = config_dir(rt)
    stop = threading.Event()
    errors, reads = [], [0]

    def poll():
        while not stop.is_set():
            try:
                rt.stats()
                reads[0] += 1
            except Exception as exc:  # pragma: no cover - asserted empty
                errors.append(exc)

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for t in pollers:
        t.start()
    try:
        for members in ["a", "ab"] * 5:  # each reload rebuilds the group and pool actors
            edit(root / "llms/groups/g.yaml", lambda d, m=members: d["echelon1"].update(models=list(m)))
            rt.reload(root)
            wait_until(lambda n=reads[0]: reads[0] > n, what="a stats read after the reload")
    finally:
        stop.set()
        for t in pollers:
            t.join(10)
    assert not errors, errors[:3]


def with_c_ejected(fake, runtime_for):
    """A runtime whose pool p (a, b, c) has ejected the slow c, for 600 s; and the pool's wrapper."""
    od = {"min_requests": 3, "latency_factor": 3, "base_ejection_time": 600, "max_ejection_percent": 34}
    rt = runtime_for(**topology("abc", outlier_detection=od, failure_threshold=100))
    fake.configure("c", latency=0.6)
    w = rt.factory.get_wrapper("pw")
    for _ in range(9):
        w.generate(MSG)
    return rt, w


def test_a_reload_keeps_the_ejections_of_instances_it_keeps(fake, runtime_for):
    rt, w = with_c_ejected(fake, runtime_for)
    before = rt.stats()["resilience"]["outlier_detection"]["pool:p"]
    assert list(before["ejected"]) == ["c"]
    root = config_dir(rt)
    edit(root / "llms/polling_pools/p.yaml", lambda d: d.update(health_check_interval=45))
    summary = rt.reload(root)
    assert "c" in summary["kept"]
    after = rt.stats()["resilience"]["outlier_detection"]["pool:p"]
    assert after["ejected"] == before["ejected"]  # the same end, not a fresh start or none
    assert after["ejections_total"] == 1
    fake.reset()
    assert {w.generate(MSG).instance for _ in range(6)} == {"a", "b"}
    assert "c" not in [instance for instance, _ in fake.log]


def test_a_reload_that_changes_an_instance_lets_it_back_in_measured_afresh(fake, runtime_for):
    rt, w = with_c_ejected(fake, runtime_for)
    assert list(rt.stats()["resilience"]["outlier_detection"]["pool:p"]["ejected"]) == ["c"]
    fake.clear("c")
    root = config_dir(rt)
    edit(root / "llms/provider/openai/c.yaml", lambda d: d.update(timeout=30))
    assert rt.reload(root)["changed"] == ["c"]
    assert rt.stats()["resilience"]["outlier_detection"]["pool:p"]["ejected"] == {}
    assert "c" in {w.generate(MSG).instance for _ in range(3)}


def pool_status_view(rt):
    status = rt.pool_status("p")
    return status["out_of_rotation"], [(h["instance"], h["event"]) for h in status["rotation_history"]]


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_a_reload_keeps_the_pool_rotation_of_an_instance_whose_breaker_is_open(
    fake, runtime_for, request, shared
):
    state = {"state": request.getfixturevalue("redis_server").url} if shared else {}
    rt = runtime_for(**topology("ab"), **state)
    fake.configure("a", status=503, times=1)
    rt.factory.get_wrapper("pw").generate(MSG)
    wait_until(lambda: "a" in rt.pool_status("p")["out_of_rotation"], what="a rotated out")
    root = config_dir(rt)
    edit(root / "llms/polling_pools/p.yaml", lambda d: d.update(health_check_interval=45))
    assert "a" in rt.reload(root)["kept"]
    out, history = pool_status_view(rt)
    assert out == {"a": "circuit breaker open"}  # as the state owner holds it
    assert history == [("a", "out")]  # the history goes on, without a second "out"
    assert rt.pool_status("p")["in_rotation"] == ["b"]


def test_a_reload_keeps_the_pool_rotation_of_an_ejected_instance(fake, runtime_for):
    rt, _ = with_c_ejected(fake, runtime_for)
    wait_until(lambda: "c" in rt.pool_status("p")["out_of_rotation"], what="c rotated out")
    root = config_dir(rt)
    edit(root / "llms/polling_pools/p.yaml", lambda d: d.update(health_check_interval=45))
    assert "c" in rt.reload(root)["kept"]
    out, history = pool_status_view(rt)
    assert out == {"c": "ejected: slow outlier"}
    assert history == [("c", "out")]


def test_after_a_reload_the_pool_lets_an_instance_back_in_when_its_breaker_recovers(fake, runtime_for):
    # No probes and no traffic: only the recovery timer of the new supervisor brings it back.
    rt = runtime_for(**topology("ab", recovery_time=1, health_check_interval=3600))
    fake.configure("a", status=503, times=1)
    rt.factory.get_wrapper("pw").generate(MSG)
    wait_until(lambda: ("a", "out") in pool_status_view(rt)[1], what="a rotated out")
    root = config_dir(rt)
    edit(root / "llms/polling_pools/p.yaml", lambda d: d.update(description="reloaded"))
    rt.reload(root)
    wait_until(lambda: pool_status_view(rt) == ({}, [("a", "out"), ("a", "in")]), what="a back in")


def test_a_reload_that_changes_an_instance_rotates_it_back_in(fake, runtime_for):
    rt = runtime_for(**topology("ab"))
    fake.configure("a", status=503, times=1)
    rt.factory.get_wrapper("pw").generate(MSG)
    wait_until(lambda: "a" in rt.pool_status("p")["out_of_rotation"], what="a rotated out")
    root = config_dir(rt)
    edit(root / "llms/provider/openai/a.yaml", lambda d: d.update(timeout=30))
    assert rt.reload(root)["changed"] == ["a"]  # judged afresh: its breaker starts closed
    assert pool_status_view(rt) == ({}, [("a", "out"), ("a", "in")])
    assert rt.pool_status("p")["rotation_history"][-1]["reason"] == "reloaded"
