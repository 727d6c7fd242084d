"""The shared-state primitives against a real redis-server: limits, leases, parking, outages."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis
from waiting import wait_until

from actors.config.state import StateConfig
from actors.fake.redis_server import RedisServer
from actors.state.store import RedisStore, StoreUnavailable


@pytest.fixture
def stores(redis_server: RedisServer):
    """Make stores (one per simulated process) on the test's redis-server; closed at the end."""
    made: list[RedisStore] = []

    def make(timeout: float = 0.5, **options: Any) -> RedisStore:
        """``timeout``: the call bound, generous so a busy test machine is not taken for an outage."""
        events = options.pop("events", None)
        config = StateConfig(backend="redis", url=redis_server.url, **options)
        store = RedisStore(config, timeout=timeout, on_event=None if events is None else events.append)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def test_concurrency_is_one_budget_for_every_process(stores):
    a, b = stores(), stores()
    owners_a = (a.owner("t:g.e1", concurrency=2),)
    owners_b = (b.owner("t:g.e1", concurrency=2),)
    assert a.admit(owners_a, "l1").code == 1
    assert b.admit(owners_b, "l2").code == 1
    full = b.admit(owners_b, "l3")
    assert (full.code, full.detail) == (0, "concurrency")
    assert 0 < full.wait <= 30  # at the latest when the oldest lease expires
    a.release(owners_a, "l1")
    assert b.admit(owners_b, "l3").code == 1


def test_rpm_is_exact_across_processes(stores):
    a, b = stores(), stores()
    admitted = 0
    for i in range(10):
        store = a if i % 2 else b
        if store.admit((store.owner("i:m", rpm=5, health=True),), f"l{i}").code == 1:
            admitted += 1
    assert admitted == 5
    refused = a.admit((a.owner("i:m", rpm=5, health=True),), "late")
    assert (refused.code, refused.detail) == (0, "rpm")
    assert 59 < refused.wait <= 60  # the oldest admission leaves the window then


def test_limits_are_taken_together_or_not_at_all(stores):
    store = stores()
    tier_full = (
        store.owner("i:m", concurrency=5, rpm=100, health=True),
        store.owner("t:g.e1", concurrency=1),
    )
    assert store.admit(tier_full, "l1").code == 1
    refused = store.admit(tier_full, "l2")
    assert (refused.code, refused.owner) == (0, 1)
    client = redis.Redis.from_url(store.config.url)
    instance_cc, instance_rpm = tier_full[0].admit_keys[:2]
    assert client.zcard(instance_cc) == 1  # the refused lease debited nothing on the instance
    assert client.zcard(instance_rpm) == 1
    client.close()


def test_tpm_debits_an_estimate_and_settles_with_real_usage(stores):
    store = stores()
    owners = (store.owner("i:m", tpm=1000),)
    assert store.admit(owners, "l1", estimate=800).code == 1
    refused = store.admit(owners, "l2", estimate=300)
    assert (refused.code, refused.detail) == (0, "tpm")
    store.release(owners, "l1", tokens=100)  # the call used far less than estimated
    assert store.admit(owners, "l2", estimate=300).code == 1
    store.release(owners, "l2", tokens=950)  # and this one far more: the excess counts
    assert store.admit(owners, "l3", estimate=1).code == 0


def test_a_dead_holders_lease_expires_and_a_live_one_is_renewed(stores):
    dead, live = stores(lease_ttl=1), stores(lease_ttl=1)
    owners = (dead.owner("t:g.e1", concurrency=2),)
    assert dead.admit(owners, "dead").code == 1
    assert live.admit(owners, "live").code == 1
    client = redis.Redis.from_url(live.config.url)
    cc = owners[0].release_keys[0]
    first = client.zscore(cc, "live")
    live.start()  # the watcher renews "live" every lease_ttl / 3; "dead" is never renewed
    wait_until(lambda: live.admit(owners, "next").code == 1, what="the dead holder's slot to return")
    assert client.zscore(cc, "dead") is None
    wait_until(lambda: client.zscore(cc, "live") > first + 1000, what="a renewal past the first expiry")
    assert live.admit(owners, "more").code == 0  # "live" and "next" still hold both slots
    client.close()


def test_parking_reaches_every_process_and_the_later_deadline_wins(stores):
    seen: list[dict] = []
    a, b = stores(), stores(events=seen)
    b.start()
    wait_until(lambda: b._watcher is not None)
    instance = a.owner("i:m", health=True)
    # b's subscription may not be live yet: keep parking (a no-op past the first) until it hears.
    wait_until(lambda: a.park(instance, 30, "429 from provider") and seen, what="the park event")
    assert seen[0]["k"] == "park" and seen[0]["i"] == "i:m" and 29 < seen[0]["s"] <= 30
    assert a.park(instance, 5, "shorter") > 29  # an earlier deadline does not shorten the park
    refused = b.admit((b.owner("i:m", health=True),), "l1")
    assert (refused.code, refused.detail) == (3, "429 from provider")
    a.enable(instance)
    assert b.admit((b.owner("i:m", health=True),), "l1").code == 1


def test_a_disable_is_shared_until_enabled(stores):
    a, b = stores(), stores()
    a.disable(a.owner("i:m", health=True), "401 invalid key")
    refused = b.admit((b.owner("i:m", health=True),), "l1")
    assert (refused.code, refused.detail) == (2, "401 invalid key")


def test_one_process_holds_the_probe_lease(stores):
    a, b = stores(), stores()
    assert a.try_probe(a.owner("i:m"), 5)
    assert not b.try_probe(b.owner("i:m"), 5)
    b.end_probe(b.owner("i:m"))  # not b's: no effect
    assert not b.try_probe(b.owner("i:m"), 5)
    a.end_probe(a.owner("i:m"))
    assert b.try_probe(b.owner("i:m"), 5)


def test_one_process_holds_the_health_check_lease_until_it_stops_probing(stores):
    a, b = stores(), stores()
    owner = a.owner("i:m")
    assert a.take_check(owner, 0.2)
    assert not b.take_check(b.owner("i:m"), 5)  # a's turn
    assert a.take_check(owner, 0.2)  # the holder keeps it, probe after probe
    assert not b.take_check(b.owner("i:m"), 5)
    # a stops probing (healthy in its view, or dead): b takes over once the lease lapses.
    wait_until(lambda: b.take_check(b.owner("i:m"), 5), what="the lease to lapse")
    assert not a.take_check(owner, 0.2)


def test_a_release_nudges_waiting_processes(stores):
    seen: list[dict] = []
    a, b = stores(), stores(events=seen)
    b.start()
    owners = (a.owner("t:g.e1", concurrency=1),)
    assert a.admit(owners, "l1").code == 1
    a.publish({"k": "hello"})
    wait_until(lambda: a.publish({"k": "hello"}) or seen, what="the subscription")
    a.release(owners, "l1")
    wait_until(lambda: any(e["k"] == "free" and e["o"] == "t:g.e1" for e in seen), what="the free nudge")


def test_an_unreachable_store_fails_fast_and_recovery_is_automatic(stores, redis_server):
    store = stores()
    store.start()
    owners = (store.owner("i:m", rpm=100, health=True),)
    assert store.admit(owners, "l1").code == 1
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        store.admit(owners, "l2")
    assert store.degraded and store.status()["degraded"]
    with pytest.raises(StoreUnavailable):  # known to be away: no I/O at all
        store.admit(owners, "l3")
    redis_server.start()  # back, and empty: every key and script is gone
    wait_until(lambda: not store.degraded, what="recovery")
    assert store.admit(owners, "l4").code == 1  # the script is loaded again transparently


def test_a_slow_store_is_cut_off_at_the_call_bound(stores, redis_server):
    store = stores(timeout=0.05)
    owners = (store.owner("i:m", rpm=100),)
    assert store.admit(owners, "l1").code == 1
    pauser = redis.Redis.from_url(redis_server.url)
    pauser.execute_command("CLIENT", "PAUSE", 2000, "ALL")
    try:
        with pytest.raises(StoreUnavailable, match="Timeout"):
            store.admit(owners, "l2")
    finally:
        pauser.execute_command("CLIENT", "UNPAUSE")
        pauser.close()
    assert store.ping()
    assert not store.degraded


def test_async_admission_and_release(stores):
    store = stores()
    owners = (store.owner("t:g.e1", concurrency=1),)

    async def main() -> tuple[int, int, int]:
        first = await store.aadmit(owners, "l1")
        second = await store.aadmit(owners, "l2")
        await store.arelease(owners, "l1")
        third = await store.aadmit(owners, "l2")
        return first.code, second.code, third.code

    assert asyncio.run(main()) == (1, 0, 1)


def test_concurrent_admissions_never_exceed_the_limit(stores):
    store = stores()
    owners = (store.owner("t:g.e1", concurrency=3),)
    held: list[str] = []
    lock = threading.Lock()

    def grab(i: int) -> None:
        if store.admit(owners, f"l{i}").code == 1:
            with lock:
                held.append(f"l{i}")

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 3


def test_a_restart_between_calls_costs_no_outage(stores, redis_server):
    store = stores()
    owners = (store.owner("i:m", rpm=100, health=True),)
    assert store.admit(owners, "l1").code == 1
    redis_server.restart()  # every connection this process had is now closed by the server
    assert store.admit(owners, "l2").code == 1
    assert not store.degraded


def reads(client: redis.Redis) -> int:
    """Reads redis-server has processed: one per round trip (pipelined commands come in one)."""
    return int(client.info("stats")["total_reads_processed"])


def test_a_queued_release_rides_with_the_next_admission(stores, redis_server):
    store = stores()
    owners = (store.owner("i:m", concurrency=1, health=True), store.owner("t:g.e1", concurrency=1))
    assert store.admit(owners, "l1").code == 1
    store.release_later(owners, "l1")
    client = redis.Redis.from_url(redis_server.url)
    before = reads(client)
    assert store.admit(owners, "l2").code == 1  # l1's slots were given back in the same round trip
    assert reads(client) - before == 2  # that round trip, and the INFO that counted it
    store.release_later(owners, "l2")
    store.flush()  # no admission came: sent on its own
    assert client.zcard(owners[0].release_keys[0]) == 0 and client.zcard(owners[1].release_keys[0]) == 0
    client.close()


def test_queued_releases_cut_off_by_an_outage_are_given_back_on_recovery(stores, redis_server):
    store = stores()
    owners = (store.owner("t:g.e1", concurrency=1),)
    assert store.admit(owners, "l1").code == 1
    store.release_later(owners, "l1")
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        store.admit(owners, "l2")  # took l1's release along, and failed
    redis_server.start()  # empty: give it l1's lease again, as if it had survived
    client = redis.Redis.from_url(redis_server.url)
    client.zadd(owners[0].release_keys[0], {"l1": 2**40})
    store.start()  # the watcher sees the store back and gives back what the outage cut off
    wait_until(lambda: client.zcard(owners[0].release_keys[0]) == 0, what="l1 given back")
    client.close()


def test_a_release_cut_off_by_an_outage_settles_its_tokens_on_recovery(stores, redis_server):
    # The real usage of a call that ended while the store was away still counts against the
    # minute's tokens once it is back, on an owner with no concurrency limit too.
    store = stores()
    owner = store.owner("i:m", tpm=1000)
    assert store.admit((owner,), "l1", estimate=100).code == 1
    redis_server.kill()
    with pytest.raises(StoreUnavailable):
        store.release((owner,), "l1", tokens=700)  # the call used far more than estimated
    redis_server.start()  # empty: what it hears of the minute's tokens now is the release
    store.start()  # the watcher sees the store back and sends the release again
    tpmv = owner.release_keys[3]
    with redis.Redis.from_url(redis_server.url) as client:
        wait_until(lambda: client.hget(tpmv, "_sum") == b"700", what="l1's 700 tokens settled")
    assert store.admit((owner,), "l2", estimate=400).code == 0  # 700 + 400 is over the minute's 1000


def test_batches_are_packed_without_hiredis_too(stores, monkeypatch):
    from actors.state import calls

    monkeypatch.setattr(calls, "_pack", None)  # redis-py's own packer, as without the C parser
    store = stores()
    owners = (store.owner("i:m", concurrency=1, health=True), store.owner("t:g.e1", concurrency=1))
    assert store.admit(owners, "l1").code == 1
    assert (store.admit(owners, "l2").code, store.admit(owners, "l2").owner) == (0, 0)
    store.release(owners, "l1")
    assert store.admit(owners, "l2").code == 1


def test_a_queued_release_rides_with_an_async_admission_too(stores):
    store = stores()
    owners = (store.owner("t:g.e1", concurrency=1),)

    async def main() -> tuple[int, int]:
        first = await store.aadmit(owners, "l1")
        store.release_later(owners, "l1")
        second = await store.aadmit(owners, "l2")  # l1's slot came back in the same round trip
        return first.code, second.code

    assert asyncio.run(main()) == (1, 1)


def test_renew_counts_every_lease_still_held(stores):
    store = stores()
    owners = (store.owner("i:m", concurrency=3), store.owner("t:g.e1", concurrency=3))
    for i in range(20):  # often in the millisecond of the admission, where ZADD CH saw no change
        assert store.admit(owners, f"l{i}").code == 1
        assert store.renew() == 2
        store.release(owners, f"l{i}")
    assert store.renew() == 0  # released: nothing left to renew


def test_a_user_the_acl_denies_info_still_shares_state(redis_server):
    # ``INFO`` is in ACL's @dangerous category, which least-privilege users often lack; the
    # store asks it only to learn whether it talks to a cluster, and must not stay away for it.
    with redis_server.user("limited", "s3cret", "+@all", "-@dangerous") as url:
        with redis.Redis.from_url(url) as limited, pytest.raises(redis.exceptions.NoPermissionError):
            limited.info("cluster")
        store = RedisStore(StateConfig(backend="redis", url=url), timeout=0.5).start()
        try:
            assert not store.degraded and store.cluster is False
            owners = (store.owner("t:g.e1", concurrency=1),)
            assert store.admit(owners, "l1").code == 1
            assert store.status()["degraded_reason"] is None
        finally:
            store.close()


def test_an_admission_that_runs_twice_takes_its_permits_once(stores, redis_server):
    # A batch is sent again when a reused connection breaks (``calls.Link``), and a cluster
    # client retries on a broken connection: if the server had run it before the break, the
    # second run must find the lease admitted, not refuse it (and leak the first) or count twice.
    store = stores()
    owner = store.owner("i:m", concurrency=1, rpm=1, tpm=1000, health=True)
    assert store.admit((owner,), "l1", estimate=300).code == 1
    assert store.admit((owner,), "l1", estimate=300).code == 1
    tpmv = owner.release_keys[3]
    with redis.Redis.from_url(redis_server.url) as client:
        assert int(client.hget(tpmv, "_sum")) == 300
    store.release((owner,), "l1", tokens=200)
    with redis.Redis.from_url(redis_server.url) as client:
        assert int(client.hget(tpmv, "_sum")) == 200
    assert store.admit((owner,), "l2").code == 0  # the rpm of one is spent, once
