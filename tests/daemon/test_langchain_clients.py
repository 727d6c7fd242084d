"""LangChain's OpenAI integration against the daemon: ``use_responses_api`` and ``OpenAIEmbeddings``."""

from __future__ import annotations

import pytest

from actors.fake.embeddings import vector

langchain_openai = pytest.importorskip("langchain_openai")
from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return "sunny"


def chat_model(daemon, model: str):
    return langchain_openai.ChatOpenAI(
        model=model, base_url=daemon.url + "/v1", api_key="unused", use_responses_api=True, max_retries=0
    )


def test_chat_openai_on_the_responses_api(daemon):
    llm = chat_model(daemon, "chat")
    message = llm.invoke("hello there")
    assert message.text == "echo: hello there"
    assert message.usage_metadata["total_tokens"] > 0
    assert message.response_metadata["id"].startswith("resp_")
    chunks = list(llm.stream("one two three"))
    assert "".join(c.text for c in chunks) == "echo: one two three"
    assert len([c for c in chunks if c.text]) > 1  # token chunks, not one whole message


def test_a_tool_round_trip_on_the_responses_api(fake, daemon):
    first = chat_model(daemon, "tools").bind_tools([get_weather]).invoke("weather in Oslo")
    [call] = first.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"input": "weather in Oslo"}
    answer = chat_model(daemon, "tools").invoke(
        [HumanMessage("weather in Oslo"), first, ToolMessage("sunny", tool_call_id=call["id"])]
    )
    assert answer.text.startswith("echo:")
    turns = fake.requests("tool1")[-1]["body"]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "tool"]
    assert turns[1]["tool_calls"][0]["id"] == call["id"] and turns[2]["content"] == "sunny"


def test_openai_embeddings(daemon):
    # check_embedding_ctx_length=False sends text; the default sends token ids, counted with
    # tiktoken, whose encoding files are downloaded at run time (not possible in the tests).
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="emb", base_url=daemon.url + "/v1", api_key="unused", check_embedding_ctx_length=False
    )
    documents = embeddings.embed_documents(["first text", "second"])
    assert documents == [
        pytest.approx(vector("first text"), abs=1e-6),
        pytest.approx(vector("second"), abs=1e-6),
    ]
    assert embeddings.embed_query("a query") == pytest.approx(vector("a query"), abs=1e-6)
