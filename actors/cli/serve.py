"""Serve an OpenAI- and Anthropic-compatible HTTP API over the configured LLM instances.

``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings`` (OpenAI), ``POST /v1/messages``
and ``/v1/messages/count_tokens`` (Anthropic), ``GET /v1/models`` and ``/v1/models/{id}``;
``model`` names a wrapper, a polling pool or a task-group reference. Also ``/healthz``,
``/readyz``, ``/v1/stats``, ``/metrics`` and ``POST /admin/reload``. SIGTERM drains in-flight
requests (up to ``--grace`` seconds) before stopping; SIGHUP reloads the configuration. With
``--workers N``, N processes serve one port and both signals reach them all. Needs the daemon
extra: ``pip install 'llm-actors[daemon]'`` (and ``[redis]`` for ``--state redis://...``).
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_arguments", "run"]

KEY_ENV = "LLM_ACTORS_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", default="config", metavar="DIR", help="configuration directory (default: config)")
    add(
        "--simulate",
        action="store_true",
        help="answer every model with the simulated provider (no keys, no network)",
    )
    add("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    add("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default: %(default)s)")
    add(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes serving one port (default: %(default)s); with the local state backend "
        "every limit is split N ways, with --state redis://... they are shared exactly",
    )
    add(
        "--threads",
        type=int,
        default=4,
        metavar="N",
        help="threads per worker for blocking work: statistics, reloads (default: %(default)s)",
    )
    add(
        "--state",
        default=None,
        metavar="URL",
        help="where request state lives: redis://host:port/db (Redis or Valkey; limits shared by every "
        "process using it) or local; default: config/llms/state.yaml, else local",
    )
    add(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"require this key (Authorization: Bearer KEY or x-api-key: KEY); default: ${KEY_ENV}, else none",
    )
    add(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take to finish (default: %(default)s)",
    )
    add(
        "--max-body",
        type=int,
        default=4 * 1024 * 1024,
        metavar="BYTES",
        help="largest request body accepted; larger ones get 413 (default: %(default)s)",
    )
    add(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a client may take to send a request body; slower ones get 408 (default: %(default)s)",
    )
    add(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser apps on ORIGIN (e.g. http://localhost:3000, or *) call the API; repeatable",
    )
    add(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level; access logs are info (default: %(default)s)",
    )
    add(
        "--log-format",
        default=None,
        choices=("console", "json"),
        help="logs on stderr as readable lines or JSON lines (default: console on a terminal, else json)",
    )


def run(args: argparse.Namespace) -> int:
    from actors.daemon import MissingDependencies, require

    try:
        require()
    except MissingDependencies as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (
        args.port < 0
        or args.port > 65535
        or not 1 <= args.workers <= 64
        or args.threads < 1
        or args.grace < 0
        or args.max_body < 1
        or not 0 < args.body_timeout <= 3600
    ):
        print(
            "error: --port must be 0-65535, --workers 1-64, --threads and --max-body at least 1, "
            "--grace at least 0, --body-timeout more than 0 and at most 3600",
            file=sys.stderr,
        )
        return 2
    from actors.daemon.accesslog import default_format
    from actors.daemon.server import PortInUse, ServeOptions, serve
    from actors.errors import ConfigError

    options = ServeOptions(
        config=args.config,
        simulate=args.simulate,
        host=args.host,
        port=args.port,
        threads=args.threads,
        workers=args.workers,
        state=args.state,
        api_key=args.api_key or os.environ.get(KEY_ENV) or None,
        grace=args.grace,
        max_body=args.max_body,
        body_timeout=args.body_timeout,
        log_level=args.log_level,
        cors_origins=tuple(args.cors_origin),
        log_format=args.log_format or default_format(),
    )
    try:
        if options.workers > 1:
            from actors.daemon.workers import serve_workers

            return serve_workers(options)
        return serve(options)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
