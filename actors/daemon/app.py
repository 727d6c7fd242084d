"""Routes and wiring: the Starlette app over one ``DaemonState``, wrapped in the ``Gateway`` layer.

- ``POST /v1/chat/completions``: OpenAI's chat completions (streaming too)
- ``POST /v1/messages``: Anthropic's messages (streaming too)
- ``GET /v1/models``: what ``model`` may name
- ``GET /healthz``: liveness, 200 while the process serves
- ``GET /readyz``: 200 when every configured wrapper has an available instance, else 503
- ``GET /v1/stats``: ``rt.stats()``, health and the daemon's own figures
- ``GET /metrics``: Prometheus text
- ``POST /admin/reload``: reload the configuration (400 with its errors if it is invalid)
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from actors.daemon import anthropic_api, openai_api
from actors.daemon.chat import ChatRequest, parse_json, session_key
from actors.daemon.errors import APIError, from_llm_error
from actors.daemon.metrics import CONTENT_TYPE
from actors.daemon.middleware import Gateway, error_parts, request_info
from actors.daemon.state import DaemonState, ReloadRejected
from actors.errors import BadRequestError, LLMError
from actors.response import Attempt, StreamChunk

if TYPE_CHECKING:
    from actors.proxy import Request as WrapperRequest

__all__ = ["create_app"]

_log = structlog.get_logger("llm_actors.daemon")
_perf = time.perf_counter


def create_app(state: DaemonState) -> Gateway:
    """The daemon's ASGI app."""
    h = _Handlers(state)
    routes = [
        Route("/v1/chat/completions", h.chat_completions, methods=["POST"]),
        Route("/v1/messages", h.messages, methods=["POST"]),
        Route("/v1/models", h.models, methods=["GET"]),
        Route("/healthz", h.healthz, methods=["GET"]),
        Route("/readyz", h.readyz, methods=["GET"]),
        Route("/v1/stats", h.stats, methods=["GET"]),
        Route("/metrics", h.metrics, methods=["GET"]),
        Route("/admin/reload", h.reload, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: h.http_error})
    return Gateway(app, state)


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":"), default=str).encode()
    return Response(body, status, headers, media_type="application/json")


def _error(request: Request, error: APIError, extra: dict[str, str] | None = None) -> Response:
    body, headers = error_parts(request.url.path, error, request_info(request.scope).request_id)
    return _json(body, error.status, {**headers, **(extra or {})})


def _trail(
    attempts: list[Attempt], instance: str = "", target: str = "", count: int | None = None
) -> dict[str, str]:
    """The gateway's response headers: who answered (or was tried last), how many attempts, where."""
    if not instance and attempts:
        instance, target = attempts[-1].instance, attempts[-1].target or ""
    headers = {"x-llm-actors-attempts": str(len(attempts) if count is None else count)}
    if instance:
        headers["x-llm-actors-instance"] = instance
    if target:
        headers["x-llm-actors-target"] = target
    return headers


class _Handlers:
    """The endpoints, over one daemon state."""

    def __init__(self, state: DaemonState) -> None:
        self.state = state

    # -- chat ------------------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._chat(request, openai_api, openai_api.completion, openai_api.ChunkStream)

    async def messages(self, request: Request) -> Response:
        return await self._chat(request, anthropic_api, anthropic_api.message, anthropic_api.EventStream)

    async def _chat(self, request: Request, wire: ModuleType, render: Any, stream_cls: Any) -> Response:
        state = self.state
        info = request_info(request.scope)
        started = _perf()
        label = "unknown"  # the metrics label: a configured name only, so cardinality stays bounded
        try:
            chat: ChatRequest = wire.parse(parse_json(await self._body(request)))
            info.model = chat.model
            wrapper = state.models.get(chat.model)
            label = chat.model
            call = wrapper.request(
                chat.messages, chat.params, session_id=session_key(request.headers, chat.params)
            )
        except APIError as err:
            state.metrics.observe(wire.API, label, err.status, _perf() - started)
            return _error(request, err)
        except BadRequestError as exc:
            state.metrics.observe(wire.API, label, 400, _perf() - started)
            return _error(request, APIError(400, "invalid_request", str(exc), param="messages"))
        except LLMError as exc:  # a wrapper for a pool or reference that could not be built
            error = from_llm_error(exc)
            state.metrics.observe(wire.API, label, error.status, _perf() - started)
            return _error(request, error)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a body of an unexpected shape
            state.metrics.observe(wire.API, label, 400, _perf() - started)
            why = f"the request body has an unexpected shape ({type(exc).__name__}: {exc}); check it against the API"
            return _error(request, APIError(400, "invalid_request", why))
        if chat.stream:
            return await self._stream(
                request, wire.API, chat, call, stream_cls(chat, info.request_id), label, started
            )
        try:
            response = await call.acomplete()
        except LLMError as exc:
            return self._failed(request, wire.API, label, call, exc, started)
        except Exception as exc:  # a bug: answer in the client's shape and say so in the log
            return self._crashed(request, wire.API, label, call, exc, started)
        info.instance, info.attempts = response.instance, len(response.attempts)
        state.metrics.observe(
            wire.API,
            label,
            200,
            _perf() - started,
            response.attempts,
            call.first_target,
            response.token_usage,
        )
        return _json(
            render(response, chat, info.request_id),
            200,
            _trail(response.attempts, response.instance, response.target),
        )

    async def _stream(
        self,
        request: Request,
        api: str,
        chat: ChatRequest,
        call: WrapperRequest,
        renderer: Any,
        label: str,
        started: float,
    ) -> Response:
        """Stream once the first chunk is in: until then, failures fall back and answer with a status."""
        state = self.state
        info = request_info(request.scope)
        chunks = call.astream()
        try:
            first: StreamChunk | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except LLMError as exc:
            return self._failed(request, api, label, call, exc, started)
        except Exception as exc:
            return self._crashed(request, api, label, call, exc, started)
        except BaseException:
            await chunks.aclose()
            raise
        count = len(call.attempts) + 1  # the attempt now streaming is recorded when it ends
        instance = first.instance if first is not None else ""
        info.instance, info.attempts = instance, count
        headers = {
            **_trail(call.attempts, instance, call.current_target(), count),
            "cache-control": "no-cache",
        }

        async def body() -> AsyncIterator[bytes]:
            status = 499  # unless the stream ends one way or the other below: the client left
            try:
                if first is not None:
                    yield renderer.chunk(first)
                async for chunk in chunks:
                    data = renderer.chunk(chunk)
                    if data:
                        yield data
                status = 200
                yield renderer.end()
            except LLMError as exc:  # after the first chunk: no fallback, an error event ends it
                error = from_llm_error(exc)
                status = error.status
                _log.warning("stream failed", request_id=info.request_id, model=chat.model, error=str(exc))
                yield renderer.error(error)
            finally:
                await chunks.aclose()
                state.metrics.observe(
                    api, label, status, _perf() - started, call.attempts, call.first_target, renderer.usage
                )

        return StreamingResponse(body(), media_type=renderer.media_type, headers=headers)

    def _failed(
        self, request: Request, api: str, label: str, call: WrapperRequest, exc: BaseException, started: float
    ) -> Response:
        error = from_llm_error(exc)
        info = request_info(request.scope)
        attempts = call.attempts
        info.attempts = len(attempts)
        info.instance = attempts[-1].instance if attempts else None
        self.state.metrics.observe(api, label, error.status, _perf() - started, attempts, call.first_target)
        return _error(request, error, _trail(attempts))

    def _crashed(
        self, request: Request, api: str, label: str, call: WrapperRequest, exc: Exception, started: float
    ) -> Response:
        _log.error("request crashed", request_id=request_info(request.scope).request_id, exc_info=exc)
        return self._failed(request, api, label, call, exc, started)

    async def _body(self, request: Request) -> bytes:
        limit = self.state.max_body
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        parts: list[bytes] = []
        size = 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise _too_large(size, limit)
            parts.append(part)
        return b"".join(parts)

    # -- catalogue, health, statistics -----------------------------------------------------------

    async def models(self, request: Request) -> Response:
        return _json({"object": "list", "data": self.state.models.listing()})

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        state = self.state
        if state.draining:
            return _json({"ready": False, "draining": True, "not_ready": []}, 503)
        rt = state.runtime
        wrappers: dict[str, Any] = {}
        for name in rt.config.wrappers:
            wrapper = rt.factory.get_wrapper(name)
            if wrapper is None:
                wrappers[name] = {"available": False, "reason": "not built"}
                continue
            health = wrapper.health()  # the lease table's view: no actor is asked
            wrappers[name] = {
                "available": health["available"],
                "healthy_instances": health["healthy_instances"],
                "total_instances": health["total_instances"],
            }
        not_ready = [name for name, w in wrappers.items() if not w["available"]]
        if not wrappers:  # no wrappers declared: ready when any instance can take a request
            snapshot = rt.table.snapshot(time.monotonic()) if rt.table is not None else {}
            if not any(s["state"] in ("closed", "half_open") for s in snapshot.values()):
                not_ready = ["(no available instance)"]
        return _json(
            {"ready": not not_ready, "wrappers": wrappers, "not_ready": not_ready}, 503 if not_ready else 200
        )

    async def stats(self, request: Request) -> Response:
        state = self.state

        def gather() -> dict[str, Any]:
            rt = state.runtime
            return {**rt.stats(), "health": rt.factory.health_check_all(), "daemon": state.info()}

        return _json(await state.blocking(gather))

    async def metrics(self, request: Request) -> Response:
        body = await self.state.blocking(self.state.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    # -- operations ------------------------------------------------------------------------------

    async def reload(self, request: Request) -> Response:
        try:
            summary = await self.state.reload()
        except ReloadRejected as exc:
            _log.warning("reload rejected", errors=[str(i) for i in exc.error.issues])
            body = {"error": {"message": str(exc), "type": "invalid_config", "issues": exc.issues()}}
            return _json(body, 400)
        except APIError as err:
            return _error(request, err)
        _log.info("reloaded", summary=summary)
        return _json({"reloaded": True, "summary": summary})

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not_found", 405: "invalid_request"}.get(exc.status_code, "invalid_request")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return _error(request, APIError(exc.status_code, kind, message), dict(exc.headers or {}))


def _too_large(size: int, limit: int) -> APIError:
    return APIError(
        413,
        "too_large",
        f"the request body has {size} bytes or more; this daemon takes at most {limit} (--max-body)",
    )
