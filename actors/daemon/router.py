"""The daemon's routes as a table: path and method to handler, in one dictionary look-up.

The routes are fixed and all but one are exact paths. Starlette's router would try each route's
pattern in turn, behind two middleware layers that each wrap ``send`` again, so every event of a
stream would pass three more coroutines on its way out; the table keeps Starlette's ``Request``
and ``Response`` and drops the rest. A GET route answers HEAD too, as Starlette's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["Handler", "Router"]

Handler = Callable[[Request], Awaitable[Response]]
#: What answers a path no route has (404) or a method its route does not take (405, with the
#: ``allow`` header given).
Refusal = Callable[[Request, int, dict[str, str]], Response]
#: What answers when a handler raises (and logs why): a 500 in the client's shape.
Crash = Callable[[Request, Exception], Response]


def _with_head(methods: Mapping[str, Handler]) -> dict[str, Handler]:
    table = dict(methods)
    if "GET" in table:
        table.setdefault("HEAD", table["GET"])
    return table


class Router:
    """``routes`` maps a path to its handlers by method; ``prefixed`` maps a path prefix to the
    name of the parameter the rest of the path is (``/v1/models/`` to ``model_id``) and its handlers."""

    def __init__(
        self,
        routes: Mapping[str, Mapping[str, Handler]],
        prefixed: Mapping[str, tuple[str, Mapping[str, Handler]]],
        refuse: Refusal,
        crashed: Crash,
    ) -> None:
        self.routes = {path: _with_head(methods) for path, methods in routes.items()}
        self.prefixed = [(prefix, name, _with_head(methods)) for prefix, (name, methods) in prefixed.items()]
        self.refuse = refuse
        self.crashed = crashed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no WebSocket routes (the server is told not to offer them)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        methods = self.routes.get(path)
        if methods is None:
            for prefix, name, table in self.prefixed:
                if path.startswith(prefix) and len(path) > len(prefix):
                    scope["path_params"] = {name: path[len(prefix) :]}
                    methods = table
                    break
        request = Request(scope, receive)
        if methods is None:
            response = self.refuse(request, 404, {})
        else:
            handler = methods.get(scope["method"])
            if handler is None:
                response = self.refuse(request, 405, {"allow": ", ".join(sorted(methods))})
            else:
                try:
                    response = await handler(request)
                except Exception as exc:  # a bug: still an answer in the client's shape
                    response = self.crashed(request, exc)
        await response(scope, receive, send)
