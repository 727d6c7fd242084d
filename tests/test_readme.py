"""README.rst is the project's one document: it must render, with no table or markup docutils
would drop or garble (PyPI refuses a long description that does not)."""

from __future__ import annotations

import io
from pathlib import Path

import docutils.core

README = Path(__file__).resolve().parents[1] / "README.rst"


def test_readme_renders_without_warnings() -> None:
    warnings = io.StringIO()
    docutils.core.publish_doctree(
        README.read_text(encoding="utf-8"),
        source_path=str(README),
        settings_overrides={"warning_stream": warnings, "report_level": 2, "halt_level": 5},
    )
    assert warnings.getvalue() == ""
