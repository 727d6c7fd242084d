"""Fixtures for provider tests: shared clients and providers on the fake server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from actors.config.models import ModelConfig
from actors.providers import HTTPClients, Provider, make_provider

from .helpers import KEY

MakeProvider = Callable[..., Provider]


@pytest.fixture
async def clients(request: pytest.FixtureRequest) -> AsyncIterator[HTTPClients]:
    """Fresh clients per test; the loop's async clients and the sync ones are closed after.
    ``async`` mode takes the default async backend (h1), ``async-aiohttp`` and ``async-httpx``
    the others (aiohttp serves calls through a proxy, httpx calls over HTTP/2)."""
    callspec = getattr(request.node, "callspec", None)
    mode = callspec.params.get("mode") if callspec is not None else None
    shared = HTTPClients(async_backend={"async-httpx": "httpx", "async-aiohttp": "aiohttp"}.get(mode or ""))
    yield shared
    await shared.aclose()
    shared.close()


@pytest.fixture(params=["openai", "anthropic"])
def shape(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["sync", "async", "async-aiohttp", "async-httpx"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make(fake: Any, clients: HTTPClients) -> MakeProvider:
    """``make(shape, name, **model_fields)``: a provider for instance ``name`` on the fake server."""

    def build(shape: str, name: str = "inst", **fields: Any) -> Provider:
        if shape != "simulated":
            fields.setdefault(
                "base_url",
                fake.anthropic_base_url(name) if shape == "anthropic" else fake.openai_base_url(name),
            )
            fields.setdefault("api_key", KEY)
        fields.setdefault("model_name", f"{shape}-model")
        return make_provider(ModelConfig(name=name, model_type=shape, **fields), clients)

    return build


@pytest.fixture
def provider(make: MakeProvider, shape: str) -> Provider:
    """A provider of each shape for the instance ``inst``."""
    return make(shape)
