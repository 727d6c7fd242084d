"""A LangGraph agent over llm-actors: ``ChatLLMActors`` with a tool, streamed token by token.

Needs langchain-core and LangGraph (``pip install -e '.[langchain]' langgraph``); says so and
exits otherwise. The providers are simulated, so it needs no API keys::

    python examples/langgraph_agent.py

The simulated provider calls the offered tool on the first turn and answers in text once the
tool's result is in the conversation, so the agent loop ends, as it would with a real model.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    from langchain_core.messages import AIMessageChunk, HumanMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition
except ImportError:
    print("skipped: LangGraph or langchain-core is not installed (pip install -e '.[langchain]' langgraph)")
    sys.exit(0)

from actors import Runtime
from actors.langchain import ChatLLMActors

CONFIG = Path(__file__).resolve().parent.parent / "config"


@tool
def lookup(input: str) -> str:
    """Look something up (the simulated model passes the user's text as ``input``)."""
    return f"the weather in {input} is sunny"


def main() -> None:
    with Runtime.from_config(CONFIG, simulate=True) as rt:
        llm = ChatLLMActors.from_runtime(rt, "fast_group_wrapper").bind_tools([lookup])
        graph = StateGraph(MessagesState)
        graph.add_node("agent", lambda state: {"messages": [llm.invoke(state["messages"])]})
        graph.add_node("tools", ToolNode([lookup]))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        agent = graph.compile()

        state = agent.invoke({"messages": [HumanMessage("Oslo")]})
        for message in state["messages"]:
            calls = getattr(message, "tool_calls", None)
            print(f"{message.type:>5}: {message.content or calls}")
        print("streamed:", end="")
        for chunk, meta in agent.stream({"messages": [HumanMessage("Bergen")]}, stream_mode="messages"):
            if isinstance(chunk, AIMessageChunk) and chunk.content and meta["langgraph_node"] == "agent":
                print(f" [{chunk.content}]", end="")
        print()


if __name__ == "__main__":
    main()
