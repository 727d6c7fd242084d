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
import base64
import collections
import contextlib
import logging
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import httptools
import httpx

from actors._version import __version__
from actors.providers.sse import SSEEvent
from actors.providers.upstream import Answer, _closed_by_peer, _unread, event_batches
from actors.secrets import hide_userinfo

__all__ = ["H1Upstream"]

_log = logging.getLogger("actors.upstream")

#: Response bytes buffered unread before the connection stops reading (a slow consumer).
_HIGH_WATER = 1 << 20
#: Headers this client writes itself: the body's framing.
_FRAMING = frozenset({"content-length", "transfer-encoding"})
#: What a path or query may hold unescaped (httpx's choice: RFC 3986's reserved and unreserved).
_SAFE = "/:@!$&'()*+,;=%~"
_USER_AGENT = f"user-agent: llm-actors/{__version__}\r\n".encode()


class _Target(NamedTuple):
    origin: tuple[str, str, int]
    line: bytes  # the request line after the method
    host: bytes  # the Host header line
    auth: bytes  # an Authorization line from credentials in the URL, or nothing


class _Connection(asyncio.Protocol):
    """One connection to an origin, carrying one exchange at a time."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed: BaseException | None = None  # why the connection ended, once it has
        self.idle_since = 0.0
        self.busy = False  # an exchange is under way
        self.slot = False  # it holds one of the upstream's ``max_connections`` slots
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pieces: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.informational = False  # the message being parsed is a 1xx, before the real answer
        self.until_close = False  # the body ends when the server closes the connection
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
            if self.until_close and self.head.done():
                self.complete = True  # a body framed by the connection's end has ended
            self._end(httpx.RemoteProtocolError("the server closed the connection"))
        else:
            error = httpx.ReadError(f"the connection broke ({exc})")
            error.__cause__ = exc
            self._end(error)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the answer comes after it
            self.informational = True
            self.raw_headers = []
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()  # asked here: after the body it says False
        framed = status in (204, 304)
        for name, value in self.raw_headers:
            name = name.lower()
            if name in (b"content-length", b"transfer-encoding"):
                framed = True
            elif name == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate"):
                # Not asked for (no Accept-Encoding is sent), but decoded if a server sends it.
                self.inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)
        self.until_close = not framed
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
        if self.informational:
            self.informational = False
            return
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

    async def piece(self, timeout: float) -> bytes:
        """The next piece of the body; empty once it is complete."""
        while not self.pieces:
            if self.complete:
                return b""
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
            and not self.pieces  # read to its end (a paused connection never is)
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
        while piece := await self._next():
            parts.append(piece)
        return b"".join(parts)

    def _next(self) -> Awaitable[bytes]:
        return self._conn.piece(self._timeout)

    def events(self) -> AsyncIterator[list[SSEEvent]]:
        return event_batches(self._next)


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
        # As httpx reads its limits: None is no limit.
        keep, expiry = limits.max_keepalive_connections, limits.keepalive_expiry
        self._keep = keep if keep is not None else 1 << 30
        self._expiry = expiry if expiry is not None else float("inf")
        self._slots = asyncio.Semaphore(limits.max_connections) if limits.max_connections else None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = collections.defaultdict(list)
        self._targets: dict[str, _Target] = {}
        self._closed = False

    def _target(self, url: str) -> _Target:
        # Each instance calls the same few URLs: parsed once.
        known = self._targets.get(url)
        if known is None:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            path = quote(parts.path or "/", safe=_SAFE) + (
                f"?{quote(parts.query, safe=_SAFE + '?')}" if parts.query else ""
            )
            shown = f"[{host}]" if ":" in host else host
            authority = shown if parts.port is None else f"{shown}:{port}"
            auth = b""
            if parts.username is not None:  # credentials in the URL: Basic auth, as httpx sends them
                pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                auth = b"authorization: Basic " + base64.b64encode(pair) + b"\r\n"
            known = _Target(
                (scheme, host, port),
                f" {path} HTTP/1.1\r\n".encode("ascii"),
                f"host: {authority}\r\n".encode(),
                auth,
            )
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
        target = self._target(url)
        lines = [method.encode("ascii"), target.line]
        named = set()
        for name, value in headers.items():
            lower = name.lower()
            if lower in _FRAMING:  # the body's length is this client's to say
                continue
            named.add(lower)
            line = f"{name}: {value}\r\n"
            text = line[:-2]
            if "\r" in text or "\n" in text or ":" in name:
                raise httpx.LocalProtocolError(f"header {name!r} has a line break or a colon in it")
            try:
                lines.append(line.encode("latin-1"))
            except UnicodeEncodeError:
                raise httpx.LocalProtocolError(f"header {name!r} is not Latin-1 text") from None
        if "host" not in named:
            lines.append(target.host)
        if target.auth and "authorization" not in named:
            lines.append(target.auth)
        if "user-agent" not in named:
            lines.append(_USER_AGENT)
        lines.append(b"content-length: %d\r\n\r\n" % len(body or b""))
        if body:
            lines.append(body)
        request = b"".join(lines)
        origin = target.origin
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        try:
            conn = await self._send(origin, request, timeout, method, url)
        except BaseException:
            if slots is not None:
                slots.release()
            raise
        conn.slot = slots is not None
        return conn

    async def _send(
        self, origin: tuple[str, str, int], request: bytes, timeout: float, method: str, url: str
    ) -> _Connection:
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
                if conn.closed is not None:  # closed before the request could go: no answer will come
                    raise conn.closed
                async with asyncio.timeout(timeout):
                    await conn.head
            except TimeoutError:
                conn.transport.close()
                raise httpx.ReadTimeout(f"no answer from the server within {timeout:g} s") from None
            except httpx.TransportError as exc:
                conn.transport.close()
                # A pooled connection its server reset before answering never carried the
                # request; a clean close without an answer may have (a model call costs money).
                if attempt == 1 and reused and not conn.got_bytes and _unread(exc):
                    _log.debug("a pooled connection was reset by its server (%s); sending again", exc)
                    continue
                raise
            except BaseException:
                conn.transport.close()  # cancelled mid-exchange: the connection cannot be reused
                raise
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug('HTTP Request: %s %s "HTTP/1.1 %d"', method, hide_userinfo(url), conn.status)
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    def _release(self, conn: _Connection) -> None:
        if conn.slot:
            conn.slot = False
            assert self._slots is not None
            self._slots.release()
        transport = conn.transport
        if transport is None:
            return
        conn.busy = False
        idle = self._idle[conn.origin]
        if not self._closed and conn.reusable() and len(idle) < self._keep:
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
