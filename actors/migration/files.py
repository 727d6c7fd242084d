"""One configuration file of a migration: reading, parsing, validating and writing it safely."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from actors.config.diagnostics import format_path, issues_from_validation
from actors.config.env import substitute
from actors.config.models import PollingPoolConfig, TaskGroupConfig
from actors.config.shape import MAX_DEPTH, nests_too_deep, shape_problem

Kind = Literal["group", "pool"]

_SUFFIXES = (".yaml", ".yml")


class _Failed(Exception):
    """A file cannot be migrated or validated; the message says why and what to do."""


@dataclass
class _Target:
    kind: Kind
    name: str
    path: Path


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text with ``\\n`` line ends, and the line end it uses."""
    if not path.is_file():
        raise _Failed(f"file {path} not found")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise _Failed(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    except OSError as exc:
        raise _Failed(f"cannot read the file: {exc.strerror or exc}") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    return text.replace("\r\n", "\n"), newline


def _write_text(path: Path, text: str, newline: str) -> None:
    """Replace the file in one step: a crash leaves the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parse(text: str) -> dict[str, Any]:
    """The document as the project's loader sees it (PyYAML, YAML 1.1); it must be a mapping."""
    if nests_too_deep(text):
        raise _Failed(f"nested more than {MAX_DEPTH} levels deep; flatten it")
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise _Failed(f"nested more than {MAX_DEPTH} levels deep; flatten it") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _Failed(
            f"invalid YAML{where}: {exc.problem or 'cannot be parsed'}; fix it and run again"
        ) from None
    except yaml.YAMLError as exc:
        raise _Failed(f"invalid YAML ({exc.__class__.__name__}); fix it and run again") from None
    if data is None:
        raise _Failed("the file is empty")
    if not isinstance(data, dict):
        raise _Failed(f"the top level must be a mapping of keys to values, not a {type(data).__name__}")
    problem = shape_problem(data)  # before anything walks it: an alias bomb would take forever
    if problem is not None:
        raise _Failed(problem)
    return data


def _document(document_type: Any, text: str) -> Any:
    try:
        return document_type(text)
    except ImportError:
        raise
    except Exception as exc:  # ruamel's own errors (a key given twice, ...) and a non-mapping top level
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _Failed(f"cannot be rewritten{where}: {problem}") from None


def _validated(model: type[BaseModel], target: _Target, raw: dict[str, Any], *, named: bool = True) -> Any:
    """``raw`` validated as the loader would (variables substituted, name from the file); or _Failed."""
    problems = _problems(model, target, raw, named=named)
    if problems:
        raise _Failed(f"not a valid {_what(model)}: {'; '.join(problems)}; fix it and run again")
    return model.model_validate(_prepared(target, raw, named=named))


def _prepared(target: _Target, raw: dict[str, Any], *, named: bool) -> Any:
    data = substitute(raw, os.environ).data
    if named:
        data = {**data, "name": target.name}
    return data


def _problems(
    model: type[BaseModel], target: _Target, raw: dict[str, Any], *, named: bool = True
) -> list[str]:
    problems = []
    if named and "name" in raw and raw["name"] != target.name:
        problems.append(f"name: {raw['name']!r} differs from the file name {target.name!r}")
    if model is TaskGroupConfig and "tiers" in raw:
        problems.append("tiers: unknown key; write each tier at the top level (echelon1: {models: [...]})")
    problems += [
        f"{format_path((*where,))}: {message}" for where, message in substitute(raw, os.environ).problems
    ]
    try:
        model.model_validate(_prepared(target, raw, named=named))
    except ValidationError as exc:
        for issue in issues_from_validation(exc, file=None, model=model, raw=raw, drop=("tiers",)):
            problems.append(f"{issue.path}: {issue.message}" if issue.path else issue.message)
    return problems


def _validate_file(target: _Target, model: type[BaseModel]) -> dict[str, Any]:
    try:
        raw = _parse(_read_text(target.path)[0])
    except _Failed as exc:
        return {"valid": False, "has_fallback_config": False, "file": str(target.path), "errors": [str(exc)]}
    has_block = raw.get("fallback_config") is not None
    errors = _problems(model, target, raw)
    if not has_block:
        errors.append("no fallback_config: run the migration")
    return {"valid": not errors, "has_fallback_config": has_block, "file": str(target.path), "errors": errors}


def _check_rewrite(target: _Target, new_text: str, expected: dict[str, Any]) -> None:
    """Refuse to write unless the new text means exactly the old data plus the change, and is valid."""
    new = _parse(new_text)
    if new != expected or list(new) != list(expected):
        raise _Failed(
            "the rewritten file would not mean what the old one did (a YAML construct the round trip "
            "does not keep); the file is left unchanged: add fallback_config by hand"
        )
    model = TaskGroupConfig if target.kind == "group" else PollingPoolConfig
    problems = _problems(model, target, new)
    if problems:
        raise _Failed(f"the migrated file would not be a valid {_what(model)}: {'; '.join(problems)}")


def _unified_diff(path: Path, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path}",
        tofile=f"{path} (migrated)",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _plain(node: Any) -> Any:
    """A ruamel node as plain dicts and lists (what PyYAML would read back)."""
    if isinstance(node, Mapping):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _what(model: type[BaseModel]) -> str:
    return {TaskGroupConfig: "task group", PollingPoolConfig: "polling pool"}.get(
        model, "global_fallback file"
    )


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in _SUFFIXES and not p.name.startswith(("_", "."))
    )


def _registry(base: Path) -> dict[str, Any]:
    """The registry's sections, or {} when there is none or it cannot be read (``check`` reports that)."""
    path = base / "groups" / "_task_groups.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
