"""The daemon's own ASGI layers, driven in-process: the route table, the streamed body's tail,
and the gateway's access line, which is written before the answer's last bytes leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from structlog.testing import capture_logs

from actors.daemon.auth import KeyCheck
from actors.daemon.middleware import Gateway
from actors.daemon.router import Router
from actors.daemon.streaming import StreamResponse, Tail


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
    }


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _drive(app: Any, method: str, path: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(_scope(method, path), _no_body, send))
    return sent


def _status_and_body(sent: list[dict[str, Any]]) -> tuple[int, dict[str, str], bytes]:
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


class _Table:
    async def models(self, request: Request) -> Response:
        return Response(b"all models")

    async def model(self, request: Request) -> Response:
        return Response(request.path_params["model_id"].encode())

    def refused(self, request: Request, status: int, headers: dict[str, str], meant: str | None) -> Response:
        body = f"refused {request.method} {request.scope['path']}" + (f", meant {meant}" if meant else "")
        return Response(body.encode(), status, headers)

    def router(self) -> Router:
        routes = {"/v1/models": {"GET": self.models}, "/v1/chat": {"POST": self.models}}
        return Router(routes, {"/v1/models/": ("model_id", {"GET": self.model})}, self.refused)


def test_the_route_table_finds_handlers_by_path_and_method() -> None:
    router = _Table().router()
    assert _status_and_body(_drive(router, "GET", "/v1/models"))[::2] == (200, b"all models")
    # The rest of a prefixed path is its parameter, slashes and all.
    assert _status_and_body(_drive(router, "GET", "/v1/models/org/name-1"))[::2] == (200, b"org/name-1")
    status, headers, _body = _status_and_body(_drive(router, "HEAD", "/v1/models"))
    assert status == 200 and headers["content-length"] == str(len(b"all models"))  # HEAD runs the GET


def test_unknown_paths_and_methods_are_refused() -> None:
    router = _Table().router()
    assert _status_and_body(_drive(router, "GET", "/v1/nothing"))[::2] == (404, b"refused GET /v1/nothing")
    status, headers, _ = _status_and_body(_drive(router, "DELETE", "/v1/models"))
    assert status == 405 and headers["allow"] == "GET, HEAD"
    # A slash too many or too few: a GET is redirected (probes follow), a POST told what was meant.
    status, headers, _ = _status_and_body(_drive(router, "GET", "/v1/models/"))
    assert status == 307 and headers["location"] == "http://127.0.0.1/v1/models"
    status, _, body = _status_and_body(_drive(router, "POST", "/v1/chat/"))
    assert (status, body) == (404, b"refused POST /v1/chat/, meant /v1/chat")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(router({"type": "websocket", "path": "/v1/models"}, _no_body, send))
    assert sent == [{"type": "websocket.close", "code": 1000}]


def test_a_streamed_body_ends_with_its_tail_in_the_same_message_as_the_end() -> None:
    done: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"
        done.append("bookkeeping")
        yield Tail(b"end")
        done.append("never")  # the response stops at the tail

    sent = _drive(StreamResponse(body(), media_type="text/event-stream", headers={}), "GET", "/")
    pieces = [(m["body"], m["more_body"]) for m in sent[1:]]
    assert pieces == [(b"one", True), (b"two", True), (b"end", False)]
    assert done == ["bookkeeping"]

    async def untailed() -> AsyncIterator[bytes]:
        yield b"one"

    sent = _drive(StreamResponse(untailed(), media_type="text/event-stream", headers={}), "GET", "/")
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [(b"one", True), (b"", False)]


class _State:
    in_flight = 0
    draining = False
    keys = KeyCheck(None)


def test_the_access_line_is_written_before_the_last_bytes_leave() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": False})

    lines_when_sent: list[int] = []
    with capture_logs() as logs:

        async def send(message: dict[str, Any]) -> None:
            lines_when_sent.append(len([e for e in logs if e["event"] == "request"]))

        asyncio.run(Gateway(app, _State())(_scope("POST", "/v1/x"), _no_body, send))  # type: ignore[arg-type]
    assert lines_when_sent == [0, 0, 1]  # written once, just before the last message
    [line] = [e for e in logs if e["event"] == "request"]
    assert line["status"] == 201 and line["path"] == "/v1/x"


def test_a_bug_before_the_answer_is_a_500_in_the_clients_shape_and_after_it_cuts_the_connection() -> None:
    async def early(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    async def late(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("a bug")

    with capture_logs() as logs:
        sent = _drive(Gateway(early, _State()), "POST", "/v1/messages")  # type: ignore[arg-type]
    status, _, body = _status_and_body(sent)
    assert status == 500 and orjson.loads(body)["error"]["type"] == "api_error"  # Anthropic's shape
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["request crashed"]
    with pytest.raises(RuntimeError):  # uvicorn then closes the connection: the head is out
        _drive(Gateway(late, _State()), "GET", "/v1/models")  # type: ignore[arg-type]


def test_a_client_that_leaves_while_sending_its_body_is_a_499_not_a_crash() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ClientDisconnect

    with capture_logs() as logs:
        assert _drive(Gateway(app, _State()), "POST", "/v1/chat/completions") == []  # type: ignore[arg-type]
    assert [(e["event"], e.get("status")) for e in logs] == [("request", 499)]


def test_an_answer_that_never_ends_is_logged_once_as_the_client_leaving() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError  # the client left before any answer

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    with capture_logs() as logs:
        try:
            asyncio.run(Gateway(app, _State())(_scope("GET", "/v1/models"), _no_body, send))  # type: ignore[arg-type]
        except asyncio.CancelledError:
            pass
    assert [e["status"] for e in logs if e["event"] == "request"] == [499]


def test_the_daemon_answers_head_and_a_crash_in_the_clients_shape() -> None:
    # The whole app as create_app builds it, over a state without a runtime: the readiness
    # handler fails on it, and the client still gets an OpenAI-shaped 500 it can read.
    from actors.daemon.app import create_app

    app = create_app(_State())  # type: ignore[arg-type]
    assert _status_and_body(_drive(app, "HEAD", "/healthz"))[0] == 200
    status, _, body = _status_and_body(_drive(app, "GET", "/v1/nothing"))
    assert status == 404 and "this gateway serves" in orjson.loads(body)["error"]["message"]
    status, _, body = _status_and_body(_drive(app, "POST", "/v1/chat/completions/"))
    assert status == 404 and "did you mean /v1/chat/completions?" in body.decode()
    assert _status_and_body(_drive(app, "GET", "/healthz/"))[0] == 307  # probes follow it
    with capture_logs() as logs:
        status, _, body = _status_and_body(_drive(app, "GET", "/readyz"))
    assert status == 500
    assert orjson.loads(body)["error"]["message"] == "internal error: AttributeError; see the daemon's log"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["request crashed"]
