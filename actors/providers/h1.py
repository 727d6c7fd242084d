"""The providers' async calls over HTTP/1.1 on pooled asyncio connections, parsed by httptools.

aiohttp spends 160 to 220 µs of CPU on a streamed request that costs 39 µs over plain asyncio
streams, and on the gateway's path to a stream's first text that is its largest single cost
(README, *Performance*). A provider call needs little of a general client: one request at a
time on a connection, keep-alive pools per origin, bodies framed by length or by chunks (the
parser's work; httptools is the parser uvicorn uses), TLS, a timeout for connecting and one for
each wait for data. That is all this does; with a proxy configured, aiohttp does the calls.

Failures are httpx's exception types, so the one error boundary
(``actors.providers.errors.classify_transport``) tells them apart as it does httpx's. A request
whose pooled connection turns out to have been closed by its server (a reset before any answer)
is sent once more on a new connection, as the aiohttp path does.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import errno
import logging
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httptools
import httpx

from actors.providers.sse import SSEDecoder, SSEEvent
from actors.providers.upstream import Answer, LineSplitter, _closed_by_peer, _events

__all__ = ["H1Upstream"]

_log = logging.getLogger("actors.upstream")

#: Response bytes buffered unread before the connection stops reading (a slow consumer).
_HIGH_WATER = 1 << 20


class _Connection(asyncio.Protocol):
    """One connection to an origin, carrying one exchange at a time."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed: BaseException | None = None  # why the connection ended, once it has
        self.idle_since = 0.0
        self.used = False  # it has carried an exchange before this one
        self.busy = False  # an exchange is under way
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pieces: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.inflate: Any = None
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # an idle connection has nothing to say: whatever it is, drop it
            self._end(httpx.RemoteProtocolError("the server sent bytes on an idle connection"))
            assert self.transport is not None
            self.transport.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(httpx.RemoteProtocolError(f"the server's answer is not valid HTTP/1.1 ({exc})"))
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._end(httpx.RemoteProtocolError("the server closed the connection"))
        else:
            error = httpx.ReadError(f"the connection broke ({exc})")
            error.__cause__ = exc
            self._end(error)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # asked here: after the body it says False
        for name, value in self.raw_headers:
            if name.lower() == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate"):
                # Not asked for (no Accept-Encoding is sent), but decoded if a server sends it.
                self.inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        data = self.inflate.decompress(body) if self.inflate is not None else bytes(body)
        if data:
            self.pieces.append(data)
            self.buffered += len(data)
            if self.buffered > _HIGH_WATER and self.transport is not None:
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- the exchange -------------------------------------------------------------------------

    def _end(self, error: BaseException) -> None:
        if self.closed is None:
            self.closed = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: an exchange may not be waiting for it
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def piece(self, timeout: float) -> bytes | None:
        """The next piece of the body; None once it is complete."""
        while not self.pieces:
            if self.complete:
                return None
            if self.closed is not None:
                raise self.closed
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                raise httpx.ReadTimeout(f"no data from the server for {timeout:g} s") from None
            finally:
                self.waiter = None
        data = self.pieces.popleft()
        self.buffered -= len(data)
        if self.buffered <= _HIGH_WATER // 4 and self.transport is not None:
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return (
            self.complete
            and self.closed is None
            and self.transport is not None
            and not self.transport.is_closing()
            and self.keep_alive
        )


class _Reply:
    """A response whose head has arrived; its body is read through ``read`` or ``events``."""

    __slots__ = ("_conn", "_timeout", "headers", "raw_headers", "status")

    def __init__(self, conn: _Connection, timeout: float) -> None:
        self._conn = conn
        self._timeout = timeout
        self.status = conn.status
        self.raw_headers = conn.raw_headers
        self.headers = httpx.Headers(conn.raw_headers)

    async def read(self) -> bytes:
        parts = []
        while (piece := await self._conn.piece(self._timeout)) is not None:
            parts.append(piece)
        return b"".join(parts)

    async def events(self) -> AsyncIterator[list[SSEEvent]]:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        splitter = LineSplitter()
        sse = SSEDecoder()
        while (piece := await self._conn.piece(self._timeout)) is not None:
            events = _events(sse, splitter.feed(decoder.decode(piece)))
            if events:
                yield events
        events = _events(sse, splitter.feed(decoder.decode(b"", final=True)) + splitter.flush())
        events += sse.tail()
        if events:
            yield events


class _Stream:
    __slots__ = ("_args", "_conn", "_up")

    def __init__(self, up: H1Upstream, args: tuple[Any, ...]) -> None:
        self._up = up
        self._args = args
        self._conn: _Connection | None = None

    async def __aenter__(self) -> _Reply:
        self._conn = await self._up._exchange(*self._args)
        return _Reply(self._conn, self._args[-1])

    async def __aexit__(self, kind: object, exc: object, tb: object) -> None:
        assert self._conn is not None
        self._up._release(self._conn)  # a body left unread closes the connection


class H1Upstream:
    """One event loop's connections, pooled per origin (``limits``: how many stay open idle, and
    for how long)."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._keep = limits.max_keepalive_connections or 100
        self._expiry = limits.keepalive_expiry or 5.0
        self._idle: dict[tuple[str, str, int], list[_Connection]] = collections.defaultdict(list)
        self._targets: dict[str, tuple[tuple[str, str, int], bytes]] = {}
        self._closed = False

    def _target(self, url: str) -> tuple[tuple[str, str, int], bytes]:
        # Each instance calls the same few URLs: parsed once.
        known = self._targets.get(url)
        if known is None:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            shown = f"[{host}]" if ":" in host else host
            authority = shown if parts.port is None else f"{shown}:{port}"
            head = f" {path} HTTP/1.1\r\nhost: {authority}\r\n".encode("ascii")
            known = (scheme, host, port), head
            if len(self._targets) < 256:
                self._targets[url] = known
        return known

    async def _connect(self, origin: tuple[str, str, int], timeout: float) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    def _pooled(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if (
                conn.closed is None
                and transport is not None
                and not transport.is_closing()
                and now - conn.idle_since < self._expiry
                and not _closed_by_peer(conn)
            ):
                return conn
            if transport is not None:
                transport.close()
        return None

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> _Connection:
        origin, target = self._target(url)
        lines = [method.encode("ascii"), target]
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise httpx.LocalProtocolError(f"header {name} has a line break")
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(b"content-length: %d\r\n\r\n" % len(body or b""))
        if body:
            lines.append(body)
        request = b"".join(lines)
        for attempt in (1, 2):
            conn = self._pooled(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, timeout)
            conn._begin()
            conn.busy = True
            assert conn.transport is not None
            conn.transport.write(request)
            try:
                async with asyncio.timeout(timeout):
                    await conn.head
            except TimeoutError:
                conn.transport.close()
                raise httpx.ReadTimeout(f"no answer from the server within {timeout:g} s") from None
            except httpx.TransportError as exc:
                conn.transport.close()
                # A pooled connection its server reset before answering never carried the
                # request; a clean close without an answer may have (a model call costs money).
                if attempt == 1 and reused and not conn.got_bytes and _reset(exc):
                    _log.debug("a pooled connection was reset by its server (%s); sending again", exc)
                    continue
                raise
            except BaseException:
                conn.transport.close()  # cancelled mid-exchange: the connection cannot be reused
                raise
            if _log.isEnabledFor(logging.DEBUG):  # the URL never has credentials: they go in a header
                _log.debug('HTTP Request: %s %s "HTTP/1.1 %d"', method, url, conn.status)
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    def _release(self, conn: _Connection) -> None:
        transport = conn.transport
        if transport is None:
            return
        conn.busy = False
        idle = self._idle[conn.origin]
        if not self._closed and conn.reusable() and len(idle) < self._keep:
            conn.used = True
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            transport.close()

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> Answer:
        conn = await self._exchange(method, url, headers, body, timeout)
        try:
            reply = _Reply(conn, timeout)
            data = await reply.read()
        finally:
            self._release(conn)
        return Answer(reply.status, reply.headers, reply.raw_headers, data)

    def stream(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> _Stream:
        return _Stream(self, (method, url, headers, body, timeout))

    async def aclose(self) -> None:
        self.abandon()

    def abandon(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                transport = conn.transport
                if transport is None:
                    continue
                try:
                    transport.close()
                except RuntimeError:  # its loop has closed: the server still hears the end
                    sock = transport.get_extra_info("socket")
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
        self._idle.clear()


def _reset(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)) or getattr(exc, "errno", None) in (
            errno.ECONNRESET,
            errno.EPIPE,
        ):
            return True
        exc = exc.__cause__
    return False
