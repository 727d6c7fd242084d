"""Embeddings through wrappers: the same rotation, limits, breakers and fallback as chat."""

from __future__ import annotations

import pytest

from actors.errors import BadRequestError, ConfigError
from actors.fake.embeddings import vector
from actors.runtime import Runtime


def embedding_topology(**emb1: object) -> dict[str, object]:
    steady = {"strategy": "echelon_down", "circuit_breaker": {"failure_threshold": 2, "recovery_time": 3600}}
    return dict(
        models={
            "e1": {"mode": "embedding", **emb1},
            "e2": {"mode": "embedding"},
            "c1": {},
        },
        groups={
            "emb": {
                "echelon1": {"models": ["e1"], "priority": 1, "max_retries": 0},
                "echelon2": {"models": ["e2"], "priority": 2, "max_retries": 0},
                "fallback_config": steady,
            },
            "chat": {"echelon1": {"models": ["c1"], "priority": 1}},
        },
        pools={
            "emb_pool": {"task_groups": ["emb.echelon1", "emb.echelon2"], "rotation_strategy": "round_robin"}
        },
    )


def test_embed_returns_one_vector_per_input_in_order(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
    r = w.embed(["alpha beta", "gamma"], dimensions=4)
    assert r.embeddings == [vector("alpha beta", 4), vector("gamma", 4)]
    assert r.instance == "e1" and r.target == "emb.echelon1"
    assert r.token_usage.prompt_tokens == 3 and r.token_usage.total_tokens == 3
    sent = fake.requests("e1")[-1]["body"]
    # The tier's chat defaults (temperature, max_tokens) do not reach an embeddings API.
    assert sent == {
        "model": "e1-model",
        "input": ["alpha beta", "gamma"],
        "encoding_format": "float",
        "dimensions": 4,
    }
    assert fake.log[-1] == ("e1", "embeddings")
    assert w.get_stats()["successful_requests"] == 1 and w.get_stats()["prompt_tokens"] == 3
    assert rt.instance_stats("e1")["prompt_tokens"] == 3  # the instance actor counts them too


async def test_aembed_takes_a_string_or_token_ids(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
    one = await w.aembed("just this")
    tokens = await w.aembed([1, 2, 3])
    assert one.embeddings == [vector("just this")]
    assert tokens.embeddings == [vector([1, 2, 3])]
    assert fake.requests("e1")[-1]["body"]["input"] == [[1, 2, 3]]


def test_a_failing_instance_falls_back_and_opens_its_breaker(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    fake.configure("e1", status=503)
    w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
    answers = [w.embed("x") for _ in range(4)]
    assert [r.instance for r in answers] == ["e2"] * 4
    assert [a.outcome.value for a in answers[0].attempts] == ["unhealthy", "success"]
    assert fake.stats("e1")["requests"] == 2  # the breaker opened after two failures
    assert w.get_stats()["fallbacks"] == 4


def test_a_pool_rotates_embedding_requests(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    w = rt.factory.create_polling_pool_wrapper("p", {"pool": "emb_pool"})
    assert [w.embed("x").instance for _ in range(4)] == ["e1", "e2", "e1", "e2"]


def test_tokens_from_usage_count_against_the_tpm_limit(fake, runtime_for):
    rt = runtime_for(**embedding_topology(tpm_limit=3))
    w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
    assert w.embed("one two three").instance == "e1"  # 3 tokens: e1's minute is spent
    assert w.embed("four", queue_timeout=0.05).instance == "e2"
    assert fake.stats("e1")["requests"] == 1


async def test_chat_and_embeddings_do_not_cross(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    emb = rt.factory.create_task_group_wrapper("emb_w", {"target": "emb"})
    chat = rt.factory.create_task_group_wrapper("chat_w", {"target": "chat"})
    with pytest.raises(BadRequestError, match="embedding"):
        emb.generate([{"role": "user", "content": "hi"}])
    with pytest.raises(BadRequestError, match="mode: embedding"):
        await chat.aembed("hi")
    with pytest.raises(BadRequestError, match="inputs must be"):
        emb.embed([])
    assert fake.log == []


def test_simulated_instances_embed_like_the_fake(tmp_path, fake):
    from actors.fake.topology import write_topology

    root = write_topology(tmp_path, fake, **embedding_topology())
    with Runtime.from_config(root, simulate=True) as rt:
        w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
        r = w.embed(["a b", "c"], dimensions=5)
    assert r.embeddings == [vector("a b", 5), vector("c", 5)]
    assert r.token_usage.prompt_tokens == 3
    assert fake.log == []  # simulated: nothing went over the network


@pytest.mark.parametrize(
    "models, groups, message",
    [
        (
            {"a": {"model_type": "anthropic", "mode": "embedding"}},
            {},
            "Anthropic has none",
        ),
        (
            {"c": {}, "e": {"mode": "embedding"}},
            {"g": {"echelon1": {"models": ["c", "e"], "priority": 1}}},
            "mix model modes",
        ),
        (
            {"c": {}, "e": {"mode": "embedding"}},
            {
                "g": {
                    "echelon1": {"models": ["c"], "priority": 1},
                    "fallback_config": {"fallback_groups": ["h"]},
                },
                "h": {"echelon1": {"models": ["e"], "priority": 1}},
            },
            "g.echelon1 and its fallbacks mix model modes",
        ),
    ],
)
def test_the_configuration_keeps_one_mode_per_route(tmp_path, fake, models, groups, message):
    from actors.config import load_config
    from actors.fake.topology import write_topology

    root = write_topology(tmp_path, fake, models=models, groups=groups)
    with pytest.raises(ConfigError, match=message):
        load_config(root)


def test_a_wrappers_own_fallbacks_keep_its_mode_too(tmp_path, fake):
    from actors.config import load_config
    from actors.fake.topology import write_topology

    root = write_topology(
        tmp_path,
        fake,
        models={"c": {}, "e": {"mode": "embedding"}},
        groups={
            "g": {"echelon1": {"models": ["c"], "priority": 1}},
            "h": {"echelon1": {"models": ["e"], "priority": 1}},
        },
        wrappers={"w": {"type": "task_group", "target": "g", "fallback_groups": ["h"]}},
    )
    message = "the wrapper's target and fallbacks mix model modes"
    with pytest.raises(ConfigError, match=message):
        load_config(root)


def test_a_garbage_body_is_unhealthy_and_an_upstream_400_is_the_callers(fake, runtime_for):
    rt = runtime_for(**embedding_topology())
    w = rt.factory.create_task_group_wrapper("w", {"target": "emb"})
    fake.configure("e1", garbage=True, times=1)
    r = w.embed("x")
    assert r.instance == "e2" and [a.outcome.value for a in r.attempts] == ["unhealthy", "success"]
    fake.configure("e1", status=400, times=1)
    with pytest.raises(BadRequestError):
        w.embed("x")
    assert fake.stats("e2")["requests"] == 1  # a caller's fault is not retried elsewhere
