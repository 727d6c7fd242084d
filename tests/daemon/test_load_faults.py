"""Load with faults through a real daemon: none of the requests is lost.

The load comes from a small keep-alive HTTP/1.1 client on raw sockets: a full HTTP client would
spend more time than the daemon does, and this test measures nothing but counts.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest
from daemon_helpers import wait_until

MSG = [{"role": "user", "content": "hi"}]


async def _connection(url: str, path: str, bodies: list[bytes]) -> list[int]:
    """Send ``bodies`` one after another on one keep-alive connection; the statuses, in order."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    statuses = []
    try:
        for body in bodies:
            writer.write(
                f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next(
                int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"
            )
            await reader.readexactly(length)
            statuses.append(int(lines[0].split()[1]))
    finally:
        writer.close()
    return statuses


async def load(url: str, path: str, body: dict, total: int, connections: int) -> Counter[int]:
    """``total`` requests over ``connections`` keep-alive connections: how many got each status."""
    raw = json.dumps(body).encode()
    shares = [[raw] * (total // connections + (i < total % connections)) for i in range(connections)]
    results = await asyncio.gather(*(_connection(url, path, share) for share in shares))
    return Counter(status for statuses in results for status in statuses)


@pytest.mark.timeout(120)
async def test_2000_requests_over_64_connections_with_a_flaky_instance_lose_none(daemon, fake):
    """A third of one instance's answers fail; each such request falls over to the other instance."""
    fake.configure("fl1", status=500, failure_rate=0.3, seed=7)
    statuses = await load(daemon.url, "/v1/chat/completions", {"model": "flaky", "messages": MSG}, 2000, 64)
    assert statuses == {200: 2000}
    assert fake.stats("fl1")["requests"] + fake.stats("fl2")["requests"] > 2000  # retries happened
    stats = lambda: httpx.get(daemon.url + "/v1/stats", timeout=10).json()["daemon"]  # noqa: E731
    wait_until(lambda: stats()["in_flight"] == 0, what="no request in flight")
