"""The order a task-group request visits tiers in: the one place it is computed.

The lease table builds every task-group route from ``tier_order``, and the original design's
``TaskGroupManager`` answers its fallback and priority queries from it, so the two cannot
disagree (``tests/test_order.py`` compares them for every tier of the shipped config).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from actors.fallback import FallbackPlan, plan_class

if TYPE_CHECKING:
    from actors.config import LLMConfig

__all__ = ["group_plan", "tier_order"]

Pair = tuple[str, str]  # (group, tier)


def group_plan(config: LLMConfig, ref: str, strategy: str | None = None) -> type[FallbackPlan]:
    """The plan class of a request to ``ref``: ``strategy`` if given, else its group's."""
    if not strategy:
        fb = config.groups[config.resolve(ref)[0][0]].effective_fallback
        strategy = getattr(fb.strategy, "value", fb.strategy)
    return plan_class(str(strategy))


def tier_order(
    config: LLMConfig, ref: str, fallback_groups: Sequence[str] | None, plan_cls: type[FallbackPlan]
) -> list[Pair]:
    """Every tier a request to ``ref`` may visit, in order, each once: ``ref``'s own tiers, the
    group's lower tiers by priority when the plan descends, then the fallback ladder
    (``LLMConfig.fallback_tiers``; ``fallback_groups`` given replaces the group's list)."""
    first = config.resolve(ref)
    pairs = list(first)
    if plan_cls.descends:
        group = first[0][0]
        ordered = [(group, t) for t, _ in config.groups[group].tiers_by_priority()]
        start = ordered.index(first[-1])
        pairs += ordered[start + 1 :]
    pairs += config.fallback_tiers(ref, None if fallback_groups is None else list(fallback_groups))
    return list(dict.fromkeys(pairs))
