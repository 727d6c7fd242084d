"""Move legacy fallback settings into each group's and pool's fallback_config, keeping comments.

Exit status: 0 when every file is migrated (or already was) and valid; 1 when a file failed or
validation found an invalid file; 2 on bad usage, a configuration directory that does not
exist, or ruamel.yaml missing (pip install 'llm-actors[migrate]').
``scripts/migrate_llm_config.py`` runs the same code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from actors.config import ConfigError, find_llms_dir
from actors.migration import ConfigMigrator

__all__ = ["add_arguments", "main", "run"]

_KIND = {
    "migrate_task_group": ("task group", "group_name"),
    "migrate_polling_pool": ("polling pool", "pool_name"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--config-path",
        "--config",  # what every other command takes
        dest="config_path",
        default="config/llms",
        metavar="DIR",
        help="the llms directory, or the config directory above it (default: config/llms)",
    )
    add(
        "--no-backup",
        action="store_true",
        help="do not copy each rewritten file to <DIR>/backup/<file>.backup first",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--validate-only",
        action="store_true",
        help="change nothing; report which files are valid and migrated",
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="change nothing; print the diff a migration would write"
    )
    add("-v", "--verbose", action="store_true", help="say what was written to each file, and log each step")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/migrate_llm_config.py``: the ``migrate`` subcommand on its own."""
    summary = (__doc__ or "").strip().splitlines()[0]
    parser = argparse.ArgumentParser(description=summary)
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 for --help
        return int(exc.code or 0)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if not args.verbose:
        return _run(args, out, err)
    # Only for this run and only the migrator's records: nothing global is left configured.
    logger = logging.getLogger("actors.migration")
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return _run(args, out, err)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        base = find_llms_dir(args.config_path)
    except ConfigError as exc:
        err.write(f"error: {exc.issues[0].message if exc.issues else exc}\n")
        return 2
    migrator = ConfigMigrator(config_base_path=base)
    try:
        if args.validate_only:
            return _validate(migrator, out, verbose=args.verbose)
        return _migrate(migrator, out, backup=not args.no_backup, dry_run=args.dry_run, verbose=args.verbose)
    except ImportError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return 2


def _migrate(migrator: ConfigMigrator, out: TextIO, *, backup: bool, dry_run: bool, verbose: bool) -> int:
    base = migrator.config_base_path
    if dry_run:
        out.write(f"Dry run over {base}: nothing is written.\n")
    else:
        out.write(
            f"Migrating {base}"
            + (f" (backups in {migrator.backup_dir})" if backup else " (no backups)")
            + "\n"
        )
    ok = migrator.migrate(backup=backup, dry_run=dry_run)
    log = migrator.get_migration_log()
    for entry in log:
        out.write(_line(entry, dry_run=dry_run, verbose=verbose) + "\n")
    changed = [e for e in log if e["status"] == "success"]
    failed = [e for e in log if e["status"] == "failed"]
    counts = (
        f"{len(changed)} {'to migrate' if dry_run else 'migrated'}, "
        f"{len(log) - len(changed) - len(failed)} skipped, {len(failed)} failed"
    )
    out.write(f"{counts}.\n")
    if dry_run:
        for entry in changed:
            out.write("\n" + entry["diff"])
        return 0 if ok else 1
    if verbose:
        for entry in changed:
            out.write("\n" + entry["diff"])
    valid = _validate(migrator, out, verbose=verbose)
    return 0 if ok and valid == 0 else 1


def _validate(migrator: ConfigMigrator, out: TextIO, *, verbose: bool) -> int:
    report = migrator.validate_migration()
    summary = report["summary"]
    out.write(
        f"Validation: {summary['valid_task_groups']} of {summary['total_task_groups']} task groups and "
        f"{summary['valid_polling_pools']} of {summary['total_polling_pools']} polling pools are valid "
        "and have a fallback_config.\n"
    )
    invalid = 0
    for section, label in (("task_groups", "task group"), ("polling_pools", "polling pool")):
        for name, entry in report[section].items():
            if not entry["valid"]:
                invalid += 1
                out.write(f"  {label} {name}: invalid: {'; '.join(entry['errors'])}\n")
            elif verbose:
                out.write(f"  {label} {name}: valid\n")
    return 1 if invalid else 0


def _line(entry: dict[str, Any], *, dry_run: bool, verbose: bool) -> str:
    label, key = _KIND[entry["task"]]
    where = f"{label} {entry[key]}"
    status = entry["status"]
    if status == "failed":
        return f"{where}: failed: {entry['error']}"
    if status == "skipped":
        return f"{where}: skipped: {entry['reason']}"
    text = f"{where}: {'would migrate' if dry_run else 'migrated'}"
    if entry.get("backup"):
        text += f" (backup {entry['backup']})"
    if verbose:
        text += f": {entry['reason']}"
    return text
