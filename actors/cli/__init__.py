"""The ``llm-actors`` command line: one module per subcommand, registered below."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> module under actors.cli; each module has ``add_arguments(parser)`` and ``run(args) -> int``
# and a one-line docstring used as the help text.
COMMANDS = {
    "check": "check",
    "demo": "demo",
    "fake-provider": "fake_provider",
    "migrate": "migrate",
    "serve": "serve",
    "chat": "chat",
    "status": "status",
}


def main(argv: Sequence[str] | None = None) -> int:
    from actors._version import __version__

    parser = argparse.ArgumentParser(
        prog="llm-actors", description="Many LLM endpoints as one reliable client.", allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"llm-actors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"actors.cli.{module_name}")
        modules[name] = module
        # The docstring's reST literals read as noise in --help.
        summary = (module.__doc__ or "").strip().splitlines()[0].replace("``", "")
        # No abbreviations: "--workers 2" must never be read as a prefix of another option.
        p = sub.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        module.add_arguments(p)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
