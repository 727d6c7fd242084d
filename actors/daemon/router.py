"""The daemon's routes as a table: path and method to handler, in one dictionary look-up.

The routes are fixed and all but one are exact paths. Starlette's router would try each route's
pattern in turn, behind two middleware layers that each wrap ``send`` again, so every event of a
stream would pass three more coroutines on its way out; the table keeps Starlette's ``Request``
and ``Response`` and drops the rest. As Starlette's router does, a GET route answers HEAD too,
and a GET for a route's path with a slash too many or too few is redirected to it (probes and
scrapers follow); any other method gets the refusal, which can say which path was meant (an SDK
does not follow a redirect of a POST). What a handler raises goes up to the gateway, which
answers it in the client's shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

__all__ = ["Handler", "Refusal", "Router"]

Handler = Callable[[Request], Awaitable[Response]]
#: What answers a path no route has (404; with the route's path when the request had a slash
#: too many or too few) or a method its route does not take (405, with the ``allow`` header).
Refusal = Callable[[Request, int, dict[str, str], str | None], Response]


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
    ) -> None:
        self.routes = {path: _with_head(methods) for path, methods in routes.items()}
        self.prefixed = [(prefix, name, _with_head(methods)) for prefix, (name, methods) in prefixed.items()]
        self.refuse = refuse

    def _find(self, scope: Scope, path: str) -> dict[str, Handler] | None:
        methods = self.routes.get(path)
        if methods is None:
            for prefix, name, table in self.prefixed:
                if path.startswith(prefix) and len(path) > len(prefix):
                    scope["path_params"] = {name: path[len(prefix) :]}
                    return table
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no WebSocket routes: closed before it is accepted (a 403)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        methods = self._find(scope, path)
        request = Request(scope, receive)
        if methods is None:
            meant = path[:-1] if path.endswith("/") else path + "/"
            if path == "/" or meant not in self.routes:
                response = self.refuse(request, 404, {}, None)
            elif scope["method"] in ("GET", "HEAD"):
                response = RedirectResponse(request.url.replace(path=meant), 307)
            else:
                response = self.refuse(request, 404, {}, meant)
        else:
            handler = methods.get(scope["method"])
            if handler is None:
                response = self.refuse(request, 405, {"allow": ", ".join(sorted(methods))}, None)
            else:
                response = await handler(request)
        await response(scope, receive, send)
