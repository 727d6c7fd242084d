"""The package's import structure: no cycle, and the core never reaches the original design's API.

grimp parses every module of ``actors`` (imports inside functions and under ``TYPE_CHECKING``
included) into a graph; the standard library's ``graphlib`` finds cycles in it.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

COMPAT = "actors.compat"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("actors", cache_dir=None)


def test_function_level_imports_are_in_the_graph(graph: grimp.ImportGraph) -> None:
    """The check sees imports made inside functions (the seed hid a cycle that way)."""
    details = graph.get_import_details(importer="actors.cli.serve", imported="actors.daemon.server")
    assert details, "the graph misses a function-level import"


def test_no_import_cycle(graph: grimp.ImportGraph) -> None:
    """Type-only imports count too: a layer names nothing above it, even in an annotation
    (the wrappers and the factory see the runtime through ``Host`` protocols)."""
    sorter = graphlib.TopologicalSorter(
        {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_core_never_imports_the_compat_package(graph: grimp.ImportGraph) -> None:
    """Only ``actors`` (which re-exports it) and the compat package itself may reach it,
    type-only imports included."""
    compat = {COMPAT, *graph.find_descendants(COMPAT)}
    core = sorted(m for m in graph.modules if m not in compat and m != "actors")
    offenders = [
        " -> ".join(chain)
        for m in core
        for target in sorted(compat)
        if (chain := graph.find_shortest_chain(importer=m, imported=target))
    ]
    assert offenders == []
    assert graph.direct_import_exists(importer="actors", imported=COMPAT)  # still re-exported
