"""The store on a Redis Cluster: every script call touches one hash slot.

A one-node cluster owns all 16384 slots, so a plain client may talk to it, yet it refuses any
command whose keys span two slots (CROSSSLOT) as a real cluster does: an admission that sent an
instance's and its tier's keys in one script would fail here. A three-node cluster puts an
instance and its tier on different nodes, which only a cluster client reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from waiting import wait_until

from actors.config.state import StateConfig
from actors.fake.redis_server import RedisCluster, RedisServer, redis_server_binary
from actors.state.store import RedisStore


@pytest.fixture(scope="module")
def cluster_node() -> Iterator[RedisServer]:
    """A private redis-server with ``--cluster-enabled yes`` owning every slot; stopped by PID."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer(cluster=True) as server:
        yield server


@pytest.fixture(scope="module")
def three_nodes() -> Iterator[RedisCluster]:
    """Three private cluster nodes sharing the slots, stopped by PID."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisCluster(3) as cluster:
        yield cluster


@pytest.fixture
def stores(cluster_node: RedisServer) -> Iterator[Any]:
    """Make stores on the one-node cluster; ``start=True`` starts the watcher, which detects the
    cluster and moves to ``RedisCluster`` clients."""
    with redis.Redis.from_url(cluster_node.url) as client:
        client.flushall()
    yield from _stores(cluster_node.url)


def _stores(url: str) -> Iterator[Any]:
    made: list[RedisStore] = []

    def make(*, start: bool = False, events: list | None = None, **options: Any) -> RedisStore:
        config = StateConfig(backend="redis", url=url, **options)
        store = RedisStore(config, timeout=0.5, on_event=None if events is None else events.append)
        made.append(store.start() if start else store)
        return store

    yield make
    for store in made:
        store.close()


def test_the_node_refuses_keys_of_two_slots_in_one_command(cluster_node):
    client = redis.Redis.from_url(cluster_node.url)
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):
        client.eval("return 1", 2, "{i:a}:cc", "{t:g.e1}:cc")
    client.close()


def owners(store: RedisStore, tier: str = "t:g.e1") -> tuple[Any, Any]:
    """An instance and its tier: two owners, two hash slots."""
    return (
        store.owner("i:a", concurrency=2, rpm=100, tpm=1000, health=True),
        store.owner(tier, concurrency=1, rpm=100),
    )


def exercise(a: RedisStore, b: RedisStore, tier: str = "t:g.e1") -> None:
    """Every call the shared state makes, across two owners of two slots, from two processes."""
    pair = owners(a, tier)
    assert a.admit(pair, "l1", estimate=100).code == 1
    refused = b.admit(owners(b, tier), "l2", estimate=100)
    assert (refused.code, refused.owner, refused.detail) == (0, 1, "concurrency")
    assert a.renew() == 2  # l1's lease on the instance and on the tier
    a.release(pair, "l1", tokens=50)
    assert b.admit(owners(b, tier), "l2", estimate=100).code == 1
    b.release(owners(b, tier), "l2", tokens=50)
    assert a.park(pair[0], 30, "429") > 29
    parked = b.admit(owners(b, tier), "l3")
    assert (parked.code, parked.detail) == (3, "429")
    a.enable(pair[0])
    a.disable(pair[0], "401")
    assert b.admit(owners(b, tier), "l3").code == 2
    b.enable(pair[0])
    assert a.try_probe(pair[0], 5) and not b.try_probe(pair[0], 5)
    a.end_probe(pair[0])
    assert b.try_probe(pair[0], 5)
    assert a.take_check(pair[0], 5) and not b.take_check(pair[0], 5) and a.take_check(pair[0], 5)

    async def main() -> tuple[int, int]:
        first = await a.aadmit(pair, "l4")
        second = await b.aadmit(owners(b, tier), "l5")
        await a.arelease(pair, "l4")
        return first.code, second.code

    assert asyncio.run(main()) == (1, 0)


def test_every_call_on_a_cluster_node_through_a_plain_client(stores):
    a, b = stores(), stores()
    exercise(a, b)
    assert a.cluster is None and isinstance(a._client, redis.Redis)


def test_every_call_through_a_cluster_client(stores):
    a, b = stores(start=True), stores(start=True)
    assert a.cluster and isinstance(a._client, redis.RedisCluster)
    exercise(a, b)
    assert not a.degraded and not b.degraded


def test_a_refusal_by_one_owner_undoes_what_the_other_took(stores, cluster_node):
    store = stores()
    instance = store.owner("i:a", concurrency=5, rpm=100, tpm=10_000, health=True)
    tier = store.owner("t:g.e1", concurrency=1)
    assert store.admit((instance, tier), "l1", estimate=300).code == 1
    refused = store.admit((instance, tier), "l2", estimate=300)
    assert (refused.code, refused.owner) == (0, 1)
    client = redis.Redis.from_url(cluster_node.url)
    cc, rpm, tpm, tpmv = instance.release_keys
    assert client.zrange(cc, 0, -1) == [b"l1"]  # l2 was admitted by the instance, then undone
    assert client.zrange(rpm, 0, -1) == [b"l1"]
    assert client.zrange(tpm, 0, -1) == [b"l1"]
    assert client.hget(tpmv, "_sum") == b"300" and client.hget(tpmv, "l2") is None
    client.close()


def test_events_reach_another_process_through_the_cluster(stores):
    seen: list[dict] = []
    a = stores(start=True)
    stores(start=True, events=seen)
    instance = a.owner("i:a", health=True)
    wait_until(lambda: a.park(instance, 30, "429") and seen, what="the park event")
    assert seen[0]["k"] == "park" and seen[0]["i"] == "i:a"


def test_scripts_the_node_lost_are_loaded_again(stores, cluster_node):
    store = stores(start=True)
    pair = owners(store)
    assert store.admit(pair, "l1").code == 1
    with redis.Redis.from_url(cluster_node.url) as client:
        client.script_flush()
    assert store.admit(pair, "l2").code == 0  # the tier is full: both scripts ran again
    store.release(pair, "l1")
    assert store.admit(pair, "l2").code == 1


@pytest.fixture
def spread_stores(three_nodes: RedisCluster) -> Iterator[Any]:
    """Make stores on the three-node cluster."""
    yield from _stores(three_nodes.url)


def test_an_instance_and_its_tier_on_two_nodes(spread_stores):
    a, b = spread_stores(start=True), spread_stores(start=True)
    assert a.cluster and len(a._client.get_nodes()) == 3
    node = a._client.get_node_from_key
    instance = a.owner("i:a").admit_keys[0]
    tier = next(f"t:g.e{i}" for i in range(100) if node(a.owner(f"t:g.e{i}").admit_keys[0]) != node(instance))
    exercise(a, b, tier)  # each admission is one pipeline to two nodes
    assert not a.degraded and not b.degraded


def test_a_cluster_is_found_when_the_acl_denies_info(cluster_node):
    cluster_node.command("FLUSHALL")
    with cluster_node.user("limited", "s3cret", "+@all", "-@dangerous") as url:
        for make in _stores(url):
            a, b = make(start=True), make(start=True)
            assert a.cluster and isinstance(a._client, redis.RedisCluster)
            exercise(a, b)
            assert not a.degraded and not b.degraded
