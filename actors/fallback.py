"""Fallback plans: per request, where the next attempt may go after each outcome.

A plan is pure: it never sleeps, leases or calls. The request driver asks it which instances the
current step admits, tells it each attempt's outcome, and follows its verdict. One plan class per
strategy, in a registry, so each strategy's behaviour lives in one place:

- ``echelon_down``: the target's tier, then the group's lower tiers by priority, then
  ``fallback_groups``; within a tier, each retry goes to an instance not tried yet.
- ``task_group_switch``: the target's tier, then straight to ``fallback_groups``.
- ``provider_failover``: like ``echelon_down``, but a provider that failed (unhealthy or fatal)
  is skipped for the rest of the request, and untried providers are preferred.
- ``instance_rotation`` (pools): a new instance for each attempt, never the same one twice.
- ``simple_retry`` (pools): an unhealthy outcome retries the same instance; a rate-limited or
  fatal one moves to another.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from actors.outcome import Outcome

__all__ = ["PLANS", "FallbackPlan", "Step", "Verdict", "make_plan", "plan_class"]


class Member(Protocol):
    """What a plan needs to know about an instance."""

    name: str
    provider: str
    context_window: int | None


class Verdict(enum.Enum):
    """What the driver does after an attempt failed."""

    RETRY = "retry"  # another attempt at the current step, after a backoff
    AGAIN = "again"  # another attempt at the current step now, on another instance
    NEXT = "next"  # go on to the next step now, without waiting
    STOP = "stop"  # no more attempts: raise


@dataclass(frozen=True, slots=True)
class Step:
    """One target of a plan (a group tier or a pool) and how many attempts it may take."""

    target: Any
    attempts: int
    label: str = ""


class FallbackPlan:
    """Base plan: steps in order, each attempt on an instance not tried yet in this request."""

    name = "base"
    #: Whether the steps after the target's tier include its group's lower tiers by priority.
    descends = True
    #: Whether ``preference`` ranks members (only then does a lease compute it).
    prefers = False
    __slots__ = ("at_step", "attempts", "index", "max_attempts", "session", "steps", "sticky", "tried")

    def __init__(self, steps: Sequence[Step], *, max_attempts: int) -> None:
        self.steps = list(steps)
        self.index = 0
        self.max_attempts = max_attempts
        self.attempts = 0  # over the whole request
        self.at_step = 0  # at the current step
        self.tried: set[str] = set()
        self.sticky: str | None = None  # the one instance the next attempt must use, if any
        self.session: str | None = None  # the session key, for pools with ``affinity: session``

    @property
    def step(self) -> Step | None:
        """The current step, or None when the plan is exhausted."""
        if self.index < len(self.steps) and self.attempts < self.max_attempts:
            return self.steps[self.index]
        return None

    def admits(self, member: Member) -> bool:
        """Whether the current step may lease ``member``."""
        if self.sticky is not None:
            return member.name == self.sticky
        return member.name not in self.tried

    def preference(self, member: Member) -> int:
        """Lower is preferred among admitted members (0 = no preference)."""
        return 0

    def stop(self) -> None:
        """No more attempts: the next step is none."""
        self.index = len(self.steps)
        self.sticky = None

    def advance(self) -> None:
        """Leave the current step (exhausted, or nothing in it can be leased)."""
        self.index += 1
        self.at_step = 0
        self.sticky = None

    def record(
        self, member: Member, outcome: Outcome, ready: Callable[[Member], bool] | None = None
    ) -> Verdict:
        """Take one attempt's outcome and say what happens next.

        ``ready(m)`` says whether member ``m`` can be leased by the time a backoff here would end
        (None: every member can). A backoff is only worth it when a member the step admits can.
        """
        self.attempts += 1
        self.at_step += 1
        self.tried.add(member.name)
        if outcome is Outcome.SUCCESS or outcome is Outcome.CALLER_FAULT:
            return Verdict.STOP
        if self.attempts >= self.max_attempts or self.index >= len(self.steps):
            # (Past the last step already: a hedge still in flight when the plan ran out.)
            return Verdict.STOP
        step = self.steps[self.index]
        if self.at_step < step.attempts:
            verdict = self._retry_here(member, outcome)
            members = getattr(step.target, "members", ())
            if verdict is not Verdict.RETRY:
                ready = None  # an attempt now: a member still down is skipped by the lease itself
            if not members or any(self.admits(m) and (ready is None or ready(m)) for m in members):
                return verdict
            if self.sticky is not None:  # simple_retry's instance stays down: another one, now
                self.sticky = None
                if any(self.admits(m) for m in members):
                    return Verdict.AGAIN
            # Every member of the step was tried, or is down past the backoff (disabled, an open
            # breaker, parked): nothing to wait for, move on.
        self.advance()
        return Verdict.NEXT if self.step is not None else Verdict.STOP

    def escalate(self, needed_above: int) -> bool:
        """After a context-length error: jump to the first later step with a larger window.

        Returns False when no later step has a member whose ``context_window`` exceeds
        ``needed_above``; the caller's error is then final.
        """
        for i in range(self.index + 1, len(self.steps)):
            members = getattr(self.steps[i].target, "members", ())
            if any((m.context_window or 0) > needed_above for m in members):
                self.index = i
                self.at_step = 0
                self.sticky = None
                return self.attempts < self.max_attempts
        return False

    def _retry_here(self, member: Member, outcome: Outcome) -> Verdict:
        # The next attempt goes to a fresh instance of the same step; only after an unhealthy
        # outcome does it back off (the tier may be struggling). A 429 or a fatal answer is
        # about that one instance: try another now (SPEC §4).
        return Verdict.RETRY if outcome is Outcome.UNHEALTHY else Verdict.AGAIN


class EchelonDown(FallbackPlan):
    """The tier, its group's lower tiers by priority, then ``fallback_groups``."""

    name = "echelon_down"
    __slots__ = ()


class TaskGroupSwitch(FallbackPlan):
    """The tier, then straight to ``fallback_groups``; the group's lower tiers are not tried."""

    name = "task_group_switch"
    descends = False
    __slots__ = ()


class ProviderFailover(FallbackPlan):
    """Like echelon_down, but a provider that failed is skipped for the rest of the request."""

    name = "provider_failover"
    prefers = True
    __slots__ = ("failed_providers", "tried_providers")

    def __init__(self, steps: Sequence[Step], *, max_attempts: int) -> None:
        super().__init__(steps, max_attempts=max_attempts)
        self.failed_providers: set[str] = set()
        self.tried_providers: set[str] = set()

    def admits(self, member: Member) -> bool:
        return member.provider not in self.failed_providers and super().admits(member)

    def preference(self, member: Member) -> int:
        return 1 if member.provider in self.tried_providers else 0

    def record(
        self, member: Member, outcome: Outcome, ready: Callable[[Member], bool] | None = None
    ) -> Verdict:
        self.tried_providers.add(member.provider)
        if outcome is Outcome.UNHEALTHY or outcome is Outcome.FATAL:
            self.failed_providers.add(member.provider)
        return super().record(member, outcome, ready)


class InstanceRotation(FallbackPlan):
    """A pool: each attempt takes the next instance by rotation at once, never one already tried."""

    name = "instance_rotation"
    __slots__ = ()

    def _retry_here(self, member: Member, outcome: Outcome) -> Verdict:
        return Verdict.AGAIN  # a different instance is a fresh chance: nothing to back off from


class SimpleRetry(FallbackPlan):
    """A pool: retry the same instance when it was unhealthy; move on when limited or fatal."""

    name = "simple_retry"
    __slots__ = ()

    def _retry_here(self, member: Member, outcome: Outcome) -> Verdict:
        if outcome is Outcome.UNHEALTHY:
            self.sticky = member.name
            return Verdict.RETRY
        self.sticky = None
        return Verdict.AGAIN


PLANS: dict[str, type[FallbackPlan]] = {
    cls.name: cls for cls in (EchelonDown, TaskGroupSwitch, ProviderFailover, InstanceRotation, SimpleRetry)
}


def plan_class(strategy: str) -> type[FallbackPlan]:
    """The plan class of ``strategy``; raises ValueError naming the valid strategies."""
    try:
        return PLANS[strategy]
    except KeyError:
        raise ValueError(f"unknown fallback strategy {strategy!r}; use one of {sorted(PLANS)}") from None


def make_plan(strategy: str, steps: Sequence[Step], *, max_attempts: int) -> FallbackPlan:
    """Build the plan for ``strategy``."""
    return plan_class(strategy)(steps, max_attempts=max_attempts)
