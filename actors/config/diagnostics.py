"""Turning validation failures into ``ConfigIssue``s a person can act on.

Paths read like the YAML (``echelon1.models[1]``), unknown keys come with the closest valid key,
and a rejected value is quoted only from the file as written (never after ``${VAR}``
substitution) and never for a field that may hold a secret.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from actors.errors import ConfigIssue

__all__ = ["closest", "did_you_mean", "format_path", "is_sensitive", "issues_from_validation", "unknown"]

_SENSITIVE = re.compile(r"api_?key|secret|password|passwd|token$|authorization|credential|headers", re.I)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word``, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` or ``""``."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match else ""


def unknown(what: str, word: str, choices: Iterable[str], label: str) -> str:
    """``"unknown group 'x'; did you mean 'y'? Groups: a, b"``, or ``"...; groups: a, b"`` without a match."""
    choices = sorted(choices)
    listing = ", ".join(choices) if choices else "none"
    match = closest(word, choices)
    if match:
        return f"{what}; did you mean {match!r}? {label.capitalize()}: {listing}"
    return f"{what}; {label}: {listing}"


def format_path(parts: Sequence[Any]) -> str:
    """``('echelon1', 'models', 1)`` -> ``echelon1.models[1]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def is_sensitive(parts: Sequence[Any]) -> bool:
    """Whether a value at this path may be a credential (then it is never quoted)."""
    return any(isinstance(p, str) and _SENSITIVE.search(p) for p in parts)


def issues_from_validation(
    exc: ValidationError,
    *,
    file: str | None,
    model: type[BaseModel],
    raw: Any,
    prefix: Sequence[Any] = (),
    drop: Sequence[str] = (),
    skip: Iterable[tuple[Any, ...]] = (),
) -> list[ConfigIssue]:
    """One issue per pydantic error.

    ``raw`` is the document as written, for quoting rejected values; ``prefix`` is prepended to
    every path (the wrapper's name in ``wrappers.yaml``); a leading loc part in ``drop`` is
    removed (``tiers``, which the YAML does not spell); errors at paths in ``skip`` (already
    reported, e.g. an unset variable) are left out.
    """
    skipped = {tuple(s) for s in skip}
    errors = exc.errors(include_url=False)
    # A misspelt key also makes its real name look missing; report the typo only.
    suggested = set()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and loc:
            owner = _model_at(model, loc[:-1])
            match = closest(str(loc[-1]), _valid_keys(owner)) if owner else None
            if match:
                suggested.add((*loc[:-1], match))
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if loc in suggested and (error["type"] == "missing" or error.get("input", ...) is None):
            continue
        yaml_loc = loc[1:] if loc and loc[0] in drop else loc
        if any(yaml_loc[: len(s)] == s for s in skipped if s):
            continue
        message = _message(error, model, loc, yaml_loc, raw)
        path = format_path((*prefix, *yaml_loc))
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(ConfigIssue(file, path, message))
    return issues


def _message(error: Mapping[str, Any], model: type[BaseModel], loc: tuple, yaml_loc: tuple, raw: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        owner = _model_at(model, loc[:-1])
        valid = _valid_keys(owner) if owner else []
        hint = did_you_mean(key, valid)
        if not hint and valid:
            hint = "; valid keys here: " + ", ".join(valid)
        if owner is not None and owner.__name__ == "TaskGroupConfig" and not hint.startswith("; did"):
            hint += " (a tier is echelonN or any key whose value has models:)"
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of keys to values, got {_kind_of(error.get('input'))}"
    if kind == "list_type":
        return f"must be a list, e.g. [a, b], got {_kind_of(error.get('input'))}"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if msg.startswith("Input should be"):
        msg = "must be" + msg[len("Input should be") :]
    if kind != "value_error" and not is_sensitive(yaml_loc):
        found, value = _lookup(raw, yaml_loc)
        if found and isinstance(value, (str, int, float, bool)) and not _looks_like_a_token(value):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "...'"
            msg += f"; got {shown}"
    return msg


def _looks_like_a_token(value: object) -> bool:
    """A long unbroken string of letters and digits: maybe a key pasted in the wrong field."""
    if not isinstance(value, str) or len(value) < 20 or any(c.isspace() for c in value):
        return False
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and "${" not in value


def _kind_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing (an empty value)"
    return f"a {type(value).__name__}"


def _lookup(raw: Any, parts: Sequence[Any]) -> tuple[bool, Any]:
    value = raw
    for part in parts:
        if (isinstance(value, Mapping) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        ):
            value = value[part]
        else:
            return False, None
    return True, value


def _valid_keys(model: type[BaseModel]) -> list[str]:
    hidden: frozenset[str] = getattr(model, "hidden_keys", frozenset())
    return [name for name in model.model_fields if name not in hidden]


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model class whose keys are expected at ``loc`` inside ``model``."""
    tp: Any = model
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return None
    return _as_model(tp)


def _as_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            found = _as_model(arg)
            if found is not None:
                return found
    return None


def _descend(tp: Any, part: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            if arg is type(None):
                continue
            found = _descend(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin in (dict, Mapping):
        return get_args(tp)[1]
    if origin in (list, tuple, Sequence):
        return get_args(tp)[0]
    return None
