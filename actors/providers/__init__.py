"""Provider clients: speak each LLM API over shared httpx clients, sync and async.

``make_provider(model)`` builds the provider for a ``ModelConfig`` by its ``model_type``. The
runtime leases an instance, then the caller calls the provider (``call``/``acall``/``stream``/
``astream``) on its own thread or loop and reports the outcome. Every failure comes out as an
``actors.errors.LLMCallError`` subclass, translated in ``actors.providers.errors``.
"""

from __future__ import annotations

from actors.config.models import ModelConfig
from actors.errors import ConfigError
from actors.providers.anthropic import AnthropicProvider
from actors.providers.base import HTTPProvider, Provider
from actors.providers.clients import DEFAULT_LIMITS, HTTPClients, default_clients
from actors.providers.openai import OpenAICompatibleProvider, OpenAIProvider
from actors.providers.simulated import SimulatedProvider, SimulationControl

__all__ = [
    "DEFAULT_LIMITS",
    "PROVIDERS",
    "AnthropicProvider",
    "HTTPClients",
    "HTTPProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Provider",
    "SimulatedProvider",
    "SimulationControl",
    "default_clients",
    "make_provider",
    "register_provider",
]

#: Provider class by ``model_type``.
PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "anthropic": AnthropicProvider,
    "simulated": SimulatedProvider,
}


def register_provider(model_type: str, cls: type[Provider]) -> None:
    """Make ``make_provider`` build ``cls`` for models of ``model_type``."""
    PROVIDERS[model_type] = cls


def make_provider(model: ModelConfig, clients: HTTPClients | None = None) -> Provider:
    """The provider for ``model``; HTTP providers share ``clients`` (default: the process-wide ones)."""
    cls = PROVIDERS.get(model.model_type)
    if cls is None:
        raise ConfigError(
            f"model {model.name or model.model_name!r}: no provider for model_type {model.model_type!r}; "
            f"use one of {sorted(PROVIDERS)}",
            path="model_type",
        )
    return cls(model, clients)
