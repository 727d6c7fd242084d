"""Sync and async drivers: carry out a ``RequestRun``'s decisions, doing the I/O themselves.

The sync drivers run on the caller's thread, the async ones on the caller's event loop; neither
asks an actor anything, and the async ones never block the loop. One construct, ``Attempt``,
owns each lease from the call to its return, for all four drivers: it bounds the attempt by the
request's deadline, judges how the attempt ended (success, failure, the deadline, cancellation)
and gives the lease back exactly once, on every path, through the state owner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from types import TracebackType
from typing import Any

from actors.errors import LLMCallError, LLMTimeoutError, StreamInterruptedError
from actors.outcome import Outcome
from actors.request import Call, Fail, LoopWaiter, RequestRun, Sleep, ThreadWaiter, Wait
from actors.resilience import PaceDecision, decide
from actors.response import LLMResponse, StreamChunk, TokenUsage

__all__ = ["Attempt", "StreamDeadline", "run_async", "run_sync", "stream_async", "stream_sync"]

_perf = time.perf_counter


class Attempt:
    """One leased attempt, from the call to the lease's return.

    ``until`` (monotonic seconds) is the one bound the request's deadline puts on the attempt,
    for sync and async alike: a whole reply must arrive by ``now + call.timeout`` (the
    instance's or tier's timeout, clipped by the deadline); a stream may run, chunk by chunk,
    until the deadline itself. Sync callers hand it to the provider (a blocked thread cannot be
    interrupted from outside); async callers wait under ``bound()``. A timeout the deadline
    caused is the caller's clock running out: no verdict on the instance.

    Use it as ``with`` (sync) or ``async with`` (async): leaving the block gives the lease back
    with the verdict reached inside it, or as cancelled when none was.
    """

    __slots__ = (
        "call",
        "complete",
        "first",
        "judged",
        "last",
        "lease",
        "outcome",
        "pace",
        "parts",
        "reason",
        "retry_after",
        "run",
        "start",
        "tokens",
        "ttfb",
        "until",
    )

    def __init__(self, run: RequestRun, call: Call, *, stream: bool = False) -> None:
        self.run = run
        self.call = call
        self.lease = call.lease
        self.start = _perf()
        self.until = run.deadline if stream else run.clock() + call.timeout
        self.judged = False
        self.outcome: Outcome | None = None
        self.retry_after: float | None = None
        self.reason = "cancelled"
        self.tokens = 0
        self.pace: PaceDecision | None = None  # what a success's rate-limit headers ask for
        self.ttfb: float | None = None  # seconds to the first byte, on success
        self.first: float | None = None  # streams: seconds to the first chunk
        self.parts: list[str] = []  # streams: what reached the caller
        self.last: StreamChunk | None = None
        self.complete = False  # streams: the final chunk (with ``finish_reason``) arrived

    # -- the lease's return ---------------------------------------------------------------------

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.judged:
            self._settle()
        run = self.run
        run.state.give_back(
            self.lease,
            self.outcome,
            run.clock(),
            retry_after=self.retry_after,
            reason=self.reason,
            tokens=self.tokens,
            pace=self.pace,
            ttfb=self.ttfb,
        )

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.judged:
            self._settle()
        run = self.run
        await run.state.agive_back(
            self.lease,
            self.outcome,
            run.clock(),
            retry_after=self.retry_after,
            reason=self.reason,
            tokens=self.tokens,
            pace=self.pace,
            ttfb=self.ttfb,
        )

    def _settle(self) -> None:
        if self.complete:  # the caller stopped reading after the final chunk: a success
            self.done()
        else:
            self.judged = True
            self.run.cancelled(self.lease)

    # -- verdicts -------------------------------------------------------------------------------

    def bound(self) -> asyncio.Timeout:
        """The deadline's bound on what the async caller awaits next."""
        return asyncio.timeout(max(0.001, self.until - self.run.clock()))

    def succeeded(self, response: LLMResponse) -> LLMResponse:
        self.judged = True
        self.outcome = Outcome.SUCCESS
        self.reason = ""
        self.tokens = response.token_usage.total_tokens
        duration = _perf() - self.start
        # A whole reply's first usable byte is its last; a stream's is its first chunk.
        self.ttfb = duration if self.first is None else self.first
        if response.rate_limits is not None:
            self.pace = decide(response.rate_limits, self.tokens)
        return self.run.succeeded(self.lease, response, duration)

    def failed(self, error: LLMCallError) -> None:
        """Judge ``error``, unless the request's own deadline cut the attempt short; may raise
        it again (the caller's fault)."""
        if self.call.clipped and isinstance(error, LLMTimeoutError):
            self._expired()
        else:
            self._failed(error)

    def timed_out(self) -> LLMTimeoutError:
        member = self.lease.member
        return LLMTimeoutError(
            f"no complete answer within {self.call.timeout:.3g} s",
            instance=member.name,
            provider=member.provider,
        )

    def _expired(self) -> None:
        self.judged = True
        self.reason = "deadline"
        self.run.expired(self.lease)

    def _failed(self, error: LLMCallError) -> None:
        self.judged = True
        self.outcome = error.outcome
        self.retry_after = error.retry_after
        self.reason = str(error)
        self.run.failed(self.lease, error, _perf() - self.start)

    # -- streams --------------------------------------------------------------------------------

    def add(self, chunk: StreamChunk) -> None:
        """Take a chunk; past the deadline, end the stream (the caller's clock ran out)."""
        if chunk.finish_reason is not None:
            self.complete = True
        elif self.run.clock() >= self.until:
            raise self.timed_out()  # before the chunk counts: the caller never gets it
        if self.first is None:
            self.first = _perf() - self.start
        if chunk.delta:
            self.parts.append(chunk.delta)
        self.last = chunk

    def done(self) -> None:
        last = self.last or StreamChunk()
        response = LLMResponse(
            content="".join(self.parts),
            model=last.model,
            instance=self.lease.member.name,
            token_usage=last.usage or TokenUsage(),
            finish_reason=last.finish_reason,
            tool_calls=list(last.tool_calls),
            rate_limits=last.rate_limits,
        )
        self.succeeded(response)

    def stream_failed(self, exc: LLMCallError) -> BaseException | None:
        """Judge a failed stream; None means fall back (nothing reached the caller yet)."""
        run = self.run
        # Past the deadline the attempt was cut off by the caller's clock (however the
        # provider reports it): no verdict on the instance.
        past = run.clock() >= self.until
        if self.last is None:
            if past:
                self._expired()
            else:
                self.failed(exc)
            return None
        # After the first chunk there is no fallback; the breaker hears of a real failure.
        if past:
            self._expired()
        else:
            try:
                self._failed(exc)
            except LLMCallError:
                pass
        run.plan.stop()
        run.delay = 0.0
        if isinstance(exc, StreamInterruptedError):
            return exc
        return StreamInterruptedError(
            f"stream failed after its first chunk: {exc.message}",
            partial_text="".join(self.parts),
            instance=self.lease.member.name,
            provider=exc.provider,
            status_code=exc.status_code,
        )


class StreamDeadline:
    """A stream's deadline as one timer for the whole stream, not one per chunk (a timeout per
    read schedules and cancels a timer for every chunk): it cancels the reading task only while
    that task waits for the next chunk, as ``asyncio.timeout`` would."""

    __slots__ = ("attempt", "fired", "handle", "reading")

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.fired = False  # the deadline has passed
        self.reading: asyncio.Task[Any] | None = None  # the task waiting for a chunk, if any
        delay = max(0.001, attempt.until - attempt.run.clock())
        self.handle = asyncio.get_running_loop().call_later(delay, self._expire)

    def close(self) -> None:
        """Drop the timer: the stream has ended."""
        self.handle.cancel()

    def _expire(self) -> None:
        self.fired = True
        if self.reading is not None:
            self.reading.cancel()

    async def read(self, chunks: AsyncIterator[StreamChunk]) -> StreamChunk:
        """The next chunk; ``TimeoutError`` if the deadline passes first."""
        if self.fired:  # past it between reads: a last bound, as a per-read timeout would give
            async with self.attempt.bound():
                return await chunks.__anext__()
        task = self.reading = asyncio.current_task()
        assert task is not None
        try:
            return await chunks.__anext__()
        except asyncio.CancelledError:
            # Ours, unless someone else cancelled the task too (then theirs goes on up).
            if self.fired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self.reading = None


def _idle(action: Wait | Sleep | Fail) -> None:
    """Wait for a permit, back off, or raise the request's error, on this thread."""
    if isinstance(action, Wait):
        action.waiter.wait(action.timeout)
    elif isinstance(action, Sleep):
        time.sleep(action.delay)
    else:
        raise action.error


async def _aidle(action: Wait | Sleep | Fail) -> None:
    """``_idle`` on the running event loop."""
    if isinstance(action, Wait):
        await action.waiter.wait(action.timeout)
    elif isinstance(action, Sleep):
        await asyncio.sleep(action.delay)
    else:
        raise action.error


def run_sync(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any], method: str = "call"
) -> LLMResponse:
    """Drive ``run`` to one response or one error on this thread; ``method`` names the provider's
    call (``embed`` for embeddings, whose ``messages`` are the inputs)."""
    try:
        while True:
            action = run.next(ThreadWaiter)
            if isinstance(action, Call):
                lease = action.lease
                with Attempt(run, action) as attempt:
                    try:
                        response = getattr(lease.member.gate.client, method)(
                            messages,
                            lease.target.merge(params),
                            timeout=action.timeout,
                            deadline=attempt.until,
                        )
                    except LLMCallError as exc:
                        attempt.failed(exc)
                        continue
                    return attempt.succeeded(response)
            else:
                _idle(action)
    finally:
        if run.waiter is not None:
            run.leave()


async def run_async(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any], method: str = "acall"
) -> LLMResponse:
    """Drive ``run`` to one response or one error on the running event loop (``method`` as in
    ``run_sync``: ``aembed`` for embeddings)."""
    try:
        while True:
            action = await run.anext(LoopWaiter)
            if isinstance(action, Call):
                lease = action.lease
                async with Attempt(run, action) as attempt:
                    try:
                        async with attempt.bound():
                            response = await getattr(lease.member.gate.client, method)(
                                messages, lease.target.merge(params), timeout=action.timeout
                            )
                    except TimeoutError:
                        attempt.failed(attempt.timed_out())
                        continue
                    except LLMCallError as exc:
                        attempt.failed(exc)
                        continue
                    return attempt.succeeded(response)
            else:
                await _aidle(action)
    finally:
        if run.waiter is not None:
            run.leave()


def stream_sync(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]
) -> Iterator[StreamChunk]:
    """Stream from the first instance that yields a chunk; fall back only before that chunk."""
    try:
        while True:
            action = run.next(ThreadWaiter)
            if isinstance(action, Call):
                lease = action.lease
                with Attempt(run, action, stream=True) as attempt:
                    try:
                        for chunk in lease.member.gate.client.stream(
                            messages,
                            lease.target.merge(params),
                            timeout=action.timeout,
                            deadline=attempt.until,
                        ):
                            attempt.add(chunk)
                            yield chunk
                    except LLMCallError as exc:
                        error = attempt.stream_failed(exc)
                        if error is None:
                            continue
                        raise error from exc
                    attempt.done()
                    return
            else:
                _idle(action)
    finally:
        if run.waiter is not None:
            run.leave()


async def stream_async(
    run: RequestRun, messages: list[dict[str, Any]], params: dict[str, Any]
) -> AsyncGenerator[StreamChunk, None]:
    """The async twin of ``stream_sync``."""
    try:
        while True:
            action = await run.anext(LoopWaiter)
            if isinstance(action, Call):
                lease = action.lease
                async with Attempt(run, action, stream=True) as attempt:
                    chunks = lease.member.gate.client.astream(
                        messages, lease.target.merge(params), timeout=action.timeout
                    )
                    # Keep-alives reset httpx's read timeout; this bounds each wait by the deadline.
                    deadline = StreamDeadline(attempt)
                    try:
                        while True:
                            try:
                                chunk = await deadline.read(chunks)
                            except StopAsyncIteration:
                                break
                            except TimeoutError:
                                raise attempt.timed_out() from None
                            attempt.add(chunk)
                            yield chunk
                    except LLMCallError as exc:
                        error = attempt.stream_failed(exc)
                        if error is None:
                            continue
                        raise error from exc
                    finally:
                        deadline.close()
                        await chunks.aclose()
                    attempt.done()
                    return
            else:
                await _aidle(action)
    finally:
        if run.waiter is not None:
            run.leave()
