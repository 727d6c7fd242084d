"""The original design's fallback manager: calls with fallback through task-group routes, with history."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from typing import Any

from actors.compat.managers import TaskGroupManager
from actors.compat.pools import PollingPoolManager
from actors.compat.routes import WrapperCache
from actors.proxy import TaskGroupWrapper

__all__ = ["EnhancedFallbackManager"]

#: Entries kept in ``EnhancedFallbackManager``'s history.
HISTORY = 100
#: Keys of ``execute_with_fallback``'s keyword arguments that shape the route, not the request.
_ROUTE_KEYS = ("strategy", "max_attempts", "retry_delay", "timeout", "queue_timeout")


class EnhancedFallbackManager:
    """Calls with fallback through task-group routes, and the history of every execution.

    Each call is a real request through a task-group wrapper over the runtime, so the route's
    strategy, ``max_attempts``, ``retry_delay``, limits and breakers all apply. The history has
    one entry per attempt, successes included, and is bounded.
    """

    def __init__(
        self, task_group_manager: TaskGroupManager, polling_pool_manager: PollingPoolManager | None = None
    ) -> None:
        self.task_group_manager = task_group_manager
        self.polling_pool_manager = polling_pool_manager
        self._lock = threading.Lock()
        self._wrappers = WrapperCache()
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self._executions: collections.Counter[str] = collections.Counter()

    async def execute_with_fallback(
        self, primary_target: str, fallback_groups: Sequence[str] | None, prompt: Any, **kwargs: Any
    ) -> str:
        """Answer ``prompt`` (text or messages) at ``primary_target``, then ``fallback_groups``.

        ``fallback_groups`` replaces the group's own list (None keeps it); the group's strategy
        decides whether its lower tiers come first. Keyword arguments ``strategy``,
        ``max_attempts``, ``retry_delay``, ``timeout`` and ``queue_timeout`` shape the route;
        ``parameters`` and the rest go to the model. Returns the reply text, as the original
        did; raises the runtime's typed error (``AllAttemptsFailedError``, ``NoCapacityError``,
        ``BadRequestError``...) when every allowed attempt failed.
        """
        route_cfg = {k: kwargs.pop(k) for k in _ROUTE_KEYS if k in kwargs}
        parameters = dict(kwargs.pop("parameters", None) or {})
        parameters.update(kwargs)
        wrapper = self._wrapper(primary_target, fallback_groups, route_cfg)
        started = time.monotonic()
        try:
            response = await wrapper.generate_async(prompt, parameters)
        except BaseException as exc:
            self._record(
                wrapper, primary_target, getattr(exc, "attempts", []), exc, time.monotonic() - started
            )
            raise
        self._record(wrapper, primary_target, response.attempts, None, time.monotonic() - started)
        return response.content

    async def execute_with_task_group_fallback(self, primary_target: str, prompt: Any, **kwargs: Any) -> str:
        """``execute_with_fallback`` with the group's own ``fallback_config``."""
        return await self.execute_with_fallback(primary_target, None, prompt, **kwargs)

    def _wrapper(
        self, primary: str, fallback_groups: Sequence[str] | None, route_cfg: dict[str, Any]
    ) -> TaskGroupWrapper:
        rt = self.task_group_manager.runtime
        key = (
            primary,
            None if fallback_groups is None else tuple(fallback_groups),
            tuple(sorted(route_cfg.items())),
        )
        cfg: dict[str, Any] = {"target": primary, **route_cfg}
        if fallback_groups is not None:
            cfg["fallback_groups"] = [g for g in fallback_groups if g != primary]
        return self._wrappers.get(key, rt, f"fallback:{primary}", TaskGroupWrapper, cfg)

    def _record(
        self,
        wrapper: TaskGroupWrapper,
        primary: str,
        attempts: Sequence[Any],
        error: BaseException | None,
        elapsed: float,
    ) -> None:
        first = wrapper.route.first_label or primary
        strategy = wrapper.route.plan_cls.name
        now = time.time()
        entries = []
        for i, a in enumerate(attempts, 1):
            success = a.outcome.value == "success"
            entry = {
                "attempt_number": i,
                "primary_target": primary,
                "target": a.target,
                "instance": a.instance,
                # The attempt's reason to be where it is: the primary tier, or the strategy that led on.
                "strategy": "primary" if a.target == first else strategy,
                "success": success,
                "outcome": a.outcome.value,
                "response_time": a.duration,
                "timestamp": now,
            }
            if a.error:
                entry["error"] = a.error
            entries.append(entry)
        if error is not None and not attempts:
            entries.append(
                {
                    "attempt_number": 0,
                    "primary_target": primary,
                    "target": None,
                    "instance": None,
                    "strategy": strategy,
                    "success": False,
                    "outcome": "not_attempted",
                    "response_time": elapsed,
                    "timestamp": now,
                    "error": str(error) or type(error).__name__,
                }
            )
        fell_back = any(a.target != first for a in attempts)
        with self._lock:
            self._history.extend(entries)
            self._executions["total"] += 1
            self._executions["successful" if error is None else "failed"] += 1
            if fell_back and error is None:
                self._executions["fell_back"] += 1

    def get_fallback_history(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last ``limit`` attempts (of at most 100 kept), oldest first."""
        with self._lock:
            return list(self._history)[-limit:] if limit > 0 else []

    def reset_fallback_history(self) -> None:
        with self._lock:
            self._history.clear()
            self._executions.clear()

    def get_statistics(self) -> dict[str, Any]:
        """The original's keys over the kept attempts, plus counts of whole executions."""
        with self._lock:
            history = list(self._history)
            executions = dict(self._executions)
        total = len(history)
        successful = [a for a in history if a["success"]]
        distribution = collections.Counter(a["strategy"] for a in history)
        times = [a["response_time"] for a in successful if a["response_time"] > 0]
        runs = executions.get("total", 0)
        return {
            "total_attempts": total,
            "successful_attempts": len(successful),
            "success_rate": len(successful) / total if total else 0.0,
            "avg_response_time": sum(times) / len(times) if times else 0.0,
            "most_used_strategy": distribution.most_common(1)[0][0] if distribution else None,
            "strategy_distribution": dict(distribution),
            "circuit_breakers": len(self.get_circuit_breaker_status()) if self._started() else 0,
            "total_executions": runs,
            "successful_executions": executions.get("successful", 0),
            "failed_executions": executions.get("failed", 0),
            "fallback_executions": executions.get("fell_back", 0),
            "execution_success_rate": executions.get("successful", 0) / runs if runs else 0.0,
        }

    def get_circuit_breaker_status(self) -> dict[str, dict[str, Any]]:
        """Each instance's breakers, one per route (group or pool) that reaches it."""
        rt = self.task_group_manager.runtime
        assert rt.table is not None
        out: dict[str, dict[str, Any]] = {}
        for name, snap in rt.table.snapshot(time.monotonic()).items():
            out[name] = {"state": snap["state"], "reason": snap["reason"], "breakers": snap["breakers"]}
        return out

    def _started(self) -> bool:
        return self.task_group_manager.running
