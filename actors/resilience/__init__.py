"""Resilience policies beyond fallback: retry budget, hedging, pacing, outlier ejection, affinity.

Each is a pure class (time passed in as ``now``), owned by the lease table and consulted under
its lock; none does I/O or sleeps.
"""

from actors.resilience.affinity import SessionRing
from actors.resilience.budget import RetryBudget
from actors.resilience.ejection import OutlierDetector
from actors.resilience.hedge import HedgePolicy, TtfbSamples
from actors.resilience.pacing import PaceDecision, RateLimits, decide, parse_rate_limits

__all__ = [
    "HedgePolicy",
    "OutlierDetector",
    "PaceDecision",
    "RateLimits",
    "RetryBudget",
    "SessionRing",
    "TtfbSamples",
    "decide",
    "parse_rate_limits",
]
