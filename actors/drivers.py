"""Sync and async drivers: carry out a ``RequestRun``'s decisions, doing the I/O themselves.

The sync drivers run on the caller's thread, the async ones on the caller's event loop; neither
asks an actor anything, and the async ones never block the loop. Every path returns its lease
exactly once: on success, on a classified failure, and on cancellation or interruption.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from actors.errors import LLMCallError, LLMTimeoutError, StreamInterruptedError
from actors.request import Call, Fail, LoopWaiter, RequestRun, Sleep, ThreadWaiter, Wait
from actors.response import LLMResponse, StreamChunk, TokenUsage

__all__ = ["run_async", "run_sync", "stream_async", "stream_sync"]

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
                    response = lease.member.gate.client.call(
                        messages, lease.target.merge(params), timeout=action.timeout, deadline=run.deadline
                    )
                except LLMCallError as exc:
                    lease = None
                    run.call_failed(action, exc, _perf() - start)
                    continue
                lease = None
                return run.succeeded(action.lease, response, _perf() - start)
            if type(action) is Wait:
                action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                time.sleep(action.delay)
            else:
                assert isinstance(action, Fail)  # the only other action
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
                    # httpx bounds each read; this bounds the whole call by the attempt's time.
                    async with asyncio.timeout(action.timeout):
                        response = await lease.member.gate.client.acall(
                            messages, lease.target.merge(params), timeout=action.timeout
                        )
                except TimeoutError:
                    lease = None
                    run.call_failed(action, _timed_out(action), _perf() - start)
                    continue
                except LLMCallError as exc:
                    lease = None
                    run.call_failed(action, exc, _perf() - start)
                    continue
                lease = None
                return run.succeeded(action.lease, response, _perf() - start)
            if type(action) is Wait:
                await action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                await asyncio.sleep(action.delay)
            else:
                assert isinstance(action, Fail)  # the only other action
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


def _timed_out(action: Call) -> LLMTimeoutError:
    member = action.lease.member
    return LLMTimeoutError(
        f"no complete answer within {action.timeout:.3g} s",
        instance=member.name,
        provider=member.provider,
    )


class _StreamAttempt:
    """One streamed attempt: what it delivered, and what its ending means for the request."""

    __slots__ = ("call", "complete", "last", "parts", "run", "start")

    def __init__(self, run: RequestRun, call: Call) -> None:
        self.run = run
        self.call = call
        self.parts: list[str] = []
        self.last: StreamChunk | None = None
        self.start = _perf()
        self.complete = False  # the final chunk (with ``finish_reason``) arrived

    def add(self, chunk: StreamChunk) -> None:
        """Take a chunk; past the request's deadline, end the stream (the caller's clock ran out)."""
        if chunk.finish_reason is not None:
            self.complete = True
        elif self.run.past_deadline():
            raise _timed_out(self.call)  # before the chunk counts: the caller never gets it
        if chunk.delta:
            self.parts.append(chunk.delta)
        self.last = chunk

    def done(self) -> None:
        last = self.last or StreamChunk()
        response = LLMResponse(
            content="".join(self.parts),
            model=last.model,
            instance=self.call.lease.member.name,
            token_usage=last.usage or TokenUsage(),
            finish_reason=last.finish_reason,
            tool_calls=list(last.tool_calls),
        )
        self.run.succeeded(self.call.lease, response, _perf() - self.start)

    def failed(self, exc: LLMCallError) -> BaseException | None:
        """Record the failure; None means fall back (nothing reached the caller yet)."""
        run, duration = self.run, _perf() - self.start
        # Past the request's deadline the attempt was cut off by the caller's clock (however
        # the provider reports it): no verdict on the instance.
        past = run.past_deadline()
        if self.last is None:
            if past:
                run.expired(self.call.lease)
            else:
                run.call_failed(self.call, exc, duration)
            return None
        # After the first chunk there is no fallback; the breaker hears of a real failure.
        if past:
            run.expired(self.call.lease)
        else:
            try:
                run.failed(self.call.lease, exc, duration)
            except LLMCallError:
                pass
        run.plan.stop()
        run.delay = 0.0
        if isinstance(exc, StreamInterruptedError):
            return exc
        return StreamInterruptedError(
            f"stream failed after its first chunk: {exc.message}",
            partial_text="".join(self.parts),
            instance=self.call.lease.member.name,
            provider=exc.provider,
            status_code=exc.status_code,
        )

    def closed_early(self) -> bool:
        """The caller stopped reading. After the final chunk that is a success; give it back so."""
        if self.complete:
            self.done()
        return self.complete


def stream_sync(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]
) -> Iterator[StreamChunk]:
    """Stream from the first instance that yields a chunk; fall back only before that chunk."""
    lease = None
    try:
        while True:
            action = run.next(ThreadWaiter)
            if type(action) is Call:
                lease = action.lease
                attempt = _StreamAttempt(run, action)
                try:
                    for chunk in lease.member.gate.client.stream(
                        messages, lease.target.merge(params), timeout=action.timeout, deadline=run.deadline
                    ):
                        attempt.add(chunk)
                        yield chunk
                except GeneratorExit:
                    if attempt.closed_early():
                        lease = None
                    raise
                except LLMCallError as exc:
                    lease = None
                    error = attempt.failed(exc)
                    if error is None:
                        continue
                    raise error from exc
                lease = None
                attempt.done()
                return
            if type(action) is Wait:
                action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                time.sleep(action.delay)
            else:
                assert isinstance(action, Fail)  # the only other action
                raise action.error
    except BaseException:
        run.abort(lease)
        raise


async def stream_async(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]
) -> AsyncGenerator[StreamChunk, None]:
    """The async twin of ``stream_sync``."""
    lease = None
    try:
        while True:
            action = run.next(LoopWaiter)
            if type(action) is Call:
                lease = action.lease
                attempt = _StreamAttempt(run, action)
                chunks = lease.member.gate.client.astream(
                    messages, lease.target.merge(params), timeout=action.timeout
                )
                try:
                    while True:
                        # Keep-alives reset httpx's read timeout; this bounds each wait by the deadline.
                        try:
                            async with asyncio.timeout(max(0.001, run.deadline - run.clock())):
                                chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            raise _timed_out(action) from None
                        attempt.add(chunk)
                        yield chunk
                except GeneratorExit:
                    if attempt.closed_early():
                        lease = None
                    raise
                except LLMCallError as exc:
                    lease = None
                    error = attempt.failed(exc)
                    if error is None:
                        continue
                    raise error from exc
                finally:
                    await chunks.aclose()
                lease = None
                attempt.done()
                return
            if type(action) is Wait:
                await action.waiter.wait(action.timeout)
            elif type(action) is Sleep:
                await asyncio.sleep(action.delay)
            else:
                assert isinstance(action, Fail)  # the only other action
                raise action.error
    except BaseException:
        run.abort(lease)
        raise
