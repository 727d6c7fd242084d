"""A streamed answer that notices the client leaving, with one plain asyncio task.

Under an ASGI 2.3 server (uvicorn), Starlette's ``StreamingResponse`` runs the body in an anyio
task group beside a disconnect listener: a task, a task group and cancel scopes per stream, on
the way to the first byte. Here the request's own task sends the body, and one watcher task
cancels it if the client goes away; that cancellation ends the stream quietly, as Starlette's
does, and the body's own ``finally`` (returning the lease, counting the request) runs at once.

A body may end with a ``Tail``: its last piece, sent with the end of the response in one write,
after the body has done its own bookkeeping. When a client sends its next request the moment it
has the last bytes, the daemon then has nothing left of the previous one to finish first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["StreamResponse", "Tail"]


class Tail(bytes):
    """The last piece of a streamed body."""

    __slots__ = ()


class _Watch:
    __slots__ = ("done", "gone", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.done = False  # the body is over: a disconnect now changes nothing
        self.gone = False  # the client left while the body was being sent

    def left(self, watcher: asyncio.Future[None]) -> None:
        if self.done or watcher.cancelled() or watcher.exception() is not None:
            return
        self.gone = True
        self.task.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamResponse(Response):
    """``body`` (bytes pieces) sent as they come, with status 200 and ``headers``."""

    def __init__(self, body: AsyncIterator[bytes], *, media_type: str, headers: Mapping[str, str]) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        watch = _Watch(task)
        watcher: asyncio.Future[None] | None = None
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for piece in self.body_iterator:
                if type(piece) is Tail:
                    await send({"type": "http.response.body", "body": piece, "more_body": False})
                    return
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                if watcher is None:  # made after the first piece, which need not wait for it
                    watcher = asyncio.ensure_future(_disconnected(receive))
                    watcher.add_done_callback(watch.left)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.gone:
                raise
            task.uncancel()  # we cancelled it: the client left, and that is not an error here
        finally:
            watch.done = True
            if watcher is not None:
                watcher.cancel()
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()  # end the body now (lease, metrics), not when it is collected
