"""The async upstream: line splitting as httpx does it, the backend choice, aiohttp's errors classified."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest

from actors.errors import LLMTimeoutError, ServiceUnavailableError
from actors.providers import HTTPClients
from actors.providers.errors import ErrorContext, classify_transport
from actors.providers.upstream import AioUpstream, HttpxUpstream, LineSplitter


def split(pieces: list[str]) -> list[str]:
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)]
    return lines + splitter.flush()


@pytest.mark.parametrize(
    "pieces",
    [
        ["data: 1\n\ndata: 2\n\n"],
        ["da", "ta: 1\n", "\nda", "ta: 2\n\n"],
        ["data: 1\r", "\n\r\ndata: 2\r\n\r\n"],
        ["data: 1\r\rdata: 2\r", "\r"],
        ["data: 1\n\ndata: 2"],  # the last line without its ending
        ["data: 1\u2028tail\n", "\ndata: 2\n\n"],
    ],
)
def test_lines_split_as_httpx_splits_them(pieces):
    joined = "".join(pieces).encode()
    expected = list(httpx.Response(200, content=joined).iter_lines())
    assert split(pieces) == expected


def test_nothing_in_nothing_out():
    assert split([]) == [] and split(["", ""]) == []


async def test_aiohttp_is_the_default_async_backend_and_httpx_the_fallback():
    assert HTTPClients().async_backend == "aiohttp"
    assert HTTPClients(http2=True).async_backend == "httpx"  # aiohttp has no HTTP/2
    fast, plain = HTTPClients(), HTTPClients(async_backend="httpx")
    assert isinstance(fast.upstream("http://a:1"), AioUpstream)
    assert fast.upstream("http://a:1") is fast.upstream("http://b:2")  # one pool per loop
    assert isinstance(plain.upstream("http://a:1"), HttpxUpstream)
    await fast.aclose()
    await plain.aclose()
    with pytest.raises(ValueError, match="async_backend"):
        HTTPClients(async_backend="curl")


def test_a_closed_loops_upstream_is_dropped_when_the_next_loop_comes():
    clients = HTTPClients()

    async def take(used: bool) -> AioUpstream:
        upstream = clients.upstream("http://a:1")
        assert isinstance(upstream, AioUpstream)
        if used:
            upstream._open()  # a session with a pool, as after a request
        return upstream

    first = asyncio.run(take(True))
    second = asyncio.run(take(False))
    assert second is not first and len(clients._upstreams) == 1
    assert first._session is None  # abandoned: no unclosed-session warning when collected
    clients.close()
    assert clients._upstreams == {}


CTX = ErrorContext(instance="i", provider="openai", model_name="m", base_url="http://x", key_hint="K")


@pytest.mark.parametrize(
    "exc, kind, code",
    [
        (aiohttp.SocketTimeoutError("read"), LLMTimeoutError, "timeout"),
        (aiohttp.ConnectionTimeoutError("connect"), LLMTimeoutError, "timeout"),
        (aiohttp.ServerDisconnectedError(), ServiceUnavailableError, "connection_dropped"),
        (aiohttp.ClientPayloadError("cut short"), ServiceUnavailableError, "connection_dropped"),
        (aiohttp.ClientError("odd"), ServiceUnavailableError, "transport_error"),
    ],
)
def test_aiohttp_errors_are_classified_like_httpx_ones(exc, kind, code):
    error = classify_transport(CTX, exc, 2.0)
    assert type(error) is kind and error.error_code == code
