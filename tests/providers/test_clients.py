"""HTTPClients: sync clients shared per origin across threads, async clients kept per event loop."""

from __future__ import annotations

import asyncio
import gc
import threading

from actors.providers import HTTPClients
from actors.providers.clients import origin_of


def test_origin_of():
    assert origin_of("https://api.openai.com/v1") == "https://api.openai.com:443"
    assert (
        origin_of("http://127.0.0.1:8000/a/v1")
        == origin_of("http://127.0.0.1:8000/b")
        == "http://127.0.0.1:8000"
    )
    assert origin_of("http://localhost/x") == "http://localhost:80"


def test_one_sync_client_per_origin_shared_by_threads():
    with HTTPClients() as clients:
        seen = []
        barrier = threading.Barrier(8)

        def grab():
            barrier.wait()
            seen.append(clients.sync_client("http://a:1"))

        threads = [threading.Thread(target=grab) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(c) for c in seen}) == 1
        assert clients.sync_client("http://b:1") is not seen[0]
    assert seen[0].is_closed


def test_close_then_use_again_makes_a_fresh_client():
    clients = HTTPClients()
    first = clients.sync_client("http://a:1")
    clients.close()
    second = clients.sync_client("http://a:1")
    assert first.is_closed and not second.is_closed and second is not first
    clients.close()


def test_async_clients_are_per_event_loop():
    clients = HTTPClients()

    async def grab():
        return (
            clients.async_client("http://a:1"),
            clients.async_client("http://a:1"),
            clients.async_client("http://b:1"),
        )

    loop_one, loop_two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        a1, a1_again, b1 = loop_one.run_until_complete(grab())
        a2, _, _ = loop_two.run_until_complete(grab())
        assert a1 is a1_again and a1 is not b1
        assert a2 is not a1
        loop_one.run_until_complete(clients.aclose())
        assert a1.is_closed and b1.is_closed and not a2.is_closed
        loop_two.run_until_complete(clients.aclose())
    finally:
        loop_one.close()
        loop_two.close()
    clients.close()


def test_async_clients_in_threads_with_their_own_loops_are_distinct():
    clients = HTTPClients()
    got = []

    def run():
        async def main():
            got.append(clients.async_client("http://a:1"))
            await clients.aclose()

        asyncio.run(main())

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in got}) == 3


def _loop_with_a_client(clients: HTTPClients) -> asyncio.AbstractEventLoop:
    async def grab():
        clients.async_client("http://a:1")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(grab())
    loop.close()
    return loop


def test_a_gone_loop_takes_its_clients_with_it():
    clients = HTTPClients()
    loop = _loop_with_a_client(clients)
    assert len(clients._async) == 1
    del loop
    gc.collect()
    assert len(clients._async) == 0


def test_close_forgets_the_clients_of_closed_loops():
    clients = HTTPClients()
    loop = _loop_with_a_client(clients)
    clients.close()
    assert len(clients._async) == 0 and loop.is_closed()


async def test_async_context_manager_closes_this_loops_clients():
    async with HTTPClients() as clients:
        client = clients.async_client("http://a:1")
        sync = clients.sync_client("http://a:1")
    assert client.is_closed and sync.is_closed
