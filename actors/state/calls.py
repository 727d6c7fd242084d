"""Script calls on the store: a batch of one-slot calls in one round trip, plain server or cluster.

Each call runs one script over the keys of one owner (one hash slot). A batch of several goes
out in one write and its replies are read in order: one round trip to a standalone server. On a
Redis Cluster the batch is a non-transactional ``RedisCluster`` pipeline, which groups the calls
by node and sends to every node at once.

To a standalone server each thread keeps its own ``redis-py`` connection (asyncio: the event
loop's client's pool), and commands are packed by ``hiredis`` when it is installed: measured on
loopback, a pipeline through ``redis-py``'s pool spends about twice the client CPU of this path
(pool checkout, observability hooks, packing in Python), and the shared state pays it on every
request.

Scripts are called by SHA1 only. Every new connection to a standalone server loads them first
(``on_connect``), so a restarted server has them before the first call. Otherwise (a ``SCRIPT
FLUSH`` under a live connection, a cluster node that restarted) a server answers ``NOSCRIPT`` to
those calls alone, which are sent again once the scripts are loaded (``SCRIPT LOAD`` reaches every
primary of a cluster); the others already ran, and sending them again would run them twice. Those
resent calls then run after the rest of their batch: a release that rode with an admission frees
its slot only after the admission was judged, which may refuse; the release's ``free`` nudge wakes
the refused request.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

from actors.state import scripts

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    import hiredis

    _pack = hiredis.pack_command
except ImportError:  # the pure-Python packer of redis-py does the same, slower
    _pack = None

__all__ = ["AsyncLink", "Call", "Link", "aon_connect", "on_connect"]

BODIES = {name: getattr(scripts, name) for name in scripts.NAMES}
SHAS = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in BODIES.items()}


class Call(NamedTuple):
    """One script over one owner's keys."""

    script: str
    keys: Sequence[str]
    args: Sequence[Any]

    @property
    def command(self) -> tuple[Any, ...]:
        return ("EVALSHA", SHAS[self.script], len(self.keys), *self.keys, *self.args)


_LOADS = [("SCRIPT", "LOAD", body) for body in BODIES.values()]


def on_connect(conn: Any) -> None:
    """``redis_connect_func`` of a standalone server's connections: the usual handshake, then
    every script loaded, in one more round trip per connection."""
    conn.on_connect()
    conn.send_packed_command(conn.pack_commands(_LOADS), check_health=False)
    for _ in _LOADS:
        conn.read_response()


async def aon_connect(conn: Any) -> None:
    """``on_connect`` for an asyncio connection."""
    await conn.on_connect()
    await conn.send_packed_command(conn.pack_commands(_LOADS), check_health=False)
    for _ in _LOADS:
        await conn.read_response()


class Link:
    """Sync batches over ``client`` (a ``redis.Redis`` or a ``redis.RedisCluster``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = isinstance(client, redis.RedisCluster)
        self._local = threading.local()
        self._opened: weakref.WeakSet[Any] = weakref.WeakSet()  # every thread's, to close them
        self._opened_lock = threading.Lock()  # a thread's first call adds while close() iterates

    def run(self, batch: Sequence[Call]) -> list[Any]:
        """The replies of ``batch`` in order, in one round trip (two if the server lost scripts)."""
        replies = self._send(batch)
        missing = _missing(replies)
        if missing:
            for name in {batch[i].script for i in missing}:
                self.client.script_load(BODIES[name])
            for i, reply in zip(missing, self._send([batch[i] for i in missing]), strict=True):
                replies[i] = reply
        return _checked(replies)

    def _send(self, batch: Sequence[Call]) -> list[Any]:
        if self.cluster:
            pipe = self.client.pipeline(transaction=False)
            for call in batch:
                pipe.execute_command(*call.command)
            return list(pipe.execute(raise_on_error=False))
        conn = getattr(self._local, "conn", None)
        if conn is None:
            pool = self.client.connection_pool
            conn = self._local.conn = pool.connection_class(**pool.connection_kwargs)
            with self._opened_lock:
                self._opened.add(conn)
        reused = conn.is_connected
        try:
            return _exchange(conn, batch)
        except redis.ConnectionError:
            if not reused:
                raise
            # An idle connection the server had closed (a restart, its idle timeout): the calls
            # never reached it. Once more on a new connection (redis-py dropped the old one), as
            # the pool's check before each checkout would have done, at no cost to every call.
            # Had the server run them before the break, running them again changes nothing:
            # every script is idempotent per lease id (``scripts``).
            return _exchange(conn, batch)

    def close(self) -> None:
        with self._opened_lock:
            opened = list(self._opened)
        for conn in opened:
            conn.disconnect()
        self.client.close()


class AsyncLink:
    """``Link`` on an asyncio client (one per event loop: its connections belong to it)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = isinstance(client, redis.asyncio.RedisCluster)

    async def run(self, batch: Sequence[Call]) -> list[Any]:
        replies = await self._send(batch)
        missing = _missing(replies)
        if missing:
            for name in {batch[i].script for i in missing}:
                await self.client.script_load(BODIES[name])
            for i, reply in zip(missing, await self._send([batch[i] for i in missing]), strict=True):
                replies[i] = reply
        return _checked(replies)

    async def _send(self, batch: Sequence[Call]) -> list[Any]:
        if self.cluster:
            pipe = self.client.pipeline(transaction=False)
            for call in batch:
                pipe.execute_command(*call.command)
            return list(await pipe.execute(raise_on_error=False))
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(_packed(conn, batch), check_health=False)
            return [await _aread(conn) for _ in batch]
        finally:
            # A cancelled or failed read has disconnected it (redis-py), so no reply is left behind.
            await pool.release(conn)


def _packed(conn: Any, batch: Sequence[Call]) -> list[bytes]:
    if _pack is None:
        return list(conn.pack_commands([call.command for call in batch]))
    return [b"".join([_pack(call.command) for call in batch])]


def _exchange(conn: Any, batch: Sequence[Call]) -> list[Any]:
    # On a timeout or a broken socket redis-py disconnects it; the next call reconnects.
    conn.send_packed_command(_packed(conn, batch), check_health=False)
    return [_read(conn) for _ in batch]


def _read(conn: Any) -> Any:
    try:
        return conn.read_response()
    except ResponseError as exc:  # an error reply: the next replies are still to be read
        return exc


async def _aread(conn: Any) -> Any:
    try:
        return await conn.read_response()
    except ResponseError as exc:
        return exc


def _missing(replies: list[Any]) -> list[int]:
    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):  # a script error is a bug: the caller says so loudly
            raise reply
    return replies
