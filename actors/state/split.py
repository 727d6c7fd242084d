"""Splitting limits between processes that cannot share them (no store, or the store is away).

``limit // processes``, at least 1: the processes together never exceed a limit of at least
``processes``; below that each keeps one permit, so they may exceed it by up to ``processes - limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.config import LLMConfig

__all__ = ["share", "split_limits"]

_MODEL_LIMITS = ("concurrency_limit", "rpm_limit", "tpm_limit")
_TIER_LIMITS = ("concurrency_limit", "rpm_limit")


def share(limit: int | None, processes: int) -> int | None:
    """One process's share of ``limit``."""
    if not limit or processes <= 1:
        return limit
    return max(1, limit // processes)


def _split(model: Any, fields: tuple[str, ...], processes: int) -> Any:
    update = {f: share(getattr(model, f), processes) for f in fields if getattr(model, f)}
    return model.model_copy(update=update) if update else model


def split_limits(config: LLMConfig, processes: int) -> LLMConfig:
    """``config`` with every model and tier limit divided between ``processes`` processes."""
    if processes <= 1:
        return config
    models = {name: _split(m, _MODEL_LIMITS, processes) for name, m in config.models.items()}
    groups = {
        name: g.model_copy(
            update={"tiers": {t: _split(e, _TIER_LIMITS, processes) for t, e in g.tiers.items()}}
        )
        for name, g in config.groups.items()
    }
    return config.model_copy(update={"models": models, "groups": groups})
