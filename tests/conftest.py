"""Shared fixtures: one fake provider server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.fake import FakeProvider


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
