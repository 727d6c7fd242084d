"""The async upstream exchange, one interface over three clients.

Profiling the daemon under load showed httpx's async stack (httpx, httpcore, anyio, h11)
taking about half of the daemon's CPU per request; aiohttp's client (a C HTTP parser, native
to asyncio) does the same exchange for about a third of that CPU, and ``actors.providers.h1``
(HTTP/1.1 over asyncio and httptools, nothing else) for about a fifth of aiohttp's. h1 serves
the providers' async calls when httptools is installed (the ``daemon`` extra) and no proxy is
configured; aiohttp goes through proxies; with HTTP/2 asked for, or neither installed, httpx
does. The providers see none of them: an exchange is a ``Reply`` (status, headers, body or
lines), and the errors are classified at the one boundary,
``actors.providers.errors.classify_transport``. httpx stays the sync client and the client
users configure (``httpx.Limits``).
"""

from __future__ import annotations

import codecs
import contextvars
import errno
import logging
import select
import urllib.request
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from actors.providers.sse import SSEDecoder, SSEEvent

try:
    import aiohttp
except ImportError:  # pragma: no cover - the daemon extra is not installed
    aiohttp = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import ssl

__all__ = [
    "AIOHTTP",
    "TRANSPORT_ERRORS",
    "AioUpstream",
    "Answer",
    "HttpxUpstream",
    "LineSplitter",
    "Reply",
    "Shards",
    "Upstream",
    "event_batches",
]

# httpx logs each request at info; here it is debug, so the hot path pays one level check.
_log = logging.getLogger("actors.upstream")

#: Whether aiohttp is installed.
AIOHTTP = aiohttp is not None

#: What an exchange may raise for a transport failure (classified by ``classify_transport``).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    (httpx.HTTPError, aiohttp.ClientError) if aiohttp is not None else (httpx.HTTPError,)
)

_NEWLINES = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # what ``str.splitlines`` splits on


class Answer:
    """A finished exchange, whichever client made it (named as on ``httpx.Response``)."""

    __slots__ = ("content", "headers", "raw_headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        raw_headers: Iterable[tuple[bytes, bytes]],
        content: bytes,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.raw_headers = raw_headers
        self.content = content

    @classmethod
    def of(cls, response: httpx.Response, content: bytes | None = None) -> Answer:
        """An httpx response (read), or its status and headers with ``content``."""
        body = response.content if content is None else content
        return cls(response.status_code, response.headers, response.headers.raw, body)


class Reply(Protocol):
    """One upstream response being read."""

    status: int
    headers: Mapping[str, str]
    raw_headers: Iterable[tuple[bytes, bytes]]

    async def read(self) -> bytes: ...

    def events(self) -> AsyncIterator[list[SSEEvent]]:
        """The body's server-sent events, a batch per read (never empty)."""
        ...


class Upstream(Protocol):
    """One event loop's way to the providers' servers."""

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Answer:
        """Status, headers and whole body."""
        ...

    def stream(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Any:
        """An async context manager giving a ``Reply`` whose body is not read yet."""
        ...

    async def aclose(self) -> None: ...

    def abandon(self) -> None:
        """Forget the connections of a loop that has closed (they cannot be closed cleanly)."""
        ...


class Shards(Protocol):
    """Small httpx pools of one loop and origin (``actors.providers.clients.AsyncShards``)."""

    clients: list[httpx.AsyncClient]

    def acquire(self) -> int: ...

    def release(self, index: int) -> None: ...


class LineSplitter:
    """Text in pieces, whole lines out without their endings, split as httpx's ``aiter_lines``."""

    __slots__ = ("_cr", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._cr = False  # the last piece ended in "\r": its "\n" may come first in the next

    def feed(self, text: str) -> list[str]:
        if self._cr:
            text, self._cr = "\r" + text, False
        if text.endswith("\r"):
            text, self._cr = text[:-1], True
        if not text:
            return []
        ended = text[-1] in _NEWLINES
        lines = text.splitlines()
        if len(lines) == 1 and not ended:
            self._parts.append(lines[0])
            return []
        if self._parts:
            lines[0] = "".join(self._parts) + lines[0]
            self._parts = []
        if not ended:
            self._parts = [lines.pop()]
        return lines

    def flush(self) -> list[str]:
        if not self._parts and not self._cr:
            return []
        line, self._parts, self._cr = "".join(self._parts), [], False
        return [line]


# Whether the current task's last aiohttp request went out on a pooled (reused) connection.
_REUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("actors_upstream_reused", default=False)


def _closed_by_peer(protocol: Any) -> bool:
    """Whether an idle pooled connection has something to read: its server's FIN (or a last
    word such as a 408) that the loop has not handled yet. An idle HTTP/1.1 connection has
    nothing to say, so either way it must not carry a request (httpcore checks the same)."""
    transport = protocol.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


if aiohttp is not None:

    class _Connector(aiohttp.TCPConnector):
        """A pool that never hands out a connection its server closed while it sat idle, and
        tells ``_REUSED`` whether the one handed out had carried a request before."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._used: weakref.WeakSet[Any] = weakref.WeakSet()

        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
            while True:
                conn = await super().connect(req, traces, timeout)
                protocol = conn.protocol
                reused = protocol in self._used
                if reused and _closed_by_peer(protocol):
                    conn.close()  # its server has closed it: drop it and take the next
                    continue
                self._used.add(protocol)
                _REUSED.set(reused)
                return conn


class _AioReply:
    __slots__ = ("_response", "headers", "raw_headers", "status")

    def __init__(self, response: Any) -> None:
        self._response = response
        self.status: int = response.status
        self.headers: Mapping[str, str] = response.headers
        self.raw_headers: Iterable[tuple[bytes, bytes]] = response.raw_headers

    async def read(self) -> bytes:
        return await self._response.read()

    def events(self) -> AsyncIterator[list[SSEEvent]]:
        return event_batches(self._response.content.readany)


async def event_batches(read: Callable[[], Awaitable[bytes]]) -> AsyncIterator[list[SSEEvent]]:
    """The server-sent events of a body that ``read`` gives piece by piece (empty at its end),
    a batch per piece that completes any.

    Each piece's lines and events are decoded here in one pass: a generator for the lines and
    one for the events would cost two more async steps per line of a stream."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    splitter = LineSplitter()
    sse = SSEDecoder()
    while piece := await read():
        events = _events(sse, splitter.feed(decoder.decode(piece)))
        if events:
            yield events
    events = _events(sse, splitter.feed(decoder.decode(b"", final=True)) + splitter.flush())
    events += sse.tail()
    if events:
        yield events


def _events(sse: SSEDecoder, lines: list[str]) -> list[SSEEvent]:
    events = []
    for line in lines:
        event = sse.feed(line)
        if event is not None:
            events.append(event)
    return events


class _AioStream:
    __slots__ = ("_request", "_response")

    def __init__(self, request: Any) -> None:
        self._request = request
        self._response: Any = None

    async def __aenter__(self) -> _AioReply:
        self._response = response = await self._request
        _logged(response)
        return _AioReply(response)

    async def __aexit__(self, kind: object, exc: object, tb: object) -> None:
        # A body left unread (the caller stopped, or failed) closes the connection rather than
        # returning it to the pool; a fully read one goes back for the next request.
        self._response.release()


class AioUpstream:
    """aiohttp: one session (and connection pool) for one event loop, created on first use."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        assert aiohttp is not None
        self._limits = limits
        self._ssl = ssl_context
        self._session: Any = None
        self._timeouts: dict[float, Any] = {}

    def _open(self) -> Any:
        connector = _Connector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        # Proxies from the environment, as httpx honours them; looked up only if any is set
        # (aiohttp reads the environment on every request when asked to).
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a gateway must not carry one caller's cookies to the next
            trust_env=bool(urllib.request.getproxies()),
        )
        return self._session

    def _timeout(self, seconds: float) -> Any:
        # Attempt timeouts repeat (the model's own) or are clipped by a deadline (all distinct):
        # keep the repeated ones only.
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
            )
            if len(self._timeouts) < 64:
                self._timeouts[seconds] = timeout
        return timeout

    def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Any:
        session = self._session or self._open()
        return session.request(
            method, url, headers=headers, data=body, timeout=self._timeout(timeout), allow_redirects=False
        )

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Any:
        """The response, its body unread. A request that met a reused connection its server had
        already closed is sent once more: a server closes an idle connection when its keep-alive
        timer fires, and if its FIN was still on the way when the pool checked, the request
        reaches a closed socket, which answers with a reset (or the write fails). The server
        never read it. A clean close without an answer is not retried: the server may have read
        the request (a model call costs money), and neither is anything on a fresh connection."""
        _REUSED.set(False)
        try:
            return await self._request(method, url, headers, body, timeout)
        except aiohttp.ClientConnectionError as exc:
            if not (_REUSED.get() and _unread(exc)):
                raise
            _log.debug("a pooled connection was closed by its server (%s); sending again", exc)
        return await self._request(method, url, headers, body, timeout)

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Answer:
        response = await self._send(method, url, headers, body, timeout)
        _logged(response)
        try:
            data = await response.read()
        finally:
            response.release()
        return Answer(response.status, response.headers, response.raw_headers, data)

    def stream(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> _AioStream:
        return _AioStream(self._send(method, url, headers, body, timeout))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def abandon(self) -> None:
        session, self._session = self._session, None
        if session is not None and session.connector is not None:
            # The public close() returns an awaitable that a closed loop cannot run; this marks
            # the pool closed (so collection does not warn) and the sockets go with it.
            session.connector._close()


def _unread(exc: BaseException | None) -> bool:
    """Whether a transport error (or one it wraps) says the server's socket was closed with our
    request unread (a reset), or that the request could not be written at all."""
    # aiohttp >= 3.10 raises ClientConnectionResetError for a write to a closing transport.
    reset = getattr(aiohttp, "ClientConnectionResetError", ())
    while exc is not None:
        if isinstance(exc, reset) or getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
            return True
        exc = exc.__cause__
    return False


def _logged(response: Any) -> None:
    if _log.isEnabledFor(logging.DEBUG):  # the URL never has credentials: they go in a header
        _log.debug(
            'HTTP Request: %s %s "HTTP/%s.%s %d %s"',
            response.method,
            response.url,
            *response.version,
            response.status,
            response.reason,
        )


class _HttpxReply:
    __slots__ = ("_response", "headers", "raw_headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = response.headers
        self.raw_headers = response.headers.raw

    async def read(self) -> bytes:
        return await self._response.aread()

    async def events(self) -> AsyncIterator[list[SSEEvent]]:
        sse = SSEDecoder()
        async for line in self._response.aiter_lines():
            event = sse.feed(line)
            if event is not None:
                yield [event]
        tail = list(sse.tail())
        if tail:
            yield tail


class _HttpxStream:
    __slots__ = ("_context", "_shard", "_shards")

    def __init__(self, shards: Shards, context: Any, shard: int) -> None:
        self._shards = shards
        self._context = context
        self._shard = shard

    async def __aenter__(self) -> _HttpxReply:
        try:
            return _HttpxReply(await self._context.__aenter__())
        except BaseException:
            self._shards.release(self._shard)
            raise

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        try:
            await self._context.__aexit__(kind, exc, tb)
        finally:
            self._shards.release(self._shard)


class HttpxUpstream:
    """httpx over ``AsyncShards``: without aiohttp, or for HTTP/2."""

    def __init__(self, shards: Shards) -> None:
        self.shards = shards

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Answer:
        shards = self.shards
        shard = shards.acquire()
        try:
            response = await shards.clients[shard].request(
                method, url, headers=headers, content=body, timeout=timeout
            )
        finally:
            shards.release(shard)
        return Answer.of(response)

    def stream(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> _HttpxStream:
        shard = self.shards.acquire()
        context = self.shards.clients[shard].stream(
            method, url, headers=headers, content=body, timeout=timeout
        )
        return _HttpxStream(self.shards, context, shard)

    async def aclose(self) -> None:
        for client in self.shards.clients:
            await client.aclose()

    def abandon(self) -> None:
        pass  # httpx's pools hold no loop; their sockets close when collected
