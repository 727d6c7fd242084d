"""Bounds on a parsed configuration document: how deep it nests, how large it is with aliases expanded.

YAML aliases share one object for every reference, so a small file can stand for billions of
values ("billion laughs"), or for a value that contains itself; anything that walks such a
document (substitution, validation) would take forever or recurse without end. A document is
measured once, each shared object counted once, before anything walks it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_VALUES", "nests_too_deep", "shape_problem"]

#: Deeper than any configuration needs (a JSON schema in ``parameters`` included).
MAX_DEPTH = 64

#: Values a document may expand to, aliases expanded; the shipped files have a few hundred.
MAX_VALUES = 100_000

_BRACKET = re.compile(r"[][{}]")


def nests_too_deep(text: str) -> bool:
    """Whether YAML ``text`` opens more than ``MAX_DEPTH`` flow collections (``[``, ``{``) at once.

    Checked before parsing: PyYAML takes seconds on flow collections a few thousand deep before
    it gives up. Brackets inside strings count too; a configuration would need dozens of
    unclosed ones for that to matter.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for match in _BRACKET.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def shape_problem(data: Any) -> str | None:
    """Why ``data`` is too deep, too large or recursive to load, or None if it is fine."""
    measured: dict[int, tuple[int, int]] = {}  # id of a container -> (values, depth) below it
    started: set[int] = set()  # containers whose children are being measured: the current path
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        items = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            values = 1 + (len(node) if isinstance(node, dict) else 0)  # itself and its keys
            depth = 1
            for item in items:
                if isinstance(item, (dict, list)):
                    n, d = measured[id(item)]
                    values += n
                    depth = max(depth, d + 1)
                else:
                    values += 1
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} levels deep; flatten it"
            if values > MAX_VALUES:
                return (
                    f"expands to more than {MAX_VALUES:,} values once its aliases (*name) are "
                    "expanded; write the values out, or use fewer aliases of aliases"
                )
            measured[key] = (values, depth)
            started.discard(key)
        elif key in started:
            return "an alias (*name) refers to a value that contains it; a value cannot contain itself"
        elif key not in measured:
            started.add(key)
            stack.append((node, True))
            stack.extend((item, False) for item in items if isinstance(item, (dict, list)))
    return None
