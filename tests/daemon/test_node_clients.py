"""JavaScript clients against the daemon: the Vercel AI SDK and the openai npm SDK.

Opt-in, as the suite installs no npm packages: point ``LLM_ACTORS_NODE_MODULES`` at a folder
where ``npm install ai @ai-sdk/openai openai zod`` was run. Skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MODULES = os.environ.get("LLM_ACTORS_NODE_MODULES")
SCRIPT = Path(__file__).with_name("node_clients.mjs")

pytestmark = pytest.mark.skipif(
    not (shutil.which("node") and MODULES and (Path(MODULES) / "node_modules" / "ai").is_dir()),
    reason="set LLM_ACTORS_NODE_MODULES to a folder with ai, @ai-sdk/openai, openai and zod installed",
)


def test_the_vercel_ai_sdk_and_the_openai_npm_sdk(daemon, tmp_path):
    # ES modules resolve imports next to the script, so it runs beside a link to the packages.
    (tmp_path / "node_modules").symlink_to(Path(MODULES, "node_modules").resolve())
    script = tmp_path / SCRIPT.name
    shutil.copy(SCRIPT, script)
    done = subprocess.run(["node", str(script), daemon.url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    said = dict(json.loads(line) for line in done.stdout.splitlines())
    text, tokens = said["generateText"]
    assert text == "echo: hello there" and tokens > 0
    assert "".join(said["streamText"]) == "echo: one two three" and len(said["streamText"]) > 1
    assert said["tools"] == [[["get_weather", {"input": "weather in Oslo"}]], ["sunny"]]
    assert said["embedMany"] == [[16, 16], 3]
    assert said["responses"] == "echo: npm sdk"
    assert said["responses.stream"] == ["response.created", "response.completed"]
    assert said["embeddings"] == 16
