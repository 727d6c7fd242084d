"""The original design's usage example (docs: 使用示例 1-3, 监控和统计), running on llm-actors.

Only the imports differ from the design document. It runs against the shipped configuration
(``config/``) with every provider simulated, so it needs no API keys and no network::

    python examples/llm_wrapper_usage_example.py            # simulated providers
    python examples/llm_wrapper_usage_example.py --live     # real providers: set the API keys

After the original's steps it breaks ``fast_group.echelon1`` (simulated only) to show a real
fallback to ``echelon2``, and prints what the fallback manager recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

# Running from a checkout without installing: make ``actors`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import (
    EnhancedFallbackManager,
    HumanMessage,
    LLMNode,
    LLMWrapperFactory,
    PollingPoolManager,
    TaskGroupManager,
    YamlConfigLoader,
)

CONFIG = Path(__file__).resolve().parent.parent / "config"


async def main(live: bool) -> None:
    config_loader = YamlConfigLoader(base_path=CONFIG, simulate=not live)

    # -- 1. 创建包装器工厂 (create the wrapper factory) -------------------------------------------
    # 创建管理器
    task_group_manager = TaskGroupManager(config_loader)
    polling_pool_manager = PollingPoolManager(task_group_manager)
    fallback_manager = EnhancedFallbackManager(task_group_manager)

    # 创建包装器工厂
    wrapper_factory = LLMWrapperFactory(
        task_group_manager=task_group_manager,
        polling_pool_manager=polling_pool_manager,
        fallback_manager=fallback_manager,
    )

    try:
        # -- 2. 创建和使用包装器 (create and use wrappers) ---------------------------------------
        # 创建任务组包装器
        fast_wrapper = wrapper_factory.create_task_group_wrapper(
            name="fast_wrapper",
            config={
                "target": "fast_group.echelon1",
                "fallback_groups": ["fast_group.echelon2", "fast_group.echelon3"],
            },
        )

        # 创建轮询池包装器 (its pool: no pool: key and no pool named fast_pool_wrapper, so fast_pool)
        pool_wrapper = wrapper_factory.create_polling_pool_wrapper(
            name="fast_pool_wrapper",
            config={"max_instance_attempts": 2},
        )

        # 使用包装器
        messages = [HumanMessage(content="你好，请介绍一下自己")]
        response = await fast_wrapper.generate_async(messages)
        print(response.content)
        print(f"  (served by {response.instance} via {response.target} in {response.response_time:.3f} s)")

        pool_response = await pool_wrapper.generate_async(messages)
        print(pool_response.content)
        print(f"  (served by {pool_response.instance} via {pool_response.target})")

        # -- 3. 在LLM节点中使用 (use it in an LLM node) -----------------------------------------
        # The default client: a wrapper the shipped wrappers.yaml declares.
        default_client = task_group_manager.runtime.factory.get_wrapper("fast_group_wrapper")

        # 创建LLM节点
        llm_node = LLMNode(
            llm_client=default_client,
            wrapper_factory=wrapper_factory,
        )

        # 执行节点
        state = {"messages": []}
        config = {
            "llm_wrapper": "fast_wrapper",
            "system_prompt": "你是一个智能助手",
        }

        result = llm_node.execute(state, config)
        print(f"LLM node reply: {result.state['messages'][-1].content!r} (next node: {result.next_node})")

        result = await llm_node.aexecute(
            {"messages": [HumanMessage("Summarise llm-actors in one line.")]},
            {"llm_group": "fast_small_group.translation", "max_tokens": 200},
        )
        print(
            f"LLM node via llm_group: {result.state['messages'][-1].content!r} ({result.metadata['target']})"
        )

        # -- 监控和统计: 包装器统计 (wrapper statistics) -----------------------------------------
        # 获取单个包装器统计
        stats = fast_wrapper.get_stats()
        print(f"总请求数: {stats['total_requests']}")
        print(f"成功率: {stats['successful_requests'] / stats['total_requests']}")

        # 获取工厂统计
        factory_stats = wrapper_factory.get_wrapper_stats()
        print(f"包装器总数: {factory_stats['total_wrappers']}")
        print(f"各类型数量: {factory_stats['wrapper_types']}")

        # -- 健康检查 (health checks) ---------------------------------------------------------
        # 检查所有包装器健康状态
        health_status = wrapper_factory.health_check_all()
        for name, status in health_status.items():
            print(f"{name}: {'健康' if status['healthy'] else '不健康'}")

        # 轮询池健康检查
        pool_health = await pool_wrapper.health_check()
        print(f"健康实例数: {pool_health['healthy_instances']}")
        print(f"总实例数: {pool_health['total_instances']}")

        # -- Beyond the original: a real fallback, recorded --------------------------------------
        if not live:
            await show_fallback(task_group_manager, fallback_manager, fast_wrapper, messages)
    finally:
        await polling_pool_manager.shutdown_all()
        wrapper_factory.shutdown()
        task_group_manager.shutdown()


async def show_fallback(
    task_group_manager: TaskGroupManager,
    fallback_manager: EnhancedFallbackManager,
    fast_wrapper: object,
    messages: list[HumanMessage],
) -> None:
    broken = task_group_manager.get_models_for_group("fast_group.echelon1")
    for name in broken:
        task_group_manager.runtime.simulation_control(name).fail(status=503)
    try:
        delay = task_group_manager.get_fallback_config("fast_group")["retry_delay"]
        print(f"\nBreaking fast_group.echelon1 ({', '.join(broken)}) ...")
        print(f"  (each retry backs off from fast_group's retry_delay of {delay} s, as configured)")
        response = await fast_wrapper.generate_async(messages)  # type: ignore[attr-defined]
        print(f"fast_wrapper fell back: served by {response.instance} via {response.target}")
        for attempt in response.attempts:
            print(f"  attempt: {attempt.instance:<28} {attempt.outcome.value}")
        text = await fallback_manager.execute_with_task_group_fallback("fast_group.echelon1", "你好")
        print(f"fallback manager: {text!r}")
        for entry in fallback_manager.get_fallback_history(limit=5):
            print(
                f"  {entry['strategy']:<13} {entry['target']:<20} {entry['instance']:<28} success={entry['success']}"
            )
        statistics = fallback_manager.get_statistics()
        print(
            f"fallback statistics: {statistics['total_executions']} execution(s), "
            f"{statistics['fallback_executions']} fell back, strategies {statistics['strategy_distribution']}"
        )
    finally:
        for name in broken:
            task_group_manager.runtime.simulation_control(name).heal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="call the real providers (needs their API keys)")
    asyncio.run(main(parser.parse_args().live))
