"""Each fallback strategy, seen from the fake provider: which instances were tried, in what order."""

from __future__ import annotations

import pytest

import actors
from actors.outcome import Outcome

MSG = [{"role": "user", "content": "hi"}]


def tried(fake):
    return [instance for instance, _ in fake.log]


def two_groups(strategy, **fallback):
    """g: echelon1 [a1, a2] -> echelon2 [b]; other: echelon1 [c]; g falls back to other."""
    return dict(
        models={"a1": {}, "a2": {}, "b": {}, "c": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a1", "a2"], "priority": 1, "max_retries": 1},
                "echelon2": {"models": ["b"], "priority": 2, "max_retries": 0},
                "fallback_config": {
                    "strategy": strategy,
                    "fallback_groups": ["other.echelon1"],
                    "max_attempts": 10,
                    "retry_delay": 0.0,
                    **fallback,
                },
            },
            "other": {"echelon1": {"models": ["c"], "priority": 1}},
        },
    )


def test_echelon_down_tries_every_instance_of_the_tier_then_lower_tiers_then_fallback_groups(
    fake, runtime_for
):
    rt = runtime_for(**two_groups("echelon_down"))
    for name in ("a1", "a2", "b"):
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG)
    assert r.instance == "c" and r.target == "other.echelon1"
    assert sorted(tried(fake)[:2]) == ["a1", "a2"] and tried(fake)[2:] == ["b", "c"]
    assert [a.outcome for a in r.attempts] == [Outcome.UNHEALTHY] * 3 + [Outcome.SUCCESS]


def test_task_group_switch_skips_the_groups_lower_tiers(fake, runtime_for):
    rt = runtime_for(**two_groups("task_group_switch"))
    for name in ("a1", "a2"):
        fake.configure(name, status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG)
    assert r.instance == "c"
    assert "b" not in tried(fake)
    assert w.get_stats()["fallbacks"] == 1


def test_provider_failover_skips_the_failed_provider_below_too(fake, runtime_for):
    rt = runtime_for(
        models={"oa1": {}, "an1": {"model_type": "anthropic"}, "oa2": {}, "an2": {"model_type": "anthropic"}},
        groups={
            "g": {
                "echelon1": {"models": ["oa1"], "priority": 1, "max_retries": 0},
                "echelon2": {"models": ["oa2", "an2"], "priority": 2, "max_retries": 1},
                "fallback_config": {"strategy": "provider_failover", "max_attempts": 5, "retry_delay": 0},
            }
        },
    )
    fake.configure("oa1", status=500)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    for _ in range(4):
        assert w.generate(MSG).instance == "an2"
    assert "oa2" not in tried(fake)


def test_echelon_down_with_the_same_topology_does_use_the_other_openai_instance(fake, runtime_for):
    rt = runtime_for(
        models={"oa1": {}, "oa2": {}, "an2": {"model_type": "anthropic"}},
        groups={
            "g": {
                "echelon1": {"models": ["oa1"], "priority": 1, "max_retries": 0},
                "echelon2": {"models": ["oa2", "an2"], "priority": 2, "max_retries": 1},
                "fallback_config": {"strategy": "echelon_down", "max_attempts": 5, "retry_delay": 0},
            }
        },
    )
    fake.configure("oa1", status=500)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    served = {w.generate(MSG).instance for _ in range(4)}
    assert served == {"oa2", "an2"}


def pool_topology(strategy, attempts=3):
    return dict(
        models={"a": {}, "b": {}, "c": {}},
        groups={"g": {"echelon1": {"models": ["a", "b", "c"], "priority": 1}}},
        pools={
            "p": {
                "task_groups": ["g.echelon1"],
                "rotation_strategy": "round_robin",
                "failure_threshold": 100,
                "fallback_config": {"strategy": strategy, "max_instance_attempts": attempts},
            }
        },
    )


def test_instance_rotation_takes_a_new_instance_for_each_attempt(fake, runtime_for):
    rt = runtime_for(**pool_topology("instance_rotation"))
    fake.configure("a", status=503)
    fake.configure("b", status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate(MSG)
    assert [a.instance for a in r.attempts] == ["a", "b", "c"]


def test_simple_retry_retries_the_same_unhealthy_instance(fake, runtime_for):
    rt = runtime_for(**pool_topology("simple_retry"))
    fake.configure("a", status=503, times=2)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p", "retry_delay": 0.01})
    r = w.generate(MSG, timeout=10)
    assert [a.instance for a in r.attempts] == ["a", "a", "a"]
    assert r.attempts[-1].outcome is Outcome.SUCCESS


def test_simple_retry_moves_on_after_a_rate_limit(fake, runtime_for):
    rt = runtime_for(**pool_topology("simple_retry"))
    fake.configure("a", status=429, retry_after=30)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    r = w.generate(MSG)
    assert [a.instance for a in r.attempts] == ["a", "b"]


def test_max_instance_attempts_caps_a_pool_request(fake, runtime_for):
    rt = runtime_for(**pool_topology("instance_rotation", attempts=2))
    for name in "abc":
        fake.configure(name, status=503)
    w = rt.factory.create_polling_pool_wrapper("w", {"pool": "p"})
    with pytest.raises(actors.AllAttemptsFailedError) as info:
        w.generate(MSG)
    assert len(info.value.attempts) == 2
    assert len(fake.log) == 2


def test_a_backoff_that_does_not_fit_the_deadline_falls_back_at_once(fake, runtime_for):
    rt = runtime_for(**two_groups("echelon_down", retry_delay=30))
    fake.configure("a1", status=503)
    fake.configure("a2", status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG, timeout=2)
    # A retry in the tier would first sleep at least 15 s: it goes to the next tier instead.
    assert [a.instance for a in r.attempts][1:] == ["b"] and r.instance == "b"
    assert len(fake.log) == 2


def test_unhealthy_retries_in_a_tier_back_off(fake, runtime_for):
    rt = runtime_for(**two_groups("echelon_down", retry_delay=0.2))
    fake.configure("a1", status=503)
    fake.configure("a2", status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG, timeout=10)
    first, second = r.attempts[0], r.attempts[1]
    assert {first.instance, second.instance} == {"a1", "a2"}
    # The second attempt started at least half the base delay (equal jitter) after the first.
    assert r.response_time >= 0.1


def test_an_exhausted_tier_moves_on_without_a_useless_backoff(fake, runtime_for):
    rt = runtime_for(
        models={"a": {}, "b": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a"], "max_retries": 3},
                "echelon2": {"models": ["b"]},
                "fallback_config": {"retry_delay": 30, "max_attempts": 5},
            }
        },
    )
    fake.configure("a", status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG, timeout=5)  # a 15-30 s backoff would blow this deadline
    assert [a.instance for a in r.attempts] == ["a", "b"]


def test_no_backoff_waits_for_an_instance_that_is_disabled(fake, runtime_for):
    """A tier like the shipped translation tier without keys: one instance disabled, the other failing."""
    rt = runtime_for(
        models={
            "k": {"api_key": "${LLM_ACTORS_TEST_UNSET_KEY}"},  # not set: disabled
            "a": {"model_type": "openai_compatible", "provider": "local"},
            "c": {},
        },
        groups={
            "g": {
                "echelon1": {"models": ["k", "a"], "max_retries": 1},
                "echelon2": {"models": ["c"]},
                "fallback_config": {"strategy": "provider_failover", "retry_delay": 3.6, "max_attempts": 5},
            }
        },
    )
    fake.configure("a", status=503)
    fake.configure("c", latency=2.4)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    # A backoff for k (1.8-3.6 s, equal jitter) would leave c at most 2.2 s of the 4 s deadline.
    r = w.generate(MSG, timeout=4)
    assert [(a.instance, a.outcome) for a in r.attempts] == [("a", Outcome.UNHEALTHY), ("c", Outcome.SUCCESS)]


def test_a_rate_limited_instance_is_replaced_at_once_without_backoff(fake, runtime_for):
    rt = runtime_for(**two_groups("echelon_down", retry_delay=30))
    fake.configure("a1", status=429, retry_after=30)
    fake.configure("a2", status=429, retry_after=30)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    r = w.generate(MSG, timeout=2)
    assert [a.outcome for a in r.attempts] == [Outcome.RATE_LIMITED, Outcome.RATE_LIMITED, Outcome.SUCCESS]
    assert r.instance == "b"


def test_provider_failover_prefers_other_providers_but_never_refuses_a_free_instance(fake, runtime_for):
    rt = runtime_for(
        models={"a1": {}, "a2": {}, "b1": {"model_type": "anthropic"}, "c1": {}},
        groups={
            "g": {
                "echelon1": {"models": ["a1", "a2", "b1"], "max_retries": 2},
                "echelon2": {"models": ["c1"]},
                "fallback_config": {"strategy": "provider_failover", "max_attempts": 5, "retry_delay": 0},
            }
        },
    )
    fake.configure("b1", status=401, times=1)
    w = rt.factory.create_task_group_wrapper("w", {"target": "g.echelon1"})
    w.generate(MSG)  # a1 serves; nothing disables yet
    rt.table.gates["b1"].disabled_reason = "test: unavailable"
    fake.configure("a2", status=429, retry_after=30)
    fake.configure("a1", status=429, retry_after=30, times=1)
    r = w.generate(MSG)
    # a1 is rate limited (not a failed provider); b1, the preferred other provider, is down;
    # so the next free instance of the tier, a2, is tried before falling to echelon2.
    assert [a.instance for a in r.attempts][:2] in (["a1", "a2"], ["a2", "a1"])
