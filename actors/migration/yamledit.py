"""Comment-preserving edits of a YAML file's top-level mapping, with ruamel.yaml round-trip mode.

ruamel.yaml keeps a comment with the item *before* it: the blank lines and comment lines
between two keys hang on the last scalar of the first key's value. Removing a key therefore
takes care to leave the lines after it (they introduce the next key) where they were, and hands
the comments that describe the key (its end-of-line comment, the comment lines directly above
it) to the caller, to place with whatever replaces it.

ruamel.yaml is imported lazily: only rewriting files needs it (the ``migrate`` extra).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

__all__ = ["Document", "Removed", "require_ruamel"]

# (mapping indent, sequence indent, dash offset) tried after the guessed one, until one writes
# the file back unchanged: the file's own layout is then kept byte for byte.
_INDENT_STYLES = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 4), (4, 4, 2), (2, 3, 1), (3, 3, 0))


def require_ruamel() -> Any:
    """The ``ruamel.yaml`` module, or an ImportError that says how to install it."""
    try:
        import ruamel.yaml
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "rewriting configuration files with their comments needs ruamel.yaml, which is not "
            "installed: pip install 'llm-actors[migrate]'"
        ) from exc
    return ruamel.yaml


@dataclass
class Removed:
    """A key taken out of a document: its value and the comments that described it."""

    value: Any
    eol: tuple[str, int] | None  # ("# ...", column) from the end of the key's line
    leading: str  # the comment lines that stood directly above the key, each ending in "\n"


@dataclass(frozen=True)
class _Style:
    mapping: int
    sequence: int
    offset: int
    explicit_start: bool


class Document:
    """One YAML file in round-trip mode; ``dump()`` writes it back in the file's own layout.

    ``data`` is the top-level ``CommentedMap``. Raises a ``ruamel.yaml`` error when the text
    cannot be parsed (a key given twice included), ``ValueError`` when the top level is not a
    mapping.
    """

    def __init__(self, text: str) -> None:
        require_ruamel()
        from ruamel.yaml.comments import CommentedMap

        self._style = _find_style(text)
        self.data = _yaml(self._style).load(text)
        if not isinstance(self.data, CommentedMap):
            raise ValueError("the top level must be a mapping of keys to values")

    @property
    def indent(self) -> int:
        """Spaces per nesting level of mappings in this file."""
        return self._style.mapping

    def dump(self) -> str:
        out = io.StringIO()
        _yaml(self._style).dump(self.data, out)
        return out.getvalue()

    # ------------------------------------------------------------------------------ building

    @staticmethod
    def new_map(items: dict[str, Any] | None = None) -> Any:
        from ruamel.yaml.comments import CommentedMap

        return CommentedMap(items or {})

    @staticmethod
    def new_seq(items: list[Any], *, flow: bool = True) -> Any:
        from ruamel.yaml.comments import CommentedSeq

        node = CommentedSeq(items)
        if flow:
            node.fa.set_flow_style()
        return node

    # ------------------------------------------------------------------------------ edits

    def append(self, key: str, value: Any) -> None:
        """Add ``key: value`` at the end of the top-level mapping, after a blank line."""
        data = self.data
        previous = list(data)[-1] if data else None
        data[key] = value
        if previous is not None and not _ends_blank(_after(self._tail(previous))):
            self._put_before(key, "\n")

    def pop(self, key: str) -> Removed:
        """Remove a top-level key, leaving the lines after its value where they were.

        The comment lines directly above the key (no blank line between; not the file's
        header) and its end-of-line comment are returned, not left behind. To remove several
        keys, remove the later ones first.
        """
        data = self.data
        keys = list(data)
        index = keys.index(key)
        previous = keys[index - 1] if index > 0 else None
        following = keys[index + 1] if index + 1 < len(keys) else None
        leading = self._take_leading(previous) if previous is not None else ""

        eol: tuple[str, int] | None = None
        after = ""
        entry = data.ca.items.get(key)
        before = "".join(t.value for t in (entry[1] or [])) if entry is not None and len(entry) > 1 else ""
        own = entry[2] if entry is not None and len(entry) > 2 else None
        if own is not None:
            head, after = _split(own.value)
            if head is not None:
                eol = (head, own.column)
        tail = self._tail(key)
        if tail[0] is not data.ca.items:
            # A block collection: the lines after it hang on its last scalar; they stay here.
            token = _get(tail)
            if token is not None:
                head, inner_after = _split(token.value)
                after += inner_after
                _set(tail, head + "\n" if head is not None else None)
        data.ca.items.pop(key, None)
        value = data.pop(key)

        moved = before + after
        if following is not None:
            self._put_before(following, moved)
            blank_above = (
                _ends_blank(_after(self._tail(previous)))
                if previous is not None
                else self._header_ends_blank()
            )
            entry = data.ca.items.get(following)
            if blank_above and entry is not None and entry[1]:
                # Two runs of blank lines meet where the key was: keep one.
                entry[1][0].value = entry[1][0].value.lstrip("\n")
                if not entry[1][0].value:
                    entry[1] = None
        elif previous is not None and moved:
            tail = self._tail(previous)
            token = _get(tail)
            _set(tail, (token.value if token is not None else "\n") + moved)
        return Removed(value, eol, leading)

    def indent_comments(self, node: Any, spaces: int) -> None:
        """Move the comments inside a block collection ``spaces`` to the right, for nesting it deeper."""
        from ruamel.yaml.comments import CommentedMap, CommentedSeq
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        if not isinstance(node, (CommentedMap, CommentedSeq)) or node.fa.flow_style():
            return
        for _key, entry in list(node.ca.items.items()):
            for position, token in enumerate(entry):
                if not isinstance(token, CommentToken):
                    continue
                head, newline, rest = token.value.partition("\n")
                rest = "".join(
                    (" " * spaces + line if line.strip() else line) + "\n" for line in rest.split("\n")[:-1]
                )
                column = token.column + spaces if head.strip() else 0
                entry[position] = CommentToken(head + newline + rest, CommentMark(column), None)
        for child in node.values() if isinstance(node, CommentedMap) else node:
            self.indent_comments(child, spaces)

    def put_before(self, key: str, text: str) -> None:
        """Add comment lines (each ending in a newline) just above ``key``, after any already there."""
        self._put_before(key, text, at_end=True)

    @staticmethod
    def set_eol(mapping: Any, key: Any, comment: str, column: int = 0) -> None:
        """Put ``comment`` (``"# ..."``) at the end of ``key``'s line, at ``column`` when there is room."""
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        entry = _entry(mapping.ca.items, key, 4)
        entry[2] = CommentToken(comment.rstrip("\n") + "\n", CommentMark(column), None)

    # ------------------------------------------------------------------------------ comment plumbing

    def _tail(self, key: str) -> tuple[dict, Any, int]:
        """Where the comment after ``key``'s value lives: (a ``ca.items`` dict, its key, position)."""
        return _tail_of(self.data, key)

    def _put_before(self, key: str, text: str, *, at_end: bool = False) -> None:
        from ruamel.yaml.error import CommentMark
        from ruamel.yaml.tokens import CommentToken

        if not text:
            return
        entry = _entry(self.data.ca.items, key, 4)
        existing = "".join(t.value for t in entry[1] or [])
        merged = existing + text if at_end else text + existing
        entry[1] = [CommentToken(merged, CommentMark(0), None)]

    def _take_leading(self, previous: str) -> str:
        """Cut the comment lines that end the text after ``previous``'s value, and return them."""
        tail = self._tail(previous)
        token = _get(tail)
        if token is None:
            return ""
        head, after = _split(token.value)
        lines = after.split("\n")[:-1]
        cut = len(lines)
        while cut > 0 and lines[cut - 1].strip().startswith("#"):
            cut -= 1
        if cut == len(lines):
            return ""
        kept = (head or "") + "\n" + "".join(line + "\n" for line in lines[:cut])
        _set(tail, kept if kept != "\n" else None)
        return "".join(line.strip() + "\n" for line in lines[cut:])

    def _header_ends_blank(self) -> bool:
        header = self.data.ca.comment[1] if self.data.ca.comment else None
        return not header or _ends_blank(header[-1].value) or not header[-1].value.strip()


# ---------------------------------------------------------------------------------- helpers


def _yaml(style: _Style) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line that the file does not fold
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.explicit_start = style.explicit_start
    return yaml


def _find_style(text: str) -> _Style:
    """The layout that writes ``text`` back unchanged, or else the one that changes fewest lines."""
    from ruamel.yaml.error import YAMLError

    explicit = _starts_explicitly(text)
    candidates = [_guess_indent(text), *_INDENT_STYLES]
    styles = list(dict.fromkeys(_Style(*c, explicit) for c in candidates if c is not None))
    best, best_score = styles[0], None
    original = text.splitlines()
    for style in styles:
        out = io.StringIO()
        try:
            yaml = _yaml(style)
            yaml.dump(yaml.load(text), out)
        except YAMLError:
            return best  # the caller's own load reports the problem
        if out.getvalue() == text:
            return style
        lines = out.getvalue().splitlines()
        score = sum(a != b for a, b in zip(lines, original, strict=False)) + abs(len(lines) - len(original))
        if best_score is None or score < best_score:
            best, best_score = style, score
    return best


def _guess_indent(text: str) -> tuple[int, int, int] | None:
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.util import load_yaml_guess_indent

    try:
        _, indent, offset = load_yaml_guess_indent(text)
    except YAMLError:
        return None
    if indent is None:
        return None
    offset = offset or 0
    return (indent - offset if indent - offset >= 2 else 2), indent, offset


def _starts_explicitly(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")):
            return stripped == "---" or stripped.startswith("--- ")
    return False


def _entry(items: dict, key: Any, size: int) -> list:
    entry = items.setdefault(key, [None] * size)
    while len(entry) < size:
        entry.append(None)
    return entry


def _tail_of(mapping: Any, key: Any) -> tuple[dict, Any, int]:
    """The comment slot after ``mapping[key]``: its deepest last scalar's, for a block collection."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    value = mapping[key]
    if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
        return _tail_of(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
        last = len(value) - 1
        item = value[last]
        if isinstance(item, CommentedMap) and item and not item.fa.flow_style():
            return _tail_of(item, list(item)[-1])
        if isinstance(item, CommentedSeq) and item and not item.fa.flow_style():
            return _tail_of(value, last)  # a nested block sequence: its own last item's slot
        return value.ca.items, last, 0
    return mapping.ca.items, key, 2


def _get(tail: tuple[dict, Any, int]) -> Any:
    items, key, position = tail
    entry = items.get(key)
    return entry[position] if entry is not None and len(entry) > position else None


def _set(tail: tuple[dict, Any, int], value: str | None) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    items, key, position = tail
    token = _get(tail)
    if value is None:
        if token is not None:
            items[key][position] = None
        return
    if token is not None:
        token.value = value
        return
    entry = _entry(items, key, 4 if position == 2 else 2)
    entry[position] = CommentToken(value, CommentMark(0), None)


def _split(value: str) -> tuple[str | None, str]:
    """A trailing comment token's text as (its end-of-line comment or None, the lines after)."""
    head, newline, rest = value.partition("\n")
    head = head.strip()
    return (head if head.startswith("#") else None), (rest if newline else "")


def _after(tail: tuple[dict, Any, int]) -> str:
    token = _get(tail)
    return _split(token.value)[1] if token is not None else ""


def _ends_blank(after: str) -> bool:
    """Whether the lines after a value end with a blank line."""
    lines = after.split("\n")[:-1]
    return bool(lines) and not lines[-1].strip()
