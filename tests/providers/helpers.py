"""Helpers for provider tests: run a call or a stream through the sync or the async driver."""

from __future__ import annotations

from typing import Any

import pytest

from actors.errors import LLMCallError
from actors.providers import Provider
from actors.response import LLMResponse, StreamChunk

KEY = "sk-test-DISTINCTIVE-9f4e2c71b0"
USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "description": "find", "parameters": {"type": "object"}},
    },
    {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
]


async def complete(
    provider: Provider,
    mode: str,
    messages: Any = USER,
    params: dict[str, Any] | None = None,
    timeout: float = 5.0,
) -> LLMResponse:
    """One call, through the sync or the async driver."""
    if mode == "sync":
        return provider.call(messages, params or {}, timeout=timeout)
    return await provider.acall(messages, params or {}, timeout=timeout)


async def collect(
    provider: Provider,
    mode: str,
    messages: Any = USER,
    params: dict[str, Any] | None = None,
    timeout: float = 5.0,
) -> tuple[list[StreamChunk], LLMCallError | None]:
    """Every chunk a stream yields, and the error it ended with (None when it completed)."""
    chunks: list[StreamChunk] = []
    try:
        if mode == "sync":
            for chunk in provider.stream(messages, params or {}, timeout=timeout):
                chunks.append(chunk)
        else:
            async for chunk in provider.astream(messages, params or {}, timeout=timeout):
                chunks.append(chunk)
    except LLMCallError as exc:
        return chunks, exc
    return chunks, None


async def probe(provider: Provider, mode: str, timeout: float = 5.0) -> None:
    if mode == "sync":
        provider.probe(timeout=timeout)
    else:
        await provider.aprobe(timeout=timeout)


async def failure(provider: Provider, mode: str, **kwargs: Any) -> LLMCallError:
    """The error one call raises (fails the test if it succeeds)."""
    try:
        await complete(provider, mode, **kwargs)
    except LLMCallError as exc:
        return exc
    pytest.fail("the call succeeded; expected an error")
