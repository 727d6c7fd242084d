"""Rotation strategies: which member of a pool or tier the next attempt goes to.

A strategy is a small object in a registry (``STRATEGIES``, ``make_strategy``). Each call to
``choose(candidates, view)`` gets the full member list in its stable order and a ``view`` of
per-instance facts (an instance this request already tried is unavailable in it); it returns a
name that is available, or None. Strategies keep only their own rotation state (cursors,
weights); everything about the instances comes from the view, read at the moment of choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

__all__ = [
    "STRATEGIES",
    "Ewma",
    "LeastBusy",
    "LeastRecentlyUsed",
    "LowestLatency",
    "RandomChoice",
    "RoundRobin",
    "Strategy",
    "View",
    "Weighted",
    "make_strategy",
]


class View(Protocol):
    """Per-instance facts a strategy may read."""

    def available(self, name: str) -> bool: ...

    def in_flight(self, name: str) -> int: ...

    def latency(self, name: str) -> float | None: ...

    def last_used(self, name: str) -> float | None: ...

    def weight(self, name: str) -> float: ...


class Strategy:
    """Base of the rotation strategies: ``choose`` one candidate, or None when none is eligible."""

    __slots__ = ()

    name = ""

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RoundRobin(Strategy):
    """Each member in turn; one that is unavailable is skipped, not counted.

    The cursor runs over the full member list, so the others keep their order and their equal
    shares while one is out, and a member that comes back rejoins at its own place in the cycle.
    """

    __slots__ = ("_cursor",)

    name = "round_robin"

    def __init__(self) -> None:
        self._cursor = 0  # index of the member whose turn is next

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        n = len(candidates)
        start = self._cursor % n if n else 0
        for k in range(n):
            i = start + k
            if i >= n:
                i -= n
            name = candidates[i]
            if view.available(name):
                self._cursor = i + 1
                return name
        return None


class LeastRecentlyUsed(Strategy):
    """The member used longest ago; never-used members first; ties in member order.

    The view's ``last_used`` must change when a member is chosen (the lease time), or repeated
    choices before the first call ends would all pick the same member.
    """

    __slots__ = ()

    name = "least_recently_used"

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        return _lowest(candidates, view, view.last_used)  # never used: nothing is older


class Weighted(Strategy):
    """Smooth weighted round robin (as in nginx): deterministic, interleaved, exact proportions.

    Over any run of picks with the same eligible members and integer weights summing to ``W``,
    each member gets exactly ``weight`` of every ``W`` picks. Only eligible members gain credit,
    so an unavailable one does not distort the others' shares. Weights come from ``weights``
    when given (members not in it fall back to the view), else from ``view.weight``; a member
    with weight 0 or less is never chosen.
    """

    __slots__ = ("_current", "weights")

    name = "weighted"

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights) if weights else {}
        self._current: dict[str, float] = {}

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        current = self._current
        if len(current) > len(candidates):  # members left the pool: forget their credit
            keep = set(candidates)
            for gone in [name for name in current if name not in keep]:
                del current[gone]
        weights = self.weights
        best = None
        best_credit = 0.0
        total = 0.0
        for name in candidates:
            if not view.available(name):
                continue
            w = weights.get(name)
            if w is None:
                w = view.weight(name)
            if not w > 0:
                continue
            credit = current.get(name, 0.0) + w
            current[name] = credit
            total += w
            if best is None or credit > best_credit:  # strict: ties go to the earlier member
                best, best_credit = name, credit
        if best is not None:
            current[best] = best_credit - total
        return best

    def __repr__(self) -> str:
        return f"Weighted({self.weights!r})"


class RandomChoice(Strategy):
    """A uniformly random available member (``rng`` injected for reproducible tests)."""

    __slots__ = ("_rng",)

    name = "random"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        eligible = [name for name in candidates if view.available(name)]
        return self._rng.choice(eligible) if eligible else None


class LeastBusy(Strategy):
    """The member with the fewest calls in flight; ties go round robin so load spreads."""

    __slots__ = ("_cursor",)

    name = "least_busy"

    def __init__(self) -> None:
        self._cursor = 0

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        n = len(candidates)
        start = self._cursor % n if n else 0
        best = None
        best_i = 0
        best_load = 0
        for k in range(n):
            i = start + k
            if i >= n:
                i -= n
            name = candidates[i]
            if not view.available(name):
                continue
            load = view.in_flight(name)
            if best is None or load < best_load:
                best, best_i, best_load = name, i, load
                if load <= 0:
                    break  # nothing is less busy than idle
        if best is not None:
            self._cursor = best_i + 1
        return best


class LowestLatency(Strategy):
    """The member with the lowest latency average; unmeasured ones first so they get measured.

    Every ``explore_every``-th pick goes instead to the member used longest ago, so a member
    once measured slow (a blip) is measured again rather than shunned forever. Ties (and the
    order among unmeasured members) follow member order.
    """

    __slots__ = ("_picks", "explore_every")

    name = "lowest_latency"

    def __init__(self, explore_every: int = 20) -> None:
        self.explore_every = explore_every
        self._picks = 0

    def choose(self, candidates: Sequence[str], view: View) -> str | None:
        self._picks += 1
        if self.explore_every and self._picks % self.explore_every == 0:
            return _LRU.choose(candidates, view)
        return _lowest(candidates, view, view.latency)  # unmeasured: measure it first


class Ewma:
    """Exponentially weighted moving average; the first sample is taken as is."""

    __slots__ = ("alpha", "value")

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = alpha
        #: The current average, or None before the first sample.
        self.value: float | None = None

    def update(self, x: float) -> float:
        """Fold in sample ``x`` and return the new average."""
        value = self.value
        value = x if value is None else value + self.alpha * (x - value)
        self.value = value
        return value

    def __repr__(self) -> str:
        return f"Ewma(alpha={self.alpha}, value={self.value!r})"


def _lowest(candidates: Sequence[str], view: View, key: Callable[[str], float | None]) -> str | None:
    """The available member with the lowest ``key``; one whose key is None wins at once.
    Ties go to the earlier member."""
    best = None
    best_key = 0.0
    for name in candidates:
        if not view.available(name):
            continue
        value = key(name)
        if value is None:
            return name
        if best is None or value < best_key:
            best, best_key = name, value
    return best


_LRU = LeastRecentlyUsed()

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RoundRobin, LeastRecentlyUsed, Weighted, RandomChoice, LeastBusy, LowestLatency)
}


def make_strategy(name: str, **kwargs: object) -> Strategy:
    """A new strategy object by its configuration name, e.g. ``make_strategy("weighted", weights=...)``."""
    try:
        cls = STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown rotation strategy {name!r}; use one of: {', '.join(STRATEGIES)}") from None
    return cls(**kwargs)
