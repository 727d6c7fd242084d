"""Group references (``group``, ``group.echelonN``, ``group.<task>``) and cross-file checks.

Each file is validated on its own by its model; this module checks what spans files: a tier's
models exist, every reference names a loaded group and tier, wrappers name loaded pools, and
fallbacks neither point a group at itself nor go round in a cycle.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.config.diagnostics import did_you_mean, format_path, unknown
from actors.config.groups import ECHELON_RE, TaskGroupConfig
from actors.config.instances import ModelConfig
from actors.config.pools import PollingPoolConfig
from actors.config.wrappers import WrapperConfig, WrapperType
from actors.errors import ConfigIssue

__all__ = ["Sources", "check_references", "parse_ref", "ref_problem"]


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"fast_group.echelon1"`` -> ``("fast_group", "echelon1")``; ``"fast_group"`` -> ``("fast_group", None)``."""
    group, dot, tier = ref.partition(".")
    return group, (tier if dot else None)


@dataclass
class Sources:
    """Where each loaded thing came from, and what could not be loaded (so it is not re-reported)."""

    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> file
    broken: set[tuple[str, str]] = field(default_factory=set)  # failed to validate: already reported
    disabled: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> why

    def file(self, kind: str, name: str) -> str:
        return self.files.get((kind, name), f"<{kind} {name}>")


def ref_problem(
    ref: Any, groups: Mapping[str, TaskGroupConfig], sources: Sources | None = None
) -> str | None:
    """What is wrong with a reference, or None when it resolves (or points at a file already reported)."""
    sources = sources or Sources()
    if isinstance(ref, str) and any(ref == g or ref.startswith(g + ".") for g in groups if "." in g):
        return None  # a group whose own name has a dot: reported there (rename it), not guessed at here
    if not isinstance(ref, str) or not ref or ref.count(".") > 1 or ref.startswith(".") or ref.endswith("."):
        return f"{ref!r} is not a reference; write a group name or group.tier, e.g. fast_group.echelon1"
    name, tier = parse_ref(ref)
    if name not in groups:
        if ("group", name) in sources.broken:
            return None
        if ("group", name) in sources.disabled:
            return f"group {name!r} is {sources.disabled['group', name]}; enable it or remove this reference"
        return unknown(f"unknown group {name!r}", name, [g for g in groups if "." not in g], "groups")
    if tier is not None and tier not in groups[name].tiers:
        if ("tier", ref) in sources.broken:
            return None
        return unknown(f"group {name!r} has no tier {tier!r}", tier, groups[name].tiers, "its tiers")
    return None


def check_references(
    models: Mapping[str, ModelConfig],
    groups: Mapping[str, TaskGroupConfig],
    pools: Mapping[str, PollingPoolConfig],
    wrappers: Mapping[str, WrapperConfig],
    sources: Sources | None = None,
    wrappers_file: str = "wrappers.yaml",
) -> list[ConfigIssue]:
    """Every problem that spans files, in a stable order."""
    sources = sources or Sources()
    issues: list[ConfigIssue] = []
    for name, group in groups.items():
        # A misspelt echelonN is reported once, at the tier, not again at every ref to it.
        for tier_name in group.tiers:
            if _looks_like_echelon(tier_name):
                sources.broken.add(("tier", f"{name}.echelon{re.sub(r'[^0-9]', '', tier_name)}"))
    for name, group in groups.items():
        issues += _check_group(name, group, models, groups, sources)
    issues += _check_cycles(groups, sources)
    for name, pool in pools.items():
        issues += _check_pool(name, pool, groups, sources)
    for name, wrapper in wrappers.items():
        issues += _check_wrapper(name, wrapper, groups, pools, sources, wrappers_file)
    return issues


def _check_group(
    name: str,
    group: TaskGroupConfig,
    models: Mapping[str, ModelConfig],
    groups: Mapping[str, TaskGroupConfig],
    sources: Sources,
) -> list[ConfigIssue]:
    file = sources.file("group", name)
    issues = []
    if "." in name:
        issues.append(
            ConfigIssue(
                file, "name", "a group name cannot contain '.' (references are group.tier); rename the file"
            )
        )
    for tier_name, tier in group.tiers.items():
        if "." in tier_name:
            issues.append(
                ConfigIssue(file, tier_name, "a tier name cannot contain '.' (references are group.tier)")
            )
        elif _looks_like_echelon(tier_name):
            number = re.sub(r"\D", "", tier_name)
            issues.append(
                ConfigIssue(
                    file,
                    tier_name,
                    f"looks like a misspelt echelon; rename it to 'echelon{number}' "
                    "(or give the task-named tier a name unlike echelonN)",
                )
            )
        for i, model in enumerate(tier.models):
            if model not in models and ("model", model) not in sources.broken:
                issues.append(
                    ConfigIssue(
                        file,
                        f"{tier_name}.models[{i}]",
                        f"unknown model {model!r} (no file provider/<provider>/{model}.yaml)"
                        + (did_you_mean(model, models) or f"; models: {', '.join(sorted(models)) or 'none'}"),
                    )
                )
    if group.fallback_config is not None:
        for i, ref in enumerate(group.fallback_config.fallback_groups):
            path = f"fallback_config.fallback_groups[{i}]"
            if ref == name:
                issues.append(
                    ConfigIssue(
                        file,
                        path,
                        f"{name!r} falls back to itself; list other groups or this group's lower tiers "
                        f"(e.g. {name}.echelon2)",
                    )
                )
                continue
            problem = ref_problem(ref, groups, sources)
            if problem:
                issues.append(ConfigIssue(file, path, problem))
    return issues


def _looks_like_echelon(tier: str) -> bool:
    if ECHELON_RE.fullmatch(tier):
        return False
    letters = re.sub(r"\d+$", "", tier)
    return letters != tier and difflib.SequenceMatcher(None, letters.lower(), "echelon").ratio() >= 0.75


def _fallback_edges(
    name: str, group: TaskGroupConfig, groups: Mapping[str, TaskGroupConfig]
) -> list[tuple[str, int]]:
    """Other groups this group's fallbacks reach, each with the index of its first entry."""
    edges: dict[str, int] = {}
    for i, ref in enumerate(group.effective_fallback.fallback_groups):
        if not isinstance(ref, str):
            continue
        target, _ = parse_ref(ref)
        if target != name and target in groups and target not in edges:
            edges[target] = i
    return list(edges.items())


def _check_cycles(groups: Mapping[str, TaskGroupConfig], sources: Sources) -> list[ConfigIssue]:
    issues = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[tuple[str, int]] = []  # (group, index of the entry leading on)

    def visit(node: str) -> None:
        state[node] = 1
        for target, index in _fallback_edges(node, groups[node], groups):
            stack.append((node, index))
            if state.get(target) == 1:
                start = next(i for i, (g, _) in enumerate(stack) if g == target)
                cycle = stack[start:]
                key = frozenset(g for g, _ in cycle)
                if key not in reported:
                    reported.add(key)
                    first, first_index = cycle[0]
                    path = " -> ".join([g for g, _ in cycle] + [target])
                    issues.append(
                        ConfigIssue(
                            sources.file("group", first),
                            f"fallback_config.fallback_groups[{first_index}]",
                            f"fallback cycle: {path}; remove one of these fallback_groups entries",
                        )
                    )
            elif target not in state:
                visit(target)
            stack.pop()
        state[node] = 2

    for name in groups:
        if name not in state:
            visit(name)
    return issues


def _check_pool(
    name: str, pool: PollingPoolConfig, groups: Mapping[str, TaskGroupConfig], sources: Sources
) -> list[ConfigIssue]:
    file = sources.file("pool", name)
    issues = []
    members: set[str] = set()
    complete = True
    for i, ref in enumerate(pool.task_groups):
        problem = ref_problem(ref, groups, sources)
        if problem:
            issues.append(ConfigIssue(file, f"task_groups[{i}]", problem))
            complete = False
            continue
        group_name, tier = parse_ref(ref)
        if group_name not in groups:
            complete = False
            continue
        group = groups[group_name]
        for tier_name in [tier] if tier else list(group.tiers):
            members.update(group.tiers[tier_name].models)
    if complete:
        for model in pool.weights or {}:
            if model not in members:
                issues.append(
                    ConfigIssue(
                        file,
                        format_path(("weights", model)),
                        unknown(f"model {model!r} is not in this pool", model, members, "its models"),
                    )
                )
    return issues


def _check_wrapper(
    name: str,
    wrapper: WrapperConfig,
    groups: Mapping[str, TaskGroupConfig],
    pools: Mapping[str, PollingPoolConfig],
    sources: Sources,
    file: str,
) -> list[ConfigIssue]:
    issues = []
    if wrapper.type is WrapperType.TASK_GROUP and wrapper.target is not None:
        problem = ref_problem(wrapper.target, groups, sources)
        if problem:
            issues.append(ConfigIssue(file, f"{name}.target", problem))
        for i, ref in enumerate(wrapper.fallback_groups or []):
            path = f"{name}.fallback_groups[{i}]"
            if ref == wrapper.target:
                issues.append(
                    ConfigIssue(file, path, f"{ref!r} is the wrapper's own target; list where to go after it")
                )
                continue
            problem = ref_problem(ref, groups, sources)
            if problem:
                issues.append(ConfigIssue(file, path, problem))
    if wrapper.type is WrapperType.POLLING_POOL and wrapper.pool is not None and wrapper.pool not in pools:
        pool = wrapper.pool
        if ("pool", pool) in sources.broken:
            pass
        elif ("pool", pool) in sources.disabled:
            why = sources.disabled["pool", pool]
            issues.append(
                ConfigIssue(file, f"{name}.pool", f"pool {pool!r} is {why}; enable it or use another pool")
            )
        else:
            issues.append(
                ConfigIssue(file, f"{name}.pool", unknown(f"unknown pool {pool!r}", pool, pools, "pools"))
            )
    return issues
