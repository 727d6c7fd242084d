"""The original design's integration tests, on real actors over the loopback fake provider.

Like the original ``TestLLMIntegration``, each test reads a real configuration directory with a
registry: ``fast_group`` (echelon1 -> echelon2, ``fallback_config`` naming
``fast_group.echelon2``), ``thinking_group`` (echelon1 only, no ``fallback_config``),
``fast_pool`` (round robin, instance_rotation / 2) and ``thinking_pool`` (least recently used,
3 attempts), loaded through ``YamlConfigLoader(base_path=...)``. Where the original accepted a
mock reply or a failure, these require the real answer. The examples run as subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import actors
from actors import (
    AIMessage,
    AllAttemptsFailedError,
    ConfigError,
    EnhancedFallbackManager,
    HumanMessage,
    LLMNode,
    LLMWrapperFactory,
    NodeExecutionResult,
    PollingPoolManager,
    SystemMessage,
    TaskGroupManager,
    WrapperConfigError,
    YamlConfigLoader,
)
from actors.config import load_config
from actors.fake.topology import write_topology
from actors.proxy import PollingPoolWrapper, TaskGroupWrapper
from actors.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent


def integration_topology() -> dict[str, Any]:
    return dict(
        models={n: {} for n in ("fast1", "fast2", "fast3", "think1", "think2")},
        groups={
            "fast_group": {
                "description": "fast",
                "echelon1": {
                    "models": ["fast1", "fast2"],
                    "priority": 1,
                    "max_retries": 1,
                    "max_tokens": 500,
                },
                "echelon2": {"models": ["fast3"], "priority": 2, "max_retries": 0},
                "fallback_config": {
                    "strategy": "echelon_down",
                    "fallback_groups": ["fast_group.echelon2"],
                    "max_attempts": 3,
                    "retry_delay": 0,
                },
            },
            "thinking_group": {"echelon1": {"models": ["think1", "think2"], "priority": 1}},
            "retired_group": {"echelon1": {"models": ["think1"]}},
        },
        pools={
            "fast_pool": {
                "task_groups": ["fast_group.echelon1"],
                "rotation_strategy": "round_robin",
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": 2},
            },
            "thinking_pool": {
                "task_groups": ["thinking_group"],
                "rotation_strategy": "least_recently_used",
                "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": 3},
            },
        },
    )


REGISTRY = {
    "task_groups": {
        "fast_group": {"file": "groups/fast_group.yaml", "enabled": True},
        "thinking_group": {"file": "groups/thinking_group.yaml", "enabled": True},
        "retired_group": {"file": "groups/retired_group.yaml", "enabled": False},
    },
    "polling_pools": {
        "fast_pool": {"file": "polling_pools/fast_pool.yaml", "enabled": True},
        "thinking_pool": {"file": "polling_pools/thinking_pool.yaml", "enabled": True},
    },
}


@pytest.fixture
def config_dir(tmp_path: Path, fake: Any) -> Path:
    root = write_topology(tmp_path / "configs", fake, **integration_topology())
    (root / "llms" / "groups" / "_task_groups.yaml").write_text(yaml.safe_dump(REGISTRY, sort_keys=False))
    return root


class Managers:
    def __init__(self, config_dir: Path) -> None:
        self.task_group_manager = TaskGroupManager(YamlConfigLoader(base_path=config_dir))
        self.polling_pool_manager = PollingPoolManager(self.task_group_manager)
        self.fallback_manager = EnhancedFallbackManager(self.task_group_manager)
        self.wrapper_factory = LLMWrapperFactory(
            task_group_manager=self.task_group_manager,
            polling_pool_manager=self.polling_pool_manager,
            fallback_manager=self.fallback_manager,
        )


@pytest.fixture
def m(config_dir: Path) -> Iterator[Managers]:
    managers = Managers(config_dir)
    yield managers
    managers.task_group_manager.shutdown()


def tried(fake: Any) -> list[str]:
    return [instance for instance, _ in fake.log]


def body(fake: Any, instance: str, index: int = -1) -> dict[str, Any]:
    return fake.requests(instance)[index]["body"]


class TestLLMIntegration:
    # -- configuration --------------------------------------------------------------------------

    def test_config_loading(self, m: Managers) -> None:
        tgm = m.task_group_manager
        assert tgm.list_task_groups() == ["fast_group", "thinking_group"]  # retired_group: enabled: false
        assert tgm.list_polling_pools() == ["fast_pool", "thinking_pool"]
        assert tgm.get_task_group("fast_group").fallback_config.strategy.value == "echelon_down"
        assert tgm.get_polling_pool("fast_pool").fallback_config.strategy == "instance_rotation"
        assert tgm.get_task_group("nope") is None and tgm.get_polling_pool("nope") is None
        assert tgm.running is False  # queries never start the runtime

    def test_group_queries(self, m: Managers) -> None:
        tgm = m.task_group_manager
        assert tgm.parse_group_reference("fast_group") == ("fast_group", None)
        assert tgm.parse_group_reference("fast_group.echelon2") == ("fast_group", "echelon2")
        assert tgm.validate_group_reference("fast_group.echelon1") is True
        assert tgm.validate_group_reference("fast_group.echelon9") is False
        assert tgm.validate_group_reference("unknown_group") is False
        assert tgm.get_models_for_group("fast_group.echelon1") == ["fast1", "fast2"]
        assert tgm.get_models_for_group("fast_group") == ["fast1", "fast2", "fast3"]  # by priority
        assert tgm.get_models_for_group("fast_group.echelon9") == []
        assert tgm.get_group_models_by_priority("fast_group") == [
            ("echelon1", 1, ["fast1", "fast2"]),
            ("echelon2", 2, ["fast3"]),
        ]
        assert tgm.get_echelon_config("fast_group", "echelon1").max_tokens == 500
        assert tgm.get_echelon_config("fast_group", "echelon7") is None

    def test_fallback_queries(self, m: Managers) -> None:
        tgm = m.task_group_manager
        assert tgm.get_fallback_groups("fast_group.echelon1") == ["fast_group.echelon2"]
        # The original returned fallback_config's list whatever the echelon: echelon2 fell back to itself.
        assert tgm.get_fallback_groups("fast_group.echelon2") == []
        assert tgm.get_fallback_groups("thinking_group.echelon1") == []  # no echelon2, no fallback_config
        assert tgm.get_fallback_config("fast_group") == {
            "strategy": "echelon_down",
            "fallback_groups": ["fast_group.echelon2"],
            "max_attempts": 3,
            "retry_delay": 0.0,
            "circuit_breaker": {"failure_threshold": 5, "recovery_time": 60.0, "half_open_requests": 1},
        }
        defaults = tgm.get_fallback_config("thinking_group")
        assert (defaults["strategy"], defaults["max_attempts"], defaults["retry_delay"]) == (
            "echelon_down",
            3,
            1.0,
        )
        assert tgm.get_fallback_config("nope") is None
        assert tgm.get_polling_pool_fallback_config("thinking_pool") == {
            "strategy": "instance_rotation",
            "max_instance_attempts": 3,
        }

    def test_manager_construction_forms(self, config_dir: Path, m: Managers) -> None:
        class OriginalLoader:  # the original's loader exposed its directory as base_path
            base_path = str(config_dir)

        class MigratorStyle:
            config_base_path = config_dir / "llms"

        for source in (
            str(config_dir),
            config_dir,
            load_config(config_dir),
            OriginalLoader(),
            MigratorStyle(),
        ):
            tgm = TaskGroupManager(source)
            assert tgm.list_task_groups() == ["fast_group", "thinking_group"] and tgm.owns_runtime
        with pytest.raises(ConfigError, match="base_path"):
            TaskGroupManager(object())
        with Runtime.from_config(config_dir) as rt:
            borrowed = TaskGroupManager(rt)
            assert borrowed.owns_runtime is False and borrowed.runtime is rt
            borrowed.shutdown()
            assert rt.started  # a borrowed runtime is its owner's to stop
            with pytest.raises(ConfigError, match="contradicts"):
                TaskGroupManager(rt, simulate=True)

    async def test_reload_switches_the_running_runtime_and_rebinds_wrappers(
        self, m: Managers, config_dir: Path, fake: Any
    ) -> None:
        """After files change (as the migrator changes them), ``reload()`` updates the queries,
        the running runtime, this factory's wrappers and the routes the node and the fallback
        manager build."""
        w = m.wrapper_factory.create_task_group_wrapper("thinking", {"target": "thinking_group.echelon1"})
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "thinking_group.echelon1"})
        assert w.generate("before").instance in {"think1", "think2"}
        path = config_dir / "llms" / "groups" / "thinking_group.yaml"
        group = yaml.safe_load(path.read_text())
        group["fallback_config"] = {
            "strategy": "echelon_down",
            "fallback_groups": ["fast_group.echelon2"],
            "retry_delay": 0,
        }
        path.write_text(yaml.safe_dump(group))
        m.task_group_manager.reload()
        assert m.task_group_manager.get_fallback_groups("thinking_group.echelon1") == ["fast_group.echelon2"]
        assert [s.label for s in w.route.steps] == ["thinking_group.echelon1", "fast_group.echelon2"]
        fake.configure("think1", status=503)
        fake.configure("think2", status=503)
        assert w.generate("after").instance == "fast3"
        assert node.execute({"messages": [HumanMessage("node")]}).metadata["instance"] == "fast3"
        text = await m.fallback_manager.execute_with_task_group_fallback("thinking_group.echelon1", "fm")
        assert text == "echo: fm"
        path.write_text("echelon1: {models: [nobody]}\n")
        with pytest.raises(ConfigError, match="nobody"):
            m.task_group_manager.reload()
        assert w.generate("still").instance == "fast3"  # an invalid reload changes nothing

    def test_simulate_option(self, config_dir: Path, fake: Any) -> None:
        with TaskGroupManager(config_dir, simulate=True) as tgm:
            w = LLMWrapperFactory(tgm).create_task_group_wrapper("w", {"target": "fast_group"})
            assert w.generate("hi").content == "echo: hi"
            assert fake.log == []  # answered in-process
        assert tgm.running is False

    # -- wrappers -------------------------------------------------------------------------------

    def test_wrapper_factory_creation(self, m: Managers) -> None:
        f = m.wrapper_factory
        f.create_task_group_wrapper("tg", {"target": "fast_group.echelon1"})
        f.create_polling_pool_wrapper("fast_pool_wrapper")
        assert f.list_wrappers() == {"tg": "TaskGroupWrapper", "fast_pool_wrapper": "PollingPoolWrapper"}
        assert f.get_wrapper("fast_pool_wrapper").route.label == "pool:fast_pool"

    async def test_task_group_wrapper_execution(self, m: Managers, fake: Any) -> None:
        """The original asserted ``response.model == "fast_group.echelon1"``; here ``model`` is the
        provider's model name and ``target`` is the tier that answered."""
        w = m.wrapper_factory.create_task_group_wrapper("fast", {"target": "fast_group.echelon1"})
        response = await w.generate_async([HumanMessage("Test message")])
        assert response.content == "echo: Test message"
        assert response.target == "fast_group.echelon1" and response.model == "fast1-model"
        assert body(fake, "fast1")["max_tokens"] == 500  # the echelon's default reached the provider
        stats = w.get_stats()
        assert (stats["total_requests"], stats["successful_requests"]) == (1, 1)

    async def test_polling_pool_wrapper_execution(self, m: Managers, fake: Any) -> None:
        cfg = {
            "task_groups": ["fast_group.echelon1"],
            "rotation_strategy": "round_robin",
            "fallback_config": {"strategy": "instance_rotation", "max_instance_attempts": 2},
        }
        pool = await m.polling_pool_manager.create_pool("fast_pool", cfg)
        assert pool.name == "fast_pool" and m.polling_pool_manager.get_pool("fast_pool") is pool
        w = m.wrapper_factory.create_polling_pool_wrapper("fast_pool")  # found by its name, as originally
        response = await w.generate_async([HumanMessage("Test message")])
        assert response.content == "echo: Test message" and response.target == "pool:fast_pool"
        stats = w.get_stats()
        assert (stats["total_requests"], stats["successful_requests"]) == (1, 1)
        status = await pool.get_status_async()
        assert status["stats"]["total_requests"] == 1 and status["healthy"] is True
        assert set(m.polling_pool_manager.get_all_status()) == {"fast_pool", "thinking_pool"}

    async def test_create_pool_checks_the_configuration(self, m: Managers) -> None:
        with pytest.raises(WrapperConfigError, match="no polling pool 'ghost_pool'"):
            await m.polling_pool_manager.create_pool("ghost_pool", {"task_groups": ["fast_group"]})
        with pytest.raises(WrapperConfigError, match="rotation_strategy differ"):
            await m.polling_pool_manager.create_pool(
                "fast_pool", {"task_groups": ["fast_group.echelon1"], "rotation_strategy": "weighted"}
            )
        await m.polling_pool_manager.shutdown_all()

    async def test_pool_strategies_from_config_are_enforced(self, m: Managers, fake: Any) -> None:
        """thinking_pool rotates least-recently-used over 3 attempts: both instances failing means 2
        attempts (never the same instance twice), then a typed error carrying both."""
        fake.configure("think1", status=503)
        fake.configure("think2", status=503)
        w = m.wrapper_factory.create_polling_pool_wrapper("thinking_pool_wrapper")
        with pytest.raises(AllAttemptsFailedError) as info:
            await w.generate_async("hi")
        assert sorted(a.instance for a in info.value.attempts) == ["think1", "think2"]

    # -- the LLM node ---------------------------------------------------------------------------

    def test_llm_node_with_wrapper(self, m: Managers, fake: Any) -> None:
        """A sync ``execute`` with no loop: the reply is appended, the system prompt was sent."""
        m.wrapper_factory.create_task_group_wrapper("test_wrapper", {"target": "fast_group.echelon1"})
        node = LLMNode(wrapper_factory=m.wrapper_factory)
        result = node.execute(
            {"messages": []}, {"llm_wrapper": "test_wrapper", "system_prompt": "你是一个测试助手"}
        )
        assert isinstance(result, NodeExecutionResult)
        assert len(result.state["messages"]) == 1 and isinstance(result.state["messages"][0], AIMessage)
        assert body(fake, tried(fake)[0])["messages"][0] == {"role": "system", "content": "你是一个测试助手"}
        assert result.metadata["system_prompt"] == "你是一个测试助手"
        assert result.metadata["target"] == "fast_group.echelon1"

    def test_llm_node_client_selection_priority(self, m: Managers) -> None:
        """wrapper > task group > polling pool > default client. The original returned the default
        client for ``llm_group``; here it is a real task-group wrapper over that group."""
        f = m.wrapper_factory
        wrapper = f.create_task_group_wrapper("test_wrapper", {"target": "fast_group.echelon1"})
        default = f.create_task_group_wrapper("default", {"target": "thinking_group"})
        node = LLMNode(llm_client=default, wrapper_factory=f)
        everything = {
            "llm_wrapper": "test_wrapper",
            "llm_group": "thinking_group",
            "polling_pool": "fast_pool",
        }
        assert node.get_client(everything) is wrapper
        group_client = node.get_client({"llm_group": "thinking_group", "polling_pool": "fast_pool"})
        assert isinstance(group_client, TaskGroupWrapper) and group_client.route.label == "thinking_group"
        assert node.get_client({"llm_group": "thinking_group"}) is group_client  # made once
        pool_client = node.get_client({"polling_pool": "fast_pool"})
        assert isinstance(pool_client, PollingPoolWrapper) and pool_client.route.label == "pool:fast_pool"
        assert node.get_client({}) is default
        assert f.list_wrappers() == {"test_wrapper": "TaskGroupWrapper", "default": "TaskGroupWrapper"}

    def test_llm_node_unknown_names_are_errors(self, m: Managers) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory)
        with pytest.raises(WrapperConfigError, match="unknown llm_wrapper 'missing_wrapper'"):
            node.execute({"messages": []}, {"llm_wrapper": "missing_wrapper"})
        with pytest.raises(WrapperConfigError, match="echelon9"):
            node.execute({"messages": []}, {"llm_group": "fast_group.echelon9"})
        with pytest.raises(WrapperConfigError, match="no polling pool"):
            node.execute({"messages": []}, {"polling_pool": "ghost_pool"})
        with pytest.raises(WrapperConfigError, match="no client"):
            node.execute({"messages": []}, {})
        with pytest.raises(WrapperConfigError, match="wrapper_factory or a task_group_manager"):
            LLMNode().execute({"messages": []}, {"llm_group": "fast_group"})

    def test_llm_node_finds_wrappers_declared_in_configuration(self, tmp_path: Path, fake: Any) -> None:
        topology = integration_topology()
        topology["wrappers"] = {"fast_group_wrapper": {"type": "task_group", "target": "fast_group.echelon1"}}
        root = write_topology(tmp_path / "declared", fake, **topology)
        with TaskGroupManager(root) as tgm:
            node = LLMNode(task_group_manager=tgm, config={"llm_wrapper": "fast_group_wrapper"})
            result = node.execute({"messages": [{"role": "user", "content": "hi"}]})
            assert result.state["messages"][-1] == {"role": "assistant", "content": "echo: hi"}
            factory = LLMWrapperFactory(tgm)
            node = LLMNode(wrapper_factory=factory)  # not in this factory: the runtime's wrappers.yaml has it
            assert node.get_client({"llm_wrapper": "fast_group_wrapper"}) is tgm.runtime.factory.get_wrapper(
                "fast_group_wrapper"
            )

    async def test_llm_node_execute_with_a_running_loop_and_aexecute(self, m: Managers) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "fast_group"})
        state = {"messages": [HumanMessage("sync inside a loop")]}
        result = node.execute(state)
        assert result.state["messages"][-1].content == "echo: sync inside a loop"
        assert len(state["messages"]) == 1  # the caller's state is not mutated
        results = await asyncio.gather(
            *(node.aexecute({"messages": [HumanMessage(f"q{i}")]}) for i in range(5))
        )
        assert [r.state["messages"][-1].content for r in results] == [f"echo: q{i}" for i in range(5)]

    def test_llm_node_prompt_parameters_and_next_node(self, m: Managers, fake: Any) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory)
        history = [HumanMessage(f"m{i}") for i in range(12)]
        state = {
            "messages": history,
            "current_step": "plan",
            "max_iterations": 7,
            "tool_results": [
                {"tool_name": "search", "result": "3 hits"},
                {"tool_name": "calc", "success": False, "error": "div by 0"},
            ],
        }
        config = {
            "llm_group": "fast_group.echelon1",
            "system_prompt_template": "step={current_step} max={max_iterations} tools={tool_results_count} msgs={messages_count}",
            "max_tokens": 64,
            "temperature": 0.1,
            "top_p": 0.9,
            "frequency_penalty": 0.5,
            "presence_penalty": 0.25,
            "stop_sequences": ["END"],
            "next_node": "tools_node",
        }
        result = node.execute(state, config)
        sent = body(fake, tried(fake)[-1])
        system = sent["messages"][0]
        assert system["role"] == "system"
        assert system["content"].startswith("step=plan max=7 tools=2 msgs=12")
        assert "- search: 3 hits" in system["content"] and "- calc: failed: div by 0" in system["content"]
        assert [msg["content"] for msg in sent["messages"][1:]] == [
            f"m{i}" for i in range(2, 12)
        ]  # the last 10
        for key, value in {
            "max_tokens": 64,
            "temperature": 0.1,
            "top_p": 0.9,
            "frequency_penalty": 0.5,
            "presence_penalty": 0.25,
            "stop": ["END"],
        }.items():
            assert sent[key] == value
        assert result.next_node == "tools_node"
        assert result.metadata["token_usage"]["total_tokens"] > 0
        without = node.execute(state, {**config, "include_tool_results": False, "next_node": None})
        assert "search" not in body(fake, tried(fake)[-1])["messages"][0]["content"]
        assert without.next_node is None
        with pytest.raises(WrapperConfigError, match="unknown placeholder"):
            node.execute(state, {**config, "system_prompt_template": "{nonsense}"})

    def test_llm_node_followup_routing_from_the_original(self, m: Managers, fake: Any) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "fast_group.echelon1"})
        for name in ("fast1", "fast2"):
            fake.configure(name, reply="我需要更多信息才能回答")
        assert node.execute({"messages": [HumanMessage("?")]}).next_node == "analysis_node"
        assert node.execute({"messages": [HumanMessage("?")]}, {"followup_node": None}).next_node is None

    def test_llm_node_keeps_the_message_kind(self, m: Managers, fake: Any) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "fast_group.echelon1"})
        as_dicts = node.execute({"messages": [{"role": "user", "content": "d"}]}).state["messages"]
        assert as_dicts[-1] == {"role": "assistant", "content": "echo: d"}

        class LangChainStyle:  # any object with .type and .content, as LangChain's messages have
            def __init__(self, type: str, content: str) -> None:
                self.type, self.content = type, content

        objects = node.execute({"messages": [LangChainStyle("human", "o")]}).state["messages"]
        assert (
            isinstance(objects[-1], AIMessage)
            and objects[-1].type == "ai"
            and objects[-1].content == "echo: o"
        )
        assert isinstance(objects[0], LangChainStyle)
        window = [
            HumanMessage("x"),
            AIMessage("", tool_calls=[{"id": "c1", "name": "f", "args": {}}]),
            actors.ToolMessage("r", tool_call_id="c1"),
        ]
        node.execute({"messages": window}, {"max_history_messages": 1})
        roles = [msg["role"] for msg in body(fake, tried(fake)[-1])["messages"]]
        assert roles == ["system", "assistant", "tool"]  # a tool result keeps the call it answers

    def test_llm_node_with_langchain_messages(self, m: Managers) -> None:
        messages = pytest.importorskip("langchain_core.messages")
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "fast_group.echelon1"})
        result = node.execute({"messages": [messages.SystemMessage("be kind"), messages.HumanMessage("lc")]})
        reply = result.state["messages"][-1]
        assert isinstance(reply, messages.AIMessage) and reply.content == "echo: lc"

    async def test_llm_node_with_a_plain_default_client(self) -> None:
        """Any client with the original's sync ``generate(messages, parameters)`` works as the
        default; ``aexecute`` runs a sync-only one off the loop."""

        class SyncOnlyClient:  # a user's own client, not one of ours
            def __init__(self) -> None:
                self.calls: list[tuple[list[Any], dict[str, Any]]] = []

            def generate(self, messages: list[Any], parameters: dict[str, Any] | None = None) -> str:
                self.calls.append((messages, parameters or {}))
                return f"plain: {messages[-1].content}"

        client = SyncOnlyClient()
        node = LLMNode(llm_client=client, config={"max_tokens": 5})
        result = await node.aexecute({"messages": [HumanMessage("x")]})
        assert result.state["messages"][-1].content == "plain: x"
        sent, params = client.calls[0]
        assert isinstance(sent[0], SystemMessage) and params == {"max_tokens": 5}
        assert node.execute({"messages": [HumanMessage("y")]}).state["messages"][-1].content == "plain: y"

    def test_llm_node_as_a_graph_callable(self, m: Managers) -> None:
        node = LLMNode(wrapper_factory=m.wrapper_factory, config={"llm_group": "fast_group"})
        update = node({"messages": [HumanMessage("node call")]})
        assert list(update) == ["messages"] and update["messages"][-1].content == "echo: node call"
        assert isinstance(update["messages"][0], HumanMessage)

    # -- fallback manager -----------------------------------------------------------------------

    async def test_fallback_manager_integration(self, m: Managers, fake: Any) -> None:
        fm = m.fallback_manager
        assert (
            await fm.execute_with_task_group_fallback("fast_group.echelon1", "Test prompt")
            == "echo: Test prompt"
        )
        for name in ("fast1", "fast2"):
            fake.configure(name, status=503)
        text = await fm.execute_with_task_group_fallback(
            "fast_group.echelon1", "Test prompt", parameters={"max_tokens": 9}
        )
        assert text == "echo: Test prompt" and body(fake, "fast3")["max_tokens"] == 9
        history = fm.get_fallback_history(limit=10)
        assert [(h["strategy"], h["target"], h["success"]) for h in history] == [
            ("primary", "fast_group.echelon1", True),
            ("primary", "fast_group.echelon1", False),
            ("primary", "fast_group.echelon1", False),
            ("echelon_down", "fast_group.echelon2", True),
        ]
        stats = fm.get_statistics()
        assert (stats["total_executions"], stats["successful_executions"], stats["fallback_executions"]) == (
            2,
            2,
            1,
        )
        assert (stats["total_attempts"], stats["successful_attempts"]) == (4, 2)
        assert stats["strategy_distribution"] == {"primary": 3, "echelon_down": 1}
        fake.configure("fast3", status=503)
        with pytest.raises(AllAttemptsFailedError) as info:
            await fm.execute_with_task_group_fallback("fast_group.echelon1", "Test prompt")
        assert len(info.value.attempts) == 3  # fast_group's max_attempts
        assert fm.get_statistics()["failed_executions"] == 1
        assert "fast3" in fm.get_circuit_breaker_status()

    async def test_execute_with_fallback_uses_the_given_groups(self, m: Managers, fake: Any) -> None:
        """Explicit fallback groups replace the group's list; the primary is never its own fallback."""
        fake.configure("think1", status=503)
        fake.configure("think2", status=503)
        text = await m.fallback_manager.execute_with_fallback(
            "thinking_group.echelon1", ["thinking_group.echelon1", "fast_group.echelon2"], "hi", retry_delay=0
        )
        assert text == "echo: hi"
        assert sorted(tried(fake)[:2]) == ["think1", "think2"] and tried(fake)[2:] == ["fast3"]

    # -- factory views --------------------------------------------------------------------------

    def test_wrapper_factory_health_check(self, m: Managers) -> None:
        m.wrapper_factory.create_task_group_wrapper("test_wrapper", {"target": "fast_group.echelon1"})
        health = m.wrapper_factory.health_check_all()
        assert health["test_wrapper"]["healthy"] is True
        assert health["test_wrapper"]["total_instances"] == 3

    def test_wrapper_factory_stats(self, m: Managers) -> None:
        m.wrapper_factory.create_task_group_wrapper("tg", {"target": "fast_group.echelon1"})
        m.wrapper_factory.create_polling_pool_wrapper("fast_pool")
        stats = m.wrapper_factory.get_wrapper_stats()
        assert stats["total_wrappers"] == 2
        assert stats["wrapper_types"] == {"TaskGroupWrapper": 1, "PollingPoolWrapper": 1}

    def test_end_to_end_workflow(self, m: Managers) -> None:
        f = m.wrapper_factory
        fast = f.create_task_group_wrapper("fast_wrapper", {"target": "fast_group.echelon1"})
        thinking = f.create_task_group_wrapper("thinking_wrapper", {"target": "thinking_group"})
        node = LLMNode(wrapper_factory=f)
        state: dict[str, Any] = {"messages": [SystemMessage("workflow"), HumanMessage("step one")]}
        state = node.execute(state, {"llm_wrapper": "fast_wrapper"}).state
        state["messages"].append(HumanMessage("step two"))
        state = node.execute(state, {"llm_wrapper": "thinking_wrapper"}).state
        assert [msg.content for msg in state["messages"][-3:]] == [
            "echo: step one",
            "step two",
            "echo: step two",
        ]
        assert fast.get_stats()["total_requests"] == 1 and thinking.get_stats()["total_requests"] == 1
        stats = f.get_wrapper_stats()
        assert sum(s["stats"]["total_requests"] for s in stats["wrapper_stats"].values()) == 2

    # -- migration (another module; runs once it exists) ----------------------------------------

    def test_config_migration(self, m: Managers, config_dir: Path) -> None:
        try:
            from actors import ConfigMigrator  # type: ignore[attr-defined]
        except ImportError:
            pytest.skip("actors.ConfigMigrator is not available in this checkout")
        llms = config_dir / "llms"
        (llms / "global_fallback.yaml").write_text(
            yaml.safe_dump(
                {
                    "enabled": True,
                    "max_attempts": 5,
                    "retry_delay": 2.0,
                    "circuit_breaker": {"failure_threshold": 4, "recovery_time": 30, "half_open_requests": 1},
                }
            )
        )
        migrator = ConfigMigrator(m.task_group_manager, config_base_path=llms)
        assert migrator.migrate_global_fallback_to_task_groups(backup=False) is True
        validation = migrator.validate_migration()
        assert validation["summary"]["valid_task_groups"] > 0
        assert migrator.get_migration_log()


# --------------------------------------------------------------------------- the examples


def _run_example(name: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def test_usage_example_runs_without_keys() -> None:
    """The design document's usage and monitoring snippets, run as written on the shipped config."""
    done = _run_example("llm_wrapper_usage_example.py")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("echo: 你好，请介绍一下自己\n")
    for line in (
        "总请求数: 2",
        "成功率: 1.0",
        "包装器总数: 2",
        "各类型数量: {'TaskGroupWrapper': 1, 'PollingPoolWrapper': 1}",
        "fast_wrapper: 健康",
        "fast_pool_wrapper: 健康",
        "健康实例数: 6",
        "总实例数: 6",
    ):
        assert line in out.splitlines(), line
    assert "fast_wrapper fell back: served by" in out and "via fast_group.echelon2" in out


def test_langgraph_example_runs_or_says_why_not() -> None:
    done = _run_example("langgraph_example.py")
    assert done.returncode == 0, done.stderr
    try:
        import langgraph  # noqa: F401
    except ImportError:
        assert done.stdout.startswith("skipped: LangGraph is not installed")
    else:
        assert "ainvoke:" in done.stdout and done.stdout.count("AIMessage") == 4


def test_langgraph_agent_example_runs_or_says_why_not() -> None:
    done = _run_example("langgraph_agent.py")
    assert done.returncode == 0, done.stderr
    try:
        import langchain_core  # noqa: F401
        import langgraph  # noqa: F401
    except ImportError:
        assert done.stdout.startswith("skipped:")
    else:
        lines = done.stdout.splitlines()
        assert [line.split(":")[0].strip() for line in lines[:4]] == ["human", "ai", "tool", "ai"]
        assert lines[2] == " tool: the weather in Oslo is sunny"
        assert lines[4].startswith("streamed: [") and lines[4].count("[") > 1  # token by token
