"""Hedged drivers: when an attempt's first byte is late, the same request also goes elsewhere.

Used instead of ``actors.drivers``' four drivers for routes with ``fallback_config.hedge``. An
attempt with no first byte ``after`` seconds in (or the instance's p95; see ``HedgePolicy``)
gets a hedge: the same request on another instance the plan admits, leased without waiting,
up to ``max_extra`` of them, each one paid from the retry budget. The first answer wins (for a
stream: the first chunk); the others are cancelled, their leases given back with no verdict
(``Attempt`` settles them as cancelled, not failed). When every contender fails, the plan
decides what comes next, as for any failed attempt.

Contenders run as tasks on one event loop, where a call can be abandoned mid-read; a thread
blocked in a sync read cannot be. So sync callers' hedged requests run on the runtime's
``HedgeLoop`` (one event-loop thread, started on first use) while the caller waits, and a sync
stream takes its chunks from there one by one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

from actors.drivers import Attempt, StreamDeadline
from actors.drivers import _aidle as aidle  # waiting, backing off or failing, as the drivers do
from actors.errors import LLMCallError
from actors.request import Call, LoopWaiter, RequestRun
from actors.resilience import HedgePolicy
from actors.response import LLMResponse, StreamChunk
from actors.state.target import Lease

__all__ = ["HedgeCounts", "HedgeLoop", "run_hedged", "stream_hedged"]

T = TypeVar("T")

_END = object()  # a contender's stream ended


class HedgeCounts:
    """Hedged attempts by outcome: won (answered first), lost (cancelled), failed, refused (no budget)."""

    OUTCOMES = ("won", "lost", "failed", "refused")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = dict.fromkeys(self.OUTCOMES, 0)

    def add(self, outcome: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self.counts[outcome] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class _Race:
    """The contenders of one attempt: the original and its hedges, as tasks on this loop."""

    def __init__(self, run: RequestRun, hedge: HedgePolicy, counts: HedgeCounts, first: Call) -> None:
        self.run = run
        self.hedge = hedge
        self.counts = counts
        self.first = first
        self.tasks: dict[asyncio.Future[Any], tuple[Attempt, bool]] = {}  # task -> (attempt, hedge?)
        self.extra = 0
        self.launched_at = run.clock()
        self.stopped = False  # no more hedges for this attempt

    def next_hedge_in(self) -> float | None:
        """Seconds until the next hedge is due; None when none will be."""
        if self.stopped or self.extra >= self.hedge.max_extra:
            return None
        at = self.hedge.delay(self.first.lease.member.gate.ttfb)
        if at is None:
            return None
        return max(0.0, self.launched_at + at - self.run.clock())

    async def hedge_call(self) -> Call | None:
        """Lease a hedge now, or None (and no more hedges): no budget, no room, no time."""
        run, plan = self.run, self.run.plan
        now = run.clock()
        step = plan.step
        if now >= run.deadline or step is None or plan.attempts + len(self.tasks) >= plan.max_attempts:
            self.stopped = True
            return None
        if run.budget is not None and not run.budget.try_retry(now):
            self.counts.add("refused")
            self.stopped = True
            return None
        for attempt, _ in self.tasks.values():
            plan.tried.add(attempt.lease.member.name)  # never the same instance twice at once
        result = await run.state.alease(step.target, run, now, None)
        if not isinstance(result, Lease):
            self.stopped = True  # nothing free now: the original keeps going alone
            return None
        call = run._after(result, now)  # a Lease always makes a Call
        assert isinstance(call, Call)
        self.extra += 1
        self.launched_at = now
        return call

    async def close(self) -> None:
        """Cancel every contender still running; their leases go back as cancelled."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            attempt, is_hedge = self.tasks.pop(task)
            if is_hedge:
                self.counts.add("lost")
            await attempt.__aexit__(None, None, None)


async def _settle(attempt: Attempt, is_hedge: bool, counts: HedgeCounts, error: BaseException) -> None:
    """Judge a contender that failed and give its lease back."""
    try:
        if isinstance(error, TimeoutError):
            attempt.failed(attempt.timed_out())
        elif isinstance(error, LLMCallError):
            attempt.failed(error)  # raises again when it is the caller's fault
        else:
            raise error
    finally:
        if is_hedge:
            counts.add("failed")
        await attempt.__aexit__(None, None, None)


async def _call(attempt: Attempt, call: Call, messages: Any, params: dict[str, Any]) -> LLMResponse:
    lease = call.lease
    async with attempt.bound():
        return await lease.member.gate.client.acall(
            messages, lease.target.merge(params), timeout=call.timeout
        )


async def _race_call(
    run: RequestRun,
    call: Call,
    hedge: HedgePolicy,
    counts: HedgeCounts,
    messages: Any,
    params: dict[str, Any],
) -> LLMResponse | None:
    """One attempt and its hedges; the first answer, or None when every contender failed."""
    race = _Race(run, hedge, counts, call)

    def launch(c: Call, is_hedge: bool) -> None:
        attempt = Attempt(run, c)
        race.tasks[asyncio.ensure_future(_call(attempt, c, messages, params))] = (attempt, is_hedge)

    launch(call, False)
    try:
        while race.tasks:
            done, _ = await asyncio.wait(
                race.tasks, timeout=race.next_hedge_in(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                hedge_call = await race.hedge_call()
                if hedge_call is not None:
                    launch(hedge_call, True)
                continue
            for task in done:
                attempt, is_hedge = race.tasks.pop(task)
                error = task.exception()
                if error is not None:
                    await _settle(attempt, is_hedge, counts, error)
                    continue
                response = attempt.succeeded(task.result())
                if is_hedge:
                    counts.add("won")
                await race.close()
                await attempt.__aexit__(None, None, None)
                return response
        return None
    finally:
        await race.close()


async def run_hedged(
    run: RequestRun, hedge: HedgePolicy, counts: HedgeCounts, messages: Any, params: dict[str, Any]
) -> LLMResponse:
    """``run_async`` with hedging: one response or one error, on the running event loop."""
    try:
        while True:
            action = await run.anext(LoopWaiter)
            if isinstance(action, Call):
                response = await _race_call(run, action, hedge, counts, messages, params)
                if response is not None:
                    return response
            else:
                await aidle(action)
    finally:
        run.leave()


# -- streams ----------------------------------------------------------------------------------


async def _pump(
    key: int, attempt: Attempt, call: Call, messages: Any, params: dict[str, Any], out: asyncio.Queue[Any]
) -> None:
    """Read one contender's stream into ``out`` as ``(key, chunk | error | _END)``."""
    lease = call.lease
    chunks = lease.member.gate.client.astream(messages, lease.target.merge(params), timeout=call.timeout)
    deadline = StreamDeadline(attempt)
    try:
        while True:
            try:
                chunk = await deadline.read(chunks)
            except StopAsyncIteration:
                out.put_nowait((key, _END))
                return
            out.put_nowait((key, chunk))
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # the reader judges it; a bug must not leave it waiting forever
        out.put_nowait((key, exc))
    finally:
        deadline.close()
        await chunks.aclose()


async def _race_stream(
    run: RequestRun,
    call: Call,
    hedge: HedgePolicy,
    counts: HedgeCounts,
    messages: Any,
    params: dict[str, Any],
) -> AsyncGenerator[StreamChunk, None]:
    """One streamed attempt and its hedges: the first to yield a chunk is streamed to the end."""
    race = _Race(run, hedge, counts, call)
    out: asyncio.Queue[Any] = asyncio.Queue()
    by_key: dict[int, asyncio.Future[Any]] = {}

    def launch(c: Call, is_hedge: bool) -> None:
        attempt = Attempt(run, c, stream=True)
        key = len(by_key)
        task = asyncio.ensure_future(_pump(key, attempt, c, messages, params, out))
        by_key[key] = task
        race.tasks[task] = (attempt, is_hedge)

    launch(call, False)
    winner: asyncio.Future[Any] | None = None
    try:
        while race.tasks:
            try:
                key, item = await asyncio.wait_for(out.get(), race.next_hedge_in())
            except TimeoutError:
                hedge_call = await race.hedge_call()
                if hedge_call is not None:
                    launch(hedge_call, True)
                continue
            task = by_key[key]
            if task not in race.tasks:
                continue  # left over from a contender already settled
            attempt, is_hedge = race.tasks[task]
            if winner is None and isinstance(item, BaseException):
                # Failed before its first chunk: judged like any attempt; the others race on.
                race.tasks.pop(task)
                await task
                try:
                    _stream_error(attempt, item)
                finally:
                    if is_hedge:
                        counts.add("failed")
                    await attempt.__aexit__(None, None, None)
                continue
            if winner is None:
                winner = task
                if is_hedge:
                    counts.add("won")
                race.tasks.pop(task)
                await race.close()  # the others are cancelled now
                race.tasks[task] = (attempt, is_hedge)
            if item is _END:
                race.tasks.pop(task)
                await task
                attempt.done()
                await attempt.__aexit__(None, None, None)
                return
            if isinstance(item, BaseException):
                race.tasks.pop(task)
                await task
                try:
                    error = _stream_error(attempt, item)
                finally:
                    await attempt.__aexit__(None, None, None)
                if error is not None:
                    raise error from item
                return
            try:
                attempt.add(item)  # past the deadline this raises: the caller's clock ran out
            except LLMCallError as exc:
                race.tasks.pop(task)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                try:
                    error = attempt.stream_failed(exc)
                finally:
                    await attempt.__aexit__(None, None, None)
                if error is not None:
                    raise error from exc
                return
            yield item
    finally:
        if winner is not None and winner in race.tasks:
            attempt, _ = race.tasks.pop(winner)
            winner.cancel()
            await asyncio.gather(winner, return_exceptions=True)
            await attempt.__aexit__(None, None, None)
        await race.close()


def _stream_error(attempt: Attempt, error: BaseException) -> BaseException | None:
    if isinstance(error, TimeoutError):
        error = attempt.timed_out()
    if not isinstance(error, LLMCallError):
        raise error
    return attempt.stream_failed(error)


async def stream_hedged(
    run: RequestRun, hedge: HedgePolicy, counts: HedgeCounts, messages: Any, params: dict[str, Any]
) -> AsyncGenerator[StreamChunk, None]:
    """``stream_async`` with hedging on the time to the first chunk."""
    try:
        while True:
            action = await run.anext(LoopWaiter)
            if isinstance(action, Call):
                chunks = _race_stream(run, action, hedge, counts, messages, params)
                got_any = False
                try:
                    async for chunk in chunks:
                        got_any = True
                        yield chunk
                finally:
                    await chunks.aclose()
                if got_any or run.response is not None:
                    return
            else:
                await aidle(action)
    finally:
        run.leave()


# -- sync callers ------------------------------------------------------------------------------


class HedgeLoop:
    """One event-loop thread where sync callers' hedged requests run; started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="llm-actors-hedging", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the loop and wait for it; interrupting the wait cancels it."""
        future = asyncio.run_coroutine_threadsafe(_wrap(coro), self._running())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator living on the loop, one item at a time."""
        loop = self._running()
        try:
            while True:
                future = asyncio.run_coroutine_threadsafe(_next(agen), loop)
                try:
                    item = future.result()
                except StopAsyncIteration:
                    return
                except BaseException:
                    future.cancel()
                    raise
                yield item
        finally:
            close = getattr(agen, "aclose", None)
            if close is not None:
                try:
                    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
                except (concurrent.futures.TimeoutError, RuntimeError):
                    pass

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            # Requests still running end (cancelled) rather than leave their callers waiting.
            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=5)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()


async def _cancel_all() -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


async def _next(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
