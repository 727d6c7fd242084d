"""Sync and async drivers: carry out a ``RequestRun``'s decisions, doing the I/O themselves.

The sync drivers run on the caller's thread, the async ones on the caller's event loop; neither
asks an actor anything, and the async ones never block the loop. Every path returns its lease
exactly once: on success, on a classified failure, and on cancellation or interruption.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Iterator

from actors.errors import LLMCallError, StreamInterruptedError
from actors.request import Call, Fail, LoopWaiter, RequestRun, Sleep, ThreadWaiter, Wait
from actors.response import LLMResponse, StreamChunk, TokenUsage

__all__ = ["run_sync", "run_async", "stream_sync", "stream_async"]

_perf = time.perf_counter


def run_sync(run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]) -> LLMResponse:
    """Drive ``run`` to one response or one error on this thread."""
    lease = None
    try:
        while True:
            action = run.next(ThreadWaiter)
            if type(action) is Call:
                lease = action.lease
                start = _perf()
                try:
                    response = lease.member.gate.client.call(messages, lease.target.merge(params), timeout=action.timeout)
                except LLMCallError as exc:
                    lease = None
                    run.failed(action.lease, exc, _perf() - start)
                    continue
                lease = None
                return run.succeeded(action.lease, response, _perf() - start)
            if type(action) is Wait:
                action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                time.sleep(action.delay)
            else:
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


async def run_async(run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]) -> LLMResponse:
    """Drive ``run`` to one response or one error on the running event loop."""
    lease = None
    try:
        while True:
            action = run.next(LoopWaiter)
            if type(action) is Call:
                lease = action.lease
                start = _perf()
                try:
                    response = await lease.member.gate.client.acall(messages, lease.target.merge(params), timeout=action.timeout)
                except LLMCallError as exc:
                    lease = None
                    run.failed(action.lease, exc, _perf() - start)
                    continue
                lease = None
                return run.succeeded(action.lease, response, _perf() - start)
            if type(action) is Wait:
                await action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                await asyncio.sleep(action.delay)
            else:
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


class _StreamTally:
    """What a stream delivered so far, to build the final response and partial-text errors."""

    __slots__ = ("parts", "last")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.last: StreamChunk | None = None

    def add(self, chunk: StreamChunk) -> None:
        if chunk.delta:
            self.parts.append(chunk.delta)
        self.last = chunk

    def response(self, instance: str) -> LLMResponse:
        last = self.last or StreamChunk()
        return LLMResponse(
            content="".join(self.parts),
            model=last.model,
            instance=instance,
            token_usage=last.usage or TokenUsage(),
            finish_reason=last.finish_reason,
            tool_calls=list(last.tool_calls),
        )

    def interrupted(self, exc: LLMCallError, instance: str) -> StreamInterruptedError:
        if isinstance(exc, StreamInterruptedError):
            return exc
        return StreamInterruptedError(
            f"stream failed after its first chunk: {exc.message}",
            partial_text="".join(self.parts),
            instance=instance,
            provider=exc.provider,
            status_code=exc.status_code,
        )


def stream_sync(run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]) -> Iterator[StreamChunk]:
    """Stream from the first instance that yields a chunk; fall back only before that chunk."""
    lease = None
    try:
        while True:
            action = run.next(ThreadWaiter)
            if type(action) is Call:
                lease = action.lease
                name = lease.member.name
                tally = _StreamTally()
                start = _perf()
                try:
                    for chunk in lease.member.gate.client.stream(messages, lease.target.merge(params), timeout=action.timeout):
                        tally.add(chunk)
                        yield chunk
                except LLMCallError as exc:
                    held, lease = lease, None
                    if tally.last is None:
                        run.failed(held, exc, _perf() - start)
                        continue
                    _fail_quietly(run, held, exc, _perf() - start)
                    raise tally.interrupted(exc, name) from exc
                held, lease = lease, None
                run.succeeded(held, tally.response(name), _perf() - start)
                return
            if type(action) is Wait:
                action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                time.sleep(action.delay)
            else:
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


async def stream_async(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]
) -> AsyncIterator[StreamChunk]:
    """The async twin of ``stream_sync``."""
    lease = None
    try:
        while True:
            action = run.next(LoopWaiter)
            if type(action) is Call:
                lease = action.lease
                name = lease.member.name
                tally = _StreamTally()
                start = _perf()
                try:
                    async for chunk in lease.member.gate.client.astream(messages, lease.target.merge(params), timeout=action.timeout):
                        tally.add(chunk)
                        yield chunk
                except LLMCallError as exc:
                    held, lease = lease, None
                    if tally.last is None:
                        run.failed(held, exc, _perf() - start)
                        continue
                    _fail_quietly(run, held, exc, _perf() - start)
                    raise tally.interrupted(exc, name) from exc
                held, lease = lease, None
                run.succeeded(held, tally.response(name), _perf() - start)
                return
            if type(action) is Wait:
                await action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                await asyncio.sleep(action.delay)
            else:
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


def _fail_quietly(run: RequestRun, lease: Any, exc: LLMCallError, duration: float) -> None:
    """Record a mid-stream failure for the breaker and stats; no fallback after the first chunk."""
    try:
        run.failed(lease, exc, duration)
    except LLMCallError:
        pass
    run.plan.index = len(run.plan.steps)
    run.delay = 0.0
