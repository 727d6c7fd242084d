"""Splitting limits between processes that share no store: each one's share, never zero."""

from __future__ import annotations

import pytest

from actors.config import LLMConfig
from actors.state.split import share, split_limits


@pytest.mark.parametrize(
    ("limit", "processes", "each"),
    [(None, 4, None), (10, 1, 10), (10, 2, 5), (10, 3, 3), (3, 4, 1), (1, 8, 1)],
)
def test_share(limit, processes, each):
    assert share(limit, processes) == each


def test_split_limits_divides_every_model_and_tier_limit():
    config = LLMConfig(
        models={
            "m": {"model_type": "simulated", "model_name": "x", "rpm_limit": 100, "tpm_limit": 9000},
            "n": {"model_type": "simulated", "model_name": "y", "concurrency_limit": 3},
        },
        groups={"g": {"echelon1": {"models": ["m", "n"], "concurrency_limit": 8, "rpm_limit": 60}}},
    )
    split = split_limits(config, 4)
    assert (split.models["m"].rpm_limit, split.models["m"].tpm_limit) == (25, 2250)
    assert (split.models["n"].concurrency_limit, split.models["n"].rpm_limit) == (1, None)
    tier = split.groups["g"].tiers["echelon1"]
    assert (tier.concurrency_limit, tier.rpm_limit) == (2, 15)
    assert split_limits(config, 1) is config
