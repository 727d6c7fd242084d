"""Pydantic models of the configuration files (SPEC §3); frozen, unknown keys forbidden."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["Strict", "SimulationConfig", "ModelConfig"]


class Strict(BaseModel):
    """Base of every config model: frozen, and an unknown key is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulationConfig(Strict):
    """How the in-process ``simulated`` provider behaves (also used by ``simulate=True``)."""

    latency: float = Field(0.02, ge=0, description="seconds before answering")
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of calls that fail")
    failure_status: int = Field(503, ge=400, le=599, description="HTTP status a failure imitates")
    reply: str | None = Field(None, description="fixed reply text; default echoes the last user message")
    seed: int | None = Field(None, description="seed for the failure draw, for repeatable runs")


class ModelConfig(Strict):
    """One model instance: ``config/llms/provider/<provider>/<name>.yaml``.

    ``name`` is the file stem and ``provider`` the folder; the loader fills both. A model whose
    key is missing loads with ``disabled_reason`` set instead of failing the whole config.
    """

    name: str = ""
    provider: str = ""
    model_type: Literal["openai", "anthropic", "openai_compatible", "simulated"]
    model_name: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="variable the key came from, for messages")
    parameters: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(60.0, gt=0, description="seconds for one attempt")
    rpm_limit: int | None = Field(None, gt=0)
    tpm_limit: int | None = Field(None, gt=0)
    concurrency_limit: int | None = Field(None, gt=0)
    context_window: int | None = Field(None, gt=0)
    input_price: float | None = Field(None, ge=0, description="USD per million prompt tokens")
    output_price: float | None = Field(None, ge=0, description="USD per million completion tokens")
    weight: float = Field(1.0, gt=0, description="share under the weighted rotation strategy")
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    disabled_reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def key(self) -> str | None:
        """The API key in clear, for building request headers only."""
        return self.api_key.get_secret_value() if self.api_key is not None else None
