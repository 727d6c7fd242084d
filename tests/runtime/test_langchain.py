"""``actors.langchain.ChatLLMActors`` and LangGraph, over wrappers on the fake provider."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from actors.errors import WrapperConfigError
from actors.langchain import ChatLLMActors


class Answer(BaseModel):
    """What the fake's tool call carries: ``{"input": <the last user text>}``."""

    input: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def topology(kind: str = "openai") -> dict:
    return dict(
        models={"m": {"model_type": kind}},
        groups={"g": {"echelon1": {"models": ["m"], "priority": 1}}},
        wrappers={"w": {"type": "task_group", "target": "g.echelon1"}},
    )


@pytest.fixture(params=["openai", "anthropic"])
def llm(request, fake, runtime_for) -> ChatLLMActors:
    rt = runtime_for(**topology(request.param))
    return ChatLLMActors.from_runtime(rt, "w", temperature=0.2, max_tokens=64, timeout=20)


def test_invoke_answers_with_usage_and_metadata(fake, llm):
    reply = llm.invoke([SystemMessage("be brief"), HumanMessage("hello there")], stop=["\n\n"])
    assert isinstance(reply, AIMessage) and reply.content == "echo: hello there"
    usage = reply.usage_metadata
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert reply.response_metadata["instance"] == "m" and reply.response_metadata["finish_reason"] == "stop"
    assert [a["outcome"] for a in reply.response_metadata["attempts"]] == ["success"]
    sent = fake.requests("m")[-1]["body"]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 64
    assert "timeout" not in sent  # a request control, not a model parameter
    assert sent.get("stop", sent.get("stop_sequences")) == ["\n\n"]


async def test_ainvoke(llm):
    reply = await llm.ainvoke("hello there")
    assert reply.content == "echo: hello there" and reply.usage_metadata["output_tokens"] > 0


def test_stream_gives_token_chunks(llm):
    chunks = list(llm.stream("one two three four five"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert len([c for c in chunks if c.content]) > 1  # tokens, not one whole message
    whole = sum(chunks[1:], chunks[0])
    assert whole.content == "echo: one two three four five"
    assert whole.usage_metadata["output_tokens"] > 0
    assert whole.response_metadata["finish_reason"] == "stop"


async def test_astream_gives_token_chunks(llm):
    chunks = [c async for c in llm.astream("one two three four five")]
    assert len([c for c in chunks if c.content]) > 1
    assert "".join(c.content for c in chunks) == "echo: one two three four five"


def test_bind_tools_and_a_tool_round_trip(fake, llm):
    with_tools = llm.bind_tools([get_weather], tool_choice="get_weather")
    first = with_tools.invoke([HumanMessage("Oslo")])
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("get_weather", {"input": "Oslo"})]
    sent = fake.requests("m")[-1]["body"]
    assert "get_weather" in json.dumps(sent["tools"]) and "get_weather" in json.dumps(sent["tool_choice"])
    result = ToolMessage(get_weather.invoke({"city": "Oslo"}), tool_call_id=first.tool_calls[0]["id"])
    second = with_tools.bind(tool_choice="auto").invoke([HumanMessage("Oslo"), first, result])
    assert second.tool_calls == [] and second.content.startswith("echo:")


def test_streamed_tool_calls_come_together(llm):
    chunks = list(llm.bind_tools([get_weather], tool_choice="any").stream("Oslo"))
    whole = sum(chunks[1:], chunks[0])
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("get_weather", {"input": "Oslo"})]


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_with_structured_output(fake, llm, method):
    structured = llm.with_structured_output(Answer, method=method)
    answer = structured.invoke("weather in Oslo")
    if method == "function_calling":  # the fake calls the forced tool with {"input": ...}
        assert answer == Answer(input="weather in Oslo")
    else:  # the fake answers a json_schema with a value fitting it (strings: the user text)
        assert isinstance(answer, Answer)
    raw = llm.with_structured_output(Answer, method=method, include_raw=True).invoke("x")
    assert isinstance(raw["raw"], AIMessage) and isinstance(raw["parsed"], Answer)


def test_json_mode(llm):
    assert isinstance(llm.with_structured_output(None, method="json_mode").invoke("x"), dict)


def test_an_unknown_wrapper_is_an_error(runtime_for, fake):
    rt = runtime_for(**topology())
    with pytest.raises(WrapperConfigError, match="no wrapper 'nope'; known wrappers: w"):
        ChatLLMActors.from_runtime(rt, "nope")


@tool
def lookup(input: str) -> str:
    """Look a city up (named like the fake's tool arguments)."""
    return f"sunny in {input}"


def test_a_langgraph_agent_finishes_and_streams_tokens(fake, runtime_for):
    pytest.importorskip("langgraph")
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    rt = runtime_for(**topology())
    llm = ChatLLMActors.from_runtime(rt, "w").bind_tools([lookup])
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [llm.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    agent = graph.compile()

    state = agent.invoke({"messages": [HumanMessage("Oslo")]})
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]  # one tool call, then done
    assert state["messages"][2].content == "sunny in Oslo"
    assert state["messages"][3].content.startswith("echo:")

    pieces = [
        m
        for m, meta in agent.stream({"messages": [HumanMessage("Oslo")]}, stream_mode="messages")
        if isinstance(m, AIMessageChunk) and m.content and meta["langgraph_node"] == "agent"
    ]
    assert len(pieces) > 1  # the final answer arrives token by token


# -- LLMNode ---------------------------------------------------------------------------------------


def test_llm_node_forwards_tools_and_tool_choice(fake, runtime_for):
    from actors import LLMNode

    rt = runtime_for(**topology("anthropic"))
    node = LLMNode(wrapper_factory=rt.factory, config={"llm_wrapper": "w"})
    result = node.execute(
        {"messages": [HumanMessage("Oslo")]}, {"tools": [lookup], "tool_choice": "required"}
    )
    reply = result.state["messages"][-1]
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("lookup", {"input": "Oslo"})]
    sent = fake.requests("m")[-1]["body"]
    assert sent["tools"][0]["name"] == "lookup" and sent["tool_choice"] == {"type": "any"}


async def test_llm_node_async_form_in_a_langgraph_graph(fake, runtime_for):
    pytest.importorskip("langgraph")
    from langgraph.graph import START, MessagesState, StateGraph

    from actors import LLMNode

    rt = runtime_for(**topology())
    node = LLMNode(wrapper_factory=rt.factory, config={"llm_wrapper": "w"})
    graph = StateGraph(MessagesState)
    graph.add_node("llm", node.acall)
    graph.add_edge(START, "llm")
    state = await graph.compile().ainvoke({"messages": [HumanMessage("hello there")]})
    assert [m.type for m in state["messages"]] == ["human", "ai"]
    assert state["messages"][-1].content == "echo: hello there"


def test_stream_chunks_answer_content_like_langchains(runtime_for, fake):
    rt = runtime_for(**topology())
    chunks = list(rt.factory.get_wrapper("w").stream_generate("hello there"))
    assert "".join(c.content for c in chunks) == "echo: hello there" == "".join(c.delta for c in chunks)
