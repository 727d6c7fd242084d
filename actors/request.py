"""The decision core of one request, shared by the sync and async drivers.

``RequestRun.next()`` says what to do now: ``Call`` an instance (the lease is already taken),
``Wait`` for a permit (the request is queued FIFO at its target), ``Sleep`` (backoff), or
``Fail``. The driver does it and reports back (``succeeded``, ``failed``, ``expired``,
``cancelled``). All the policy lives here; the state it reads and changes belongs to the state
owner (``actors.state``), asked once per admission through ``lease`` (``next``) or ``alease``
(``anext``). The drivers only do I/O and waiting and give leases back, so sync and async behave
identically.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.backoff import Backoff, fits
from actors.errors import (
    AllAttemptsFailedError,
    ContextWindowExceededError,
    LLMCallError,
    LLMTimeoutError,
    NoCapacityError,
    mark_retry_budget_exhausted,
)
from actors.fallback import FallbackPlan, Verdict
from actors.outcome import Outcome
from actors.resilience import RetryBudget
from actors.response import Attempt, LLMResponse
from actors.state.gate import NEVER
from actors.state.target import Blocked, Lease

if TYPE_CHECKING:
    from actors.state.owner import StateOwner

__all__ = ["Call", "Fail", "LoopWaiter", "RequestRun", "Sleep", "ThreadWaiter", "Wait"]


class Call:
    """Call ``lease``'s instance, giving it at most ``timeout`` seconds.

    ``clipped`` says the request's deadline, not the instance's own timeout, set ``timeout``:
    a timeout then is the caller's clock running out, not a fault of the instance.
    """

    __slots__ = ("clipped", "lease", "timeout")

    def __init__(self, lease: Lease, timeout: float, clipped: bool = False) -> None:
        self.lease = lease
        self.timeout = timeout
        self.clipped = clipped


class Wait:
    """Wait on ``waiter`` until woken or ``timeout`` seconds pass, then ask again."""

    __slots__ = ("timeout", "waiter")

    def __init__(self, waiter: Any, timeout: float) -> None:
        self.waiter = waiter
        self.timeout = timeout


class Sleep:
    """Back off for ``delay`` seconds, then ask again."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay


class Fail:
    """Raise ``error``: the request is over."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadWaiter:
    """A queued sync request; woken by whichever thread frees a permit."""

    __slots__ = ("event", "gone", "handed", "plan")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.gone = False
        self.handed = False  # woken with the turn to try, whatever its place in the queue
        self.plan: Any = None  # what this request may use, so newcomers know what it waits for

    def wake(self) -> bool:
        if self.gone:
            return False
        self.handed = True
        self.event.set()
        return True

    def rearm(self) -> None:
        self.handed = False
        self.event.clear()

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


class LoopWaiter:
    """A queued async request; woken thread-safely on its own event loop, never blocking it."""

    __slots__ = ("future", "gone", "handed", "loop", "plan")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.gone = False
        self.handed = False  # woken with the turn to try, whatever its place in the queue
        self.plan: Any = None  # what this request may use, so newcomers know what it waits for

    def wake(self) -> bool:
        if self.gone:
            return False
        self.handed = True
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False
        return True

    def rearm(self) -> None:
        self.handed = False
        if self.future.done():
            self.future = self.loop.create_future()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except TimeoutError:
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RequestRun:
    """One request's attempts, waits and backoffs under one deadline; a ``Ticket`` to the owner."""

    __slots__ = (
        "all_parked",
        "attempts",
        "backoff",
        "budget",
        "call_started",
        "clock",
        "deadline",
        "delay",
        "disabled",
        "down_until",
        "full_until",
        "label",
        "last_error",
        "paid",
        "plan",
        "queue_deadline",
        "queue_step",
        "queue_timeout",
        "report",
        "response",
        "started",
        "state",
        "waited_full",
        "waiter",
        "waiting_at",
    )

    def __init__(
        self,
        state: StateOwner,
        plan: FallbackPlan,
        *,
        timeout: float,
        backoff: Backoff,
        queue_timeout: float | None = None,
        report: Callable[[Lease, Outcome | None, float, Any], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
        budget: RetryBudget | None = None,
        session: str | None = None,
    ) -> None:
        self.state = state
        self.plan = plan
        plan.session = session
        self.clock = clock
        self.started = clock()
        self.budget = budget
        self.paid = 0  # attempts whose retry the budget has granted (the first is free)
        if budget is not None:
            budget.record_request(self.started)
        self.deadline = self.started + timeout
        self.backoff = backoff
        self.queue_timeout = queue_timeout
        self.report = report
        self.attempts: list[Attempt] = []
        self.delay = 0.0
        self.waiter: Any = None  # our place in a target's FIFO: written by the state owner only
        self.waiting_at: Any = None  # the target whose queue holds our waiter
        self.queue_deadline: float | None = None
        self.queue_step = -1  # the plan step ``queue_deadline`` belongs to
        self.waited_full = False  # some target stayed full for a whole queue wait
        self.full_until = NEVER  # the earliest a full target seen has room again
        self.down_until = NEVER
        self.all_parked = True  # every down candidate seen so far was parked by a 429
        self.disabled: dict[str, str] = {}  # disabled candidates and why
        self.last_error: BaseException | None = None
        self.label = label
        self.response: LLMResponse | None = None
        self.call_started = self.started  # when the latest attempt was sent (gateway overhead ends)

    # -- deciding -------------------------------------------------------------------------------

    def next(self, make_waiter: Callable[[], Any]) -> Call | Wait | Sleep | Fail:
        """What to do now (for a caller on a thread)."""
        if self.delay:
            return self._sleep()
        now = self.clock()
        ended = self._ended(now)
        if ended is not None:
            return ended
        plan, state = self.plan, self.state
        while (step := plan.step) is not None:
            queue = make_waiter if self._may_queue(now) else None
            action = self._after(state.lease(step.target, self, now, queue), now)
            if action is not None:
                return action
        return self._exhausted(now)

    async def anext(self, make_waiter: Callable[[], Any]) -> Call | Wait | Sleep | Fail:
        """What to do now (for a caller on an event loop): ``next`` with the owner's async form."""
        if self.delay:
            return self._sleep()
        now = self.clock()
        ended = self._ended(now)
        if ended is not None:
            return ended
        plan, state = self.plan, self.state
        while (step := plan.step) is not None:
            queue = make_waiter if self._may_queue(now) else None
            action = self._after(await state.alease(step.target, self, now, queue), now)
            if action is not None:
                return action
        return self._exhausted(now)

    def _sleep(self) -> Sleep:
        delay, self.delay = self.delay, 0.0
        return Sleep(delay)

    def _may_queue(self, now: float) -> bool:
        """Whether this request may still wait at the current step for a permit."""
        if self.queue_step == self.plan.index and self.queue_deadline is not None:
            return now < self.queue_deadline
        return self.queue_timeout is None or self.queue_timeout > 0

    def _queue_until(self, now: float) -> float:
        """Until when this request may wait at the current step for a permit."""
        until = self.queue_deadline if self.queue_step == self.plan.index else None
        if until is None:
            budget = self.deadline - now if self.queue_timeout is None else self.queue_timeout
            until = min(self.deadline, now + budget)
        return until

    def _after(self, result: Lease | Blocked, now: float) -> Call | Wait | None:
        """Act on the owner's answer for the current step: call, wait, or move on (None)."""
        if isinstance(result, Lease):
            self.queue_deadline = None
            self.call_started = now
            limit = result.target.attempt_timeout(result.member)
            left = self.deadline - now
            return Call(result, max(0.001, min(limit, left)), left < limit)
        plan = self.plan
        if result.full:
            until = self.queue_deadline = self._queue_until(now)
            self.queue_step = plan.index
            # ``result.until == now`` means "when a permit is released"; NEVER, "when the requests
            # queued first are served"; a time between, that a rate window frees a slot then
            # (no release will wake us for it).
            window = now < result.until < NEVER
            if window and result.until > until:
                # The earliest slot comes after the wait: waiting would only fail later.
                self.full_until = min(self.full_until, result.until)
            elif now < until:
                wake_by = min(result.until, until) if window else until
                return Wait(self.waiter, wake_by - now)
            else:
                self.full_until = min(self.full_until, result.until if window else now)
            self.state.leave(self, now)
            self.waited_full = True
        else:
            self.down_until = min(self.down_until, result.until)
            self.all_parked = self.all_parked and result.parked_only
            self.disabled.update(result.disabled)
            if plan.sticky is not None:
                plan.sticky = None  # simple_retry: the same instance is not available
                return None
        plan.advance()
        return None

    def _exhausted(self, now: float) -> Fail:
        self.state.leave(self, now)
        return Fail(self._exhausted_error())

    def leave(self) -> None:
        """The request stops waiting (done, failed or cancelled): leave any queue it is in."""
        if self.waiter is not None:
            self.state.leave(self, self.clock())

    def _ended(self, now: float) -> Fail | None:
        """Before any lease: past the deadline, or a retry the budget refuses, ends the request."""
        if now >= self.deadline:
            return Fail(self._deadline_error())
        if self.paid < len(self.attempts) and self.budget is not None:
            return self._over_budget(now)
        return None

    def _over_budget(self, now: float) -> Fail | None:
        """Before a retry: the retry budget grants it, or the request ends with its last error."""
        budget = self.budget
        tried = len(self.attempts)
        if budget is None or tried <= self.paid or self.plan.step is None:
            return None
        if budget.try_retry(now):
            self.paid = tried
            return None
        self.plan.stop()
        self.state.leave(self, now)
        error = self.last_error if self.last_error is not None else self._exhausted_error()
        return Fail(mark_retry_budget_exhausted(error, tried))

    # -- outcomes (the driver's ``Attempt`` gives the lease back) -------------------------------

    def succeeded(self, lease: Lease, response: LLMResponse, duration: float) -> LLMResponse:
        """Record a successful attempt and finish the response."""
        self.attempts.append(Attempt(lease.member.name, Outcome.SUCCESS, duration, None, lease.target.label))
        if self.report is not None:
            self.report(lease, Outcome.SUCCESS, duration, response)
        response.target = lease.target.label
        response.attempts = self.attempts
        response.response_time = self.clock() - self.started
        self.response = response
        return response

    def failed(self, lease: Lease, error: LLMCallError, duration: float) -> None:
        """Record a failed attempt and decide: retry (after ``delay``), fall back, or fail."""
        outcome = error.outcome
        self.attempts.append(Attempt(lease.member.name, outcome, duration, str(error), lease.target.label))
        if self.report is not None:
            self.report(lease, outcome, duration, error)
        self.last_error = error
        now = self.clock()
        # A backoff here ends by ``back``: only a member up by then is worth backing off for.
        back = now + self.backoff.ceiling(self.plan.at_step)
        state, route = self.state, lease.route

        def ready(member: Any) -> bool:
            until = state.down_until(member.name, route, now)
            return until is None or until <= back

        verdict = self.plan.record(lease.member, outcome, ready)
        if outcome is Outcome.CALLER_FAULT:
            window = lease.member.context_window or 0
            if isinstance(error, ContextWindowExceededError) and self.plan.escalate(window):
                return
            raise error
        if verdict is Verdict.RETRY:
            delay = self.backoff.delay(self.plan.at_step - 1)
            if fits(now, delay, self.deadline):
                self.delay = delay
            else:  # no time to back off here: fall back now rather than sleep out the deadline
                self.plan.advance()
        elif verdict is Verdict.STOP:
            self.plan.stop()  # the next ``next()`` fails with every attempt

    def expired(self, lease: Lease) -> None:
        """The request's own deadline cut the attempt short: no verdict on the instance."""
        if self.report is not None:
            self.report(lease, None, self.clock() - lease.taken_at, None)

    cancelled = expired  # the caller gave up (cancelled, interrupted): no verdict either

    # -- errors ---------------------------------------------------------------------------------

    def _deadline_error(self) -> BaseException:
        waited = self.clock() - self.started
        return LLMTimeoutError(
            f"{self.label or 'request'}: deadline of {self.deadline - self.started:.3g} s passed after "
            f"{len(self.attempts)} attempt(s) and {waited:.3g} s; raise the timeout or add capacity",
        )

    def _exhausted_error(self) -> BaseException:
        if self.attempts:
            last = self.last_error
            names = ", ".join(f"{a.instance} ({a.outcome.value})" for a in self.attempts)
            return AllAttemptsFailedError(
                f"{self.label or 'request'}: all {len(self.attempts)} attempt(s) failed: {names}; last error: {last}",
                self.attempts,
                last_error=last,
            )
        if self.waited_full:
            # The true earliest time: a rate window's next slot, or an instance back from its
            # parking or open breaker, whichever comes first.
            wait = max(0.0, min(self.full_until, self.down_until) - self.clock())
            queue = "the deadline" if self.queue_timeout is None else f"{self.queue_timeout:g} s"
            when = f"in {wait:.3g} s" if wait > 0 else "when a request in flight ends"
            return NoCapacityError(
                f"{self.label or 'request'}: every candidate is at its concurrency or rate limit "
                f"for longer than the queue wait ({queue}); the earliest slot frees {when}; retry "
                "then, or raise the limits or queue_timeout",
                retry_after=wait,
                rate_limited=True,
            )
        reasons = "; ".join(f"{name}: {why}" for name, why in self.disabled.items())
        if self.down_until < NEVER:
            wait = max(0.0, self.down_until - self.clock())
            why = (
                "rate limited (parked after a 429)"
                if self.all_parked
                else "unavailable (breaker open, parked or disabled)"
            )
            return NoCapacityError(
                f"{self.label or 'request'}: every candidate instance is {why}; the earliest is expected "
                f"back in {wait:.3g} s" + (f"; disabled: {reasons}" if reasons else ""),
                retry_after=wait,
                rate_limited=self.all_parked,
            )
        return NoCapacityError(
            f"{self.label or 'request'}: no instance can take this request: "
            + (f"disabled: {reasons}" if reasons else "none is configured or enabled")
            + "; fix the cause (a key, a quota) and reload (a key variable set after the process "
            "started needs a restart: a reload reads the environment the process has), or wait "
            "for a health probe to pass",
        )
