"""One request through a wrapper, keeping its attempts for the response headers and metrics.

``WrapperProxy.generate_async`` returns the attempts only on success, and a stream's attempts
are not visible at all until it ends; the gateway needs them on every path (the headers go out
with the first chunk, and metrics count failed requests' attempts too). So a ``Call`` drives
the same request run, with the same drivers and the same statistics, as the wrapper's own
methods do, and keeps the run in view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

from actors.drivers import run_async, stream_async
from actors.response import Attempt, LLMResponse, StreamChunk

if TYPE_CHECKING:
    from actors.proxy import WrapperProxy

__all__ = ["Call"]


class Call:
    """A request on ``wrapper``: ``await complete()`` or ``async for chunk in stream()``, once.

    Raises ``BadRequestError`` at construction when the messages cannot be understood.
    """

    __slots__ = ("wrapper", "run", "messages", "params")

    def __init__(self, wrapper: WrapperProxy, messages: Any, params: dict[str, Any]) -> None:
        self.wrapper = wrapper
        # The wrapper's own request set-up: the same plan, deadline, backoff and reporting.
        self.run, self.messages, self.params = wrapper._start(messages, params, {})

    @property
    def attempts(self) -> list[Attempt]:
        return self.run.attempts

    @property
    def first_target(self) -> str:
        """The label of the route's first step: an answer from elsewhere is a fallback."""
        steps = self.wrapper.route.steps
        return steps[0].label if steps else ""

    def current_target(self) -> str:
        """The target the attempt now running was leased from (for a stream's headers)."""
        step = self.run.plan.step
        return step.target.label if step is not None else ""

    async def complete(self) -> LLMResponse:
        try:
            response = await run_async(self.run, self.messages, self.params)
        except BaseException as exc:
            self.wrapper._finish(self.run, None, exc)
            raise
        self.wrapper._finish(self.run, response, None)
        return response

    async def stream(self) -> AsyncIterator[StreamChunk]:
        run = self.run
        try:
            async for chunk in stream_async(run, self.messages, self.params):
                yield chunk
        except BaseException as exc:
            self.wrapper._finish(run, None, exc)
            raise
        self.wrapper._finish(run, run.response, None)
