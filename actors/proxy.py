"""Wrappers: the thin client a caller holds, over a task-group target or a polling pool.

A wrapper asks no actor anything on the request path. It builds a plan from its precomputed
route, lets a driver lease, call and report, and keeps its own statistics under a lock.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from typing import Any, Protocol, cast

from actors.backoff import Backoff
from actors.drivers import run_async, run_sync, stream_async, stream_sync
from actors.errors import BadRequestError, WrapperExecutionError
from actors.features import check_request, incapable, requested
from actors.hedging import HedgeCounts, HedgeLoop, run_hedged, stream_hedged
from actors.messages import embedding_input_problem, normalize_messages
from actors.outcome import Outcome
from actors.request import RequestRun
from actors.response import Attempt, EmbeddingResponse, LLMResponse, StreamChunk
from actors.state.owner import StateOwner
from actors.state.table import LeaseTable, Route
from actors.state.target import Lease
from actors.stats import CallStats

__all__ = [
    "DEFAULT_QUEUE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "Host",
    "PollingPoolWrapper",
    "Request",
    "TaskGroupWrapper",
    "WrapperProxy",
]

#: Seconds one request may take over all attempts, waits and backoffs, unless configured.
DEFAULT_TIMEOUT = 120.0
#: Seconds a request waits in FIFO order for a full target's permit before falling back.
DEFAULT_QUEUE_TIMEOUT = 5.0
#: Entries kept in the fallback and rotation histories.
HISTORY = 100


class Host(Protocol):
    """What a wrapper needs of the runtime it runs on (``Runtime`` is one); the proxy layer
    names no module above it."""

    state: StateOwner | None
    hedges: HedgeCounts  # hedged attempts by outcome
    hedge_loop: HedgeLoop  # where sync callers' hedged requests run

    @property
    def table(self) -> LeaseTable | None: ...

    def report(
        self,
        lease: Lease,
        outcome: Outcome | None,
        duration: float,
        result: LLMResponse | EmbeddingResponse | BaseException | None,
    ) -> None: ...

    def route_health(self, route: Route) -> dict[str, Any]: ...

    def route_supports_tools(self, route: Route) -> bool: ...

    def pool_status(self, pool: str, timeout: float = ...) -> dict[str, Any] | None: ...


class WrapperProxy:
    """Sync, async and streaming ``generate`` over one route through the runtime's actors."""

    kind = "wrapper"

    def __init__(self, name: str, runtime: Host, route: Route, config: dict[str, Any] | None = None) -> None:
        self.name = name
        self.runtime = runtime
        self.config = dict(config or {})
        self.timeout = float(self.config.get("timeout") or DEFAULT_TIMEOUT)
        self.queue_timeout = float(self.config.get("queue_timeout") or DEFAULT_QUEUE_TIMEOUT)
        self._lock = threading.Lock()
        self._stats = CallStats()
        self._fallbacks: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        # (instance, target, outcome, wall time) per attempt; dicts are made only when read.
        self._rotations: collections.deque[tuple[str, str | None, Any, float]] = collections.deque(
            maxlen=HISTORY
        )
        self.rebind(route)

    def rebind(self, route: Route) -> None:
        """Serve ``route`` from now on (a reload); requests in flight finish on the old one."""
        self._backoff = Backoff(route.retry_delay, jitter="equal")
        self._label = f"{self.name} ({route.label})"  # names the wrapper in error messages
        self.route = route
        self.mode = route_mode(route)

    # -- generate -------------------------------------------------------------------------------

    def request(self, messages: Any, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Request:
        """One request, not yet sent: drive it once with ``complete``, ``acomplete``, ``stream``
        or ``astream``. Its ``attempts`` stay in view on every path (a gateway's headers and
        metrics need them before a stream ends and after a failure)."""
        if self.mode != "chat":
            raise BadRequestError(
                f"{self._label} serves embedding models (mode: embedding); use embed()/aembed() "
                "(POST /v1/embeddings), or a wrapper over chat models for chat"
            )
        run, msgs, params = self._start(messages, parameters, kwargs)
        return Request(self, run, msgs, params)

    def embed_request(self, inputs: Any, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Request:
        """One embeddings request, not yet sent (``complete`` or ``acomplete`` it once)."""
        if self.mode != "embedding":
            raise BadRequestError(
                f"{self._label} serves chat models; embeddings need a wrapper over models with "
                "mode: embedding in their model file"
            )
        problem = embedding_input_problem(inputs)
        if problem is not None:
            raise BadRequestError(problem.replace("'input'", "inputs"))
        if isinstance(inputs, str) or isinstance(inputs[0], int):
            inputs = [inputs]
        run, _, params = self._start(None, parameters, kwargs)
        return Request(self, run, list(inputs), params, embed=True)

    def embed(
        self, inputs: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> EmbeddingResponse:
        """Embeddings of ``inputs`` (a string, a list of strings, or token-id lists), one vector
        each, in order; the same rotation, limits, breakers and fallback as ``generate``."""
        return cast(EmbeddingResponse, self.embed_request(inputs, parameters, **kwargs).complete())

    async def aembed(
        self, inputs: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> EmbeddingResponse:
        """The async twin of ``embed``."""
        return cast(EmbeddingResponse, await self.embed_request(inputs, parameters, **kwargs).acomplete())

    def generate(self, messages: Any, parameters: dict[str, Any] | None = None, **kwargs: Any) -> LLMResponse:
        """Answer ``messages`` on this thread; raises an ``LLMError`` subclass on failure."""
        return self.request(messages, parameters, **kwargs).complete()

    async def generate_async(
        self, messages: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> LLMResponse:
        """Answer ``messages`` on the running event loop, never blocking it."""
        return await self.request(messages, parameters, **kwargs).acomplete()

    def stream_generate(
        self, messages: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[StreamChunk]:
        """Yield the answer in chunks; falls back only before the first chunk."""
        return self.request(messages, parameters, **kwargs).stream()

    def stream_generate_async(
        self, messages: Any, parameters: dict[str, Any] | None = None, **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        """The async twin of ``stream_generate``."""
        return self.request(messages, parameters, **kwargs).astream()

    def _start(
        self, messages: Any, parameters: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> tuple[RequestRun, Any, dict[str, Any]]:
        msgs = normalize_messages(messages) if messages is not None else None
        params = dict(parameters) if parameters else {}
        timeout = self.timeout
        queue_timeout = self.queue_timeout
        session = None
        if kwargs:
            timeout = float(kwargs.pop("timeout", None) or timeout)
            queue_timeout = kwargs.pop("queue_timeout", queue_timeout)
            session = kwargs.pop("session_id", None)
            params.update(kwargs)
        state = self.runtime.state
        if state is None:
            raise WrapperExecutionError(
                f"wrapper {self.name!r}: the runtime is not running; start it (rt.start() or a with block) first"
            )
        plan = self.route.plan()
        if params:
            check_request(params)
            features = requested(params)
            if features:  # no silent drops: instances that cannot honour them count as tried
                members = {m.name: m for t in self.route.targets for m in t.members}
                plan.tried.update(incapable(members.values(), features, self._label))
        run = RequestRun(
            state,
            plan,
            timeout=timeout,
            backoff=self._backoff,
            queue_timeout=queue_timeout,
            report=self.runtime.report,
            label=self._label,
            budget=self.route.budget,
            session=None if session is None else str(session),
        )
        return run, msgs, params

    def _finish(self, run: RequestRun, response: LLMResponse | None, error: BaseException | None) -> None:
        attempts = run.attempts
        first = self.route.first_label
        fell_back = bool(attempts) and any(a.target != first for a in attempts)
        elapsed = time.monotonic() - run.started
        if error is not None and isinstance(
            error, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)
        ):
            success = None
        else:
            success = response is not None
        entry: dict[str, Any] | None = None
        if fell_back or not success:
            entry = {
                "target": response.target if response is not None else first,
                "success": bool(success),
                "attempts": [a.to_dict() for a in attempts],
                "timestamp": time.time(),
            }
            if error is not None:
                entry["error"] = str(error) or type(error).__name__
        with self._lock:
            self._stats.record(
                success,
                elapsed,
                attempts=len(attempts),
                fallbacks=1 if fell_back else 0,
                usage=response.token_usage if response is not None else None,
                outcomes=[a.outcome.value for a in attempts],
            )
            if entry is not None:
                self._fallbacks.append(entry)
            if attempts:
                now = time.time()
                self._rotations.extend((a.instance, a.target, a.outcome, now) for a in attempts)

    # -- statistics and health ------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.to_dict()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.reset()

    def get_fallback_history(self, limit: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._fallbacks)[-limit:] if limit > 0 else []

    def reset_fallback_history(self) -> None:
        with self._lock:
            self._fallbacks.clear()

    def get_rotation_history(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last ``limit`` attempts: which instance, through which target, and how it went."""
        with self._lock:
            last = list(self._rotations)[-limit:] if limit > 0 else []
        return [{"instance_id": i, "target": t, "outcome": o.value, "timestamp": ts} for i, t, o, ts in last]

    def reset_rotation_history(self) -> None:
        with self._lock:
            self._rotations.clear()

    def health(self) -> dict[str, Any]:
        """Health of every instance this wrapper may reach, judged on the route it reaches it by."""
        return self.runtime.route_health(self.route)

    async def health_check(self) -> dict[str, Any]:
        """The original's keys (``healthy``, ``healthy_instances``, ``total_instances``,
        ``health_ratio``) plus each instance's state and reason."""
        return self.health()

    def supports_function_calling(self) -> bool:
        return self.runtime.route_supports_tools(self.route)

    def get_model_info(self) -> dict[str, Any]:
        return {
            "type": f"{self.kind}_wrapper",
            "name": self.name,
            "target": self.route.label,
            "strategy": self.route.plan_cls.name,
            "steps": [s.label for s in self.route.steps],
            "max_attempts": self.route.max_attempts,
            "timeout": self.timeout,
        }

    def get_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "type": type(self).__name__, "config": dict(self.config)}

    # Helpers the original design's wrappers offered.

    @staticmethod
    def get_token_count(text: str) -> int:
        """A rough count (about four characters a token) for budgeting, not billing."""
        return max(1, len(text) // 4)

    def get_messages_token_count(self, messages: Iterable[Any]) -> int:
        return sum(
            self.get_token_count(str(m.get("content", ""))) for m in normalize_messages(list(messages))
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, route={self.route.label!r})"


class TaskGroupWrapper(WrapperProxy):
    """A wrapper over a task-group reference such as ``fast_group.echelon1``."""

    kind = "task_group"


class PollingPoolWrapper(WrapperProxy):
    """A wrapper over a polling pool."""

    kind = "polling_pool"

    def get_pool_status(self) -> dict[str, Any] | None:
        """The pool actor's view (membership, rotation history, counts) with the health keys."""
        status = self.runtime.pool_status(self.route.label.removeprefix("pool:"))
        return None if status is None else {**status, **self.health()}


class Request:
    """One request on a wrapper, driven once; the wrapper's statistics count it when it ends.

    An embeddings request (``embed``) carries its inputs as ``messages`` and only completes.
    """

    __slots__ = ("embed", "messages", "params", "run", "wrapper")

    def __init__(
        self,
        wrapper: WrapperProxy,
        run: RequestRun,
        messages: Any,
        params: dict[str, Any],
        embed: bool = False,
    ) -> None:
        self.wrapper = wrapper
        self.run = run
        self.messages = messages
        self.params = params
        self.embed = embed

    @property
    def attempts(self) -> list[Attempt]:
        """One record per attempt so far."""
        return self.run.attempts

    @property
    def first_target(self) -> str:
        """The label of the route's first step: an answer from elsewhere is a fallback."""
        return self.wrapper.route.first_label

    def current_target(self) -> str:
        """The target the attempt now running was leased from."""
        step = self.run.plan.step
        return step.target.label if step is not None else ""

    def complete(self) -> LLMResponse:
        hedge = self.wrapper.route.hedge
        try:
            if hedge is None or self.embed:
                method = "embed" if self.embed else "call"
                response = run_sync(self.run, self.messages, self.params, method)
            else:
                rt = self.wrapper.runtime
                response = rt.hedge_loop.run(
                    run_hedged(self.run, hedge, rt.hedges, self.messages, self.params)
                )
        except BaseException as exc:
            self.wrapper._finish(self.run, None, exc)
            raise
        self.wrapper._finish(self.run, response, None)
        return response

    async def acomplete(self) -> LLMResponse:
        hedge = self.wrapper.route.hedge
        try:
            if hedge is None or self.embed:
                method = "aembed" if self.embed else "acall"
                response = await run_async(self.run, self.messages, self.params, method)
            else:
                hedges = self.wrapper.runtime.hedges
                response = await run_hedged(self.run, hedge, hedges, self.messages, self.params)
        except BaseException as exc:
            self.wrapper._finish(self.run, None, exc)
            raise
        self.wrapper._finish(self.run, response, None)
        return response

    def stream(self) -> Iterator[StreamChunk]:
        run = self.run
        hedge = self.wrapper.route.hedge
        try:
            if hedge is None:
                yield from stream_sync(run, self.messages, self.params)
            else:
                rt = self.wrapper.runtime
                yield from rt.hedge_loop.iterate(
                    stream_hedged(run, hedge, rt.hedges, self.messages, self.params)
                )
        except BaseException as exc:
            self._finish_stream(exc)
            raise
        self.wrapper._finish(run, run.response, None)

    async def astream(self) -> AsyncGenerator[StreamChunk, None]:
        run = self.run
        hedge = self.wrapper.route.hedge
        if hedge is None:
            chunks = stream_async(run, self.messages, self.params)
        else:
            chunks = stream_hedged(run, hedge, self.wrapper.runtime.hedges, self.messages, self.params)
        try:
            async for chunk in chunks:
                yield chunk
        except BaseException as exc:
            self._finish_stream(exc)
            raise
        finally:
            await chunks.aclose()  # return the lease now, not when the generator is collected
        self.wrapper._finish(run, run.response, None)

    def _finish_stream(self, exc: BaseException) -> None:
        # A caller that stops reading after the final chunk got the whole answer: a success.
        if isinstance(exc, GeneratorExit) and self.run.response is not None:
            self.wrapper._finish(self.run, self.run.response, None)
        else:
            self.wrapper._finish(self.run, None, exc)


def route_mode(route: Route) -> str:
    """What a route's models serve, ``chat`` or ``embedding`` (the configuration keeps every
    route to one mode)."""
    for target in route.targets:
        for member in target.members:
            model = getattr(member.gate.client, "model", None)
            return str(getattr(model, "mode", "chat"))
    return "chat"
