"""The gateway's response headers: who answered, through what, after which failures, at what cost.

=============================  ===============================================================
header                         value
=============================  ===============================================================
``x-llm-actors-instance``      the instance that answered (or was tried last, on a failure)
``x-llm-actors-target``        the target (``group.tier`` or ``pool:name``) it was leased from
``x-llm-actors-attempts``      attempts made, the answering one included
``x-llm-actors-fallback``      ``true`` when an attempt left the route's first target (the
                               wrapper's ``fallbacks`` statistic counts the same requests)
``x-llm-actors-failed``        the instances whose attempts failed, in order, comma-separated
``x-llm-actors-overhead-ms``   milliseconds spent in the gateway: the request's time so far
                               less the time its attempts spent upstream
=============================  ===============================================================
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from actors.outcome import Outcome
from actors.response import Attempt

if TYPE_CHECKING:
    from actors.proxy import Request

__all__ = ["EXPOSED_HEADERS", "gateway_seconds", "trail"]

#: Response headers a browser script may read (CORS ``Access-Control-Expose-Headers``).
EXPOSED_HEADERS = (
    "x-request-id",
    "x-llm-actors-instance",
    "x-llm-actors-target",
    "x-llm-actors-attempts",
    "x-llm-actors-fallback",
    "x-llm-actors-failed",
    "x-llm-actors-overhead-ms",
    "x-llm-actors-count-source",
    "x-llm-actors-retry-budget",
    "retry-after",
    "retry-after-ms",
)


def trail(
    attempts: list[Attempt],
    *,
    first_target: str = "",
    instance: str = "",
    target: str = "",
    count: int | None = None,
    overhead: float | None = None,
) -> dict[str, str]:
    """The headers for a request whose attempts so far are ``attempts``.

    ``instance`` and ``target`` name the answering attempt when it is not among ``attempts``
    yet (a stream records its attempt when it ends); ``count`` then counts it too.
    ``overhead`` is in seconds (``gateway_seconds``); the header says milliseconds.
    """
    if not instance and attempts:
        instance, target = attempts[-1].instance, attempts[-1].target or ""
    headers = {"x-llm-actors-attempts": str(len(attempts) if count is None else count)}
    if instance:
        headers["x-llm-actors-instance"] = instance
    if target:
        headers["x-llm-actors-target"] = target
    targets = [a.target for a in attempts]
    if target:
        targets.append(target)
    fell_back = bool(first_target) and any(t and t != first_target for t in targets)
    headers["x-llm-actors-fallback"] = "true" if fell_back else "false"
    failed: list[str] = []
    for a in attempts:
        if a.outcome is not Outcome.SUCCESS and a.instance not in failed:
            failed.append(a.instance)
    headers["x-llm-actors-failed"] = ",".join(failed)
    if overhead is not None:
        headers["x-llm-actors-overhead-ms"] = f"{max(0.0, overhead) * 1000:.3f}"
    return headers


def gateway_seconds(call: Request | None, started: float, *, in_progress: bool = False) -> float:
    """Seconds the gateway spent on ``call`` since ``started`` (``time.perf_counter``), upstream
    time excluded; ``in_progress``: an attempt is still streaming, and its time since it was
    sent is upstream time too."""
    total = time.perf_counter() - started
    if call is None:
        return total
    upstream = sum(a.duration for a in call.attempts)
    if in_progress:
        upstream += call.run.clock() - call.run.call_started
    return total - upstream
