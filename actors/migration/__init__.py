"""Migrating configuration files from the legacy fallback format: ``ConfigMigrator``.

Rewriting files needs ruamel.yaml (``pip install 'llm-actors[migrate]'``); it is imported only
when a file is rewritten, so importing this package, planning nothing and validating do not.
"""

from actors.migration.migrator import ConfigMigrator, TaskGroupQueries

__all__ = ["ConfigMigrator", "TaskGroupQueries"]
