"""``${VAR}`` and ``${VAR:-default}`` substitution in configuration strings; ``$$`` is a literal ``$``.

``${VAR}`` takes the variable's value (an empty value stays empty, as in a shell);
``${VAR:-default}`` takes ``default`` when the variable is unset or empty. A ``$`` followed by
anything else is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Expansion", "Substitution", "bare_variable", "expand", "substitute"]

_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def bare_variable(text: str) -> str | None:
    """The NAME of a value written as a shell's ``$NAME``, which is kept as it is (only
    ``${NAME}`` expands): in a key it is a slip, never a key."""
    match = _BARE.fullmatch(text.strip())
    return match.group(1) if match else None


@dataclass(frozen=True)
class Expansion:
    """The result of expanding one string."""

    value: str
    variables: tuple[str, ...] = ()  # every variable referenced, in order
    missing: tuple[str, ...] = ()  # referenced without a default and not set
    errors: tuple[str, ...] = ()  # malformed references

    @property
    def ok(self) -> bool:
        return not self.missing and not self.errors


def expand(text: str, environ: Mapping[str, str]) -> Expansion:
    """Expand the references in ``text`` from ``environ``."""
    if "$" not in text:
        return Expansion(text)
    variables: list[str] = []
    missing: list[str] = []
    errors: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$$":
            return "$"
        inner = match.group(1)
        if inner is None:
            errors.append("'${' is never closed; write ${NAME} or ${NAME:-default}, or $$ for a literal $")
            return token
        name, sep, default = inner.partition(":-")
        if not _NAME.fullmatch(name):
            # The text inside is not echoed: it may be a secret pasted in the wrong place.
            errors.append(
                "malformed variable reference: write ${NAME} or ${NAME:-default} (NAME: letters, "
                "digits and _, not starting with a digit), or $$ for a literal $"
            )
            return token
        variables.append(name)
        value = environ.get(name)
        if sep:
            return value if value else default
        if value is None:
            missing.append(name)
            return token
        return value

    value = _TOKEN.sub(replace, text)
    return Expansion(value, tuple(variables), tuple(missing), tuple(errors))


@dataclass
class Substitution:
    """The substituted tree and the problems found, each with its path in the tree."""

    data: Any
    problems: list[tuple[tuple[Any, ...], str]] = field(default_factory=list)


def substitute(data: Any, environ: Mapping[str, str], path: tuple[Any, ...] = ()) -> Substitution:
    """Expand every string value (not key) of a YAML tree; a string with a problem is kept as written."""
    result = Substitution(None)
    result.data = _walk(data, environ, path, result.problems)
    return result


def _walk(data: Any, environ: Mapping[str, str], path: tuple[Any, ...], problems: list) -> Any:
    if isinstance(data, str):
        exp = expand(data, environ)
        for name in exp.missing:
            problems.append(
                (
                    path,
                    f"environment variable {name} is not set; set it, or give a default: ${{{name}:-value}}",
                )
            )
        problems.extend((path, message) for message in exp.errors)
        return exp.value if exp.ok else data
    if isinstance(data, Mapping):
        return {k: _walk(v, environ, (*path, k), problems) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, environ, (*path, i), problems) for i, v in enumerate(data)]
    return data
