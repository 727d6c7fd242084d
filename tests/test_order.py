"""One order: the original design's manager answers its fallback and priority lists from the
route the runtime builds, for every tier of the shipped configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.compat import PollingPoolManager, TaskGroupManager
from actors.runtime import Runtime
from actors.state.table import pool_label

SHIPPED = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with Runtime.from_config(SHIPPED, simulate=True) as rt:
        yield rt


@pytest.fixture(scope="module")
def manager() -> TaskGroupManager:
    # Its own reading of the files; the queries never start a runtime.
    return TaskGroupManager(SHIPPED)


def refs(rt: Runtime) -> list[str]:
    out = []
    for gname, group in rt.config.groups.items():
        out.append(gname)
        out += [f"{gname}.{tier}" for tier, _ in group.tiers_by_priority()]
    return out


def route_labels(rt: Runtime, ref: str, fallback_groups: list[str] | None = None) -> list[str]:
    assert rt.table is not None
    route = rt.table.group_route(rt.config, ref, fallback_groups=fallback_groups)
    return [step.label for step in route.steps]


def test_the_shipped_config_has_tiers_to_compare(runtime: Runtime) -> None:
    assert len([r for r in refs(runtime) if "." in r]) >= 11


def test_fallback_lists_are_the_route_after_its_own_tiers(
    runtime: Runtime, manager: TaskGroupManager
) -> None:
    for ref in refs(runtime):
        own = {f"{g}.{t}" for g, t in runtime.config.resolve(ref)}
        expected = [label for label in route_labels(runtime, ref) if label not in own]
        assert manager.get_fallback_groups(ref) == expected, ref
    assert manager.running is False


def test_an_overridden_fallback_list_is_the_overridden_route(
    runtime: Runtime, manager: TaskGroupManager
) -> None:
    override = ["fast_small_group"]
    for ref in refs(runtime):
        own = {f"{g}.{t}" for g, t in runtime.config.resolve(ref)}
        expected = [label for label in route_labels(runtime, ref, override) if label not in own]
        assert manager.get_fallback_groups(ref, override) == expected, ref


def test_priority_lists_are_a_bare_groups_route(runtime: Runtime, manager: TaskGroupManager) -> None:
    for gname, group in runtime.config.groups.items():
        own = [label for label in route_labels(runtime, gname) if label.startswith(f"{gname}.")]
        listed = manager.get_group_models_by_priority(gname)
        assert [f"{gname}.{tier}" for tier, _, _ in listed] == own[: len(group.tiers)]
        for tier, _, models in listed:
            assert models == list(group.tiers[tier].models)
        models = manager.get_models_for_group(gname)
        assert models == list(dict.fromkeys(m for _, _, ms in listed for m in ms))


def test_the_cases_the_copies_disagreed_on(manager: TaskGroupManager) -> None:
    """The seed's copy sent echelon3 back up to echelon2, and stopped thinking_group short."""
    assert manager.get_fallback_groups("fast_group.echelon3") == []
    assert manager.get_fallback_groups("thinking_group.echelon1")[-1] == "fast_group.echelon3"


def test_pool_members_are_the_pool_routes_members(runtime: Runtime, manager: TaskGroupManager) -> None:
    pools = PollingPoolManager(manager)
    assert runtime.table is not None and runtime.config.pools
    for name in runtime.config.pools:
        view = pools.get_pool(name)
        assert view is not None
        assert view.members == list(runtime.table.targets[pool_label(name)].names), name
