"""The async upstream: line splitting as httpx does it, the backend choice, aiohttp's errors
classified, pooled connections that their server closed."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import pytest
from waiting import wait_until

from actors.config.models import ModelConfig
from actors.errors import LLMTimeoutError, ServiceUnavailableError
from actors.fake import FakeProvider
from actors.providers import HTTPClients, Provider, make_provider
from actors.providers.errors import ErrorContext, classify_transport
from actors.providers.h1 import H1Upstream
from actors.providers.upstream import AioUpstream, HttpxUpstream, LineSplitter, _unread

from .helpers import USER


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


async def test_h1_is_the_default_async_backend_aiohttp_for_proxies_and_httpx_for_http2(monkeypatch):
    assert HTTPClients().async_backend == "h1"
    assert HTTPClients(http2=True).async_backend == "httpx"  # neither of the others speaks HTTP/2
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert HTTPClients().async_backend == "aiohttp"  # h1 does not go through proxies
    monkeypatch.delenv("HTTPS_PROXY")
    fast, plain, aio = HTTPClients(), HTTPClients(async_backend="httpx"), HTTPClients(async_backend="aiohttp")
    assert isinstance(fast.upstream("http://a:1"), H1Upstream)
    assert isinstance(aio.upstream("http://a:1"), AioUpstream)
    assert fast.upstream("http://a:1") is fast.upstream("http://b:2")  # one pool per loop
    assert isinstance(plain.upstream("http://a:1"), HttpxUpstream)
    await fast.aclose()
    await plain.aclose()
    await aio.aclose()
    with pytest.raises(ValueError, match="async_backend"):
        HTTPClients(async_backend="curl")


def test_a_closed_loops_upstream_is_dropped_when_the_next_loop_comes():
    clients = HTTPClients(async_backend="aiohttp")

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


# -- pooled connections their server closed -----------------------------------------------------

SENT_AGAIN = "sending again"


@pytest.fixture(params=["h1", "aiohttp"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[HTTPClients]:
    """Clients whose async calls go through each pooling backend."""
    clients = HTTPClients(async_backend=request.param)
    yield clients
    await clients.aclose()
    clients.close()


@pytest.fixture
def own_fake() -> Iterator[FakeProvider]:
    """A fake of this test's own, so that its open connections are this test's."""
    with FakeProvider() as fake:
        yield fake


def _provider(fake: FakeProvider, clients: HTTPClients) -> Provider:
    config = ModelConfig(
        name="inst", model_type="openai", model_name="m", base_url=fake.openai_base_url("inst"), api_key="k"
    )
    return make_provider(config, clients)


async def _ask(provider: Provider, streamed: bool) -> str:
    if streamed:
        return "".join([c.delta async for c in provider.astream(USER, {}, timeout=5)])
    return (await provider.acall(USER, {}, timeout=5)).content


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_pooled_connection_its_server_closed_is_not_used(own_fake, pool, caplog, streamed):
    own_fake.configure("inst", close_after=True)  # each answer's connection closes right after it
    provider = _provider(own_fake, pool)
    caplog.set_level(logging.DEBUG, logger="actors.upstream")
    assert await _ask(provider, streamed) == "echo: hello there"
    # A blocking wait: the loop does not run, so aiohttp has not read the FIN yet and still
    # counts the connection as open. Only the pool's own check can tell.
    wait_until(lambda: own_fake.open_connections() == 0, what="the fake to close the connection")
    assert await _ask(provider, streamed) == "echo: hello there"
    assert own_fake.stats("inst")["requests"] == 2
    assert SENT_AGAIN not in caplog.text  # the closed connection was never written to


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_request_reset_on_a_reused_connection_is_sent_once_more(own_fake, pool, caplog, streamed):
    # The server resets the connection when the next request arrives, unread: as when it closed
    # the idle connection just as the request crossed its FIN. The request never reached it.
    own_fake.configure("inst", close_on_reuse=True)
    provider = _provider(own_fake, pool)
    caplog.set_level(logging.DEBUG, logger="actors.upstream")
    assert await _ask(provider, streamed) == "echo: hello there"
    assert await _ask(provider, streamed) == "echo: hello there"
    assert own_fake.stats("inst")["requests"] == 2  # each answered once, none lost
    assert caplog.text.count(SENT_AGAIN) == 1


async def test_a_reused_connection_closed_without_an_answer_is_not_sent_again(own_fake, pool, caplog):
    # A clean close after the server read the request: it may have run it, so no second send.
    provider = _provider(own_fake, pool)
    caplog.set_level(logging.DEBUG, logger="actors.upstream")
    assert await _ask(provider, False) == "echo: hello there"
    own_fake.configure("inst", drop=True, times=1)
    with pytest.raises(ServiceUnavailableError):
        await _ask(provider, False)
    assert own_fake.stats("inst")["requests"] == 2 and SENT_AGAIN not in caplog.text


async def test_a_reset_on_a_fresh_connection_is_not_sent_again(own_fake, pool, caplog):
    # The server refused the request outright: that is the instance's answer, for the runtime to judge.
    own_fake.configure("inst", reset=True, times=1)
    provider = _provider(own_fake, pool)
    caplog.set_level(logging.DEBUG, logger="actors.upstream")
    with pytest.raises(ServiceUnavailableError):
        await _ask(provider, False)
    assert own_fake.stats("inst")["requests"] == 1 and SENT_AGAIN not in caplog.text


def _wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    "exc, unread",
    [
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), True),
        (aiohttp.ClientOSError(errno.EPIPE, "Broken pipe"), True),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), True),
        # How aiohttp reports a request body it could not write: the reset is the cause.
        (
            _wrapped(
                aiohttp.ClientOSError(None, "Can not write request body"),
                aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
            ),
            True,
        ),
        (aiohttp.ServerDisconnectedError(), False),  # a clean close: the server may have read it
        (aiohttp.ClientOSError(errno.ETIMEDOUT, "timed out"), False),
        (aiohttp.ClientPayloadError("cut short"), False),
    ],
)
def test_which_failures_say_the_request_went_unread(exc, unread):
    assert _unread(exc) is unread
