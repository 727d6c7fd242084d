"""The lease table: every gate, budget and target of a runtime; the data ``LocalState`` owns.

One lock, not one per object: a lease touches a target, a gate and a budget at once, a single
lock makes that atomic without lock-ordering rules, and under the GIL it costs well under a
microsecond uncontended. It is never held across I/O or a wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from actors.fallback import FallbackPlan, Step, plan_class
from actors.order import group_plan, tier_order
from actors.resilience import HedgePolicy, OutlierDetector, RetryBudget, SessionRing
from actors.rotation import make_strategy
from actors.state.gate import EchelonBudget, InstanceGate
from actors.state.target import Member, Target

if TYPE_CHECKING:
    from actors.config import LLMConfig

__all__ = ["LeaseTable", "Route", "group_route", "pool_label", "pool_route"]


#: Base backoff (seconds) of ``simple_retry`` in a pool, whose config has no ``retry_delay``.
POOL_RETRY_DELAY = 0.5


class Route:
    """A wrapper's precomputed way through the table; ``plan()`` makes one request's plan.

    ``budget`` is the retry budget of the group or pool the route starts at (shared by every
    wrapper over it); ``hedge`` its hedging policy, if it has one.
    """

    __slots__ = ("budget", "hedge", "label", "max_attempts", "plan_cls", "retry_delay", "steps")

    def __init__(
        self,
        label: str,
        plan_cls: type[FallbackPlan],
        steps: list[Step],
        max_attempts: int,
        retry_delay: float,
        *,
        budget: RetryBudget | None = None,
        hedge: HedgePolicy | None = None,
    ) -> None:
        self.label = label
        self.plan_cls = plan_cls
        self.steps = steps
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.budget = budget
        self.hedge = hedge

    def plan(self) -> FallbackPlan:
        return self.plan_cls(self.steps, max_attempts=self.max_attempts)

    @property
    def first_label(self) -> str:
        """The label of the first step: an answer from any other target is a fallback."""
        return self.steps[0].label if self.steps else ""

    @property
    def targets(self) -> list[Target]:
        return [step.target for step in self.steps]


def tier_defaults(tier: Any) -> dict[str, Any]:
    """The request parameters a tier sets unless the request does."""
    defaults: dict[str, Any] = {"temperature": tier.temperature, "max_tokens": tier.max_tokens}
    if tier.response_format is not None:
        defaults["response_format"] = tier.response_format
    thinking = tier.thinking_config
    if thinking is not None and thinking.enabled:
        # Anthropic's shape; providers without extended thinking drop it.
        defaults["thinking"] = {"type": "enabled", "budget_tokens": thinking.budget_tokens or 1024}
    return defaults


def _reusable_budget(
    previous: LeaseTable | None, label: str, concurrency: int | None, rpm: int | None
) -> Any:
    """A reload keeps a tier's budget object (leases in flight give back to it), with new limits."""
    if previous is None:
        return None
    old = previous.budgets.get(label)
    if old is not None:
        old.permits.resize(concurrency, rpm)
    return old


def _retry_budget(previous: LeaseTable | None, route: str, config: Any) -> RetryBudget:
    """The route's budget; a reload keeps the old one (and its window) when its values did not change."""
    old = previous.retry_budgets.get(route) if previous is not None else None
    if old is not None and (old.ratio, old.min_per_second) == (config.ratio, config.min_per_second):
        return old
    return RetryBudget(config.ratio, config.min_per_second)


def _outliers(
    previous: LeaseTable | None, pool: str, names: list[str], od: Any, keep: frozenset[str]
) -> OutlierDetector | None:
    """The pool's detector; a reload keeps the ejections (and measurements) of kept instances,
    as it keeps their breakers and parking."""
    if od is None:
        return None
    detector = OutlierDetector(
        names,
        latency_factor=od.latency_factor,
        min_requests=od.min_requests,
        max_ejection_percent=od.max_ejection_percent,
        base_ejection_time=od.base_ejection_time,
    )
    old = previous.targets.get(pool_label(pool)) if previous is not None else None
    if old is not None and old.outliers is not None:
        detector.adopt(old.outliers, keep)
    return detector


def _hedge(config: Any) -> HedgePolicy | None:
    return None if config is None else HedgePolicy(config.after, config.max_extra)


def _value(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def group_route(group: str) -> str:
    return f"group:{group}"


def pool_route(pool: str) -> str:
    return f"pool:{pool}"


def pool_label(pool: str) -> str:
    """A pool's target label; the same string as its route (one target, one judging route)."""
    return pool_route(pool)


class LeaseTable:
    """Gates by instance, budgets by ``group.tier``, targets by label; built from a config."""

    def __init__(self, lock: Any = None) -> None:
        self.lock = lock if lock is not None else threading.Lock()
        self.gates: dict[str, InstanceGate] = {}
        self.budgets: dict[str, EchelonBudget] = {}
        self.targets: dict[str, Target] = {}
        self.retry_budgets: dict[str, RetryBudget] = {}  # by route: "group:<name>", "pool:<name>"

    @classmethod
    def build(
        cls,
        config: LLMConfig,
        clients: Mapping[str, Any],
        *,
        on_change: Callable[..., None] | None = None,
        previous: LeaseTable | None = None,
        keep: frozenset[str] = frozenset(),
        lock: Any = None,
    ) -> LeaseTable:
        """Make a gate per model, a budget and a target per tier, and a target per pool.

        With ``previous`` (a reload), every instance and tier still configured keeps its gate
        or budget object, so leases taken before the reload give their permits back to what
        the new limits count; instances in ``keep`` (settings unchanged) also keep their
        breakers and parking, changed ones adopt their new settings. The new table shares the
        old one's lock, so old leases are given back safely while new ones are taken.
        """
        table = cls(previous.lock if previous is not None else lock)
        for name, model in config.models.items():
            old = previous.gates.get(name) if previous is not None else None
            if old is None:
                table.gates[name] = InstanceGate(model, clients[name], on_change=on_change)
            else:  # the same gate object, so leases taken before the reload give back to it
                if name not in keep:
                    old.reconfigure(model, clients[name])
                table.gates[name] = old
        if previous is not None:
            previous.detach(table.gates.values(), previous.budgets.values())
        routes: dict[str, set[str]] = {}
        for gname, group in config.groups.items():
            breaker = group.effective_fallback.circuit_breaker
            route = group_route(gname)
            table.retry_budgets[route] = _retry_budget(previous, route, group.effective_fallback.retry_budget)
            for tname, tier in group.tiers_by_priority():
                label = f"{gname}.{tname}"
                budget = _reusable_budget(previous, label, tier.concurrency_limit, tier.rpm_limit)
                if budget is None:
                    budget = EchelonBudget(label, tier.concurrency_limit, tier.rpm_limit)
                table.budgets[label] = budget
                members = []
                for model_name in tier.models:
                    gate = table.gates[model_name]
                    gate.add_route(
                        route, breaker.failure_threshold, breaker.recovery_time, breaker.half_open_requests
                    )
                    routes.setdefault(model_name, set()).add(route)
                    members.append(Member(gate, budget, label, tier.timeout))
                table.targets[label] = Target(
                    label,
                    route,
                    members,
                    make_strategy("round_robin"),
                    timeout=tier.timeout,
                    defaults=tier_defaults(tier),
                    tool_choice=tier.function_calling if isinstance(tier.function_calling, str) else None,
                )
        for pname, pool in config.pools.items():
            route = pool_route(pname)
            table.retry_budgets[route] = _retry_budget(previous, route, pool.effective_fallback.retry_budget)
            members = []
            seen: set[str] = set()
            for gname, tname, model_name in config.pool_members(pname):
                if model_name in seen:  # an instance in two tiers of the pool counts once, at the first
                    continue
                seen.add(model_name)
                gate = table.gates[model_name]
                gate.add_route(route, pool.failure_threshold, pool.recovery_time, 1)
                routes.setdefault(model_name, set()).add(route)
                label = f"{gname}.{tname}"
                timeout = config.groups[gname].tiers[tname].timeout
                members.append(Member(gate, table.budgets[label], label, timeout))
            weights = {m.name: (pool.weights or {}).get(m.name, m.gate.weight) for m in members}
            rotation = make_strategy(
                pool.rotation_strategy,
                **({"weights": weights} if pool.rotation_strategy == "weighted" else {}),
            )
            names = [m.name for m in members]
            table.targets[pool_label(pname)] = Target(
                pool_label(pname),
                route,
                members,
                rotation,
                affinity=SessionRing(names) if pool.affinity == "session" else None,
                outliers=_outliers(previous, pname, names, pool.outlier_detection, keep),
            )
        for name in keep:
            gate = table.gates[name]
            gate.retain_routes(routes.get(name, set()))
            if gate.disabled_reason is not None and not gate.config_disabled:
                gate.disabled_reason = None  # a fatal answer disables an instance until a reload
        return table

    def detach(self, gates: Any, budgets: Any) -> None:
        """Before a reload's targets attach: keep only old targets that still have waiters."""
        for holder in (*gates, *budgets):
            holder.watchers = [t for t in holder.watchers if t.waiters]

    def tier_steps(
        self,
        config: LLMConfig,
        ref: str,
        fallback_groups: list[str] | None,
        plan_cls: type[FallbackPlan],
    ) -> list[Step]:
        """The steps of a task-group request, one per tier in ``order.tier_order``."""
        steps = []
        for group, tier in tier_order(config, ref, fallback_groups, plan_cls):
            retries = config.groups[group].tiers[tier].max_retries
            steps.append(Step(self.targets[f"{group}.{tier}"], 1 + retries, f"{group}.{tier}"))
        return steps

    def group_route(
        self,
        config: LLMConfig,
        ref: str,
        *,
        fallback_groups: Iterable[str] | None = None,
        strategy: str | None = None,
        max_attempts: int | None = None,
        retry_delay: float | None = None,
    ) -> Route:
        """How requests to a task-group ref proceed, from the group's ``fallback_config``."""
        gname = config.resolve(ref)[0][0]
        fb = config.groups[gname].effective_fallback
        plan_cls = group_plan(config, ref, strategy)
        refs = None if fallback_groups is None else list(fallback_groups)
        steps = self.tier_steps(config, ref, refs, plan_cls)
        delay = fb.retry_delay if retry_delay is None else retry_delay
        return Route(
            ref,
            plan_cls,
            steps,
            max_attempts or fb.max_attempts,
            delay,
            budget=self.retry_budgets.get(group_route(gname)),
            hedge=_hedge(fb.hedge),
        )

    def pool_route(
        self,
        config: LLMConfig,
        pool: str,
        *,
        max_instance_attempts: int | None = None,
        strategy: str | None = None,
        retry_delay: float | None = None,
    ) -> Route:
        """How requests to a pool proceed, from the pool's ``fallback_config``."""
        fb = config.pools[pool].effective_fallback
        name = strategy or _value(fb.strategy)
        attempts = max_instance_attempts or fb.max_instance_attempts
        target = self.targets[pool_label(pool)]
        delay = POOL_RETRY_DELAY if retry_delay is None else retry_delay
        return Route(
            pool_label(pool),
            plan_class(name),
            [Step(target, attempts, target.label)],
            attempts,
            delay,
            budget=self.retry_budgets.get(pool_route(pool)),
            hedge=_hedge(fb.hedge),
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        with self.lock:
            return {name: gate.snapshot(now) for name, gate in self.gates.items()}

    def resilience(self, now: float) -> dict[str, Any]:
        """Retry budgets by route, pacing by instance, ejections by pool."""
        budgets = {route: b.snapshot(now) for route, b in self.retry_budgets.items()}
        with self.lock:
            return {
                "retry_budgets": budgets,
                "paced": {name: gate.paced for name, gate in self.gates.items()},
                "outlier_detection": {
                    label: target.outliers.snapshot(now)
                    for label, target in self.targets.items()
                    if target.outliers is not None
                },
            }
