"""Model files, ``config/llms/provider/<provider>/<name>.yaml``: one model instance each, and
the checks on the keys and headers it sends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from actors.config.base import MAX_PORT, MAX_SECONDS, Strict
from actors.secrets import shown_url

__all__ = [
    "CONTROL_CHARS",
    "DEFAULT_BASE_URLS",
    "KEYED_TYPES",
    "ModelConfig",
    "SimulationConfig",
    "header_value_problem",
]


#: Where requests go when a model file gives no ``base_url`` (each SDK's own convention).
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}

#: Model types that cannot work without a key: missing one disables the model.
KEYED_TYPES = ("openai", "anthropic")

# Header names whose values are credentials.
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|credential|password", re.IGNORECASE)

#: Characters no HTTP header value may hold (C0 controls other than tab, and DEL).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value_problem(value: str) -> str | None:
    """Why ``value`` (a key or header value, already stripped) cannot be sent, without quoting it."""
    found = CONTROL_CHARS.search(value)
    if found is not None:
        return (
            f"contains a control character ({found.group()!r} at position {found.start()}), which no "
            "HTTP header may carry; check how the value was set (e.g. a key file read with its line break)"
        )
    if not value.isascii():
        at = next(i for i, c in enumerate(value) if not c.isascii())
        return (
            f"contains a non-ASCII character (at position {at}), which httpx does not send in a header; "
            "check that the value was pasted whole and unchanged"
        )
    return None


class SimulationConfig(Strict):
    """How the in-process ``simulated`` provider behaves (also used by ``simulate=True``)."""

    latency: float = Field(0.02, ge=0, le=MAX_SECONDS, description="seconds before answering")
    failure_rate: float = Field(0.0, ge=0, le=1, description="share of calls that fail")
    failure_status: int = Field(503, ge=400, le=599, description="HTTP status a failure imitates")
    reply: str | None = Field(None, description="fixed reply text; default echoes the last user message")
    seed: int | None = Field(None, description="seed for the failure draw, for repeatable runs")


class ModelConfig(Strict):
    """One model instance: ``config/llms/provider/<provider>/<name>.yaml``.

    ``name`` is the file stem and ``provider`` the folder; the loader fills both. A model whose
    key is missing loads with ``disabled_reason`` set instead of failing the whole config.
    """

    hidden_keys: ClassVar[frozenset[str]] = frozenset({"api_key_env"})

    name: str = ""
    provider: str = ""
    model_type: Literal["openai", "anthropic", "openai_compatible", "simulated"]
    model_name: str
    mode: Literal["chat", "embedding"] = Field(
        "chat", description="what the model serves: chat completions, or embeddings"
    )
    base_url: str | None = Field(None, validate_default=True)
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="variable the key came from, for messages")
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Headers may carry credentials (a proxy's token), so they stay out of repr.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeout: float = Field(60.0, gt=0, le=MAX_SECONDS, description="seconds for one attempt")
    rpm_limit: int | None = Field(None, gt=0)
    tpm_limit: int | None = Field(None, gt=0)
    concurrency_limit: int | None = Field(None, gt=0)
    context_window: int | None = Field(None, gt=0)
    input_price: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="USD per million prompt tokens"
    )
    output_price: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="USD per million completion tokens"
    )
    weight: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="share under the weighted rotation strategy"
    )
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    pace_from_headers: bool = Field(
        True, description="park or pace the instance from its answers' rate-limit headers"
    )
    disabled_reason: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_type(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        model_type = data.get("model_type")
        if data.get("base_url") in (None, "") and model_type in DEFAULT_BASE_URLS:
            data["base_url"] = DEFAULT_BASE_URLS[model_type]
        key = data.get("api_key")
        if isinstance(key, str):
            key = data["api_key"] = key.strip()  # `$(cat keyfile)` brings the file's line break
            if not key:
                data.pop("api_key")
                key = None
        if key is None and model_type in KEYED_TYPES and not data.get("disabled_reason"):
            data["disabled_reason"] = "no api_key configured (add api_key: ${VARIABLE} to the model file)"
        return data

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        problem = header_value_problem(value.get_secret_value()) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        value = {name: text.strip() for name, text in value.items()}
        for name, text in value.items():
            problem = header_value_problem(name) or header_value_problem(text)
            if problem:
                raise ValueError(f"header {name.strip()[:40]!r} {problem}")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        model_type = info.data.get("model_type")
        if value is None or value == "":
            if model_type == "openai_compatible":
                raise ValueError(
                    "required for model_type openai_compatible: the server's URL including the "
                    "version, e.g. http://127.0.0.1:11434/v1"
                )
            return None
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.openai.com/v1")
        try:  # the same parser the providers use, so what loads here also connects
            url = httpx.URL(value)
            if not url.host:
                raise ValueError("has no host")
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"is not a valid URL ({exc}); e.g. https://api.openai.com/v1") from None
        if url.port is not None and not 1 <= url.port <= MAX_PORT:
            raise ValueError(f"has port {url.port}, outside 1-{MAX_PORT}; e.g. http://127.0.0.1:11434/v1")
        value = value.rstrip("/")
        if model_type == "anthropic" and value.endswith("/v1"):
            raise ValueError(
                "an Anthropic base_url does not include the version (requests go to "
                "{base_url}/v1/messages); drop the trailing /v1"
            )
        return value

    @model_validator(mode="after")
    def _embedding_needs_an_api(self) -> ModelConfig:
        if self.mode == "embedding" and self.model_type == "anthropic":
            raise ValueError(
                "mode: embedding needs an embeddings API, and Anthropic has none; use an openai or "
                "openai_compatible model for embeddings"
            )
        return self

    def __repr_args__(self) -> Any:
        # base_url may carry a password or a key in its query: repr shows it without them.
        for name, value in super().__repr_args__():
            yield name, shown_url(value) if name == "base_url" and value else value

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def key(self) -> str | None:
        """The API key in clear, for building request headers only."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def secrets(self) -> tuple[str, ...]:
        """Every credential this model holds, to mask: the key, credential headers, and base_url's
        password and query values."""
        found = [v for k, v in self.headers.items() if _SECRET_HEADER.search(k)]
        key = self.key()
        if key:
            found.append(key)
        if self.base_url and ("@" in self.base_url or "?" in self.base_url):
            try:
                url = httpx.URL(self.base_url)
            except (httpx.InvalidURL, ValueError):
                return tuple(found)
            if url.password:
                found.append(url.password)
            # A query value may be a key under any name (?key=, ?code=, ?sig=): all count as one.
            found += [value for _, value in url.params.multi_items() if value]
        return tuple(found)
