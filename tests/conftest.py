"""Shared fixtures: one fake provider server and (on demand) one private redis-server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from actors.fake import FakeProvider
from actors.fake.redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    """The fake provider server, listening on a free loopback port for the whole session."""
    with FakeProvider("127.0.0.1", 0) as server:
        yield server


@pytest.fixture
def fake(fake_provider: FakeProvider) -> FakeProvider:
    """The session's fake provider, listening and with no faults, stats or log left over."""
    fake_provider.restore()  # in case an earlier test killed it and failed before restoring
    fake_provider.reset()
    return fake_provider


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port, started on first use; never skipped in CI."""
    if redis_server_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server(redis_server_session: RedisServer) -> RedisServer:
    """The session's redis-server, running (an earlier test may have killed it) and empty."""
    import redis

    if redis_server_session.proc is None or redis_server_session.proc.poll() is not None:
        redis_server_session.proc = None
        redis_server_session.start()
    with redis.Redis.from_url(redis_server_session.url) as client:
        client.flushall()
    return redis_server_session
