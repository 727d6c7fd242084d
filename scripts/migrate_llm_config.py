#!/usr/bin/env python3
"""Migrate config/llms to per-file fallback_config blocks: the same as ``llm-actors migrate``.

python scripts/migrate_llm_config.py                  # migrate, backing up each rewritten file
python scripts/migrate_llm_config.py --no-backup
python scripts/migrate_llm_config.py --dry-run        # print the diff, write nothing
python scripts/migrate_llm_config.py --validate-only
python scripts/migrate_llm_config.py --verbose --config-path config
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from actors.cli.migrate import main

if __name__ == "__main__":
    sys.exit(main())
