"""The Redis (or Valkey) store under the shared state: bounded calls, outage tracking, events.

Every call is bounded (``timeout``, 50 ms by default: socket timeouts, no retries, except once
on a new connection when the server had closed an idle one). The first one that fails marks the
store *degraded*: it is logged once, shown by ``status()``, and every further call fails at once
without I/O, so an unreachable store costs a request nothing. The watcher thread pings it
meanwhile and clears the mark when it answers again; a restarted server gets the scripts again
as each connection opens (``actors.state.calls``).

A release need not cost a round trip of its own: ``release_later`` queues it, the next
admission from any thread sends it ahead of its own calls, and ``flush`` sends what no admission
took.

Every script call touches one owner's keys, in one hash slot (``actors.state.calls``). When the
first PING answers, ``INFO cluster`` says whether the server is a Redis Cluster node; if it is,
the store moves to ``RedisCluster`` clients, which send each call to its slot's node.

The watcher also listens on the deployment's event channel (breaker events, parking, disables,
``free`` nudges) and hands each event from another process to ``on_event``, and renews the
concurrency leases this process holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from actors.config.state import StateConfig
from actors.state import scripts
from actors.state.calls import BODIES, AsyncLink, Call, Link, aon_connect, on_connect
from actors.state.owners import Admission, Owner, decided

__all__ = ["Admission", "Owner", "RedisStore", "StoreUnavailable"]

_log = logging.getLogger("actors.state")

#: Seconds any one store call may take before the process degrades (``LLM_ACTORS_STATE_TIMEOUT``).
CALL_TIMEOUT = 0.05
TIMEOUT_ENV = "LLM_ACTORS_STATE_TIMEOUT"


def call_timeout() -> float:
    """The store call bound: ``$LLM_ACTORS_STATE_TIMEOUT`` seconds if set and sane, else 50 ms."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return CALL_TIMEOUT
    return value if 0.001 <= value <= 10 else CALL_TIMEOUT


#: Seconds between pings of a store that is away.
RECOVERY_INTERVAL = 0.5

_FAILURES = (redis.RedisError, OSError, TimeoutError, asyncio.TimeoutError)
_TIMEOUTS = (redis.TimeoutError, TimeoutError, asyncio.TimeoutError)
#: Consecutive calls past the bound that degrade the process without waiting for the watcher.
TIMEOUTS_TO_DEGRADE = 3


class StoreUnavailable(Exception):
    """The store did not answer in time (or is known to be away): degrade as ``on_outage`` says."""


class RedisStore:
    """One deployment's keys on one Redis or Valkey server, for one process."""

    def __init__(
        self,
        config: StateConfig,
        *,
        timeout: float | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_change: Callable[[bool], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.timeout = call_timeout() if timeout is None else timeout
        self.base = f"{config.key_prefix}:{scripts.VERSION}"
        self.channel = f"{self.base}:events"
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Lease ids: a random prefix per store and a counter. uuid4 per lease reads os.urandom,
        # a syscall that hands the GIL to the other threads in the middle of an admission.
        self._lease_prefix = uuid.uuid4().hex[:12]
        self._lease_count = itertools.count()  # its next() is atomic under the GIL; a generator's is not
        self.lease_ttl_ms = int(config.lease_ttl * 1000)
        self.on_event = on_event
        self.on_tick = on_tick  # called by the watcher at least every 0.1 s while the store answers
        self.on_change = on_change  # called with True when degrading, False when back
        self.degraded_since: float | None = None
        self.degraded_reason = ""
        self.outages = 0
        self.late_calls = 0  # calls cut off by the bound, degrading or not
        # None until the server has said whether it is a cluster node (``INFO cluster`` on the
        # first PING that answers); a plain client serves until then.
        self.cluster: bool | None = None
        self._client, self._checker, self._subscriber = self._connect(False)
        self._link = Link(self._client)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLink] = (
            weakref.WeakKeyDictionary()
        )
        self._held: dict[str, tuple[Owner, ...]] = {}  # concurrency leases to renew, by id
        self._held_lock = threading.Lock()
        # Admissions whose answer never came: the script may have taken permits; given back on recovery.
        self._orphans: list[list[Call]] = []  # release calls to send again, tokens and all
        # Releases waiting to ride with the next admission (``release_later``).
        self._later: list[tuple[tuple[Owner, ...], str, list[Call]]] = []
        self._stop = threading.Event()
        self._suspect = threading.Event()  # a call timed out: the watcher checks the store now
        self._timeouts = 0  # consecutive calls past the bound
        self._watcher: threading.Thread | None = None

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": Retry(NoBackoff(), 0),  # a retry would multiply the bound; degrade instead
            "health_check_interval": 0,
        }

    def _connect(self, cluster: bool) -> tuple[Any, Any, Any]:
        """The request client, the checker (PINGs, bounded more loosely) and the subscriber."""
        make = redis.RedisCluster.from_url if cluster else redis.Redis.from_url
        checker_timeout = max(0.2, 4 * self.timeout)
        loose = {"socket_timeout": checker_timeout, "socket_connect_timeout": checker_timeout}
        # A standalone server's request connections load every script as they connect; a
        # cluster's get them on first use (NOSCRIPT), for RedisCluster sets its own connect hook.
        loads = {} if cluster else {"redis_connect_func": on_connect}
        return (
            make(self.config.url, **self._options(), **loads),
            make(self.config.url, **{**self._options(), **loose}),
            # It mostly waits for messages: a longer read timeout.
            make(self.config.url, **{**self._options(), "socket_timeout": 1.0}),
        )

    def _detect(self) -> None:
        """Move to ``RedisCluster`` clients if the server is a cluster node (they route each
        call to its slot's node); a plain client suffices for a standalone server."""
        try:
            info = self._checker.info("cluster")
            cluster = int(info.get("cluster_enabled", 0)) == 1
        except redis.ResponseError:
            # INFO is in ACL's @dangerous category, often denied to a least-privilege user: ask
            # CLUSTER INFO, which a standalone server refuses ("cluster support disabled").
            try:
                self._checker.execute_command("CLUSTER INFO")
                cluster = True
            except redis.ResponseError:
                cluster = False
        if cluster != bool(self.cluster):
            old = (self._link, self._checker, self._subscriber)
            self._client, self._checker, self._subscriber = self._connect(cluster)
            self._link = Link(self._client)
            self._async.clear()
            for client in old:
                client.close()
            if cluster:  # every primary, before the first batch (a NOSCRIPT would reorder it)
                for body in BODIES.values():
                    self._client.script_load(body)
        self.cluster = cluster

    def lease_id(self) -> str:
        """A new lease id, unique across processes (a random prefix of 48 bits per store)."""
        return f"{self._lease_prefix}.{next(self._lease_count):x}"

    def owner(
        self,
        label: str,
        concurrency: int | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        health: bool = False,
    ) -> Owner:
        return Owner(self.base, label, concurrency, rpm, tpm, health=health)

    # -- outage tracking ------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        return self.degraded_since is not None

    def _check(self) -> None:
        if self.degraded_since is not None:
            raise StoreUnavailable(self.degraded_reason)

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, _TIMEOUTS) and self.degraded_since is None:
            # A call past its bound fails alone: a busy event loop or a starved CPU delays an
            # answer as much as a slow store does. The watcher asks the store directly, and a
            # few timeouts in a row degrade the process anyway.
            self._timeouts += 1
            self.late_calls += 1
            if self._timeouts < TIMEOUTS_TO_DEGRADE:
                self._suspect.set()
                return StoreUnavailable(reason)
        if self.degraded_since is None:
            self.degraded_since = time.monotonic()
            self.degraded_reason = reason
            self.outages += 1
            # A script error is a bug, not an outage: say so loudly rather than degrade quietly.
            level = logging.ERROR if isinstance(exc, redis.ResponseError) else logging.WARNING
            _log.log(
                level,
                "shared state store unavailable (%s); on_outage=%s until it answers again",
                reason,
                self.config.on_outage,
                extra={"store": self.config.display_url},
            )
            if self.on_change is not None:
                self.on_change(True)
        return StoreUnavailable(reason)

    def _recovered(self) -> None:
        since = self.degraded_since
        if since is None:
            return
        self.degraded_since = None
        self.degraded_reason = ""
        _log.warning(
            "shared state store back after %.3g s; limits are shared again", time.monotonic() - since
        )
        if self.on_change is not None:
            self.on_change(False)

    def status(self) -> dict[str, Any]:
        """For health and stats; the URL has its password masked."""
        return {
            "backend": "redis",
            "url": self.config.display_url,
            "key_prefix": self.config.key_prefix,
            "degraded": self.degraded,
            "degraded_reason": self.degraded_reason or None,
            "degraded_seconds": None
            if self.degraded_since is None
            else round(time.monotonic() - self.degraded_since, 3),
            "on_outage": self.config.on_outage,
            "replicas": self.config.replicas,
            "outages": self.outages,
            "late_calls": self.late_calls,
        }

    def ping(self) -> bool:
        """One PING, bounded more loosely than a request's call (it asks whether the store is
        there, not whether it is fast); clears the degraded mark when it answers."""
        try:
            self._checker.ping()
            if self.cluster is None:
                self._detect()
        except _FAILURES:
            return False
        self._timeouts = 0
        self._recovered()
        return True

    # -- the sync calls -------------------------------------------------------------------------

    def _calls(self, batch: list[Call]) -> list[Any]:
        self._check()
        try:
            replies = self._link.run(batch)
        except _FAILURES as exc:
            raise self._failed(exc) from exc
        if self._timeouts:
            self._timeouts = 0
        return replies

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._calls([Call(name, keys, args)])[0]

    def admit(self, owners: tuple[Owner, ...], lease_id: str, estimate: int = 0) -> Admission:
        """Take a permit of every owner for ``lease_id`` together, or none: one round trip (which
        also carries the releases queued by ``release_later``), and a second to take back what
        some owners gave when another refused."""
        self._check()  # known to be away: nothing was sent, nothing to give back later
        riders, batch = self._riders()
        try:
            replies = self._calls(batch + self._admit_calls(owners, lease_id, estimate))
            result, undo = decided(replies[len(batch) :])
            if undo:
                self._calls(self._release_calls([owners[i] for i in undo], lease_id, None, undo=True))
        except StoreUnavailable:
            self._orphan(owners, lease_id)
            self._orphan_all(riders)
            raise
        except BaseException:  # cancelled: the riders may not have gone; the watcher sends them again
            self._orphan_all(riders)
            raise
        return self._admitted(owners, lease_id, result)

    def release_later(self, owners: tuple[Owner, ...], lease_id: str, tokens: int | None = None) -> None:
        """``release``, sent with the next admission's round trip, or by ``flush`` if none comes:
        one round trip per request instead of two, and no second call racing the next admission."""
        batch = self._release_calls(owners, lease_id, tokens)
        with self._held_lock:
            self._held.pop(lease_id, None)
            if batch:
                self._later.append((owners, lease_id, batch))

    def flush(self) -> None:
        """Send the releases ``release_later`` queued that no admission has taken yet."""
        riders, batch = self._riders()
        if batch:
            try:
                self._calls(batch)
            except StoreUnavailable:
                self._orphan_all(riders)
                raise

    def _riders(self) -> tuple[list[tuple[tuple[Owner, ...], str, list[Call]]], list[Call]]:
        if not self._later:  # read without the lock: a release queued just now rides the next one
            return [], []
        with self._held_lock:
            riders, self._later = self._later, []
        return riders, [call for _, _, calls in riders for call in calls]

    def _orphan_all(self, riders: list[tuple[tuple[Owner, ...], str, list[Call]]]) -> None:
        for owners, lease_id, calls in riders:
            self._orphan(owners, lease_id, calls)

    def release(self, owners: tuple[Owner, ...], lease_id: str, tokens: int | None = None) -> None:
        """Give back ``lease_id``'s concurrency permits and settle its tokens with the real usage.

        One that fails is sent again, tokens and all, when the store answers."""
        with self._held_lock:
            self._held.pop(lease_id, None)
        batch = self._release_calls(owners, lease_id, tokens)
        try:
            if batch:
                self._calls(batch)
        except StoreUnavailable:
            self._orphan(owners, lease_id, batch)
            raise

    def _admit_calls(self, owners: Iterable[Owner], lease_id: str, estimate: int) -> list[Call]:
        return [o.admit_call(lease_id, self.lease_ttl_ms, estimate) for o in owners]

    def _admitted(self, owners: tuple[Owner, ...], lease_id: str, result: Admission) -> Admission:
        if result.code == 1 and any(o.concurrency for o in owners):
            with self._held_lock:
                self._held[lease_id] = owners
        return result

    def _release_calls(
        self, owners: Iterable[Owner], lease_id: str, tokens: int | None, *, undo: bool = False
    ) -> list[Call]:
        calls = (o.release_call(lease_id, self.channel, tokens, undo) for o in owners)
        return [call for call in calls if call is not None]

    def _orphan(self, owners: tuple[Owner, ...], lease_id: str, calls: list[Call] | None = None) -> None:
        """Keep what a call cut off must still tell the store: a release's own ``calls`` (its
        tokens settle the owners' tpm), or for an admission whose answer never came, a release of
        the concurrency permits it may have taken."""
        if calls is None:
            if not any(o.concurrency for o in owners):
                return  # an rpm entry or a token estimate left behind errs on the safe side
            calls = self._release_calls(owners, lease_id, None)
        if calls:
            with self._held_lock:
                self._orphans.append(calls)

    def _release_orphans(self) -> None:
        """Send again what calls cut off by an outage or the call bound left unsaid (no slot leaks,
        no tokens lost)."""
        with self._held_lock:
            orphans, self._orphans = self._orphans, []
        for i, calls in enumerate(orphans):
            try:
                self._calls(calls)
            except StoreUnavailable:
                with self._held_lock:  # away again: keep the rest for the next recovery
                    self._orphans += orphans[i:]
                raise

    def renew(self) -> int:
        """Extend every concurrency lease this process holds by ``lease_ttl``; how many were."""
        with self._held_lock:
            held = list(self._held.items())
        by_key: dict[str, list[str]] = {}  # one call per owner: one slot each
        for lease_id, owners in held:
            for o in owners:
                if o.concurrency:
                    by_key.setdefault(o.release_keys[0], []).append(lease_id)
        if not by_key:
            return 0
        batch = [Call("RENEW", (key,), (self.lease_ttl_ms, *ids)) for key, ids in by_key.items()]
        return sum(int(n) for n in self._calls(batch))

    def park(self, owner: Owner, seconds: float, reason: str) -> float:
        """Park ``owner`` for every process (the later deadline wins); the seconds now in force."""
        ms = self._run("PARK", [owner.park], [max(0, int(seconds * 1000)), reason, self.channel, owner.label])
        return int(ms) / 1000.0

    def disable(self, owner: Owner, reason: str) -> None:
        self._run("DISABLE", [owner.dis], [reason, self.channel, owner.label])

    def enable(self, owner: Owner) -> None:
        """Lift a shared disable and park (a passing probe, a reload)."""
        self._run("ENABLE", [owner.dis, owner.park], [self.channel, owner.label])

    def try_probe(self, owner: Owner, seconds: float) -> bool:
        """Take the one probe lease of ``owner`` for ``seconds``; False when another process has it."""
        return bool(self._run("PROBE", [owner.probe], [self.process, max(1, int(seconds * 1000))]))

    def end_probe(self, owner: Owner) -> None:
        self._run("END_PROBE", [owner.probe], [self.process])

    def take_check(self, owner: Owner, seconds: float) -> bool:
        """Take or keep the health-check lease of ``owner`` for ``seconds``: True when this
        process is to send the periodic health probe now, False when another one is."""
        return bool(self._run("CHECK", [owner.check], [self.process, max(1, int(seconds * 1000))]))

    def publish(self, event: dict[str, Any]) -> None:
        """Tell the other processes ``event`` (a breaker opened or closed, say)."""
        self._check()
        try:
            self._client.publish(self.channel, json.dumps({**event, "p": self.process}))
        except _FAILURES as exc:
            raise self._failed(exc) from exc

    # -- the async calls (a client per event loop: redis.asyncio connections belong to one) ------

    def _alink(self) -> AsyncLink:
        loop = asyncio.get_running_loop()
        link = self._async.get(loop)
        if link is None:
            make = redis.asyncio.RedisCluster.from_url if self.cluster else redis.asyncio.Redis.from_url
            # No socket timeout: ``asyncio.timeout`` bounds each whole call, and redis-py would
            # wrap every send in ``asyncio.wait_for`` (a task per send) to enforce its own.
            loads = {} if self.cluster else {"redis_connect_func": aon_connect}
            client = make(self.config.url, **{**self._options(), "socket_timeout": None, **loads})
            link = self._async[loop] = AsyncLink(client)
        return link

    async def _acalls(self, batch: list[Call]) -> list[Any]:
        self._check()
        link = self._alink()
        try:
            async with asyncio.timeout(self.timeout):
                replies = await link.run(batch)
        except _FAILURES as exc:
            raise self._failed(exc) from exc
        if self._timeouts:
            self._timeouts = 0
        return replies

    async def _arun(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return (await self._acalls([Call(name, keys, args)]))[0]

    async def aadmit(self, owners: tuple[Owner, ...], lease_id: str, estimate: int = 0) -> Admission:
        self._check()  # known to be away: nothing was sent, nothing to give back later
        riders, batch = self._riders()
        try:
            replies = await self._acalls(batch + self._admit_calls(owners, lease_id, estimate))
            result, undo = decided(replies[len(batch) :])
            if undo:
                await self._acalls(self._release_calls([owners[i] for i in undo], lease_id, None, undo=True))
        except StoreUnavailable:
            self._orphan(owners, lease_id)
            self._orphan_all(riders)
            raise
        except BaseException:  # cancelled: what went may have taken permits; the watcher gives them back
            self._orphan(owners, lease_id)
            self._orphan_all(riders)
            raise
        return self._admitted(owners, lease_id, result)

    async def atry_probe(self, owner: Owner, seconds: float) -> bool:
        return bool(await self._arun("PROBE", [owner.probe], [self.process, max(1, int(seconds * 1000))]))

    async def apark(self, owner: Owner, seconds: float, reason: str) -> float:
        args = [max(0, int(seconds * 1000)), reason, self.channel, owner.label]
        return int(await self._arun("PARK", [owner.park], args)) / 1000.0

    async def adisable(self, owner: Owner, reason: str) -> None:
        await self._arun("DISABLE", [owner.dis], [reason, self.channel, owner.label])

    async def arelease(self, owners: tuple[Owner, ...], lease_id: str, tokens: int | None = None) -> None:
        with self._held_lock:
            self._held.pop(lease_id, None)
        batch = self._release_calls(owners, lease_id, tokens)
        try:
            if batch:
                await self._acalls(batch)
        except StoreUnavailable:
            self._orphan(owners, lease_id, batch)
            raise

    # -- the watcher thread ---------------------------------------------------------------------

    def start(self) -> RedisStore:
        """Start the watcher (events, recovery, lease renewal); the first call checks the store."""
        if self._watcher is None:
            self.ping() or self._failed(ConnectionError(f"no answer from {self.config.display_url}"))
            self._watcher = threading.Thread(target=self._watch, name="llm-actors-state-watcher", daemon=True)
            self._watcher.start()
        return self

    def _watch(self) -> None:
        renew_every = max(0.2, self.config.lease_ttl / 3)
        next_renewal = time.monotonic() + renew_every
        pubsub = None
        while not self._stop.is_set():
            try:
                if self._suspect.is_set() and not self.degraded:
                    self._suspect.clear()
                    if not self.ping():
                        self._failed(ConnectionError("no answer to a PING after a call timed out"))
                if self.degraded:
                    pubsub = _closed(pubsub)
                    if not self.ping():
                        self._stop.wait(RECOVERY_INTERVAL)
                        continue
                if self._orphans:
                    self._release_orphans()
                if pubsub is None:
                    pubsub = self._subscribe()
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if message is not None:
                    self._dispatch(message)
                if self.on_tick is not None:
                    self.on_tick()
                if time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + renew_every
                    self.renew()
            except StoreUnavailable:
                pubsub = _closed(pubsub)
            except _FAILURES as exc:
                pubsub = _closed(pubsub)
                self._failed(exc)
            except BaseException:  # never let the watcher die quietly: a dead one never recovers
                _log.exception("shared state watcher error; carrying on")
                pubsub = _closed(pubsub)
                self._stop.wait(RECOVERY_INTERVAL)
        _closed(pubsub)

    def _subscribe(self) -> Any:
        pubsub = self._subscriber.pubsub()
        pubsub.subscribe(self.channel)
        return pubsub

    def _dispatch(self, message: dict[str, Any]) -> None:
        try:
            event = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        if not isinstance(event, dict) or event.get("p") == self.process:
            return
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                _log.exception("shared state event handler failed for %r", event.get("k"))

    def close(self) -> None:
        """Stop the watcher and close the connections; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
            self._watcher = None
        for client in (self._link, self._checker, self._subscriber):
            client.close()
        for loop, link in list(self._async.items()):
            client = link.client
            if not loop.is_closed():
                try:
                    if loop.is_running():
                        asyncio.run_coroutine_threadsafe(client.aclose(), loop)
                    else:
                        loop.run_until_complete(client.aclose())
                except RuntimeError:
                    pass
        self._async.clear()


def _closed(pubsub: Any) -> Any:
    """Close ``pubsub`` if there is one; None, for the variable that held it."""
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:
            pass
    return None
