"""The resilience keys: retry_budget, hedge, outlier_detection, affinity, pace_from_headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from config_helpers import edit, edit_yaml, single_issue

from actors.config import load_config

pytestmark = pytest.mark.usefixtures("no_keys")

FAST = "groups/fast_group.yaml"
FAST_POOL = "polling_pools/fast_pool.yaml"
GPT4 = "provider/openai/openai-gpt4.yaml"


def test_defaults(llms: Path) -> None:
    cfg = load_config(llms, environ={})
    fb = cfg.groups["fast_group"].effective_fallback
    assert (fb.retry_budget.ratio, fb.retry_budget.min_per_second) == (0.2, 10.0)
    assert fb.hedge is None
    pool = cfg.pools["fast_pool"]
    assert pool.outlier_detection is None and pool.affinity is None
    assert pool.effective_fallback.retry_budget.ratio == 0.2
    assert cfg.models["openai-gpt4"].pace_from_headers is True


def test_every_key_loads(llms: Path) -> None:
    edit_yaml(
        llms / FAST,
        lambda d: d["fallback_config"].update(
            retry_budget={"ratio": 0.1, "min_per_second": 1}, hedge={"after": "p95", "max_extra": 2}
        ),
    )
    edit_yaml(
        llms / FAST_POOL,
        lambda d: d.update(
            affinity="session",
            outlier_detection={
                "latency_factor": 4,
                "min_requests": 10,
                "max_ejection_percent": 50,
                "base_ejection_time": 5,
            },
            fallback_config={
                **d["fallback_config"],
                "hedge": {"after": 0.25},
                "retry_budget": {"ratio": 0.5},
            },
        ),
    )
    edit_yaml(llms / GPT4, lambda d: d.update(pace_from_headers=False))
    cfg = load_config(llms, environ={})
    fb = cfg.groups["fast_group"].effective_fallback
    assert (fb.retry_budget.ratio, fb.retry_budget.min_per_second) == (0.1, 1.0)
    assert (fb.hedge.after, fb.hedge.max_extra) == ("p95", 2)
    pool = cfg.pools["fast_pool"]
    assert pool.affinity == "session"
    od = pool.outlier_detection
    assert (od.latency_factor, od.min_requests, od.max_ejection_percent, od.base_ejection_time) == (
        4,
        10,
        50,
        5,
    )
    pfb = pool.effective_fallback
    assert (pfb.hedge.after, pfb.hedge.max_extra) == (0.25, 1)
    assert (pfb.retry_budget.ratio, pfb.retry_budget.min_per_second) == (0.5, 10.0)
    assert cfg.models["openai-gpt4"].pace_from_headers is False


CASES = [
    (
        "retry budget ratio negative",
        edit(FAST, lambda d: d["fallback_config"].update(retry_budget={"ratio": -0.2})),
        FAST,
        "fallback_config.retry_budget.ratio",
        "greater than or equal to 0",
    ),
    (
        "retry budget typo",
        edit(FAST, lambda d: d["fallback_config"].update(retry_budget={"min_per_sec": 1})),
        FAST,
        "fallback_config.retry_budget.min_per_sec",
        "did you mean 'min_per_second'?",
    ),
    (
        "hedge after neither seconds nor p95",
        edit(FAST, lambda d: d["fallback_config"].update(hedge={"after": "p99"})),
        FAST,
        "fallback_config.hedge.after",
        "must be a positive number of seconds or 'p95'; got 'p99'",
    ),
    (
        "hedge after zero",
        edit(FAST_POOL, lambda d: d["fallback_config"].update(hedge={"after": 0})),
        FAST_POOL,
        "fallback_config.hedge.after",
        "positive number of seconds",
    ),
    (
        "hedge max_extra zero",
        edit(FAST, lambda d: d["fallback_config"].update(hedge={"max_extra": 0})),
        FAST,
        "fallback_config.hedge.max_extra",
        "greater than 0",
    ),
    (
        "outlier latency_factor not above 1",
        edit(FAST_POOL, lambda d: d.update(outlier_detection={"latency_factor": 1})),
        FAST_POOL,
        "outlier_detection.latency_factor",
        "greater than 1",
    ),
    (
        "outlier max_ejection_percent above 100",
        edit(FAST_POOL, lambda d: d.update(outlier_detection={"max_ejection_percent": 150})),
        FAST_POOL,
        "outlier_detection.max_ejection_percent",
        "less than or equal to 100",
    ),
    (
        "outlier typo",
        edit(FAST_POOL, lambda d: d.update(outlier_detection={"base_ejection_tme": 3})),
        FAST_POOL,
        "outlier_detection.base_ejection_tme",
        "did you mean 'base_ejection_time'?",
    ),
    (
        "affinity unknown",
        edit(FAST_POOL, lambda d: d.update(affinity="user")),
        FAST_POOL,
        "affinity",
        "'session'",
    ),
    (
        "pace_from_headers not a bool",
        edit(GPT4, lambda d: d.update(pace_from_headers="sometimes")),
        GPT4,
        "pace_from_headers",
        "boolean",
    ),
    (
        "affinity is a pool key, not a group key",
        edit(FAST, lambda d: d.update(affinity="session")),
        FAST,
        "affinity",
        "",
    ),
]


@pytest.mark.parametrize("mutate, file, path, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_names_file_and_field(
    llms: Path, mutate: Callable[[Path], None], file: str, path: str, message: str
) -> None:
    single_issue(llms, mutate, file, path, message)
