"""Fallback plans, pure: which instance each strategy admits next, and what a verdict is."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from actors.fallback import PLANS, Step, Verdict, make_plan
from actors.outcome import Outcome


@dataclass
class M:
    name: str
    provider: str
    context_window: int | None = None


@dataclass
class T:
    members: tuple


OA1, OA2, AN1, AN2 = M("oa1", "openai"), M("oa2", "openai"), M("an1", "anthropic"), M("an2", "anthropic")


def steps(*groups, attempts=3):
    return [Step(T(tuple(g)), attempts, f"s{i}") for i, g in enumerate(groups)]


def test_registry_has_the_five_strategies():
    assert sorted(PLANS) == [
        "echelon_down",
        "instance_rotation",
        "provider_failover",
        "simple_retry",
        "task_group_switch",
    ]
    with pytest.raises(ValueError, match="use one of"):
        make_plan("model_rotate_typo", [], max_attempts=3)


def test_each_retry_goes_to_an_untried_instance():
    plan = make_plan("echelon_down", steps([OA1, OA2, AN1]), max_attempts=5)
    assert plan.admits(OA1)
    assert plan.record(OA1, Outcome.UNHEALTHY) is Verdict.RETRY
    assert not plan.admits(OA1) and plan.admits(OA2)


def test_step_attempts_then_next_step_without_backoff():
    plan = make_plan("echelon_down", steps([OA1, OA2], [AN1], attempts=2), max_attempts=10)
    assert plan.record(OA1, Outcome.UNHEALTHY) is Verdict.RETRY
    assert plan.record(OA2, Outcome.UNHEALTHY) is Verdict.NEXT
    assert plan.step.target.members == (AN1,)


def test_max_attempts_caps_the_whole_request():
    plan = make_plan("echelon_down", steps([OA1, OA2], [AN1], attempts=2), max_attempts=2)
    plan.record(OA1, Outcome.UNHEALTHY)
    assert plan.record(OA2, Outcome.UNHEALTHY) is Verdict.STOP
    assert plan.step is None


@pytest.mark.parametrize("outcome", [Outcome.SUCCESS, Outcome.CALLER_FAULT])
def test_success_and_callers_fault_stop(outcome):
    plan = make_plan("echelon_down", steps([OA1, OA2]), max_attempts=5)
    assert plan.record(OA1, outcome) is Verdict.STOP


def test_provider_failover_skips_a_failed_provider_for_the_rest_of_the_request():
    plan = make_plan("provider_failover", steps([OA1, OA2, AN1], [AN2, M("oa3", "openai")]), max_attempts=9)
    plan.record(OA1, Outcome.UNHEALTHY)
    assert not plan.admits(OA2)  # same provider, never tried, still skipped
    assert plan.admits(AN1)
    plan.advance()
    assert not plan.admits(M("oa3", "openai")) and plan.admits(AN2)


def test_provider_failover_prefers_untried_providers_after_a_rate_limit():
    plan = make_plan("provider_failover", steps([OA1, OA2, AN1]), max_attempts=9)
    plan.record(OA1, Outcome.RATE_LIMITED)
    assert plan.admits(OA2)  # not failed, just limited
    assert plan.preference(AN1) < plan.preference(OA2)


def test_echelon_down_does_not_skip_a_provider():
    plan = make_plan("echelon_down", steps([OA1, OA2, AN1]), max_attempts=9)
    plan.record(OA1, Outcome.UNHEALTHY)
    assert plan.admits(OA2)


def test_simple_retry_sticks_to_an_unhealthy_instance_and_moves_on_when_limited():
    plan = make_plan("simple_retry", steps([OA1, OA2, AN1]), max_attempts=3)
    assert plan.record(OA1, Outcome.UNHEALTHY) is Verdict.RETRY
    assert plan.admits(OA1) and not plan.admits(OA2)
    assert plan.record(OA1, Outcome.RATE_LIMITED) is Verdict.AGAIN
    assert not plan.admits(OA1) and plan.admits(OA2)


def test_instance_rotation_never_repeats_an_instance():
    plan = make_plan("instance_rotation", steps([OA1, OA2, AN1]), max_attempts=3)
    assert plan.record(OA1, Outcome.UNHEALTHY) is Verdict.AGAIN
    plan.record(OA2, Outcome.FATAL)
    assert [m.name for m in (OA1, OA2, AN1) if plan.admits(m)] == ["an1"]


def test_descends_distinguishes_echelon_down_from_task_group_switch():
    assert PLANS["echelon_down"].descends and PLANS["provider_failover"].descends
    assert not PLANS["task_group_switch"].descends


def test_context_window_escalation_jumps_to_a_larger_window():
    small, big = M("small", "x", 8000), M("big", "x", 128000)
    plan = make_plan("echelon_down", steps([small], [M("same", "x", 8000)], [big]), max_attempts=5)
    plan.record(small, Outcome.CALLER_FAULT)
    assert plan.escalate(8000)
    assert plan.step.target.members == (big,)
    assert not plan.escalate(128000)


def test_a_backoff_is_only_for_a_member_ready_by_its_end():
    """``ready`` says who is up when a backoff would end; none admitted and ready: move on now."""
    down = {OA2.name}

    def ready(m):
        return m.name not in down

    plan = make_plan("echelon_down", steps([OA1, OA2], [AN1], attempts=2), max_attempts=5)
    assert plan.record(OA1, Outcome.UNHEALTHY, ready) is Verdict.NEXT
    assert plan.step.target.members == (AN1,)
    plan = make_plan("echelon_down", steps([OA1, OA2, AN2], [AN1]), max_attempts=5)
    assert plan.record(OA1, Outcome.UNHEALTHY, ready) is Verdict.RETRY  # AN2 is up
    # An attempt now (not a backoff) stays at the step: the lease itself skips what is down.
    plan = make_plan("echelon_down", steps([OA1, OA2], [AN1]), max_attempts=5)
    assert plan.record(OA1, Outcome.RATE_LIMITED, ready) is Verdict.AGAIN
    # simple_retry backs off for the same instance; if that one stays down, another one now.
    plan = make_plan("simple_retry", steps([OA1, OA2]), max_attempts=5)
    down = {OA1.name}
    assert plan.record(OA1, Outcome.UNHEALTHY, ready) is Verdict.AGAIN
    assert plan.sticky is None and plan.admits(OA2) and not plan.admits(OA1)
    plan = make_plan("simple_retry", steps([OA1]), max_attempts=5)
    assert plan.record(OA1, Outcome.UNHEALTHY, ready) is Verdict.STOP
