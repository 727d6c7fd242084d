"""The simulated provider: no HTTP; an echo with configurable latency and injected failures.

It answers ``"echo: " + last user text`` (or ``simulation.reply``) after ``simulation.latency``,
fails with ``simulation.failure_status`` at ``simulation.failure_rate`` (repeatably when ``seed``
is set), and calls tools by the fake provider server's own rule (``actors.fake.shapes.Reply``:
the tool ``tool_choice`` names, else the first, with ``{"input": <last user text>}``; once a
tool result follows the last user message it answers in text, so an agent loop ends). Its errors
are built by ``actors.providers.errors``, so they are what the HTTP path raises for that status.

A demo can break and heal an instance at run time through its runtime, without holding the
provider; each provider has its own control, so two runtimes never share an override::

    rt.simulation_control("openai-gpt4").fail(status=503, rate=1.0)
    rt.simulation_control("openai-gpt4").heal()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from actors.config.models import ModelConfig, SimulationConfig
from actors.errors import LLMCallError
from actors.fake.embeddings import DEFAULT_DIMENSIONS, token_count, vector
from actors.fake.shapes import Reply, logprobs_of
from actors.providers.base import Messages, Provider, merge_params
from actors.providers.clients import HTTPClients
from actors.providers.errors import classify_status, classify_transport
from actors.response import EmbeddingResponse, LLMResponse, StreamChunk, TokenUsage, ToolCall

__all__ = [
    "SimulatedProvider",
    "SimulationControl",
    "SimulationSettings",
]

_PIECE = re.compile(r"\s*\S+")
_STREAM_PIECES = 3
_ERROR_CODES = {429: "rate_limit_exceeded", 401: "invalid_api_key", 404: "model_not_found"}


class SimulationSettings(NamedTuple):
    """What a simulated instance does now: its configuration with the control's overrides applied."""

    latency: float
    failure_rate: float
    failure_status: int
    retry_after: float | None = None
    error_code: str | None = None


class _Overrides(NamedTuple):
    failure: tuple[int, float, float | None, str | None] | None = None  # status, rate, retry_after, code
    latency: float | None = None


class SimulationControl:
    """Run-time overrides for one simulated instance; thread-safe, owned by its provider.

    Overrides are replaced as one immutable value, so a call never sees half of a change.
    """

    __slots__ = ("_lock", "_overrides", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._overrides = _Overrides()

    def fail(
        self,
        status: int = 503,
        rate: float = 1.0,
        *,
        retry_after: float | None = None,
        error_code: str | None = None,
    ) -> None:
        """Fail ``rate`` of the calls with ``status`` (and a Retry-After, an error code) until healed."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, got {rate!r}")
        with self._lock:
            self._overrides = self._overrides._replace(failure=(status, rate, retry_after, error_code))

    def heal(self) -> None:
        """Drop the injected failure: the instance behaves as configured again."""
        with self._lock:
            self._overrides = self._overrides._replace(failure=None)

    def set_latency(self, seconds: float | None) -> None:
        """Answer after ``seconds`` from now on (None: the configured latency)."""
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds!r}")
        with self._lock:
            self._overrides = self._overrides._replace(latency=seconds)

    def reset(self) -> None:
        """Drop every override."""
        with self._lock:
            self._overrides = _Overrides()

    def settings(self, config: SimulationConfig) -> SimulationSettings:
        """``config`` with the current overrides applied."""
        overrides = self._overrides
        latency = config.latency if overrides.latency is None else overrides.latency
        if overrides.failure is None:
            return SimulationSettings(latency, config.failure_rate, config.failure_status)
        status, rate, retry_after, code = overrides.failure
        return SimulationSettings(latency, rate, status, retry_after, code)

    def __repr__(self) -> str:
        return f"SimulationControl({self.name!r}, {self._overrides})"


class _Plan(NamedTuple):
    """One simulated call decided: wait ``delay``, then fail with ``error`` or answer ``response``."""

    delay: float
    error: LLMCallError | None = None
    response: LLMResponse | None = None

    def result(self) -> LLMResponse:
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response

    def chunks(self) -> list[StreamChunk]:
        reply = self.result()
        instance, model = reply.instance, reply.model
        pieces = _PIECE.findall(reply.content)
        size = max(1, -(-len(pieces) // _STREAM_PIECES))
        out = [
            StreamChunk(delta="".join(pieces[i : i + size]), instance=instance, model=model)
            for i in range(0, len(pieces), size)
        ]
        if "logprobs" in reply.metadata:
            for chunk in out:
                chunk.logprobs = logprobs_of([chunk.delta])
        out.append(
            StreamChunk(
                tool_calls=reply.tool_calls,
                finish_reason=reply.finish_reason,
                usage=reply.token_usage,
                instance=instance,
                model=model,
            )
        )
        return out


class SimulatedProvider(Provider):
    """An in-process stand-in for an LLM instance, driven by ``model.simulation`` and its control."""

    def __init__(self, model: ModelConfig, clients: HTTPClients | None = None) -> None:
        super().__init__(model, clients)
        self.control = SimulationControl(self.name)
        self._rng = random.Random(model.simulation.seed)
        self._seq = itertools.count(1)

    def call(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> LLMResponse:
        plan = self._plan(messages, params, timeout)
        time.sleep(plan.delay)
        return plan.result()

    async def acall(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> LLMResponse:
        plan = self._plan(messages, params, timeout)
        await asyncio.sleep(plan.delay)
        return plan.result()

    def stream(
        self,
        messages: Messages,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Iterator[StreamChunk]:
        plan = self._plan(messages, params, timeout)
        time.sleep(plan.delay)
        yield from plan.chunks()

    async def astream(
        self, messages: Messages, params: Mapping[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[StreamChunk]:
        plan = self._plan(messages, params, timeout)
        await asyncio.sleep(plan.delay)
        for chunk in plan.chunks():
            yield chunk

    def probe(self, *, timeout: float | None = None) -> None:
        plan = self._plan(None, None, timeout)
        time.sleep(plan.delay)
        if plan.error is not None:
            raise plan.error

    async def aprobe(self, *, timeout: float | None = None) -> None:
        plan = self._plan(None, None, timeout)
        await asyncio.sleep(plan.delay)
        if plan.error is not None:
            raise plan.error

    def embed(
        self,
        inputs: Sequence[Any],
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        plan = self._plan(None, None, timeout)
        time.sleep(plan.delay)
        if plan.error is not None:
            raise plan.error
        return self._embeddings(inputs, params)

    async def aembed(
        self, inputs: Sequence[Any], params: Mapping[str, Any], *, timeout: float | None = None
    ) -> EmbeddingResponse:
        plan = self._plan(None, None, timeout)
        await asyncio.sleep(plan.delay)
        if plan.error is not None:
            raise plan.error
        return self._embeddings(inputs, params)

    def _embeddings(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> EmbeddingResponse:
        # The fake server's vectors, so simulated and fake instances embed alike.
        dimensions = int(params.get("dimensions") or DEFAULT_DIMENSIONS)
        tokens = sum(token_count(x) for x in inputs)
        return EmbeddingResponse(
            embeddings=[vector(x, dimensions) for x in inputs],
            model=self.model.model_name,
            instance=self.name,
            token_usage=TokenUsage(prompt_tokens=tokens),
        )

    def _plan(
        self, messages: Messages | None, params: Mapping[str, Any] | None, timeout: float | None
    ) -> _Plan:
        """The one decision core of every call: how long to wait and what to answer."""
        self.check_enabled()
        now = self.control.settings(self.model.simulation)
        limit = self._seconds(timeout)
        if now.latency > limit:
            late = httpx.ReadTimeout("simulated latency exceeds the timeout")
            return _Plan(limit, error=classify_transport(self.errors, late, limit))
        if now.failure_rate and self._rng.random() < now.failure_rate:
            return _Plan(now.latency, error=self._failure(now))
        if messages is None:
            return _Plan(now.latency)
        response = self._answer(messages, merge_params(self.defaults, params or {}))
        response.response_time = now.latency
        return _Plan(now.latency, response=response)

    def _failure(self, now: SimulationSettings) -> LLMCallError:
        code = now.error_code or _ERROR_CODES.get(now.failure_status)
        body = {
            "error": {
                "message": f"simulated failure (HTTP {now.failure_status})",
                "type": "simulated",
                "code": code,
            }
        }
        headers = {"retry-after": f"{now.retry_after:g}"} if now.retry_after is not None else {}
        return classify_status(self.errors, now.failure_status, headers, json.dumps(body).encode())

    def _answer(self, messages: Messages, params: Mapping[str, Any]) -> LLMResponse:
        # The fake server's reply rule, so simulated and fake instances answer alike.
        seq = next(self._seq)
        reply = Reply.build({**params, "messages": messages}, seq, self.model.simulation.reply)
        calls = [ToolCall(f"call_sim{seq}", reply.tool, reply.arguments)] if reply.tool else []
        metadata: dict[str, Any] = {"provider_response_id": f"sim-{self.name}-{seq}"}
        if reply.logprobs and not calls:
            metadata["logprobs"] = logprobs_of(_PIECE.findall(reply.text))
        return LLMResponse(
            content=reply.text,
            model=self.model.model_name,
            instance=self.name,
            token_usage=TokenUsage(
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens
            ),
            finish_reason="tool_calls" if calls else "stop",
            tool_calls=calls,
            metadata=metadata,
        )
