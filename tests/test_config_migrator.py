"""ConfigMigrator and ``llm-actors migrate``, on real files in a temporary directory.

The legacy directory is the shipped configuration taken back to the old format: the
``fallback_config`` blocks cut off, legacy ``fallback_strategy`` / ``circuit_breaker`` keys
(with comments) put in, and a ``global_fallback.yaml``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from actors import ConfigMigrator
from actors.cli import main as cli_main
from actors.cli.migrate import main as migrate_main
from actors.config import load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config"

GLOBAL_FALLBACK = """\
# Legacy global fallback settings (applied to every group before fallback_config existed).
enabled: true
max_attempts: 5
retry_delay: 2.0
circuit_breaker:
  failure_threshold: 4
  recovery_time: 90
  half_open_requests: 2
"""

# Legacy keys put into fast_group.yaml, between its description and its first tier.
FAST_GROUP_LEGACY = """\
# How this group fell back before fallback_config existed.
fallback_strategy: echelon_down   # legacy: the strategy
circuit_breaker:                  # legacy: the group's own breaker
  failure_threshold: 2            # stricter than the global file
"""


class Names:
    """Stands in for ``TaskGroupManager``'s query API: the names the migrator should visit."""

    def __init__(self, groups: list[str], pools: list[str]) -> None:
        self.groups = groups
        self.pools = pools

    def list_task_groups(self) -> list[str]:
        return list(self.groups)

    def list_polling_pools(self) -> list[str]:
        return list(self.pools)

    def get_task_group(self, name: str) -> None:
        return None

    def get_polling_pool(self, name: str) -> None:
        return None


def cut_fallback_config(path: Path) -> str:
    """Remove the file's trailing ``fallback_config`` block (with the blank line above it); return the block."""
    text = path.read_text(encoding="utf-8")
    start = text.index("\nfallback_config:")
    assert all(not line or line.startswith((" ", "#")) for line in text[start + 1 :].splitlines()[1:]), (
        f"fallback_config is not the last block of {path}"
    )
    path.write_text(text[:start].rstrip("\n") + "\n", encoding="utf-8")
    return text[start:]


@pytest.fixture
def llms(tmp_path: Path) -> Path:
    """A copy of the shipped config/llms in the legacy format."""
    shutil.copytree(SHIPPED, tmp_path / "config")
    base = tmp_path / "config" / "llms"
    groups, pools = base / "groups", base / "polling_pools"
    cut_fallback_config(groups / "fast_group.yaml")
    text = (groups / "fast_group.yaml").read_text(encoding="utf-8")
    anchor = "description: Fast answers for simple tasks\n\n"
    assert anchor in text
    (groups / "fast_group.yaml").write_text(
        text.replace(anchor, anchor + FAST_GROUP_LEGACY + "\n"), encoding="utf-8"
    )
    cut_fallback_config(groups / "thinking_group.yaml")
    text = (groups / "thinking_group.yaml").read_text(encoding="utf-8")
    (groups / "thinking_group.yaml").write_text(
        text + "\nfallback_strategy: model_rotate\n", encoding="utf-8"
    )
    cut_fallback_config(pools / "fast_pool.yaml")
    cut_fallback_config(pools / "thinking_pool.yaml")
    (base / "global_fallback.yaml").write_text(GLOBAL_FALLBACK, encoding="utf-8")
    return base


@pytest.fixture
def migrator(llms: Path) -> ConfigMigrator:
    return ConfigMigrator(config_base_path=llms)


def read(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def snapshot(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def entries(migrator: ConfigMigrator, **match: str) -> list[dict]:
    return [e for e in migrator.get_migration_log() if all(e.get(k) == v for k, v in match.items())]


def write_group(base: Path, name: str, text: str) -> Path:
    path = base / "groups" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------- construction


def test_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    m = ConfigMigrator(Names(["fast_group"], ["fast_pool"]))
    assert m.config_base_path == Path("config/llms")
    assert m.get_migration_log() == []


def test_init_accepts_the_config_dir_above_llms(llms: Path) -> None:
    assert ConfigMigrator(config_base_path=llms.parent).config_base_path == llms
    assert ConfigMigrator(config_base_path=str(llms)).config_base_path == llms


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    from actors.errors import ConfigError

    m = ConfigMigrator(config_base_path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="does not exist"):
        m.migrate_global_fallback_to_task_groups()


# --------------------------------------------------------------------------------- the global file


def test_load_global_fallback_config_exists(migrator: ConfigMigrator) -> None:
    assert migrator.load_global_fallback_config() == yaml.safe_load(GLOBAL_FALLBACK)


def test_load_global_fallback_config_not_exists(migrator: ConfigMigrator, llms: Path) -> None:
    (llms / "global_fallback.yaml").unlink()
    assert migrator.load_global_fallback_config() is None


def test_missing_global_file_means_defaults(migrator: ConfigMigrator, llms: Path) -> None:
    (llms / "global_fallback.yaml").unlink()
    assert migrator.migrate_global_fallback_to_task_groups(backup=False) is True
    block = read(llms / "groups" / "thinking_group.yaml")["fallback_config"]
    assert block["max_attempts"] == 3
    assert block["retry_delay"] == 1.0
    assert block["circuit_breaker"] == {"failure_threshold": 5, "recovery_time": 60, "half_open_requests": 1}


def test_invalid_global_file_fails_the_groups_it_would_feed(migrator: ConfigMigrator, llms: Path) -> None:
    (llms / "global_fallback.yaml").write_text("max_attempts: 0\nretry_dealy: 1\n", encoding="utf-8")
    before = snapshot(llms)
    assert migrator.migrate_global_fallback_to_task_groups() is False
    failed = entries(migrator, status="failed")
    assert {e["group_name"] for e in failed} == {"fast_group", "thinking_group"}
    assert all("global_fallback.yaml" in e["error"] and "max_attempts" in e["error"] for e in failed)
    assert entries(migrator, group_name="fast_small_group")[0]["status"] == "skipped"
    assert snapshot(llms) == before


# --------------------------------------------------------------------------------- task groups


def test_migrate_task_group_success(migrator: ConfigMigrator, llms: Path) -> None:
    assert migrator.migrate_global_fallback_to_task_groups() is True
    thinking = read(llms / "groups" / "thinking_group.yaml")
    block = thinking["fallback_config"]
    assert block["strategy"] == "echelon_down"  # the legacy model_rotate, under its current name
    assert block["max_attempts"] == 5
    assert block["retry_delay"] == 2.0
    assert block["circuit_breaker"] == {"failure_threshold": 4, "recovery_time": 90, "half_open_requests": 2}
    assert "fallback_strategy" not in thinking
    [entry] = entries(migrator, group_name="thinking_group")
    assert entry["task"] == "migrate_task_group"
    assert entry["status"] == "success"


def test_the_groups_own_legacy_breaker_wins_and_legacy_keys_are_removed(
    migrator: ConfigMigrator, llms: Path
) -> None:
    assert migrator.migrate_global_fallback_to_task_groups() is True
    fast = read(llms / "groups" / "fast_group.yaml")
    assert "fallback_strategy" not in fast and "circuit_breaker" not in fast
    assert fast["fallback_config"] == {
        "strategy": "echelon_down",
        "fallback_groups": ["fast_group.echelon2", "fast_group.echelon3"],
        "max_attempts": 5,
        "retry_delay": 2.0,
        # failure_threshold is the group's own; the rest comes from global_fallback.yaml
        "circuit_breaker": {"failure_threshold": 2, "recovery_time": 90, "half_open_requests": 2},
    }


def test_migrate_task_group_already_has_config(migrator: ConfigMigrator, llms: Path) -> None:
    path = llms / "groups" / "fast_small_group.yaml"
    before = path.read_bytes()
    assert migrator.migrate_global_fallback_to_task_groups() is True
    assert path.read_bytes() == before
    assert read(path)["fallback_config"]["max_attempts"] == 3
    [entry] = entries(migrator, group_name="fast_small_group")
    assert entry["status"] == "skipped"
    assert "already has fallback_config" in entry["reason"]
    assert entry["backup"] is None


def test_migrate_task_group_file_not_exists(llms: Path) -> None:
    m = ConfigMigrator(Names(["fast_group", "ghost_group"], []), llms)
    assert m.migrate_global_fallback_to_task_groups() is False
    [entry] = entries(m, group_name="ghost_group")
    assert entry["status"] == "failed"
    assert "not found" in entry["error"]
    assert entries(m, group_name="fast_group")[0]["status"] == "success"


def test_get_default_fallback_groups_fast_group(migrator: ConfigMigrator) -> None:
    assert migrator.default_fallback_groups("fast_group") == ["fast_group.echelon2", "fast_group.echelon3"]


def test_get_default_fallback_groups_thinking_group(migrator: ConfigMigrator, llms: Path) -> None:
    # Its own lower tiers only: the original's hard-coded extra fast_group.echelon1 is gone.
    expected = ["thinking_group.echelon2", "thinking_group.echelon3"]
    assert migrator.default_fallback_groups("thinking_group") == expected
    migrator.migrate_global_fallback_to_task_groups(backup=False)
    assert read(llms / "groups" / "thinking_group.yaml")["fallback_config"]["fallback_groups"] == expected


def test_get_default_fallback_groups_plan_group(migrator: ConfigMigrator, llms: Path) -> None:
    # The original sent plan_group to thinking_group's tiers by name; now it is its own ladder.
    write_group(
        llms, "plan_group", "echelon1:\n  models: [openai-gpt4]\nechelon2:\n  models: [openai-gpt4-turbo]\n"
    )
    assert migrator.default_fallback_groups("plan_group") == ["plan_group.echelon2"]


def test_get_default_fallback_groups_generic(migrator: ConfigMigrator, llms: Path) -> None:
    write_group(
        llms, "generic_group", "".join(f"echelon{n}:\n  models: [openai-gpt3.5-turbo]\n" for n in (1, 2, 3))
    )
    assert migrator.default_fallback_groups("generic_group") == [
        "generic_group.echelon2",
        "generic_group.echelon3",
    ]


def test_default_fallback_groups_follow_priority_not_names(migrator: ConfigMigrator, llms: Path) -> None:
    path = write_group(
        llms,
        "ordered_group",
        (
            "echelon1:\n  models: [openai-gpt3.5-turbo]\n  priority: 3\n"
            "echelon2:\n  models: [openai-gpt4]\n  priority: 1\n"
            "echelon3:\n  models: [openai-gpt4-turbo]\n  priority: 2\n"
        ),
    )
    # echelon2 is the best tier: it is never its own fallback.
    assert migrator.default_fallback_groups("ordered_group") == [
        "ordered_group.echelon3",
        "ordered_group.echelon1",
    ]
    assert migrator.migrate_global_fallback_to_task_groups(backup=False) is True
    assert read(path)["fallback_config"]["fallback_groups"] == [
        "ordered_group.echelon3",
        "ordered_group.echelon1",
    ]


def test_default_fallback_groups_without_echelons_or_group(migrator: ConfigMigrator) -> None:
    assert migrator.default_fallback_groups("fast_small_group") == []  # task-named tiers only
    assert migrator.default_fallback_groups("no_such_group") == []


def test_migrate_global_fallback_to_task_groups(llms: Path) -> None:
    m = ConfigMigrator(Names(["fast_group", "thinking_group"], []), llms)
    assert m.migrate_global_fallback_to_task_groups(backup=False) is True
    log = m.get_migration_log()
    assert len(log) == 2
    assert all(e["task"] == "migrate_task_group" and e["status"] == "success" for e in log)
    assert all(e["backup"] is None for e in log)
    assert not (llms / "backup").exists()


# --------------------------------------------------------------------------------- polling pools


def test_migrate_polling_pool_success(migrator: ConfigMigrator, llms: Path) -> None:
    assert migrator.migrate_polling_pools() is True
    assert read(llms / "polling_pools" / "fast_pool.yaml")["fallback_config"] == {
        "strategy": "instance_rotation",
        "max_instance_attempts": 2,
    }


def test_migrate_polling_pool_already_has_config(migrator: ConfigMigrator, llms: Path) -> None:
    path = llms / "polling_pools" / "thinking_pool.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + ("\nfallback_config:\n  strategy: instance_rotation\n  max_instance_attempts: 3\n"),
        encoding="utf-8",
    )
    before = path.read_bytes()
    assert migrator.migrate_polling_pools() is True
    assert path.read_bytes() == before
    assert read(path)["fallback_config"]["max_instance_attempts"] == 3
    assert entries(migrator, pool_name="thinking_pool")[0]["status"] == "skipped"


def test_migrate_polling_pools(llms: Path) -> None:
    m = ConfigMigrator(Names([], ["fast_pool", "thinking_pool"]), llms)
    assert m.migrate_polling_pools() is True
    log = m.get_migration_log()
    assert len(log) == 2
    assert all(e["task"] == "migrate_polling_pool" and e["status"] == "success" for e in log)


# --------------------------------------------------------------------------------- the rewrite


def test_comments_and_key_order_survive(migrator: ConfigMigrator, llms: Path) -> None:
    path = llms / "groups" / "fast_group.yaml"
    before = path.read_text(encoding="utf-8")
    keys_before = [k for k in read(path) if k not in ("fallback_strategy", "circuit_breaker")]
    tier_keys_before = list(read(path)["echelon1"])
    assert migrator.migrate_global_fallback_to_task_groups() is True
    after = path.read_text(encoding="utf-8")

    for line in (
        '# A task group: tiers ("echelons") of models, best first, and how to fall back between them.',
        "name: fast_group                # optional; must equal the file name",
        "# Each echelonN is a tier. Its limits are a budget shared by every request that reaches its",
        "  models: [openai-gpt4, anthropic-claude-3-opus]   # file names under provider/<provider>/",
        "  priority: 1                   # lower is tried first (default: N for echelonN)",
        "  max_retries: 3                # further attempts in this tier, each on another instance if there is one",
    ):
        assert line in after.splitlines(), line
    # The legacy keys' own comments moved with their values into fallback_config.
    assert "# How this group fell back before fallback_config existed." in after
    assert "# legacy: the strategy" in after
    assert "# stricter than the global file" in after
    # Key order kept; the new block is appended at the end.
    data = read(path)
    assert list(data) == [*keys_before, "fallback_config"]
    assert list(data["echelon1"]) == tier_keys_before
    # Everything up to the first tier is as it was, minus the legacy lines (and one of the two
    # blank lines that were around them).
    head = before[: before.index("echelon1:")]
    assert after.startswith(head.replace(FAST_GROUP_LEGACY + "\n", "")), after[:600]
    # The tiers are untouched, byte for byte.
    tiers = before[before.index("echelon1:") :]
    assert tiers.rstrip("\n") in after


def test_untouched_parts_of_a_pool_file_are_byte_identical(migrator: ConfigMigrator, llms: Path) -> None:
    path = llms / "polling_pools" / "fast_pool.yaml"
    before = path.read_text(encoding="utf-8")
    assert migrator.migrate_polling_pools() is True
    after = path.read_text(encoding="utf-8")
    assert after == before + "\nfallback_config:\n  strategy: instance_rotation\n  max_instance_attempts: 2\n"


def test_backups_are_identical_to_the_originals(migrator: ConfigMigrator, llms: Path) -> None:
    files = [*(llms / "groups").glob("*.yaml"), *(llms / "polling_pools").glob("*.yaml")]
    originals = {p.name: p.read_bytes() for p in files}
    assert migrator.migrate() is True
    backups = {p.name: p.read_bytes() for p in (llms / "backup").iterdir()}
    # Only the files actually rewritten are backed up.
    assert set(backups) == {
        "fast_group.yaml.backup",
        "thinking_group.yaml.backup",
        "fast_pool.yaml.backup",
        "thinking_pool.yaml.backup",
    }
    for name, data in backups.items():
        assert data == originals[name.removesuffix(".backup")]
    for entry in entries(migrator, status="success"):
        assert Path(entry["backup"]).read_bytes() == originals[Path(entry["file"]).name]


def test_a_second_run_changes_nothing(migrator: ConfigMigrator, llms: Path) -> None:
    assert migrator.migrate() is True
    after_first = snapshot(llms)
    again = ConfigMigrator(config_base_path=llms)
    assert again.migrate() is True
    log = again.get_migration_log()
    assert len(log) == 6 and all(e["status"] == "skipped" for e in log)
    assert snapshot(llms) == after_first  # no file rewritten, no new backup
    assert again.plan() == {}


def test_migrated_files_load_as_a_valid_config(migrator: ConfigMigrator, llms: Path) -> None:
    assert migrator.migrate() is True
    config = load_config(llms.parent)
    fast = config.groups["fast_group"]
    assert fast.fallback_strategy is None and fast.circuit_breaker is None
    assert fast.fallback_config.circuit_breaker.failure_threshold == 2
    assert config.fallback_chain("fast_group.echelon1") == ["fast_group.echelon2", "fast_group.echelon3"]
    assert config.pools["fast_pool"].fallback_config.max_instance_attempts == 2


def test_an_empty_fallback_config_is_filled_in_place(migrator: ConfigMigrator, llms: Path) -> None:
    path = write_group(
        llms,
        "empty_group",
        (
            "description: has an empty block\n"
            "fallback_config:   # to be filled\n"
            "echelon1:\n  models: [openai-gpt4]\n"
        ),
    )
    assert migrator.migrate_global_fallback_to_task_groups(backup=False) is True
    assert list(read(path)) == ["description", "fallback_config", "echelon1"]
    assert read(path)["fallback_config"]["strategy"] == "echelon_down"
    assert "# to be filled" in path.read_text(encoding="utf-8")


def test_windows_line_ends_are_kept(migrator: ConfigMigrator, llms: Path) -> None:
    path = llms / "polling_pools" / "fast_pool.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert migrator.migrate_polling_pools(backup=False) is True
    data = path.read_bytes()
    assert b"fallback_config:\r\n  strategy: instance_rotation\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


# --------------------------------------------------------------------------------- failures


def test_an_unparseable_file_is_logged_as_failed(migrator: ConfigMigrator, llms: Path) -> None:
    broken = write_group(llms, "broken_group", "echelon1:\n  models: [openai-gpt4\n  priority: 1\n")
    before = broken.read_bytes()
    assert migrator.migrate_global_fallback_to_task_groups() is False
    [entry] = entries(migrator, group_name="broken_group")
    assert entry["status"] == "failed"
    assert entry["task"] == "migrate_task_group"
    assert "invalid YAML at line" in entry["error"]
    assert entry["backup"] is None
    assert broken.read_bytes() == before
    assert not (llms / "backup" / "broken_group.yaml.backup").exists()
    # The other groups were still migrated.
    assert entries(migrator, group_name="fast_group")[0]["status"] == "success"


def test_a_key_given_twice_is_not_rewritten(migrator: ConfigMigrator, llms: Path) -> None:
    write_group(
        llms, "twice_group", "echelon1:\n  models: [openai-gpt4]\nechelon1:\n  models: [openai-gpt4]\n"
    )
    assert migrator.migrate_global_fallback_to_task_groups() is False
    [entry] = entries(migrator, group_name="twice_group")
    assert entry["status"] == "failed"
    assert "echelon1" in entry["error"]


def test_an_invalid_group_is_not_rewritten(migrator: ConfigMigrator, llms: Path) -> None:
    path = write_group(
        llms, "typo_group", "fallback_strategy: sideways\nechelon1:\n  models: [openai-gpt4]\n"
    )
    before = path.read_bytes()
    assert migrator.migrate_global_fallback_to_task_groups() is False
    [entry] = entries(migrator, group_name="typo_group")
    assert "fallback_strategy" in entry["error"]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------------- validation


def test_validate_migration(llms: Path) -> None:
    m = ConfigMigrator(Names(["fast_group", "thinking_group"], ["fast_pool", "thinking_pool"]), llms)
    before = m.validate_migration()
    assert before["summary"] == {
        "total_task_groups": 2,
        "valid_task_groups": 0,
        "total_polling_pools": 2,
        "valid_polling_pools": 0,
    }
    assert before["task_groups"]["fast_group"]["has_fallback_config"] is False
    assert m.migrate_global_fallback_to_task_groups() and m.migrate_polling_pools()
    after = m.validate_migration()
    assert after["summary"] == {
        "total_task_groups": 2,
        "valid_task_groups": 2,
        "total_polling_pools": 2,
        "valid_polling_pools": 2,
    }
    assert after["task_groups"]["fast_group"]["valid"] is True
    assert after["task_groups"]["fast_group"]["has_fallback_config"] is True


def test_validate_migration_rereads_the_files(migrator: ConfigMigrator, llms: Path) -> None:
    assert migrator.migrate() is True
    assert migrator.validate_migration()["summary"]["valid_task_groups"] == 3
    # Edited after the migration: the next validation sees it.
    cut_fallback_config(llms / "groups" / "thinking_group.yaml")
    path = llms / "polling_pools" / "fast_pool.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("max_instance_attempts: 2", "max_instance_attempts: 0")
    )
    report = migrator.validate_migration()
    assert report["task_groups"]["thinking_group"] == {
        "valid": False,
        "has_fallback_config": False,
        "file": str(llms / "groups" / "thinking_group.yaml"),
        "errors": ["no fallback_config: run the migration"],
    }
    assert report["polling_pools"]["fast_pool"]["valid"] is False
    assert "max_instance_attempts" in report["polling_pools"]["fast_pool"]["errors"][0]
    assert report["summary"]["valid_task_groups"] == 2
    assert report["summary"]["valid_polling_pools"] == 2


def test_get_migration_log_is_a_copy(migrator: ConfigMigrator) -> None:
    migrator.migrate_polling_pools(backup=False)
    log = migrator.get_migration_log()
    assert [e["pool_name"] for e in log] == ["fast_pool", "thinking_pool", "translation_pool"]
    assert [e["status"] for e in log] == ["success", "success", "skipped"]
    log[0]["status"] = "changed"
    log.clear()
    assert migrator.get_migration_log()[0]["status"] == "success"


def test_works_with_a_task_group_manager(llms: Path) -> None:
    from actors.compat import TaskGroupManager

    manager = TaskGroupManager(llms.parent)
    m = ConfigMigrator(manager)
    assert m.config_base_path == llms
    assert manager.get_task_group("fast_group").fallback_config is None
    assert m.migrate() is True
    assert {e.get("group_name") or e.get("pool_name") for e in m.get_migration_log()} == {
        *manager.list_task_groups(),
        *manager.list_polling_pools(),
    }
    # The manager was told to re-read the files it serves.
    assert manager.get_task_group("fast_group").fallback_config.max_attempts == 5


# --------------------------------------------------------------------------------- dry run


def test_plan_returns_the_diffs_and_writes_nothing(migrator: ConfigMigrator, llms: Path) -> None:
    before = snapshot(llms)
    plan = migrator.plan()
    assert set(plan) == {
        str(llms / "groups" / "fast_group.yaml"),
        str(llms / "groups" / "thinking_group.yaml"),
        str(llms / "polling_pools" / "fast_pool.yaml"),
        str(llms / "polling_pools" / "thinking_pool.yaml"),
    }
    fast = plan[str(llms / "groups" / "fast_group.yaml")]
    assert fast.startswith(f"--- {llms / 'groups' / 'fast_group.yaml'}\n")
    assert "-fallback_strategy: echelon_down   # legacy: the strategy\n" in fast
    assert "+fallback_config:\n" in fast
    assert "+  fallback_groups: [fast_group.echelon2, fast_group.echelon3]\n" in fast
    assert migrator.diff() == "".join(plan.values())
    assert snapshot(llms) == before
    assert migrator.get_migration_log() == []


def test_a_dry_run_logs_what_it_would_do(migrator: ConfigMigrator, llms: Path) -> None:
    before = snapshot(llms)
    assert migrator.migrate(dry_run=True) is True
    assert snapshot(llms) == before
    planned = entries(migrator, status="success")
    assert len(planned) == 4 and all(e["dry_run"] and e["backup"] is None for e in planned)
    # The real run writes exactly what the dry run announced.
    real = ConfigMigrator(config_base_path=llms)
    assert real.migrate(backup=False) is True
    done = {e["file"]: e["diff"] for e in entries(real, status="success")}
    assert done == {e["file"]: e["diff"] for e in planned}
    for file, diff in done.items():
        assert "+fallback_config:\n" in diff
        assert "fallback_config" in read(Path(file))


# --------------------------------------------------------------------------------- the CLI


def test_cli_migrates_and_validates(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_main(["--config-path", str(llms)]) == 0
    out = capsys.readouterr().out
    assert f"task group fast_group: migrated (backup {llms / 'backup' / 'fast_group.yaml.backup'})" in out
    assert "task group fast_small_group: skipped: already has fallback_config" in out
    assert "polling pool fast_pool: migrated" in out
    assert "4 migrated, 2 skipped, 0 failed." in out
    assert "Validation: 3 of 3 task groups and 3 of 3 polling pools are valid" in out
    assert (llms / "backup" / "fast_pool.yaml.backup").is_file()
    # Again: nothing to do, still exit 0.
    assert migrate_main(["--config-path", str(llms)]) == 0
    assert "0 migrated, 6 skipped, 0 failed." in capsys.readouterr().out


def test_cli_accepts_the_config_dir_and_no_backup(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["migrate", "--config-path", str(llms.parent), "--no-backup"]) == 0
    assert not (llms / "backup").exists()
    assert "(no backups)" in capsys.readouterr().out


def test_cli_takes_config_as_the_other_commands_do(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["migrate", "--config", str(llms.parent), "--dry-run"]) == 0
    assert "task group fast_group: would migrate" in capsys.readouterr().out
    assert not (llms / "backup").exists()


def test_cli_exit_1_when_a_file_fails(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_group(llms, "broken_group", "echelon1: [\n")
    assert cli_main(["migrate", "--config-path", str(llms)]) == 1
    out = capsys.readouterr().out
    assert "task group broken_group: failed: invalid YAML" in out
    assert "task group broken_group: invalid:" in out
    assert "1 failed." in out


def test_cli_exit_2_for_a_missing_path_or_bad_usage(
    tmp_path: Path, llms: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate_main(["--config-path", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert migrate_main(["--config-path", str(tmp_path)]) == 2  # exists, but holds no configuration
    assert migrate_main(["--config-path", str(llms), "--dry-run", "--validate-only"]) == 2
    assert migrate_main(["--no-such-option"]) == 2


def test_cli_dry_run_prints_the_diff_and_writes_nothing(
    llms: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(llms)
    assert migrate_main(["--config-path", str(llms), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert snapshot(llms) == before
    assert "task group fast_group: would migrate" in out
    assert f"--- {llms / 'groups' / 'fast_group.yaml'}\n" in out
    assert "-fallback_strategy: model_rotate\n" in out
    assert "+  strategy: instance_rotation\n" in out
    assert "Validation" not in out


def test_cli_validate_only(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(llms)
    assert migrate_main(["--config-path", str(llms), "--validate-only"]) == 1
    out = capsys.readouterr().out
    assert snapshot(llms) == before
    assert "Validation: 1 of 3 task groups and 1 of 3 polling pools are valid" in out
    assert "task group fast_group: invalid: no fallback_config: run the migration" in out
    assert migrate_main(["--config-path", str(llms), "--no-backup"]) == 0
    capsys.readouterr()
    assert migrate_main(["--config-path", str(llms), "--validate-only", "-v"]) == 0
    out = capsys.readouterr().out
    assert "task group fast_group: valid" in out


def test_cli_verbose_says_what_was_written(llms: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_main(["--config-path", str(llms), "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "fast_group: migrated (backup " in out
    assert (
        "fallback_config added (strategy echelon_down, fallback_groups [fast_group.echelon2, fast_group.echelon3]"
        in out
    )
    assert "+fallback_config:\n" in out


def test_the_script_runs_the_same_command(llms: Path) -> None:
    script = REPO / "scripts" / "migrate_llm_config.py"
    result = subprocess.run(
        [sys.executable, str(script), "--config-path", str(llms), "--validate-only"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Validation: 1 of 3 task groups" in result.stdout
    result = subprocess.run(
        [sys.executable, str(script), "--config-path", str(llms)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 migrated, 2 skipped, 0 failed." in result.stdout
