"""The circuit breaker: decides whether an instance may be called, and records what came back.

It never wraps the call (callers do the I/O, SPEC §6) and never reads a clock: every method that
depends on time takes ``now`` (monotonic seconds)::

    CLOSED --failure_threshold consecutive failures--> OPEN
    OPEN --open period elapsed (committed by allow/record_*/tick)--> HALF_OPEN
    HALF_OPEN --a trial succeeds--> CLOSED
    HALF_OPEN --a trial fails--> OPEN (period grows)

The open period is ``recovery_time * growth ** reopen_count``, capped at ``max_recovery_time``,
then spread by ``±jitter`` so a fleet of breakers does not probe in lockstep. A ``retry_after``
from the server (5xx/529 ``Retry-After``) sets the period exactly instead.

Reads are pure: ``state``, ``retry_at`` and ``snapshot`` report an elapsed open period as
HALF_OPEN without changing anything or calling the listener. The transition is committed, and
the listener told, by the next write: ``allow``, ``record_success``/``record_failure`` or
``tick`` (which the owner of the breaker calls when the period ends).
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from typing import Any

__all__ = ["BreakerState", "CircuitBreaker"]

_log = logging.getLogger(__name__)


class BreakerState(str, enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Module-level aliases: the hot path compares identities without an enum attribute lookup.
_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_HALF_OPEN = BreakerState.HALF_OPEN

Listener = Callable[[BreakerState, BreakerState], Any]


class CircuitBreaker:
    """A per-instance circuit breaker that decides (``allow``) and records (``record_*``)."""

    __slots__ = (
        "_failures",
        "_open_until",
        "_reopens",
        "_rng",
        "_state",
        "_trials",
        "failure_threshold",
        "growth",
        "half_open_requests",
        "jitter",
        "max_recovery_time",
        "on_change",
        "recovery_time",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_time: float = 60.0,
        half_open_requests: int = 1,
        *,
        max_recovery_time: float = 600.0,
        growth: float = 2.0,
        jitter: float = 0.1,
        rng: random.Random | None = None,
        on_change: Listener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold!r}")
        if recovery_time < 0:
            raise ValueError(f"recovery_time must not be negative, got {recovery_time!r}")
        if half_open_requests < 1:
            raise ValueError(f"half_open_requests must be at least 1, got {half_open_requests!r}")
        if growth < 1:
            raise ValueError(f"growth must be at least 1, got {growth!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be a fraction in [0, 1), got {jitter!r}")
        self.failure_threshold = failure_threshold
        self.recovery_time = float(recovery_time)
        self.half_open_requests = half_open_requests
        # A cap below the base period would make the base meaningless: the base wins.
        self.max_recovery_time = max(float(max_recovery_time), self.recovery_time)
        self.growth = float(growth)
        self.jitter = float(jitter)
        #: Called as ``on_change(old, new)`` after each state change; its errors are contained.
        self.on_change = on_change
        # A private generator: seeding or using the global one elsewhere cannot couple breakers.
        self._rng = rng if rng is not None else random.Random()
        self._state = _CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._reopens = 0
        self._trials = 0

    # -- deciding -------------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in HALF_OPEN a True reserves one trial slot."""
        state = self._state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            if now < self._open_until:
                return False
            self._change(_HALF_OPEN)
        if self._trials < self.half_open_requests:
            self._trials += 1
            return True
        return False

    def state(self, now: float) -> BreakerState:
        """The state at ``now`` (an elapsed open period reads as HALF_OPEN); changes nothing."""
        state = self._state
        if state is _OPEN and now >= self._open_until:
            return _HALF_OPEN
        return state

    def tick(self, now: float) -> BreakerState:
        """Commit the time-driven transition (an elapsed open period becomes HALF_OPEN)."""
        if self._state is _OPEN and now >= self._open_until:
            self._change(_HALF_OPEN)
        return self._state

    def retry_at(self, now: float) -> float | None:
        """When a call will be admitted: ``now`` if one is now; None while waiting on trial verdicts."""
        state = self.state(now)
        if state is _CLOSED:
            return now
        if state is _OPEN:
            return self._open_until
        return now if self._trials < self.half_open_requests else None

    # -- recording ------------------------------------------------------------------------------

    def record_success(self, now: float) -> None:
        """A call succeeded: HALF_OPEN closes; CLOSED forgets its failures and growth."""
        self._failures = 0
        state = self.tick(now)
        if state is _CLOSED:
            self._reopens = 0
        elif state is _HALF_OPEN:
            self._close()
        # OPEN: a late success of a call admitted before opening proves too little to close.

    def record_failure(self, now: float, retry_after: float | None = None) -> None:
        """A call failed (unhealthy): count it, open at the threshold, re-open from HALF_OPEN.

        ``retry_after`` (seconds, from the server) sets the open period exactly when this failure
        opens the breaker, and may extend (never shorten) a period already running.
        """
        self._failures += 1
        if retry_after is not None and not retry_after >= 0:  # negative or NaN: no hint
            retry_after = None
        state = self.tick(now)
        if state is _CLOSED:
            if self._failures >= self.failure_threshold:
                self._open(now, retry_after)
        elif state is _HALF_OPEN:
            self._reopens += 1
            self._open(now, retry_after)
        elif retry_after is not None and now + retry_after > self._open_until:
            # OPEN: a late failure of a call admitted before opening; only the server's word counts.
            self._open_until = now + retry_after

    def open_for(self, now: float, seconds: float) -> None:
        """Another process saw this instance fail: be OPEN until ``now + seconds`` (never shorter)."""
        if self._state is _OPEN and self._open_until >= now + seconds:
            return
        self._open(now, max(0.0, seconds))

    def release_trial(self) -> None:
        """A trial call ended without a verdict (caller's fault, cancelled): free its slot."""
        if self._state is _HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def end_open_period(self, now: float) -> None:
        """A health probe passed: an OPEN breaker goes HALF_OPEN now, to earn trust by trials."""
        if self._state is _OPEN:
            self._open_until = now
            self._change(_HALF_OPEN)

    def reset(self) -> None:
        """Back to CLOSED with no history (configuration reload, passing health probe)."""
        self._failures = 0
        self._close()

    # -- reading --------------------------------------------------------------------------------

    @property
    def consecutive_failures(self) -> int:
        """Failures recorded since the last success."""
        return self._failures

    @property
    def reopen_count(self) -> int:
        """Re-openings from HALF_OPEN since the breaker last closed (0 on a first opening)."""
        return self._reopens

    @property
    def open_until(self) -> float | None:
        """When the current open period ends; None when not OPEN."""
        return self._open_until if self._state is _OPEN else None

    @property
    def trials_in_flight(self) -> int:
        """HALF_OPEN trial calls admitted and not yet decided."""
        return self._trials

    def open_period(self, reopens: int | None = None) -> float:
        """The un-jittered open period after ``reopens`` re-openings (default: the current count)."""
        n = self._reopens if reopens is None else reopens
        try:
            period = self.recovery_time * self.growth**n
        except OverflowError:
            return self.max_recovery_time
        return min(period, self.max_recovery_time)

    def snapshot(self, now: float) -> dict[str, Any]:
        """State for stats and health output."""
        state = self.state(now)
        return {
            "state": state.value,
            "consecutive_failures": self._failures,
            "open_until": self._open_until if state is _OPEN else None,
            "reopen_count": self._reopens,
            "trials_in_flight": self._trials,
        }

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, failures={self._failures}/{self.failure_threshold}, "
            f"reopens={self._reopens}, trials={self._trials}/{self.half_open_requests})"
        )

    # -- transitions ----------------------------------------------------------------------------

    def _open(self, now: float, retry_after: float | None) -> None:
        if retry_after is not None:
            period = retry_after
        else:
            period = self.open_period()
            if self.jitter:
                period *= 1.0 + self._rng.uniform(-self.jitter, self.jitter)
        self._open_until = now + period
        self._trials = 0
        self._change(_OPEN)

    def _close(self) -> None:
        self._reopens = 0
        self._trials = 0
        self._change(_CLOSED)

    def _change(self, new: BreakerState) -> None:
        # The state is committed before the listener runs, so a listener that raises (or calls
        # back into the breaker) always sees, and leaves, a consistent breaker.
        old = self._state
        if old is new:
            return
        self._state = new
        if new is _HALF_OPEN:
            self._trials = 0
        listener = self.on_change
        if listener is not None:
            try:
                listener(old, new)
            except Exception:
                _log.exception("circuit breaker listener failed on %s -> %s", old.value, new.value)
