"""``LLMConfig``: the whole validated configuration and the queries the runtime asks of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from actors.config.base import Strict
from actors.config.diagnostics import unknown
from actors.config.groups import EchelonConfig, TaskGroupConfig
from actors.config.instances import ModelConfig
from actors.config.pools import PollingPoolConfig
from actors.config.refs import check_references, parse_ref, ref_problem
from actors.config.registry import GlobalFallbackConfig, RegistryConfig
from actors.config.state import StateConfig
from actors.config.wrappers import WrapperConfig
from actors.errors import ConfigError, ConfigIssue

__all__ = ["LLMConfig"]

Pair = tuple[str, str]  # (group, tier)


class LLMConfig(Strict):
    """Every model, group, pool and wrapper, cross-checked.

    Built by ``load_config`` from ``config/llms``, or directly (for tests and embedding): the
    dict keys are the names, and a ``name`` left empty is filled from its key. Constructing one
    runs the same cross-file checks as loading, and raises ``ConfigError`` listing every problem.
    """

    root: Path | None = Field(None, description="the llms directory it was loaded from")
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    groups: dict[str, TaskGroupConfig] = Field(default_factory=dict)
    pools: dict[str, PollingPoolConfig] = Field(default_factory=dict)
    wrappers: dict[str, WrapperConfig] = Field(default_factory=dict)
    registry: RegistryConfig | None = None
    global_fallback: GlobalFallbackConfig | None = None
    state: StateConfig = Field(default_factory=StateConfig)

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section in ("models", "groups", "pools"):
            entries = data.get(section)
            if isinstance(entries, dict):
                data[section] = {key: _with_name(key, value) for key, value in entries.items()}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> LLMConfig:
        issues: list[ConfigIssue] = []
        for section in ("models", "groups", "pools"):
            for key, value in getattr(self, section).items():
                if value.name != key:
                    issues.append(
                        ConfigIssue(
                            f"<{section}>",
                            key,
                            f"name {value.name!r} differs from its key {key!r}; use one name",
                        )
                    )
        issues += check_references(self.models, self.groups, self.pools, self.wrappers)
        if not issues:
            issues += self.mode_issues()
        if issues:
            raise ConfigError(issues)
        return self

    # ----------------------------------------------------------------------------- queries

    def resolve(self, ref: str) -> list[Pair]:
        """The (group, tier) pairs a reference means: ``group.tier`` one, ``group`` all by priority."""
        problem = ref_problem(ref, self.groups)
        if problem:
            raise ConfigError(problem)
        group, tier = parse_ref(ref)
        if tier is not None:
            return [(group, tier)]
        return [(group, name) for name, _ in self.groups[group].tiers_by_priority()]

    def tier(self, group: str, tier: str) -> EchelonConfig:
        """One tier's settings."""
        problem = ref_problem(f"{group}.{tier}", self.groups)
        if problem:
            raise ConfigError(problem)
        return self.groups[group].tiers[tier]

    def pool_members(self, pool: str) -> list[tuple[str, str, str]]:
        """A pool's instances as (group, tier, model), in the order of its ``task_groups``.

        The same model reached through two tiers is two members: each tier's limits apply to
        requests that come through it. Disabled models are included (they stay in the topology).
        """
        config = self._pool(pool)
        members: dict[tuple[str, str, str], None] = {}
        for ref in config.task_groups:
            for group, tier in self.resolve(ref):
                for model in self.groups[group].tiers[tier].models:
                    members[(group, tier, model)] = None
        return list(members)

    def fallback_chain(self, ref: str, fallback_groups: list[str] | None = None) -> list[str]:
        """The refs to try after ``ref``'s own tiers, in order; never ``ref`` itself.

        A group's ``fallback_groups`` is a ladder: a request that starts at (or falls to) a ref
        the list names continues with the entries after it; one that starts elsewhere in the
        group takes the whole list. Falling to another group's tier continues down that group's
        ladder the same way, breadth first. ``fallback_groups`` given (a wrapper's override)
        replaces the starting group's list. Refs adding no tier not already covered are left out.
        """
        return [r for r, _ in self._chain(ref, fallback_groups)]

    def fallback_tiers(self, ref: str, fallback_groups: list[str] | None = None) -> list[Pair]:
        """``fallback_chain`` as (group, tier) pairs, each once, none of ``ref``'s own."""
        return [pair for _, pairs in self._chain(ref, fallback_groups) for pair in pairs]

    def enabled_models(self) -> dict[str, ModelConfig]:
        """Models that can take requests (their key is set)."""
        return {name: m for name, m in self.models.items() if m.enabled}

    def disabled_models(self) -> dict[str, ModelConfig]:
        """Models that cannot, each with its ``disabled_reason``."""
        return {name: m for name, m in self.models.items() if not m.enabled}

    def wrapper(self, name: str) -> WrapperConfig:
        """A named wrapper's config; an unknown name is a ``ConfigError`` with the closest name."""
        try:
            return self.wrappers[name]
        except KeyError:
            raise ConfigError(unknown(f"unknown wrapper {name!r}", name, self.wrappers, "wrappers")) from None

    def mode_issues(self) -> list[ConfigIssue]:
        """A request is chat or embedding throughout: a tier, a pool and a fallback chain each
        serve one ``mode``, so no request can reach a model that cannot answer it."""
        issues: list[ConfigIssue] = []

        def modes_of(pairs: list[Pair]) -> dict[str, list[str]]:
            modes: dict[str, list[str]] = {}
            for group, tier in pairs:
                for model in self.groups[group].tiers[tier].models:
                    modes.setdefault(self.models[model].mode, []).append(model)
            return modes

        def describe(modes: dict[str, list[str]]) -> str:
            return "; ".join(f"{mode}: {', '.join(dict.fromkeys(names))}" for mode, names in modes.items())

        for name, group in self.groups.items():
            for tier in group.tiers:
                ref = f"{name}.{tier}"
                modes = modes_of([(name, tier), *self.fallback_tiers(ref)])
                if len(modes) > 1:
                    issues.append(
                        ConfigIssue(
                            f"groups/{name}.yaml",
                            tier,
                            f"{ref} and its fallbacks mix model modes ({describe(modes)}); a chat "
                            "request cannot go to an embedding model or the reverse: keep one mode",
                        )
                    )
        for name, wrapper in self.wrappers.items():
            if wrapper.target is None or wrapper.fallback_groups is None:
                continue  # the group's own chain, checked above
            pairs = self.resolve(wrapper.target) + self.fallback_tiers(
                wrapper.target, wrapper.fallback_groups
            )
            modes = modes_of(pairs)
            if len(modes) > 1:
                issues.append(
                    ConfigIssue(
                        "wrappers.yaml",
                        f"{name}.fallback_groups",
                        f"the wrapper's target and fallbacks mix model modes ({describe(modes)}); keep one mode",
                    )
                )
        for name in self.pools:
            members = self.pool_members(name)
            modes = modes_of([(g, t) for g, t, _ in members])
            if len(modes) > 1:
                issues.append(
                    ConfigIssue(
                        f"polling_pools/{name}.yaml",
                        "task_groups",
                        f"the pool mixes model modes ({describe(modes)}); keep one mode",
                    )
                )
        return issues

    # ----------------------------------------------------------------------------- helpers

    def _pool(self, pool: str) -> PollingPoolConfig:
        try:
            return self.pools[pool]
        except KeyError:
            raise ConfigError(unknown(f"unknown pool {pool!r}", pool, self.pools, "pools")) from None

    def _chain(self, ref: str, fallback_groups: list[str] | None) -> list[tuple[str, list[Pair]]]:
        covered = set(self.resolve(ref))
        group, _ = parse_ref(ref)
        queue = list(fallback_groups) if fallback_groups is not None else self._ladder_after(group, ref)
        expanded = {group}
        chain: list[tuple[str, list[Pair]]] = []
        i = 0
        while i < len(queue):
            candidate = queue[i]
            i += 1
            new = [pair for pair in self.resolve(candidate) if pair not in covered]
            if new:
                chain.append((candidate, new))
                covered.update(new)
            target, _ = parse_ref(candidate)
            if target not in expanded:
                expanded.add(target)
                queue.extend(self._ladder_after(target, candidate))
        return chain

    def _ladder_after(self, group: str, entry: str) -> list[str]:
        refs = self.groups[group].effective_fallback.fallback_groups
        return refs[refs.index(entry) + 1 :] if entry in refs else list(refs)


def _with_name(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        value = value if value.get("name") else {**value, "name": key}
        if "model_type" in value and not value.get("provider"):
            value = {**value, "provider": value["model_type"]}  # a model given inline
        return value
    if isinstance(value, (ModelConfig, TaskGroupConfig, PollingPoolConfig)) and not value.name:
        return value.model_copy(update={"name": key})
    return value
