"""Shared HTTP clients: one httpx client per origin for sync calls, one upstream per event loop for async ones."""

from __future__ import annotations

import asyncio
import functools
import heapq
import http.cookiejar
import logging
import ssl
import threading
import urllib.request
import weakref
from collections.abc import Mapping
from typing import Any

import httpx

from actors.providers.upstream import AIOHTTP, AioUpstream, HttpxUpstream, Upstream

try:
    from actors.providers.h1 import H1Upstream
except ImportError:  # httptools (the daemon extra) is not installed
    H1 = False
else:
    H1 = True

__all__ = [
    "DEFAULT_LIMITS",
    "SHARD_CONNECTIONS",
    "AsyncShards",
    "HTTPClients",
    "SyncSender",
    "default_clients",
    "origin_of",
]

#: Connections per async pool shard (see ``AsyncShards``).
SHARD_CONNECTIONS = 4

#: Generous pools: the runtime's own limits decide how many calls run, not the connection pool.
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0)


def _proxied() -> bool:
    """Whether the environment names a proxy (``NO_PROXY`` alone names none)."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~30 ms; without sharing, every new client (one per origin and
    # per event loop) would pay it on the hot path.
    return httpx.create_ssl_context()


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps no cookie from a response, as the aiohttp path's ``DummyCookieJar``: a
    gateway must not carry one caller's cookies to the next. Skipping the jar's parsing also
    saves ~10 µs a request."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


#: httpx's own logger: the sync calls that skip ``Client.send`` still log its request line there.
_httpx_log = logging.getLogger("httpx")


class SyncSender:
    """One origin's sync client, and the way a provider's sync calls go through it.

    ``open`` hands a request straight to the client's transport unless a proxy from the
    environment may apply: ``httpx.Client.send`` costs ~30 µs a request more (auth and redirect
    flows, event hooks, a cookie jar, a timer) for nothing a provider call uses. The request
    goes out the same either way: its headers carry the client's defaults (``with_defaults``),
    its timeout rides in its extensions as the client puts it, and httpx's ``HTTP Request``
    line is logged as the client logs it.
    """

    __slots__ = ("client", "defaults", "transport")

    def __init__(self, client: httpx.Client, transport: httpx.BaseTransport | None) -> None:
        self.client = client
        self.defaults = client.headers  # User-Agent, Accept, Accept-Encoding, Connection
        self.transport = transport  # None: the client routes each request (proxies)

    def with_defaults(self, headers: Mapping[str, str]) -> httpx.Headers:
        """``headers`` over the client's defaults, merged as the client merges them."""
        merged = httpx.Headers(self.defaults)
        merged.update(headers)
        return merged

    def open(
        self,
        method: str,
        url: httpx.URL,
        headers: httpx.Headers,
        content: bytes | None,
        timeout: httpx.Timeout,
    ) -> httpx.Response:
        """The response to one request, its body not read yet: close it."""
        transport, client = self.transport, self.client
        if transport is None or client.is_closed:  # a closed client refuses, as it always did
            request = client.build_request(method, url, headers=headers, content=content, timeout=timeout)
            return client.send(request, stream=True)
        request = httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": timeout.as_dict()}
        )
        try:
            response = transport.handle_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as the client does
            raise
        response.request = request
        if _httpx_log.isEnabledFor(logging.INFO):
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                method,
                url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response


def origin_of(url: str | httpx.URL) -> str:
    """``scheme://host:port`` of ``url``, the key clients are shared by."""
    url = httpx.URL(url)
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return f"{url.scheme}://{url.host}:{port}"


class HTTPClients:
    """The httpx clients every provider shares, created lazily.

    ``httpx.Client`` is thread-safe, so one per origin serves every thread. An
    ``httpx.AsyncClient`` is bound to the event loop it first ran on, so async clients are kept
    per running loop (weakly: the entry goes when the loop is garbage-collected) and a client is
    never handed to another loop.

    The providers' async calls go through ``upstream()`` (see ``actors.providers.upstream``).
    ``async_backend`` chooses: ``"h1"`` (``actors.providers.h1``), ``"aiohttp"``, ``"httpx"``
    (these clients), or None: h1 when it can (httptools installed, no HTTP/2, no proxy in the
    environment), else aiohttp when it can (installed, no HTTP/2), else httpx.

    ``close()`` closes the sync clients and forgets the async clients of loops already closed.
    ``aclose()`` closes the calling loop's async clients; call it before a loop ends to close its
    connections cleanly. Clients of a loop that ended without ``aclose()`` are dropped with the
    loop, and their sockets are closed when collected. Both may be called more than once; a
    later call simply creates fresh clients.
    """

    def __init__(
        self, *, limits: httpx.Limits | None = None, http2: bool = False, async_backend: str | None = None
    ) -> None:
        if async_backend not in (None, "h1", "aiohttp", "httpx"):
            raise ValueError(f"async_backend must be 'h1', 'aiohttp', 'httpx' or None, not {async_backend!r}")
        if async_backend == "aiohttp" and not AIOHTTP:
            raise ValueError("async_backend 'aiohttp' needs aiohttp: pip install 'llm-actors[daemon]'")
        if async_backend == "h1" and not H1:
            raise ValueError("async_backend 'h1' needs httptools: pip install 'llm-actors[daemon]'")
        self._limits = limits or DEFAULT_LIMITS
        self._http2 = http2
        # h1 when it can (httptools installed, no HTTP/2, no proxy to go through), else aiohttp.
        proxied = _proxied()
        self.async_backend = async_backend or (
            "h1" if H1 and not http2 and not proxied else "aiohttp" if AIOHTTP and not http2 else "httpx"
        )
        self._lock = threading.Lock()
        # Strongly held: an aiohttp session refers to its loop, so a weak key would never go.
        # Entries of closed loops are dropped whenever a new loop comes, and by ``close()``.
        self._upstreams: dict[asyncio.AbstractEventLoop, Upstream] = {}
        self._sync: dict[str, SyncSender] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncShards]] = (
            weakref.WeakKeyDictionary()
        )

    def sync_client(self, origin: str) -> httpx.Client:
        """The sync client for ``origin`` (see ``origin_of``), shared by all threads."""
        return self.sync_sender(origin).client

    def sync_sender(self, origin: str) -> SyncSender:
        """How the providers' sync calls reach ``origin``: its client, and the client's transport."""
        sender = self._sync.get(origin)  # lock-free hit: a dict read is atomic
        if sender is None:
            with self._lock:
                sender = self._sync.get(origin)
                if sender is None:
                    options = self._options()
                    transport = httpx.HTTPTransport(
                        verify=options["verify"], http2=self._http2, limits=self._limits
                    )
                    # Mounted, not passed as ``transport``: the client still mounts the proxies
                    # from the environment (before this catch-all), and closes it with itself.
                    client = httpx.Client(mounts={"all://": transport}, **options)
                    # With a proxy from the environment the client routes each request (NO_PROXY
                    # alone mounts no proxy).
                    sender = self._sync[origin] = SyncSender(client, None if _proxied() else transport)
        return sender

    def upstream(self, origin: str) -> Upstream:
        """The running loop's way to ``origin`` for the providers' async calls."""
        if self.async_backend == "httpx":
            return HttpxUpstream(self.async_shards(origin))
        loop = asyncio.get_running_loop()
        upstream = self._upstreams.get(loop)
        if upstream is None:
            with self._lock:
                for old in [old for old in self._upstreams if old.is_closed()]:
                    self._upstreams.pop(old).abandon()
                upstream = self._upstreams.get(loop)
                if upstream is None:
                    kind = H1Upstream if self.async_backend == "h1" else AioUpstream
                    upstream = self._upstreams[loop] = kind(self._limits, _ssl_context())
        return upstream

    def async_client(self, origin: str) -> httpx.AsyncClient:
        """An async client for ``origin`` on the running event loop (the first of its shards)."""
        return self.async_shards(origin).clients[0]

    def async_shards(self, origin: str) -> AsyncShards:
        """The running loop's clients for ``origin``; requests go through ``acquire``/``release``."""
        loop = asyncio.get_running_loop()
        by_origin = self._async.get(loop)
        shards = by_origin.get(origin) if by_origin is not None else None
        if shards is None:
            with self._lock:
                by_origin = self._async.get(loop)
                if by_origin is None:
                    by_origin = self._async[loop] = {}
                shards = by_origin.get(origin)
                if shards is None:
                    shards = by_origin[origin] = AsyncShards(self._shard_options(), self._limits)
        return shards

    def _shard_options(self) -> dict[str, object]:
        per = min(SHARD_CONNECTIONS, self._limits.max_connections or SHARD_CONNECTIONS)
        keepalive = self._limits.max_keepalive_connections
        limits = httpx.Limits(
            max_connections=per,
            max_keepalive_connections=per if keepalive is None else min(per, keepalive),
            keepalive_expiry=self._limits.keepalive_expiry,
        )
        return {"limits": limits, "http2": self._http2, "verify": _ssl_context(), "cookies": _NoCookies()}

    def _options(self) -> dict[str, Any]:
        return {
            "limits": self._limits,
            "http2": self._http2,
            "verify": _ssl_context(),
            "cookies": _NoCookies(),
        }

    def close(self) -> None:
        """Close every sync client; forget async clients of closed loops (they cannot be closed)."""
        with self._lock:
            clients, self._sync = [s.client for s in self._sync.values()], {}
            for loop in [loop for loop in list(self._async.keys()) if loop.is_closed()]:
                self._async.pop(loop, None)
            for loop in [loop for loop in self._upstreams if loop.is_closed()]:
                self._upstreams.pop(loop).abandon()
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async clients."""
        loop = asyncio.get_running_loop()
        with self._lock:
            by_origin = self._async.pop(loop, None) or {}
            upstream = self._upstreams.pop(loop, None)
        if upstream is not None:
            await upstream.aclose()
        for shards in by_origin.values():
            for client in shards.clients:
                await client.aclose()

    def __enter__(self) -> HTTPClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> HTTPClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self.close()

    def __repr__(self) -> str:
        loops = len(self._async) + len(self._upstreams)
        return f"HTTPClients(sync={sorted(self._sync)}, loops={loops}, async_backend={self.async_backend!r})"


class AsyncShards:
    """One loop's async clients for one origin, each with at most ``SHARD_CONNECTIONS``.

    httpcore's pool scans every connection against every waiting request each time a request
    starts or ends: one pool of hundreds of connections stalls an event loop for hundreds of
    milliseconds. Many tiny pools keep each scan trivial. A request takes the lowest-numbered
    shard with room (so light traffic reuses the first shard's connections), found in a heap in
    O(log n); a new shard opens only when every shard is full. Used from its own loop only, so
    it needs no lock.
    """

    __slots__ = ("busy", "clients", "max_shards", "options", "room")

    def __init__(self, options: dict[str, object], limits: httpx.Limits) -> None:
        self.options = options
        total = limits.max_connections or SHARD_CONNECTIONS * 256
        self.max_shards = max(1, -(-total // SHARD_CONNECTIONS))
        self.clients: list[httpx.AsyncClient] = [httpx.AsyncClient(**options)]  # type: ignore[arg-type]
        self.busy: list[int] = [0]
        self.room: list[int] = [0]  # heap of the shards with a free connection

    def acquire(self) -> int:
        """The index of the client to send through; give it back with ``release``."""
        room, busy = self.room, self.busy
        if room:
            index = room[0]
        elif len(self.clients) < self.max_shards:
            index = len(self.clients)
            self.clients.append(httpx.AsyncClient(**self.options))  # type: ignore[arg-type]
            busy.append(0)
            heapq.heappush(room, index)
        else:  # every connection of every shard is busy: queue on the least busy shard
            index = min(range(len(busy)), key=busy.__getitem__)
        busy[index] += 1
        if busy[index] == SHARD_CONNECTIONS and room and room[0] == index:
            heapq.heappop(room)
        return index

    def release(self, index: int) -> None:
        busy = self.busy
        busy[index] -= 1
        if busy[index] == SHARD_CONNECTIONS - 1:
            heapq.heappush(self.room, index)


_default: HTTPClients | None = None
_default_lock = threading.Lock()


def default_clients() -> HTTPClients:
    """The process-wide clients ``make_provider`` uses when given none; closed at exit."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                import atexit

                _default = HTTPClients()
                atexit.register(_default.close)
    return _default
