"""Async pool shards: small pools, the lowest with room first, a new one only when all are full."""

from __future__ import annotations

import asyncio

import httpx

from actors.providers.clients import SHARD_CONNECTIONS, AsyncShards, HTTPClients


def shards(max_connections: int) -> AsyncShards:
    return AsyncShards({}, httpx.Limits(max_connections=max_connections))


def test_light_traffic_stays_on_the_first_shard():
    s = shards(100)
    for _ in range(10):
        i = s.acquire()
        assert i == 0
        s.release(i)
    assert len(s.clients) == 1


def test_a_new_shard_opens_only_when_every_shard_is_full_and_freed_room_is_reused_lowest_first():
    s = shards(100)
    taken = [s.acquire() for _ in range(SHARD_CONNECTIONS * 2 + 1)]
    assert taken == [0] * SHARD_CONNECTIONS + [1] * SHARD_CONNECTIONS + [2]
    s.release(1)
    s.release(0)
    assert s.acquire() == 0 and s.acquire() == 1
    assert s.busy == [SHARD_CONNECTIONS, SHARD_CONNECTIONS, 1]


def test_past_the_connection_limit_requests_queue_on_the_least_busy_shard():
    s = shards(SHARD_CONNECTIONS * 2)
    for _ in range(SHARD_CONNECTIONS * 2):
        s.acquire()
    s.release(1)
    s.acquire()  # the free slot on shard 1
    assert s.acquire() in (0, 1) and len(s.clients) == 2
    assert sum(s.busy) == SHARD_CONNECTIONS * 2 + 1


async def test_clients_shard_per_loop_and_close_cleanly():
    clients = HTTPClients()
    s = clients.async_shards("http://a:1")
    assert clients.async_shards("http://a:1") is s and clients.async_client("http://a:1") is s.clients[0]
    await clients.aclose()
    assert s.clients[0].is_closed
    assert asyncio.get_running_loop() is not None
