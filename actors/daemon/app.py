"""Routes and wiring: the handlers over one ``DaemonState``, in a route table, wrapped in the ``Gateway`` layer.

- ``POST /v1/chat/completions``: OpenAI's chat completions (streaming too)
- ``POST /v1/responses``: OpenAI's Responses API (streaming too), over the same wrappers
- ``POST /v1/embeddings``: OpenAI's embeddings, from wrappers of embedding models
- ``POST /v1/messages``: Anthropic's messages (streaming too)
- ``POST /v1/messages/count_tokens``: Anthropic's token count (an instance's, or an estimate)
- ``GET /v1/models``, ``GET /v1/models/{id}``: what ``model`` may name
- ``GET /healthz``: liveness, 200 while the process serves
- ``GET /readyz``: 200 when every configured wrapper has an available instance, else 503
- ``GET /v1/stats``: ``rt.stats()``, health and the daemon's own figures
- ``GET /metrics``: Prometheus text
- ``POST /admin/reload``: reload the configuration (400 with its errors if it is invalid)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import structlog
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from actors import jsonio
from actors.daemon import anthropic_api, count_tokens, embeddings_api, openai_api, responses_api
from actors.daemon.chat import ChatRequest, parse_json, session_key
from actors.daemon.errors import APIError, from_llm_error
from actors.daemon.metrics import CONTENT_TYPE
from actors.daemon.middleware import Gateway, error_parts, request_info
from actors.daemon.router import Router
from actors.daemon.state import DaemonState, ReloadRejected
from actors.daemon.streaming import StreamResponse, Tail
from actors.daemon.trail import EXPOSED_HEADERS, gateway_seconds, trail
from actors.errors import BadRequestError, LLMError
from actors.response import EmbeddingResponse, StreamChunk

if TYPE_CHECKING:
    from actors.proxy import Request as WrapperRequest

__all__ = ["create_app"]

_log = structlog.get_logger("llm_actors.daemon")
_perf = time.perf_counter


def create_app(state: DaemonState, cors_origins: Sequence[str] = ()) -> Any:
    """The daemon's ASGI app; with ``cors_origins``, browsers on those origins may call it."""
    h = _Handlers(state)
    routes = {
        "/v1/chat/completions": {"POST": h.chat_completions},
        "/v1/responses": {"POST": h.responses},
        "/v1/embeddings": {"POST": h.embeddings},
        "/v1/messages": {"POST": h.messages},
        "/v1/messages/count_tokens": {"POST": h.count_tokens},
        "/v1/models": {"GET": h.models},
        "/healthz": {"GET": h.healthz},
        "/readyz": {"GET": h.readyz},
        "/v1/stats": {"GET": h.stats},
        "/metrics": {"GET": h.metrics},
        "/admin/reload": {"POST": h.reload},
    }
    prefixed = {"/v1/models/": ("model_id", {"GET": h.model})}
    gateway = Gateway(Router(routes, prefixed, h.refused), state)
    if not cors_origins:
        return gateway
    # Outside the gateway: a preflight carries no key, and answers without reaching it.
    return CORSMiddleware(
        gateway,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=list(EXPOSED_HEADERS),
        max_age=600,
    )


#: The API routes a 404 lists.
_API_ROUTES = (
    "POST /v1/chat/completions",
    "POST /v1/responses",
    "POST /v1/embeddings",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
    "GET /v1/models",
    "GET /v1/models/{id}",
)


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = jsonio.dumps(obj, default=str)
    return Response(body, status, headers, media_type="application/json")


def _error(request: Request, error: APIError, extra: dict[str, str] | None = None) -> Response:
    body, headers = error_parts(request.scope["path"], error, request_info(request.scope).request_id)
    return _json(body, error.status, {**headers, **(extra or {})})


class _Handlers:
    """The endpoints, over one daemon state."""

    def __init__(self, state: DaemonState) -> None:
        self.state = state

    # -- chat ------------------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._chat(request, openai_api, openai_api.completion, openai_api.ChunkStream)

    async def messages(self, request: Request) -> Response:
        return await self._chat(request, anthropic_api, anthropic_api.message, anthropic_api.EventStream)

    async def responses(self, request: Request) -> Response:
        return await self._chat(request, responses_api, responses_api.response, responses_api.EventStream)

    async def embeddings(self, request: Request) -> Response:
        state = self.state
        info = request_info(request.scope)
        started = _perf()
        label = "unknown"
        try:
            ask = embeddings_api.parse(parse_json(await self._body(request)))
            info.model = ask.model
            wrapper = state.models.get(ask.model)
            label = ask.model
            call = wrapper.embed_request(ask.inputs, ask.params)
        except Exception as exc:
            error = _refusal(exc, param="model")
            state.metrics.observe(embeddings_api.API, label, error.status, _perf() - started)
            return _error(request, error)
        try:
            result = cast(EmbeddingResponse, await call.acomplete())
        except LLMError as exc:
            return self._failed(request, embeddings_api.API, label, call, exc, started)
        except Exception as exc:
            return self._crashed(request, embeddings_api.API, label, call, exc, started)
        info.instance, info.attempts = result.instance, len(result.attempts)
        state.metrics.observe(
            embeddings_api.API,
            label,
            200,
            _perf() - started,
            result.attempts,
            call.first_target,
            result.token_usage,
        )
        headers = trail(
            result.attempts,
            first_target=call.first_target,
            instance=result.instance,
            target=result.target,
            overhead=gateway_seconds(call, started),
        )
        return _json(embeddings_api.render(result, ask), 200, headers)

    async def count_tokens(self, request: Request) -> Response:
        try:
            body = parse_json(await self._body(request))
            chat = anthropic_api.parse(body)
            request_info(request.scope).model = chat.model
            wrapper = self.state.models.get(chat.model)
        except Exception as exc:
            return _error(request, _refusal(exc, param="messages"))
        count, source = await count_tokens.count(wrapper, body, chat)
        return _json({"input_tokens": count, "source": source}, 200, {"x-llm-actors-count-source": source})

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
            if wrapper.mode != "chat":
                raise APIError(
                    400,
                    "invalid_request",
                    f"model {chat.model!r} serves embeddings (its models have mode: embedding); "
                    "send embeddings to POST /v1/embeddings, chat to a model of chat models",
                    param="model",
                )
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
        except (TypeError, ValueError, LookupError, AttributeError, RecursionError) as exc:  # an odd shape
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
            trail(
                response.attempts,
                first_target=call.first_target,
                instance=response.instance,
                target=response.target,
                overhead=gateway_seconds(call, started),
            ),
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
            **trail(
                call.attempts,
                first_target=call.first_target,
                instance=instance,
                target=call.current_target(),
                count=count,
                overhead=gateway_seconds(call, started, in_progress=first is not None),
            ),
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
                tail = renderer.end()
            except LLMError as exc:  # after the first chunk: no fallback, an error event ends it
                error = from_llm_error(exc)
                status = error.status
                _log.warning("stream failed", request_id=info.request_id, model=chat.model, error=str(exc))
                tail = renderer.error(error)
            finally:
                await chunks.aclose()
                state.metrics.observe(
                    api, label, status, _perf() - started, call.attempts, call.first_target, renderer.usage
                )
            yield Tail(tail)  # the bookkeeping is done: these bytes end the request

        return StreamResponse(body(), media_type=renderer.media_type, headers=headers)

    def _failed(
        self, request: Request, api: str, label: str, call: WrapperRequest, exc: BaseException, started: float
    ) -> Response:
        error = from_llm_error(exc)
        info = request_info(request.scope)
        attempts = call.attempts
        info.attempts = len(attempts)
        info.instance = attempts[-1].instance if attempts else None
        self.state.metrics.observe(api, label, error.status, _perf() - started, attempts, call.first_target)
        headers = trail(attempts, first_target=call.first_target, overhead=gateway_seconds(call, started))
        return _error(request, error, headers)

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
        seconds = self.state.body_timeout
        try:
            # uvicorn bounds idle connections, not a body trickled a byte at a time.
            async with asyncio.timeout(seconds):
                async for part in request.stream():
                    size += len(part)
                    if size > limit:
                        raise _too_large(size, limit)
                    parts.append(part)
        except TimeoutError:
            raise _slow_body(size, seconds) from None
        return b"".join(parts)

    # -- catalogue, health, statistics -----------------------------------------------------------

    async def models(self, request: Request) -> Response:
        return _json({"object": "list", "data": self.state.models.listing()})

    async def model(self, request: Request) -> Response:
        """One model object; in Anthropic's shape when the client speaks Anthropic's API."""
        name = request.path_params["model_id"]
        entry = self.state.models.entry(name)
        if entry is None:
            return _error(request, self.state.models.not_found(name))
        if "anthropic-version" in request.headers:
            entry = {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
        return _json(entry)

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

    def refused(self, request: Request, status: int, headers: dict[str, str], meant: str | None) -> Response:
        """A path no route has (404; ``meant``: the route's path, asked with a slash too many or
        too few), or a method its route does not take (405)."""
        method, path = request.method, request.scope["path"]
        message = f"{method} {path}: {HTTPStatus(status).phrase}"
        kind = "invalid_request"
        if status == 404:  # not "model_not_found": the route is wrong, not the model
            kind = "no_route"
            if meant is not None:
                message += f" (did you mean {meant}?)"
            else:
                message += _missing_v1(method, path)
            message += f"; this gateway serves {', '.join(_API_ROUTES)}"
        return _error(request, APIError(status, kind, message), headers)


def _missing_v1(method: str, path: str) -> str:
    """A hint for a route asked without its ``/v1``, or with it twice: an SDK's ``base_url``
    with the wrong ending."""
    route = f"{method} /v1{path}"
    if route in _API_ROUTES or (method == "GET" and path.startswith("/models/")):
        return f" (did you mean /v1{path}? an OpenAI client's base_url ends in /v1)"
    if path.startswith("/v1/v1/"):
        return f" (did you mean {path[3:]}? an Anthropic client's base_url has no /v1)"
    return ""


def _refusal(exc: Exception, param: str) -> APIError:
    """The answer for a request refused before any instance was called; re-raises a bug."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, BadRequestError):
        return APIError(400, "invalid_request", str(exc), param=param)
    if isinstance(exc, LLMError):  # a wrapper for a pool or reference that could not be built
        return from_llm_error(exc)
    if isinstance(exc, (TypeError, ValueError, KeyError, AttributeError)):  # a body of an unexpected shape
        why = f"the request body has an unexpected shape ({type(exc).__name__}: {exc}); check it against the API"
        return APIError(400, "invalid_request", why)
    raise exc


def _slow_body(size: int, seconds: float) -> APIError:
    # Connection: close, so uvicorn drops the socket rather than read the rest of the trickle.
    return APIError(
        408,
        "request_timeout",
        f"the request body did not arrive within {seconds:g} s ({size} bytes came); send it "
        "whole and promptly, or ask the operator to raise serve --body-timeout",
        headers={"connection": "close"},
    )


def _too_large(size: int, limit: int) -> APIError:
    return APIError(
        413,
        "too_large",
        f"the request body has {size} bytes or more; this daemon takes at most {limit} (--max-body)",
    )
