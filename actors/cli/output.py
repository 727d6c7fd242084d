"""Plain-text output shared by the commands: aligned tables, a progress bar, a stdout that a
closed pipe (``| head``) silences instead of killing with a traceback, a daemon's error answer."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Out", "Progress", "daemon_error", "table"]


def daemon_error(status: int, text: str) -> str:
    """A daemon's error answer as one line: its message, and for a 401 where this command's key goes."""
    try:
        error = json.loads(text)["error"]
        message = str(error.get("message") if isinstance(error, dict) else error)
    except (ValueError, KeyError, TypeError):
        message = text.strip()[:500] or "(no body)"
    if status == 401:
        # The daemon's own advice names HTTP headers; a command user needs the option.
        message = f"{message}; give the daemon's key with --api-key KEY or export LLM_ACTORS_API_KEY"
    return message


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as aligned plain text: numeric columns to the right, the rest to the left."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(r[i] == "-" or r[i].replace(".", "", 1).isdigit() for r in cells) for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=False)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


class Out:
    """stdout that a closed pipe (``| head``) turns quiet instead of into a traceback."""

    def __init__(self) -> None:
        self.closed = False

    def print(self, text: str = "") -> None:
        if self.closed:
            return
        try:
            print(text, flush=True)
        except BrokenPipeError:
            self.closed = True
            self.silence()

    @staticmethod
    def silence() -> None:
        # Python flushes stdout again at exit; point it at /dev/null so that flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Progress:
    """A carriage-return bar on a terminal; a few milestone lines anywhere else."""

    WIDTH = 30

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.done = total, out, 0
        self.tty = out.isatty()
        self.milestones = {total * q // 4 for q in (1, 2, 3, 4)} - {0}

    def update(self, ok: int, errors: int) -> None:
        self.done = done = ok + errors
        if self.tty:
            bar = "#" * min(self.WIDTH, self.WIDTH * done // self.total)
            self.out.write(f"\r[{bar:.<{self.WIDTH}}] {done}/{self.total}  ok {ok}  errors {errors}")
            self.out.flush()
        elif done in self.milestones:
            self.out.write(f"progress: {done}/{self.total} requests done ({ok} ok, {errors} errors)\n")

    def clear(self) -> None:
        if self.tty and self.done:
            self.out.write("\r" + " " * (self.WIDTH + 40) + "\r")
            self.out.flush()
