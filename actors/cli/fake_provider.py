"""Serve the fake OpenAI/Anthropic provider (with fault injection) until interrupted.

Instances are path prefixes: an OpenAI base_url is ``{url}/{instance}/v1``, an Anthropic one
``{url}/{instance}``. Faults are set with ``POST {url}/_control/{instance}`` (JSON fields of
``actors.fake.Fault``), cleared with ``DELETE``; ``GET {url}/_stats`` shows what was received.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from actors.fake import FakeProvider

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8089, help="port to listen on; 0 picks a free one (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    fake = FakeProvider(args.host, args.port)
    try:
        fake.start()
    except OSError as exc:  # a port in use, an address not ours: one line, as serve says it
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(
            f"error: cannot listen on {args.host} port {args.port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}; "
            "pass --port N (--port 0 picks a free one) or --host ADDRESS",
            file=sys.stderr,
        )
        return 1
    try:
        with fake:
            # The URL goes alone on stdout so scripts can read it; the hints go to stderr.
            print(fake.url, flush=True)
            print(
                f"fake provider listening: OpenAI base_url {fake.openai_base_url('NAME')}, "
                f"Anthropic base_url {fake.anthropic_base_url('NAME')}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
