"""Wrappers end to end: sync and async generate, rotation strategies, stats, health, factory."""

from __future__ import annotations

import asyncio
import collections

import pytest

import actors
from actors.errors import NoCapacityError
from actors.runtime import Runtime

MSG = [{"role": "user", "content": "hi"}]


def pool(strategy="round_robin", names="abc", **extra):
    return dict(
        models={n: {} for n in names},
        groups={"g": {"echelon1": {"models": list(names), "priority": 1}}},
        pools={"p": {"task_groups": ["g.echelon1"], "rotation_strategy": strategy, **extra}},
    )


def test_sync_generate_returns_a_normalized_response(fake, runtime_for):
    rt = runtime_for(**pool())
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate([actors.SystemMessage("be brief"), actors.HumanMessage("hello there")], max_tokens=50)
    assert r.content == "echo: hello there"
    assert r.instance == "a" and r.target == "pool:p"
    assert r.token_usage.total_tokens > 0
    assert [a.outcome.value for a in r.attempts] == ["success"]
    sent = fake.requests("a")[0]
    assert sent["body"]["max_tokens"] == 50
    assert sent["headers"]["authorization"] == "Bearer sk-test-a"


async def test_async_generate_on_the_callers_loop(fake, runtime_for):
    rt = runtime_for(**pool())
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    results = await asyncio.gather(*(w.generate_async(MSG) for _ in range(9)))
    assert collections.Counter(r.instance for r in results) == {"a": 3, "b": 3, "c": 3}


def test_round_robin_stays_fair_when_an_instance_drops_out(fake, runtime_for):
    rt = runtime_for(**pool(failure_threshold=1, recovery_time=3600))
    fake.configure("b", status=503, times=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    w.generate(MSG)  # a
    w.generate(MSG)  # b fails, c serves
    served = collections.Counter(w.generate(MSG).instance for _ in range(30))
    assert served == {"a": 15, "c": 15}


def test_weighted_rotation_follows_the_configured_weights(fake, runtime_for):
    rt = runtime_for(**pool("weighted", names="ab", weights={"a": 3, "b": 1}))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    served = collections.Counter(w.generate(MSG).instance for _ in range(40))
    assert served == {"a": 30, "b": 10}


def test_least_recently_used_cycles_through_every_instance(fake, runtime_for):
    rt = runtime_for(**pool("least_recently_used"))
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    order = [w.generate(MSG).instance for _ in range(6)]
    assert sorted(order[:3]) == ["a", "b", "c"] and order[3:] == order[:3]


def test_lowest_latency_prefers_the_fast_instance(fake, runtime_for):
    rt = runtime_for(**pool("lowest_latency", names="ab"))
    # Far slower than b can seem even on a loaded machine (b's first call opens its connection).
    fake.configure("a", latency=0.25)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(2):
        w.generate(MSG)
    # The instance actors average latencies off the request path; ask one so they are current.
    rt.instance_stats("a"), rt.instance_stats("b")
    served = collections.Counter(w.generate(MSG).instance for _ in range(10))
    assert served == {"b": 10}


def test_stats_keep_the_original_keys_and_add_percentiles_attempts_tokens(fake, runtime_for):
    rt = runtime_for(**pool(names="ab"))
    fake.configure("a", status=503, times=1)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(4):
        w.generate(MSG)
    s = w.get_stats()
    for key in (
        "total_requests",
        "successful_requests",
        "failed_requests",
        "total_response_time",
        "avg_response_time",
    ):
        assert key in s
    assert s["total_requests"] == 4 and s["successful_requests"] == 4
    assert s["attempts"] == 5
    assert s["latency_p50"] <= s["latency_p95"] <= s["latency_p99"]
    assert s["total_tokens"] > 0
    assert s["outcomes"] == {"unhealthy": 1, "success": 4}  # every attempt's, by kind
    assert w.get_rotation_history(limit=2)[-1]["instance_id"] in {"a", "b"}
    assert len(w.get_rotation_history(limit=100)) == 5
    w.reset_stats()
    assert w.get_stats()["total_requests"] == 0 and w.get_stats()["outcomes"] == {}
    inst = rt.instance_stats("a")
    assert inst["outcomes"] == {"unhealthy": 1, "success": 2}


async def test_health_check_has_the_original_keys_and_per_instance_state(fake, runtime_for):
    rt = runtime_for(**pool(names="abc"))
    fake.configure("c", status=401)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    for _ in range(3):
        await w.generate_async(MSG)
    h = await w.health_check()
    assert h["healthy"] is True and h["healthy_instances"] == 2 and h["total_instances"] == 3
    assert h["health_ratio"] == pytest.approx(2 / 3)
    c = next(i for i in h["instances"] if i["instance"] == "c")
    assert c["state"] == "disabled" and "401" in c["reason"]
    assert rt.factory.health_check_all()["w"]["healthy_instances"] == 2


def test_factory_api(fake, runtime_for):
    rt = runtime_for(
        **pool(),
        wrappers={
            "pw": {"type": "polling_pool", "pool": "p"},
            "gw": {"type": "task_group", "target": "g.echelon1"},
        },
    )
    f = rt.factory
    assert f.list_wrappers() == {"pw": "PollingPoolWrapper", "gw": "TaskGroupWrapper"}
    with pytest.raises(actors.WrapperFactoryError, match="exists already"):
        f.create_task_group_wrapper("gw", {"target": "g"})
    f.create_task_group_wrapper("gw", {"target": "g"}, replace=True)
    with pytest.raises(actors.WrapperConfigError, match="no polling pool"):
        f.create_polling_pool_wrapper("nope", {"pool": "missing"})
    with pytest.raises(actors.WrapperFactoryError, match="WrapperProxy"):
        f.register_wrapper_type("x", dict)
    with pytest.raises(actors.WrapperFactoryError) as info:
        f.create_wrappers_from_config(
            {"ok": {"type": "task_group", "target": "g"}, "bad": {"type": "task_group", "target": "zz"}}
        )
    assert set(info.value.details["errors"]) == {"bad"} and f.get_wrapper("ok") is not None
    f.get_wrapper("pw").generate(MSG)
    stats = f.get_wrapper_stats()
    assert stats["total_wrappers"] == 3
    assert stats["wrapper_types"] == {"PollingPoolWrapper": 1, "TaskGroupWrapper": 2}
    assert stats["wrapper_stats"]["pw"]["stats"]["total_requests"] == 1
    f.reset_all_stats()
    assert f.get_wrapper("pw").get_stats()["total_requests"] == 0
    assert f.remove_wrapper("pw") is True and f.remove_wrapper("pw") is False
    f.shutdown()
    assert f.list_wrappers() == {}


def test_simulate_runs_the_shipped_config_without_keys(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with Runtime.from_config("config", simulate=True) as rt:
        w = rt.factory.get_wrapper("fast_group_wrapper")
        r = w.generate(MSG, timeout=10)
        assert r.content.startswith("echo")
        assert rt.factory.get_wrapper("fast_pool_wrapper").generate(MSG).instance


def test_instance_stats_turn_tokens_into_cost_with_the_models_prices(fake, runtime_for):
    rt = runtime_for(
        models={"a": {"input_price": 10.0, "output_price": 30.0}},
        groups={"g": {"echelon1": {"models": ["a"]}}},
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG)
    usage = r.token_usage
    assert rt.instance_stats("a")["cost_usd"] == pytest.approx(
        (usage.prompt_tokens * 10 + usage.completion_tokens * 30) / 1e6
    )


def test_tier_defaults_reach_the_provider_and_requests_override_them(fake, runtime_for):
    rt = runtime_for(
        models={"oa": {}, "an": {"model_type": "anthropic"}},
        groups={
            "g": {
                "echelon1": {
                    "models": ["oa"],
                    "temperature": 0.3,
                    "max_tokens": 77,
                    "function_calling": "required",
                },
                "echelon2": {
                    "models": ["an"],
                    "thinking_config": {"budget_tokens": 2048},
                    "max_tokens": 4096,
                },
            }
        },
    )
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    rt.factory.create_task_group_wrapper("w1", {"target": "g.echelon1"}).generate(
        MSG, tools=tools, temperature=0.9
    )
    body = fake.requests("oa")[0]["body"]
    assert body["max_tokens"] == 77 and body["temperature"] == 0.9 and body["tool_choice"] == "required"
    assert "thinking" not in body
    rt.factory.create_task_group_wrapper("w2", {"target": "g.echelon2"}).generate(MSG)
    assert fake.requests("an")[0]["body"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_no_capacity_for_an_unset_key_variable_says_a_restart_sets_it(runtime_for, monkeypatch):
    monkeypatch.delenv("WRAPPERS_UNSET_KEY", raising=False)
    rt = runtime_for(
        models={"nokey": {"api_key": "${WRAPPERS_UNSET_KEY}"}},
        groups={"g": {"echelon1": {"models": ["nokey"]}}},
    )
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    with pytest.raises(NoCapacityError) as info:
        w.generate("hi")
    message = str(info.value)
    assert "nokey: API key variable WRAPPERS_UNSET_KEY is not set" in message
    assert "a key variable set after the process started needs a restart" in message
