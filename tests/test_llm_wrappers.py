"""The original design's wrapper tests, on real actors over the loopback fake provider.

Every scenario of the original ``tests/test_llm_wrappers.py`` is here under its original name.
The original mocked the managers and checked mock replies; these build the managers seed-style
(``TaskGroupManager(config dir)`` and friends), call the fake provider over HTTP, and check what
the provider saw. Where the original asserted on a private detail that no longer exists, the
docstring says what replaces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import actors
from actors import (
    AllAttemptsFailedError,
    EnhancedFallbackManager,
    HumanMessage,
    LLMWrapperFactory,
    PollingPoolManager,
    TaskGroupManager,
    TokenUsage,
    WrapperConfigError,
    WrapperFactoryError,
)
from actors.fake.topology import write_topology
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper, WrapperProxy

MSG = [HumanMessage("hello there")]


def topology(*, pools: bool = True) -> dict[str, Any]:
    """test_group.echelon1 [model1, model2] -> echelon2 [model3] -> f1 [fb1]; plain_group has no
    fallback_config and tiers whose priorities differ from their names; test_pool [instance1, instance2]."""
    names = [
        "model1",
        "model2",
        "model3",
        "fb1",
        "fb2",
        "plain1",
        "plain2",
        "plain3",
        "instance1",
        "instance2",
    ]
    out: dict[str, Any] = dict(
        models={n: {} for n in names},
        groups={
            "test_group": {
                "echelon1": {
                    "models": ["model1", "model2"],
                    "priority": 1,
                    "max_retries": 1,
                    "function_calling": "enabled",
                },
                "echelon2": {"models": ["model3"], "priority": 2, "max_retries": 0},
                "fallback_config": {
                    "strategy": "echelon_down",
                    "fallback_groups": ["f1.echelon1"],
                    "max_attempts": 6,
                    "retry_delay": 0,
                },
            },
            "f1": {"echelon1": {"models": ["fb1"]}},
            "f2": {"echelon1": {"models": ["fb2"]}},
            "plain_group": {
                "echelon1": {"models": ["plain1"], "priority": 1},
                "echelon2": {"models": ["plain2"], "priority": 3},
                "echelon3": {"models": ["plain3"], "priority": 2},
            },
            "pool_group": {"echelon1": {"models": ["instance1", "instance2"]}},
        },
    )
    if pools:
        out["pools"] = {
            "test_pool": {"task_groups": ["pool_group.echelon1"], "rotation_strategy": "round_robin"}
        }
    return out


@dataclass
class Seed:
    """The original's four objects, built the way its usage example built them."""

    task_group_manager: TaskGroupManager
    polling_pool_manager: PollingPoolManager
    fallback_manager: EnhancedFallbackManager
    factory: LLMWrapperFactory


@pytest.fixture
def make_seed(tmp_path: Path, fake: Any) -> Iterator[Any]:
    managers: list[TaskGroupManager] = []

    def make(**kwargs: Any) -> Seed:
        root = write_topology(tmp_path / f"cfg{len(managers)}", fake, **topology(**kwargs))
        tgm = TaskGroupManager(root)
        managers.append(tgm)
        ppm = PollingPoolManager(tgm)
        fem = EnhancedFallbackManager(tgm)
        factory = LLMWrapperFactory(task_group_manager=tgm, polling_pool_manager=ppm, fallback_manager=fem)
        return Seed(tgm, ppm, fem, factory)

    yield make
    for tgm in managers:
        tgm.shutdown()


@pytest.fixture
def seed(make_seed: Any) -> Seed:
    return make_seed()


def tried(fake: Any) -> list[str]:
    return [instance for instance, _ in fake.log]


# --------------------------------------------------------------------------- base wrapper behaviour


class TestBaseLLMWrapper:
    @pytest.fixture
    def wrapper(self, seed: Seed) -> TaskGroupWrapper:
        return seed.factory.create_task_group_wrapper(
            "test_wrapper", {"target": "test_group.echelon1", "key": "value"}
        )

    def test_init(self, wrapper: TaskGroupWrapper, fake: Any) -> None:
        """Name and config are kept; statistics start at zero (public ``get_stats`` replaces ``_stats``)."""
        assert wrapper.name == "test_wrapper"
        assert wrapper.config == {"target": "test_group.echelon1", "key": "value"}
        assert wrapper.get_stats()["total_requests"] == 0
        assert fake.log == []

    def test_get_token_count(self, wrapper: TaskGroupWrapper) -> None:
        assert wrapper.get_token_count("hello world") == 2

    def test_get_messages_token_count(self, wrapper: TaskGroupWrapper) -> None:
        assert wrapper.get_messages_token_count([HumanMessage("hello world")]) == 2
        assert wrapper.get_messages_token_count([{"role": "user", "content": "hello world"}]) == 2

    def test_messages_to_prompt(self, wrapper: TaskGroupWrapper, fake: Any) -> None:
        """The original flattened messages into one prompt ("Hello\\nWorld"); here the messages
        themselves reach the provider, in order, each with its role."""
        wrapper.generate([HumanMessage("Hello"), actors.AIMessage("Hi"), HumanMessage("World")])
        body = fake.requests(tried(fake)[0])[0]["body"]
        assert [(m["role"], m["content"]) for m in body["messages"]] == [
            ("user", "Hello"),
            ("assistant", "Hi"),
            ("user", "World"),
        ]

    def test_create_llm_response(self, wrapper: TaskGroupWrapper, fake: Any) -> None:
        """The response keeps the provider's token usage (not a guess from the reply), content and model."""
        reply = " ".join(f"w{i}" for i in range(20))
        fake.configure("model1", reply=reply)
        response = wrapper.generate([HumanMessage("one two three four five six seven eight nine ten")])
        assert response.token_usage == TokenUsage(10, 20)
        assert response.token_usage.total_tokens == 30
        assert response.content == reply
        assert response.model == "model1-model" and response.instance == "model1"
        assert response.message == {"role": "assistant", "content": reply}

    def test_update_stats(self, wrapper: TaskGroupWrapper, fake: Any) -> None:
        """A success then a failure: total 2, one of each, average over both requests."""
        wrapper.generate(MSG)
        stats = wrapper.get_stats()
        assert (stats["total_requests"], stats["successful_requests"]) == (1, 1)
        assert stats["avg_response_time"] == pytest.approx(stats["total_response_time"])
        for name in ("model1", "model2"):
            fake.configure(name, status=400)  # the caller's fault: raised at once, no fallback
        with pytest.raises(actors.BadRequestError):
            wrapper.generate(MSG)
        stats = wrapper.get_stats()
        assert (stats["total_requests"], stats["successful_requests"], stats["failed_requests"]) == (2, 1, 1)
        assert stats["avg_response_time"] == pytest.approx(stats["total_response_time"] / 2)

    def test_reset_stats(self, wrapper: TaskGroupWrapper) -> None:
        wrapper.generate(MSG)
        wrapper.reset_stats()
        stats = wrapper.get_stats()
        assert stats["total_requests"] == stats["successful_requests"] == stats["failed_requests"] == 0
        assert stats["total_response_time"] == 0.0


# --------------------------------------------------------------------------- task-group wrapper


class TestTaskGroupWrapper:
    def test_init(self, seed: Seed) -> None:
        w = seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group.echelon1"})
        assert isinstance(w, TaskGroupWrapper)
        assert w.get_model_info()["target"] == "test_group.echelon1"
        assert w.get_model_info()["type"] == "task_group_wrapper"
        assert seed.factory.fallback_manager is seed.fallback_manager

    async def test_generate_async_with_fallback(self, seed: Seed, fake: Any) -> None:
        """The primary tier and the group's lower tier fail; the fallback group answers, called once."""
        for name in ("model1", "model2", "model3"):
            fake.configure(name, status=503)
        w = seed.factory.create_task_group_wrapper(
            "test_wrapper", {"target": "test_group.echelon1", "fallback_groups": ["f1.echelon1"]}
        )
        response = await w.generate_async(MSG)
        assert response.content == "echo: hello there"
        assert response.target == "f1.echelon1" and response.instance == "fb1"
        assert sorted(tried(fake)[:2]) == ["model1", "model2"] and tried(fake)[2:] == ["model3", "fb1"]
        history = w.get_fallback_history()
        assert len(history) == 1 and history[0]["success"] is True and history[0]["target"] == "f1.echelon1"
        assert w.get_stats()["fallbacks"] == 1

    async def test_generate_async_direct(self, make_seed: Any, fake: Any) -> None:
        """Without a fallback manager the wrapper still calls the target's first model for real."""
        s = make_seed()
        factory = LLMWrapperFactory(task_group_manager=s.task_group_manager)
        w = factory.create_task_group_wrapper("test_wrapper", {"target": "test_group.echelon1"})
        response = await w.generate_async(MSG)
        assert response.instance == "model1" and response.content == "echo: hello there"
        assert tried(fake) == ["model1"]

    def test_generate_sync(self, seed: Seed) -> None:
        """``generate()`` with no event loop in this thread."""
        w = seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group.echelon1"})
        assert w.generate(MSG).content == "echo: hello there"

    async def test_generate_sync_inside_a_running_loop(self, seed: Seed) -> None:
        """The original's ``generate()`` broke under a running loop; this one neither nests nor needs one."""
        w = seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group.echelon1"})
        assert w.generate(MSG).content == "echo: hello there"
        assert (await w.generate_async(MSG)).content == "echo: hello there"

    def test_get_fallback_groups_from_config(self, seed: Seed, fake: Any) -> None:
        """The wrapper's ``fallback_groups`` replace the group's; the group's own lower tier comes first."""
        w = seed.factory.create_task_group_wrapper(
            "test_wrapper",
            {"target": "test_group.echelon1", "fallback_groups": ["f2.echelon1", "f1.echelon1"]},
        )
        labels = [s.label for s in w.route.steps]
        assert labels == ["test_group.echelon1", "test_group.echelon2", "f2.echelon1", "f1.echelon1"]
        expected = seed.task_group_manager.get_fallback_groups(
            "test_group.echelon1", ["f2.echelon1", "f1.echelon1"]
        )
        assert labels[1:] == expected
        for name in ("model1", "model2", "model3"):
            fake.configure(name, status=503)
        assert w.generate(MSG).instance == "fb2"

    def test_get_fallback_groups_from_manager(self, seed: Seed) -> None:
        """Without ``fallback_groups`` in the wrapper config, the manager's list is the route."""
        tgm = seed.task_group_manager
        assert tgm.get_fallback_groups("test_group.echelon1") == ["test_group.echelon2", "f1.echelon1"]
        # No fallback_config: echelon_down follows priority (echelon3 has priority 2), not names.
        assert tgm.get_fallback_groups("plain_group.echelon1") == [
            "plain_group.echelon3",
            "plain_group.echelon2",
        ]
        w = seed.factory.create_task_group_wrapper("plain", {"target": "plain_group.echelon1"})
        assert [s.label for s in w.route.steps][1:] == tgm.get_fallback_groups("plain_group.echelon1")

    def test_supports_function_calling(self, seed: Seed, fake: Any) -> None:
        """Answered from the configured target before any call (the original needed a call first)."""
        w = seed.factory.create_task_group_wrapper("tools", {"target": "test_group.echelon1"})
        assert w.supports_function_calling() is True
        plain = seed.factory.create_task_group_wrapper("plain", {"target": "plain_group.echelon1"})
        assert plain.supports_function_calling() is False
        assert fake.log == []


# --------------------------------------------------------------------------- polling-pool wrapper


class TestPollingPoolWrapper:
    def test_init(self, seed: Seed) -> None:
        """The pool is found by ``pool:``, else by the wrapper's name, else by the name without ``_wrapper``."""
        by_name = seed.factory.create_polling_pool_wrapper("test_pool")
        by_key = seed.factory.create_polling_pool_wrapper("anything", {"pool": "test_pool"})
        by_stem = seed.factory.create_polling_pool_wrapper("test_pool_wrapper", {"max_instance_attempts": 2})
        for w in (by_name, by_key, by_stem):
            assert isinstance(w, PollingPoolWrapper) and w.route.label == "pool:test_pool"
        assert by_stem.route.max_attempts == 2
        assert by_name.supports_function_calling() is False

    async def test_generate_async_success(self, seed: Seed, fake: Any) -> None:
        """A real instance answers; the pool's own statistics count it (the original bypassed the pool)."""
        w = seed.factory.create_polling_pool_wrapper("test_pool")
        response = await w.generate_async(MSG)
        assert response.instance == "instance1" and response.content == "echo: hello there"
        assert response.target == "pool:test_pool"
        assert w.get_rotation_history()[-1]["instance_id"] == "instance1"
        status = seed.polling_pool_manager.get_pool("test_pool").get_status()
        assert status["stats"]["total_requests"] == 1
        assert status["members"]["instance1"]["successful_requests"] == 1
        assert w.get_stats()["successful_requests"] == 1

    async def test_generate_async_pool_unavailable(self, seed: Seed, fake: Any) -> None:
        """A pool that does not exist is refused when the wrapper is created (``WrapperConfigError``,
        a ``WrapperError`` like the original's ``PollingPoolWrapperError``); a pool whose every
        instance fails raises the typed error that carries each attempt."""
        assert seed.polling_pool_manager.get_pool("missing") is None
        with pytest.raises(WrapperConfigError, match="no polling pool 'missing'"):
            seed.factory.create_polling_pool_wrapper("w", {"pool": "missing"})
        fake.configure("instance1", status=503)
        fake.configure("instance2", status=503)
        w = seed.factory.create_polling_pool_wrapper("test_pool")
        with pytest.raises(AllAttemptsFailedError) as info:
            await w.generate_async(MSG)
        assert sorted(a.instance for a in info.value.attempts) == ["instance1", "instance2"]
        assert w.get_stats()["failed_requests"] == 1

    def test_get_pool_status(self, seed: Seed) -> None:
        w = seed.factory.create_polling_pool_wrapper("test_pool")
        w.generate(MSG)
        status = w.get_pool_status()
        assert status["name"] == "test_pool" and status["total_instances"] == 2
        view = seed.polling_pool_manager.get_pool("test_pool").get_status()
        assert view["healthy"] is True
        assert (view["healthy_instances"], view["degraded_instances"], view["failed_instances"]) == (2, 0, 0)

    async def test_health_check(self, seed: Seed, fake: Any) -> None:
        w = seed.factory.create_polling_pool_wrapper("test_pool")
        health = await w.health_check()
        assert health["healthy"] is True
        assert (health["healthy_instances"], health["total_instances"]) == (2, 2)
        fake.configure("instance2", status=401)  # fatal for the instance: disabled
        for _ in range(2):
            await w.generate_async(MSG)
        health = await w.health_check()
        assert health["healthy"] is False and health["healthy_instances"] == 1
        assert health["health_ratio"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- factory


class CustomWrapper(TaskGroupWrapper):
    """A custom wrapper type (a test double registered through ``register_wrapper_type``)."""

    kind = "custom"


class NoHealthCheckWrapper(TaskGroupWrapper):
    health_check = None  # type: ignore[assignment]


class BrokenHealthCheckWrapper(TaskGroupWrapper):
    async def health_check(self) -> dict[str, Any]:
        raise RuntimeError("probe exploded")


class TestLLMWrapperFactory:
    def test_init(self, seed: Seed) -> None:
        """Built seed-style, the factory shares the managers' runtime, started on first use."""
        f = seed.factory
        assert f.task_group_manager is seed.task_group_manager
        assert f.polling_pool_manager is seed.polling_pool_manager
        assert f.list_wrappers() == {}
        assert seed.task_group_manager.running is False
        f.create_task_group_wrapper("w", {"target": "test_group"})
        assert seed.task_group_manager.running is True
        assert f.runtime is seed.task_group_manager.runtime

    def test_create_task_group_wrapper(self, seed: Seed) -> None:
        w = seed.factory.create_task_group_wrapper(
            "test_wrapper", {"target": "test_group.echelon1", "key": "value"}
        )
        assert isinstance(w, TaskGroupWrapper) and w.config["key"] == "value"
        assert seed.factory.list_wrappers() == {"test_wrapper": "TaskGroupWrapper"}

    def test_create_polling_pool_wrapper(self, seed: Seed) -> None:
        w = seed.factory.create_polling_pool_wrapper("test_pool", {"key": "value"})
        assert isinstance(w, PollingPoolWrapper) and w.config["key"] == "value"
        assert seed.factory.list_wrappers() == {"test_pool": "PollingPoolWrapper"}

    def test_create_polling_pool_wrapper_no_manager(self, make_seed: Any) -> None:
        """Resolution of the original's contradiction with ``test_list_wrappers``: a factory built
        from a TaskGroupManager alone serves pools from the same runtime, so "no polling pool
        manager" means the configuration has no polling pools at all: ``WrapperFactoryError``."""
        s = make_seed(pools=False)
        factory = LLMWrapperFactory(task_group_manager=s.task_group_manager)
        with pytest.raises(WrapperFactoryError, match="no polling pools"):
            factory.create_polling_pool_wrapper("test_pool")
        with pytest.raises(WrapperFactoryError, match="no polling pools"):
            s.factory.create_polling_pool_wrapper("test_pool")
        assert factory.list_wrappers() == {}

    def test_get_wrapper(self, seed: Seed) -> None:
        w = seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group"})
        assert seed.factory.get_wrapper("test_wrapper") is w
        assert seed.factory.get_wrapper("nonexistent") is None

    def test_remove_wrapper(self, seed: Seed) -> None:
        seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group"})
        assert seed.factory.remove_wrapper("test_wrapper") is True
        assert seed.factory.remove_wrapper("test_wrapper") is False

    def test_list_wrappers(self, make_seed: Any) -> None:
        """Built without a polling pool manager (as the original test did), the factory still
        creates pool wrappers: the pools come from the manager's runtime. See ``..._no_manager``."""
        s = make_seed()
        factory = LLMWrapperFactory(s.task_group_manager)  # the original's positional form
        factory.create_task_group_wrapper("tg", {"target": "test_group.echelon1"})
        factory.create_polling_pool_wrapper("pp", {"pool": "test_pool"})
        assert factory.list_wrappers() == {"tg": "TaskGroupWrapper", "pp": "PollingPoolWrapper"}
        assert factory.get_wrapper("pp").generate(MSG).target == "pool:test_pool"

    def test_get_wrapper_stats(self, seed: Seed) -> None:
        w = seed.factory.create_task_group_wrapper("test_wrapper", {"target": "test_group"})
        w.generate(MSG)
        stats = seed.factory.get_wrapper_stats()
        assert stats["total_wrappers"] == 1
        assert stats["wrapper_types"] == {"TaskGroupWrapper": 1}
        assert stats["wrapper_stats"]["test_wrapper"]["stats"]["total_requests"] == 1

    def test_create_wrapper_from_config(self, seed: Seed) -> None:
        w = seed.factory.create_wrapper_from_config("w", "task_group", {"target": "test_group.echelon2"})
        assert isinstance(w, TaskGroupWrapper) and w.route.label == "test_group.echelon2"
        with pytest.raises(WrapperFactoryError, match="unknown type 'nope'"):
            seed.factory.create_wrapper_from_config("x", "nope", {})
        with pytest.raises(WrapperFactoryError, match="exists already"):
            seed.factory.create_wrapper_from_config("w", "task_group", {"target": "test_group"})

    def test_create_wrappers_from_config_reports_invalid_entries(self, seed: Seed) -> None:
        """The original skipped bad entries silently; here the good ones are created and the bad ones named."""
        with pytest.raises(WrapperFactoryError) as info:
            seed.factory.create_wrappers_from_config(
                {
                    "ok": {"type": "task_group", "target": "test_group"},
                    "pool": {"type": "polling_pool", "pool": "test_pool"},
                    "untyped": {"target": "test_group"},
                    "bad_ref": {"type": "task_group", "target": "test_group.echelon9"},
                }
            )
        assert set(info.value.details["errors"]) == {"untyped", "bad_ref"}
        assert "echelon9" in info.value.details["errors"]["bad_ref"]
        assert seed.factory.list_wrappers() == {"ok": "TaskGroupWrapper", "pool": "PollingPoolWrapper"}

    def test_register_wrapper_type(self, seed: Seed) -> None:
        seed.factory.register_wrapper_type("custom", CustomWrapper)
        w = seed.factory.create_wrapper_from_config("c", "custom", {"target": "test_group.echelon1"})
        assert isinstance(w, CustomWrapper) and w.generate(MSG).content == "echo: hello there"
        assert seed.factory.get_wrapper_stats()["wrapper_types"] == {"CustomWrapper": 1}
        with pytest.raises(WrapperFactoryError, match="not a WrapperProxy subclass"):
            seed.factory.register_wrapper_type("dict", dict)  # type: ignore[arg-type]
        assert issubclass(CustomWrapper, WrapperProxy)

    async def test_health_check_all(self, seed: Seed) -> None:
        """Real wrappers report their instances; one without a check and one whose check raises
        get the original's shapes. Called here with a loop running in this thread."""
        f = seed.factory
        f.register_wrapper_type("nohealth", NoHealthCheckWrapper)
        f.register_wrapper_type("broken", BrokenHealthCheckWrapper)
        f.create_task_group_wrapper("tg", {"target": "test_group.echelon1"})
        f.create_polling_pool_wrapper("test_pool")
        f.create_wrapper_from_config("nohealth", "nohealth", {"target": "test_group"})
        f.create_wrapper_from_config("broken", "broken", {"target": "test_group"})
        health = f.health_check_all()
        assert (
            health["tg"]["healthy"] is True and health["tg"]["total_instances"] == 4
        )  # model1, model2, model3, fb1
        assert health["test_pool"]["healthy_instances"] == 2
        assert health["nohealth"] == {
            "healthy": True,
            "type": "NoHealthCheckWrapper",
            "note": "no health check method",
        }
        assert health["broken"]["healthy"] is False and "probe exploded" in health["broken"]["error"]

    def test_health_check_all_without_a_loop(self, seed: Seed) -> None:
        seed.factory.register_wrapper_type("broken", BrokenHealthCheckWrapper)
        seed.factory.create_wrapper_from_config("broken", "broken", {"target": "test_group"})
        assert seed.factory.health_check_all()["broken"]["error"] == "probe exploded"

    def test_reset_all_stats_and_shutdown(self, seed: Seed) -> None:
        w = seed.factory.create_task_group_wrapper("w", {"target": "test_group"})
        w.generate(MSG)
        seed.factory.reset_all_stats()
        assert w.get_stats()["total_requests"] == 0
        seed.factory.shutdown()
        assert seed.factory.list_wrappers() == {}
        assert seed.task_group_manager.running is True  # the runtime belongs to the manager
        seed.task_group_manager.shutdown()
        assert seed.task_group_manager.running is False

    def test_construction_forms(self, seed: Seed, make_seed: Any) -> None:
        rt = seed.task_group_manager.runtime
        by_runtime = LLMWrapperFactory(rt)
        assert by_runtime.runtime is rt and by_runtime.task_group_manager is None
        by_pool_manager = LLMWrapperFactory(polling_pool_manager=seed.polling_pool_manager)
        assert by_pool_manager.task_group_manager is seed.task_group_manager
        other = make_seed()
        with pytest.raises(WrapperFactoryError, match="same one"):
            LLMWrapperFactory(
                task_group_manager=seed.task_group_manager, fallback_manager=other.fallback_manager
            )
        with pytest.raises(WrapperFactoryError, match="needs a Runtime or a TaskGroupManager"):
            LLMWrapperFactory()


def test_sync_and_async_generate_share_one_runtime_across_threads(seed: Seed) -> None:
    """Many threads and an event loop use one wrapper at once; every request gets one response."""
    from concurrent.futures import ThreadPoolExecutor

    w = seed.factory.create_polling_pool_wrapper("test_pool")

    async def some() -> list[Any]:
        return await asyncio.gather(*(w.generate_async(MSG) for _ in range(10)))

    with ThreadPoolExecutor(4) as pool:
        sync = list(pool.map(lambda _: w.generate(MSG), range(20)))
    asynced = asyncio.run(some())
    assert len(sync) + len(asynced) == 30
    assert w.get_stats()["successful_requests"] == 30
