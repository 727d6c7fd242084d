"""The gateway layer around the app (pure ASGI): request id, access log, in-flight count, drain, auth.

Each request gets an id (the client's ``x-request-id`` when it is a sane token, else a new one),
echoed in the response headers and put in the scope for the handlers, which note there what
the access log should say (model, instance, attempts). The access log line never contains a
header value other than the request id: no key, no ``Authorization``.

Whatever the app raises before its answer has begun is answered here, a 500 in the client's
shape (the traceback goes to the log); a client that left while its body was being read gets no
answer, and its line says 499.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import ClientDisconnect

from actors import jsonio
from actors.daemon import anthropic_api, openai_api
from actors.daemon.auth import OPEN_PATHS
from actors.daemon.errors import APIError, internal

if TYPE_CHECKING:
    from actors.daemon.state import DaemonState

__all__ = ["Gateway", "RequestInfo", "error_parts", "request_info"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

#: Paths still served while draining: probes and observability.
DRAIN_OPEN = frozenset({"/healthz", "/readyz", "/metrics", "/v1/stats"})

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("llm_actors.access")
_errors = structlog.get_logger("llm_actors.daemon")


class _RequestIds:
    """32 hex digits like a UUID's: a random prefix per process and a counter, without a system
    call per request (a uuid4 reads the kernel's random source every time)."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # forked workers must not repeat ids

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_ids = _RequestIds()


class RequestInfo:
    """What a handler tells the access log about its request."""

    __slots__ = ("attempts", "instance", "model", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.model: str | None = None
        self.instance: str | None = None
        self.attempts: int | None = None


def request_info(scope: Scope) -> RequestInfo:
    return scope["llm_actors"]


def error_parts(path: str, error: APIError, request_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The body (in the shape of the API ``path`` belongs to) and headers of an error answer."""
    if path.startswith("/v1/messages"):
        body = anthropic_api.error_body(error)
        body["request_id"] = request_id
    else:
        body = openai_api.error_body(error)
    return body, dict(error.headers)


class Gateway:
    """Wraps the app: every HTTP request passes here exactly once."""

    def __init__(self, app: ASGIApp, state: DaemonState) -> None:
        self.app = app
        self.state = state

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = self.state
        headers = scope["headers"]
        request_id = ""
        for name, value in headers:
            if name == b"x-request-id" and _REQUEST_ID.match(value):
                request_id = value.decode()
                break
        request_id = request_id or _ids.new()
        scope["llm_actors"] = RequestInfo(request_id)
        send_with_id = _Reply(scope, send, started)
        path = scope["path"]
        state.in_flight += 1
        try:
            if state.draining and path not in DRAIN_OPEN:
                error = APIError(
                    503, "unavailable", "the daemon is shutting down; send the request to another replica"
                )
                await _answer(send_with_id, path, error, request_id, [(b"connection", b"close")])
            elif path not in OPEN_PATHS and not state.keys.allows(headers):
                error = APIError(
                    401,
                    "authentication",
                    "missing or wrong API key: send Authorization: Bearer KEY or x-api-key: KEY",
                )
                await _answer(send_with_id, path, error, request_id, [(b"www-authenticate", b"Bearer")])
            else:
                await self.app(scope, receive, send_with_id)
        except ClientDisconnect:  # it left while its body was being read: nobody to answer
            pass
        except Exception as exc:
            if send_with_id.status:  # the answer had begun: the server cuts the connection
                raise
            _errors.error("request crashed", request_id=request_id, exc_info=exc)
            await _answer(send_with_id, path, internal(exc), request_id, [])
        finally:
            state.in_flight -= 1
            send_with_id.log()  # if no answer ended: the line says what happened instead


class _Reply:
    """A request's ``send``: adds the request id to the answer's head, and writes the access line
    just before the answer's last bytes go out. Once the client has them it may send its next
    request at once, and then nothing of this one is left to do first."""

    __slots__ = ("info", "logged", "scope", "send", "started", "status")

    def __init__(self, scope: Scope, send: Callable[[Message], Awaitable[None]], started: float) -> None:
        self.scope = scope
        self.info = request_info(scope)
        self.send = send
        self.started = started
        self.status = 0
        self.logged = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [
                *message.get("headers", ()),
                (b"x-request-id", self.info.request_id.encode()),
            ]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.log()
        await self.send(message)

    def log(self) -> None:
        if self.logged:
            return
        self.logged = True
        scope, info = self.scope, self.info
        _log.info(
            "request",
            method=scope["method"],
            path=scope["path"],
            status=self.status or 499,  # 499: the client went away before an answer started
            duration_ms=round((time.perf_counter() - self.started) * 1000, 2),
            model=info.model,
            instance=info.instance,
            attempts=info.attempts,
            request_id=info.request_id,
            client=(scope.get("client") or ("", 0))[0],
        )


async def _answer(
    send: Callable[[Message], Awaitable[None]],
    path: str,
    error: APIError,
    request_id: str,
    extra: list[tuple[bytes, bytes]],
) -> None:
    body, headers = error_parts(path, error, request_id)
    data = jsonio.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
