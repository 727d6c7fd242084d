"""LLM nodes in a LangGraph workflow: two ``LLMNode`` steps over llm-actors wrappers.

llm-actors does not depend on LangGraph; this example runs when it is installed
(``pip install langgraph``) and says so and exits otherwise. The providers are simulated, so it
needs no API keys::

    python examples/langgraph_example.py

``draft`` answers through ``fast_group_wrapper`` and ``review`` through ``thinking_pool_wrapper``
(both declared in ``config/llms/wrappers.yaml``). Each node is a plain callable
``node(state) -> {"messages": [...]}``, so it is added to the graph as it is; LangChain message
objects go in and LangChain ``AIMessage`` objects come out.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from langchain_core.messages import HumanMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
except ImportError:
    print("skipped: LangGraph is not installed (pip install langgraph); llm-actors itself does not need it")
    sys.exit(0)

from actors import LLMNode, TaskGroupManager, YamlConfigLoader

CONFIG = Path(__file__).resolve().parent.parent / "config"


def build_graph(task_group_manager: TaskGroupManager):  # type: ignore[no-untyped-def]
    draft = LLMNode(
        task_group_manager=task_group_manager,
        config={
            "llm_wrapper": "fast_group_wrapper",
            "system_prompt": "You draft short, accurate answers.",
            "max_tokens": 300,
        },
    )
    review = LLMNode(
        task_group_manager=task_group_manager,
        config={
            "llm_wrapper": "thinking_pool_wrapper",
            "system_prompt_template": "You review the draft ({messages_count} messages so far) and fix mistakes.",
            "temperature": 0.2,
        },
    )
    graph = StateGraph(MessagesState)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", END)
    return graph.compile()


def show(title: str, state: dict) -> None:  # type: ignore[type-arg]
    print(title)
    for message in state["messages"]:
        print(f"  {type(message).__name__:<13} {message.content}")


def main() -> None:
    with TaskGroupManager(YamlConfigLoader(base_path=CONFIG, simulate=True)) as task_group_manager:
        app = build_graph(task_group_manager)
        show("invoke:", app.invoke({"messages": [HumanMessage("What is a polling pool?")]}))
        result = asyncio.run(app.ainvoke({"messages": [HumanMessage("And a task group?")]}))
        show("ainvoke:", result)
        assert len(result["messages"]) == 3, "each node appends exactly one reply"


if __name__ == "__main__":
    main()
