"""``ConfigMigrator``: move legacy fallback settings into each file's ``fallback_config`` block.

The old format (input): one ``global_fallback.yaml`` (``enabled``, ``max_attempts``,
``retry_delay``, ``circuit_breaker``), top-level ``fallback_strategy`` / ``circuit_breaker`` in
group files, polling pools without ``fallback_config``. The new format (output): a
``fallback_config`` block in every group and pool file, appended at the end of the file; the
rest of the file, comments and key order included, is written back as it was.

Each file is read from disk when it is migrated and when it is validated: nothing is cached.
A file is only written when its new text parses to exactly the old data plus the change and
still validates with the project's models; otherwise it is left alone and logged as failed.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from actors.config.models import (
    FallbackStrategy,
    GlobalFallbackConfig,
    PollingPoolConfig,
    TaskGroupConfig,
)
from actors.errors import ConfigError
from actors.migration.files import (
    _SUFFIXES,
    Kind,
    _check_rewrite,
    _document,
    _Failed,
    _parse,
    _plain,
    _read_text,
    _registry,
    _Target,
    _unified_diff,
    _validate_file,
    _validated,
    _write_text,
    _yaml_files,
)

__all__ = ["ConfigMigrator", "TaskGroupQueries"]

log = logging.getLogger(__name__)

TASK_GROUP_TASK = "migrate_task_group"
POLLING_POOL_TASK = "migrate_polling_pool"

#: Top-level group keys from before ``fallback_config`` existed; the migration moves them into it.
LEGACY_GROUP_KEYS = ("fallback_strategy", "circuit_breaker")
#: What a pool without ``fallback_config`` gets (the runtime's default, made explicit).
POOL_FALLBACK = {"strategy": "instance_rotation", "max_instance_attempts": 2}
#: Values used when there is no global_fallback.yaml, or for keys it does not set.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "max_attempts": 3,
    "retry_delay": 1.0,
    "circuit_breaker": {"failure_threshold": 5, "recovery_time": 60, "half_open_requests": 1},
}

_ECHELON = re.compile(r"echelon\d+")
_FOLDERS = {"group": ("groups", "task_groups"), "pool": ("polling_pools", "polling_pools")}


class TaskGroupQueries(Protocol):
    """The part of ``TaskGroupManager`` the migrator uses: which groups and pools there are."""

    def list_task_groups(self) -> list[str]: ...

    def list_polling_pools(self) -> list[str]: ...


@dataclass
class _Result:
    target: _Target
    status: Literal["success", "skipped", "failed"]
    message: str
    backup: Path | None = None
    diff: str = ""

    def entry(self, *, dry_run: bool) -> dict[str, Any]:
        kind = self.target.kind
        entry: dict[str, Any] = {
            "task": TASK_GROUP_TASK if kind == "group" else POLLING_POOL_TASK,
            "group_name" if kind == "group" else "pool_name": self.target.name,
            "file": str(self.target.path),
            "status": self.status,
            "error" if self.status == "failed" else "reason": self.message,
            "backup": str(self.backup) if self.backup is not None else None,
        }
        if self.status == "success":
            entry["diff"] = self.diff
            if dry_run:
                entry["dry_run"] = True
        return entry


@dataclass
class _GlobalValues:
    """What global_fallback.yaml contributes to every migrated group."""

    max_attempts: Any
    retry_delay: Any
    circuit_breaker: dict[str, Any]
    source: str  # said in each group's log entry
    error: str | None = None


class ConfigMigrator:
    """Migrate a configuration directory to per-file ``fallback_config`` blocks.

    ``config_base_path`` is the ``llms`` directory or the ``config`` directory above it; by
    default the manager's ``config_base_path`` when it has one, else ``config/llms``. Group and
    pool names come from ``task_group_manager`` (anything with ``list_task_groups()`` and
    ``list_polling_pools()``, e.g. a ``TaskGroupManager``) when given, otherwise from the files
    under ``groups/`` and ``polling_pools/`` and the registry ``groups/_task_groups.yaml``.
    After rewriting files it calls the manager's ``reload()``, when it has one, so that the
    manager's queries see the new files.
    """

    def __init__(
        self,
        task_group_manager: TaskGroupQueries | None = None,
        config_base_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if config_base_path is None:
            config_base_path = getattr(task_group_manager, "config_base_path", None) or "config/llms"
        base = Path(config_base_path)
        if (base / "llms").is_dir():
            base = base / "llms"
        self.task_group_manager = task_group_manager
        self.config_base_path = base
        self.migration_log: list[dict[str, Any]] = []

    @property
    def backup_dir(self) -> Path:
        return self.config_base_path / "backup"

    # ------------------------------------------------------------------------------ migrating

    def migrate_global_fallback_to_task_groups(self, backup: bool = True, *, dry_run: bool = False) -> bool:
        """Give every task group a ``fallback_config``; False when any group file failed.

        The block takes the group's legacy ``fallback_strategy`` (default ``echelon_down``),
        its own lower echelons by priority as ``fallback_groups``, and ``max_attempts``,
        ``retry_delay`` and ``circuit_breaker`` from global_fallback.yaml (the group's own
        legacy ``circuit_breaker`` wins, key by key). The legacy keys are removed. Files that
        already have a ``fallback_config`` are skipped. ``dry_run`` writes nothing.
        """
        return self._run("group", backup=backup, dry_run=dry_run)

    def migrate_polling_pools(self, backup: bool = True, *, dry_run: bool = False) -> bool:
        """Give every pool without one ``fallback_config: {strategy: instance_rotation, max_instance_attempts: 2}``."""
        return self._run("pool", backup=backup, dry_run=dry_run)

    def migrate(self, backup: bool = True, *, dry_run: bool = False) -> bool:
        """Both migrations, groups first; False when any file failed."""
        groups = self.migrate_global_fallback_to_task_groups(backup, dry_run=dry_run)
        pools = self.migrate_polling_pools(backup, dry_run=dry_run)
        return groups and pools

    def plan(self) -> dict[str, str]:
        """The unified diff of every file a migration would rewrite, by path; writes and logs nothing."""
        self._require_dir()
        results = self._results("group", backup=False, write=False) + self._results(
            "pool", backup=False, write=False
        )
        return {str(r.target.path): r.diff for r in results if r.status == "success"}

    def diff(self) -> str:
        """``plan()`` as one text, file after file."""
        return "".join(self.plan().values())

    def get_migration_log(self) -> list[dict[str, Any]]:
        """A copy of the log: one entry per file and run, skipped and failed files included."""
        return copy.deepcopy(self.migration_log)

    def _run(self, kind: Kind, *, backup: bool, dry_run: bool) -> bool:
        self._require_dir()
        results = self._results(kind, backup=backup, write=not dry_run)
        for result in results:
            self.migration_log.append(result.entry(dry_run=dry_run))
            # INFO even for failures: the log entry is the record; callers decide what to show.
            log.info("%s %s %s: %s", kind, result.target.name, result.status, result.message)
        if not dry_run and any(r.status == "success" for r in results):
            self._reload_manager()
        return all(r.status != "failed" for r in results)

    def _reload_manager(self) -> None:
        reload = getattr(self.task_group_manager, "reload", None)
        if not callable(reload):
            return
        try:
            reload()
        except Exception as exc:  # the files are migrated either way; the manager keeps its old view
            log.warning("the task group manager could not reload the migrated files: %s", exc)

    def _results(self, kind: Kind, *, backup: bool, write: bool) -> list[_Result]:
        targets = self._targets(kind)
        values = self._global_values() if kind == "group" and targets else None
        results = []
        for target in targets:
            try:
                results.append(self._migrate_file(target, values, backup=backup, write=write))
            except _Failed as exc:
                results.append(_Result(target, "failed", str(exc)))
            except ImportError:
                raise  # ruamel.yaml missing: nothing can be migrated, say so once
            except OSError as exc:
                results.append(_Result(target, "failed", f"cannot write the file: {exc.strerror or exc}"))
            except Exception as exc:  # a bug here must not stop the other files, nor lose the reason
                log.exception("migrating %s failed unexpectedly", target.path)
                results.append(
                    _Result(
                        target,
                        "failed",
                        f"unexpected error ({type(exc).__name__}: {exc}); the file was not changed",
                    )
                )
        return results

    def _migrate_file(
        self, target: _Target, values: _GlobalValues | None, *, backup: bool, write: bool
    ) -> _Result:
        text, newline = _read_text(target.path)
        old = _parse(text)
        if old.get("fallback_config") is not None:
            reason = "already has fallback_config"
            legacy = [k for k in LEGACY_GROUP_KEYS if k in old] if target.kind == "group" else []
            if legacy:
                reason += (
                    f"; it also still has the legacy {' and '.join(legacy)}, which fill what fallback_config "
                    "leaves unset: move them into fallback_config by hand"
                )
            return _Result(target, "skipped", reason)
        if target.kind == "group":
            assert values is not None
            new_text, expected, reason = self._migrate_group(target, text, old, values)
        else:
            new_text, expected, reason = self._migrate_pool(target, text, old)
        _check_rewrite(target, new_text, expected)
        diff = _unified_diff(target.path, text, new_text)
        saved = None
        if write:
            if backup:
                saved = self._backup(target.path)
            _write_text(target.path, new_text, newline)
        return _Result(target, "success", reason, saved, diff)

    def _migrate_group(
        self, target: _Target, text: str, old: dict[str, Any], values: _GlobalValues
    ) -> tuple[str, dict[str, Any], str]:
        from actors.migration.yamledit import Document

        if values.error:
            raise _Failed(values.error)
        group = _validated(TaskGroupConfig, target, old)
        strategy = (group.fallback_strategy or FallbackStrategy.ECHELON_DOWN).value
        lower = self.default_fallback_groups(group)

        doc = _document(Document, text)
        block = doc.new_map()
        if "fallback_config" in doc.data:
            doc.data["fallback_config"] = block  # `fallback_config:` with no value: fill it in place
        else:
            doc.append("fallback_config", block)
        removed = {}
        for key in reversed([k for k in doc.data if k in LEGACY_GROUP_KEYS]):
            removed[key] = doc.pop(key)
        leading = "".join(removed[k].leading for k in LEGACY_GROUP_KEYS if k in removed)
        if leading:
            doc.put_before("fallback_config", leading)

        def carry_eol(legacy: str, key: str) -> None:
            # The comment at the end of a legacy key's line goes with its value, one level deeper.
            if legacy in removed and removed[legacy].eol:
                comment, column = removed[legacy].eol
                doc.set_eol(block, key, comment, column + doc.indent)

        block["strategy"] = strategy
        carry_eol("fallback_strategy", "strategy")
        block["fallback_groups"] = doc.new_seq(list(lower))
        block["max_attempts"] = values.max_attempts
        block["retry_delay"] = values.retry_delay
        legacy_breaker = removed["circuit_breaker"].value if "circuit_breaker" in removed else None
        if isinstance(legacy_breaker, MutableMapping):
            breaker = legacy_breaker  # the group's own node, comments and all; global values fill the rest
            doc.indent_comments(breaker, doc.indent)
            for key, value in values.circuit_breaker.items():
                if key not in breaker:
                    breaker[key] = value
        else:
            breaker = doc.new_map(dict(values.circuit_breaker))
        block["circuit_breaker"] = breaker
        carry_eol("circuit_breaker", "circuit_breaker")

        expected = {k: v for k, v in old.items() if k not in LEGACY_GROUP_KEYS}
        expected["fallback_config"] = _plain(block)
        moved = [k for k in LEGACY_GROUP_KEYS if k in removed]
        reason = (
            f"fallback_config added (strategy {strategy}, fallback_groups [{', '.join(lower)}], "
            f"max_attempts {values.max_attempts}, retry_delay {values.retry_delay}; {values.source})"
        )
        if moved:
            reason += f"; moved {' and '.join(moved)} into it"
        return doc.dump(), expected, reason

    def _migrate_pool(
        self, target: _Target, text: str, old: dict[str, Any]
    ) -> tuple[str, dict[str, Any], str]:
        from actors.migration.yamledit import Document

        _validated(PollingPoolConfig, target, old)
        doc = _document(Document, text)
        block = doc.new_map(dict(POOL_FALLBACK))
        if "fallback_config" in doc.data:
            doc.data["fallback_config"] = block
        else:
            doc.append("fallback_config", block)
        expected = {**old, "fallback_config": dict(POOL_FALLBACK)}
        reason = "fallback_config added (strategy instance_rotation, max_instance_attempts 2)"
        return doc.dump(), expected, reason

    # ------------------------------------------------------------------------------ fallback groups

    def default_fallback_groups(self, group: str | TaskGroupConfig) -> list[str]:
        """A group's own echelons after its best one, by ``priority`` (then name), as refs.

        Only ``echelonN`` tiers form the ladder: task-named tiers (``translation``) serve other
        tasks, not as a cheaper fallback. A name is looked up on disk, then in the manager;
        an unknown group gives ``[]``.
        """
        if isinstance(group, str):
            found = self._find_group(group)
            if found is None:
                return []
            group = found
        echelons = [name for name, _ in group.tiers_by_priority() if _ECHELON.fullmatch(name)]
        return [f"{group.name}.{name}" for name in echelons[1:]]

    def _find_group(self, name: str) -> TaskGroupConfig | None:
        target = next((t for t in self._targets("group") if t.name == name), None)
        if target is not None and target.path.is_file():
            try:
                return _validated(TaskGroupConfig, target, _parse(_read_text(target.path)[0]))
            except _Failed:
                pass
        getter = getattr(self.task_group_manager, "get_task_group", None)
        found = getter(name) if getter is not None else None
        return found if isinstance(found, TaskGroupConfig) else None

    # ------------------------------------------------------------------------------ validation

    def validate_migration(self) -> dict[str, Any]:
        """Read every group and pool file from disk again and say whether it is migrated and valid.

        An entry is valid when its file loads with the project's models and has a
        ``fallback_config``; ``errors`` says what is wrong otherwise.
        """
        self._require_dir()
        report: dict[str, Any] = {"task_groups": {}, "polling_pools": {}}
        kinds: tuple[tuple[Kind, str, type[BaseModel]], ...] = (
            ("group", "task_groups", TaskGroupConfig),
            ("pool", "polling_pools", PollingPoolConfig),
        )
        for kind, section, model in kinds:
            for target in self._targets(kind):
                report[section][target.name] = _validate_file(target, model)
        groups, pools = report["task_groups"].values(), report["polling_pools"].values()
        report["summary"] = {
            "total_task_groups": len(groups),
            "valid_task_groups": sum(1 for e in groups if e["valid"]),
            "total_polling_pools": len(pools),
            "valid_polling_pools": sum(1 for e in pools if e["valid"]),
        }
        return report

    # ------------------------------------------------------------------------------ the global file

    def load_global_fallback_config(self) -> dict[str, Any] | None:
        """The contents of global_fallback.yaml as written, or None when there is none.

        Raises ``ConfigError`` when it cannot be read or parsed.
        """
        path = self._global_path()
        if path is None or not path.is_file():
            return None
        try:
            return _parse(_read_text(path)[0])
        except _Failed as exc:
            raise ConfigError(str(exc), file=str(path)) from None

    def _global_path(self) -> Path | None:
        """The global file, as the registry names it; None when the registry disables it."""
        entry = _registry(self.config_base_path).get("global_configs", {}).get("global_fallback")
        if isinstance(entry, Mapping):
            if entry.get("enabled", True) is False:
                return None
            if isinstance(entry.get("file"), str):
                return self.config_base_path / entry["file"]
        return self.config_base_path / "global_fallback.yaml"

    def _global_values(self) -> _GlobalValues:
        defaults = copy.deepcopy(GLOBAL_DEFAULTS)
        path = self._global_path()
        if path is None:
            return _GlobalValues(
                **defaults, source="global_fallback is disabled in the registry: defaults used"
            )
        if not path.is_file():
            return _GlobalValues(**defaults, source="no global_fallback.yaml: defaults used")
        try:
            raw = _parse(_read_text(path)[0])
            _validated(GlobalFallbackConfig, _Target("group", "global_fallback", path), raw, named=False)
        except _Failed as exc:
            return _GlobalValues(
                **defaults,
                source="",
                error=f"global_fallback.yaml cannot be used: {exc}; fix it and run again",
            )
        if raw.get("enabled", True) is False:
            return _GlobalValues(**defaults, source="global_fallback.yaml has enabled: false: defaults used")
        breaker = dict(defaults["circuit_breaker"])
        breaker.update(raw.get("circuit_breaker") or {})
        return _GlobalValues(
            max_attempts=raw.get("max_attempts", defaults["max_attempts"]),
            retry_delay=raw.get("retry_delay", defaults["retry_delay"]),
            circuit_breaker=breaker,
            source="values from global_fallback.yaml",
        )

    # ------------------------------------------------------------------------------ files

    def _require_dir(self) -> None:
        if not self.config_base_path.is_dir():
            raise ConfigError(
                f"configuration directory {str(self.config_base_path)!r} does not exist; pass the llms "
                "directory (config/llms) or the config directory above it",
                file=str(self.config_base_path),
            )

    def _targets(self, kind: Kind) -> list[_Target]:
        """The files of every group (or pool): the manager's names, or those found on disk."""
        base = self.config_base_path
        folder, section = _FOLDERS[kind]
        listed = _registry(base).get(section, {})
        registry_files = {
            str(name): base / entry["file"]
            for name, entry in (listed.items() if isinstance(listed, Mapping) else [])
            if isinstance(entry, Mapping) and isinstance(entry.get("file"), str)
        }
        if self.task_group_manager is not None:
            manager = self.task_group_manager
            names = [
                str(n)
                for n in (manager.list_task_groups() if kind == "group" else manager.list_polling_pools())
            ]
        else:
            names = [p.stem for p in _yaml_files(base / folder)]
            names += [n for n, p in registry_files.items() if n not in names and p.is_file()]
        targets = []
        for name in names:
            path = registry_files.get(name)
            if path is None or not path.is_file():
                path = next(
                    (
                        base / folder / f"{name}{s}"
                        for s in _SUFFIXES
                        if (base / folder / f"{name}{s}").is_file()
                    ),
                    base / folder / f"{name}.yaml",
                )
            targets.append(_Target(kind, name, path))
        return targets

    def _backup(self, path: Path) -> Path:
        """Copy ``path`` to ``backup/<name>.backup`` (never over a different earlier backup)."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        candidate = self.backup_dir / f"{path.name}.backup"
        number = 0
        while candidate.exists():
            if candidate.read_bytes() == data:
                return candidate
            number += 1
            candidate = self.backup_dir / f"{path.name}.backup.{number}"
        shutil.copy2(path, candidate)
        return candidate


# ---------------------------------------------------------------------------------- helpers
