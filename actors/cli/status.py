"""Show a running daemon's instances (state, breakers, in flight) and wrappers (requests, latency).

Reads ``GET /v1/stats``; exit status 1 when the daemon cannot be reached or refuses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from actors.cli.output import daemon_error, table

__all__ = ["add_arguments", "render", "run"]

DEFAULT_URL = "http://127.0.0.1:8080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default=None, help=f"the daemon (default: $LLM_ACTORS_URL, else {DEFAULT_URL})"
    )
    parser.add_argument(
        "--api-key", default=None, metavar="KEY", help="the daemon's key (default: $LLM_ACTORS_API_KEY)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout (default: 10)"
    )


def run(args: argparse.Namespace) -> int:
    import httpx

    url = (args.url or os.environ.get("LLM_ACTORS_URL") or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("LLM_ACTORS_API_KEY")
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{url}/v1/stats", headers=headers, timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(
            f"error: cannot reach the daemon at {url}: {exc}; is `llm-actors serve` running?", file=sys.stderr
        )
        return 1
    if response.status_code != 200:
        print(
            f"error: HTTP {response.status_code} from {url}/v1/stats: "
            f"{daemon_error(response.status_code, response.text)}",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(render(response.json()))
    return 0


def render(stats: dict[str, Any]) -> str:
    """The statistics as plain-text tables."""
    now = time.time()
    parts = [
        _daemon(stats.get("daemon") or {}),
        _instances(stats.get("instances") or {}, now),
        _wrappers(stats.get("wrappers") or {}, stats.get("health") or {}),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _daemon(d: dict[str, Any]) -> str:
    if not d:
        return ""
    reloads = d.get("reloads") or {}
    state = "draining" if d.get("draining") else "serving"
    worker = d.get("worker") or {}
    # With --workers every figure below is the answering worker's own: say whose.
    whose = (
        f" (worker {worker['index'] + 1} of {worker['of']}, pid {worker.get('pid')})"
        if worker.get("of", 1) > 1
        else ""
    )
    return (
        f"Daemon: {state}, {d.get('in_flight', 0)} request(s) in flight, up {d.get('uptime_seconds', 0):.0f}s, "
        f"config {d.get('config_dir')}{' (simulated)' if d.get('simulate') else ''}, "
        f"reloads {reloads.get('ok', 0)} ok / {reloads.get('failed', 0)} rejected{whose}"
    )


def _state(s: dict[str, Any]) -> str:
    return f"{s.get('state')}: {s['reason']}" if s.get("reason") else str(s.get("state"))


def _breakers(s: dict[str, Any]) -> str:
    states = {route: b.get("state") for route, b in (s.get("breakers") or {}).items()}
    bad = [f"{route} {state}" for route, state in states.items() if state != "closed"]
    closed = len(states) - len(bad)
    return ", ".join(bad + ([f"{closed} closed"] if closed else [])) or "-"


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _instances(instances: dict[str, Any], now: float) -> str:
    rows = [
        (
            name,
            s.get("provider", ""),
            _state(s),
            _breakers(s),
            s.get("in_flight", 0),
            s.get("total_requests", 0),
            s.get("successful_requests", 0),
            s.get("failed_requests", 0),
            _ms(s.get("latency_ewma")),
        )
        for name, s in sorted(instances.items())
    ]
    headers = (
        "INSTANCE",
        "PROVIDER",
        "STATE",
        "BREAKERS (by route)",
        "IN FLIGHT",
        "CALLS",
        "OK",
        "FAILED",
        "EWMA MS",
    )
    return f"Instances ({len(rows)})\n" + table(headers, rows)


def _wrappers(wrappers: dict[str, Any], health: dict[str, Any]) -> str:
    rows = []
    for name, entry in sorted((wrappers.get("wrapper_stats") or {}).items()):
        s = entry.get("stats") or {}
        h = health.get(name) or {}
        up = f"{h.get('healthy_instances', '?')}/{h.get('total_instances', '?')}" if h else "-"
        rows.append(
            (
                name,
                entry.get("type", ""),
                s.get("total_requests", 0),
                s.get("successful_requests", 0),
                s.get("failed_requests", 0),
                s.get("fallbacks", 0),
                _ms(s.get("latency_p50")),
                _ms(s.get("latency_p95")),
                up,
            )
        )
    headers = ("WRAPPER", "TYPE", "REQUESTS", "OK", "FAILED", "FALLBACKS", "P50 MS", "P95 MS", "AVAILABLE")
    return f"Wrappers ({len(rows)})\n" + table(headers, rows)
