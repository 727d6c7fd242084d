"""Fixtures for daemon tests: one shared daemon process over ``main_topology``, and SDK clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helpers import MAX_BODY, Daemon, main_topology, start_daemon, write_topology


@pytest.fixture(scope="session")
def daemon(fake_provider: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon over ``main_topology`` on the session's fake provider, shared by the tests.

    Each scenario has instances of its own, so what one leaves behind (a parked instance, an
    open breaker) never changes another's outcome; counters are compared as differences.
    """
    root = write_topology(tmp_path_factory.mktemp("daemon"), fake_provider, **main_topology())
    d = start_daemon(root, "--max-body", str(MAX_BODY))
    yield d
    d.stop()


@pytest.fixture
def openai_client(daemon: Daemon) -> Any:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=daemon.url + "/v1", api_key="unused", max_retries=0, timeout=15) as client:
        yield client


@pytest.fixture
def anthropic_client(daemon: Daemon) -> Any:
    anthropic = pytest.importorskip("anthropic")
    with anthropic.Anthropic(base_url=daemon.url, api_key="unused", max_retries=0, timeout=15) as client:
        yield client
