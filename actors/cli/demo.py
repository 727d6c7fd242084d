"""Send simulated traffic, break an instance part-way through, and show the failover.

Every provider is replaced by the in-process simulated one, so no API key or network is needed.
After a third of the requests, ``--outage`` starts failing every call with HTTP 503; after two
thirds it heals. Tables then show which breakers opened, where the requests went before, during
and after the outage, and what the retries and fallbacks cost.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from actors.errors import ConfigError, LLMError
from actors.proxy import WrapperProxy
from actors.runtime import Runtime

__all__ = ["add_arguments", "run", "table"]

WRAPPERS = ("fast_group_wrapper", "fast_pool_wrapper")
PHASES = ("before", "outage", "after")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", default="config", metavar="DIR", help="configuration directory (default: config)")
    add("--requests", type=int, default=300, metavar="N", help="requests to send (default: 300)")
    add("--threads", type=int, default=8, metavar="T", help="caller threads (default: 8)")
    add(
        "--outage",
        default="openai-gpt4",
        metavar="INSTANCE",
        help="instance to break, or several separated by commas (default: openai-gpt4)",
    )
    add(
        "--latency",
        type=float,
        default=0.01,
        metavar="SECONDS",
        help="simulated latency of every instance (default: 0.01)",
    )
    add(
        "--queue-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long a request waits for a full tier before falling back (default: 0, at once)",
    )
    add(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="seed for the order of requests across the wrappers",
    )


def run(args: argparse.Namespace) -> int:
    if min(args.requests, args.threads) < 1 or min(args.latency, args.queue_timeout) < 0:
        print("error: --requests and --threads must be at least 1, the times at least 0", file=sys.stderr)
        return 2
    try:
        rt = Runtime.from_config(args.config, simulate=True)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    outage = [name.strip() for name in args.outage.split(",") if name.strip()]
    if not outage or any(name not in rt.config.models for name in outage):
        print(
            f"error: no instance {args.outage!r}; choose from: {', '.join(rt.config.models)}", file=sys.stderr
        )
        return 2
    with rt:
        found = {name: rt.factory.get_wrapper(name) for name in WRAPPERS}
        wrappers = {name: w for name, w in found.items() if w is not None}
        missing = [name for name in WRAPPERS if name not in wrappers]
        if missing:
            print(f"error: the configuration has no wrapper {', '.join(missing)}", file=sys.stderr)
            return 2
        for name in rt.handles:
            rt.simulation_control(name).set_latency(args.latency)
        demo = _Demo(rt, wrappers, args, outage)
        demo.send()
        demo.report()
        return 1 if demo.tally["unexpected"] else 0


class _Demo:
    """One run: the traffic, the outage schedule, and what each request ended in."""

    def __init__(
        self, rt: Runtime, wrappers: dict[str, WrapperProxy], args: argparse.Namespace, outage: list[str]
    ) -> None:
        self.rt, self.args, self.outage, self.n = rt, args, outage, args.requests
        self.start, self.end = self.n // 3, 2 * self.n // 3  # requests [start, end) go out during the outage
        self.plan = [WRAPPERS[i % 2] for i in range(self.n)]
        random.Random(args.seed).shuffle(self.plan)
        self.wrappers = wrappers
        self.lock = threading.Lock()
        self.tally: collections.Counter[str] = (
            collections.Counter()
        )  # "answered", an LLMError's name, "unexpected"
        self.answered: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        # (wrapper, kind) -> answered requests that were "retried" after a failed attempt, answered by a
        # "lower" tier than the first, "skipped" the first without trying it, or "fell back" (any of these)
        self.count: collections.Counter[tuple[str, str]] = collections.Counter()
        routes = {step.target.route for w in self.wrappers.values() for step in w.route.steps}
        self.breakers = {(name, route): "closed" for name in outage for route in routes}  # as last said
        self.progress = _Progress(self.n, sys.stderr)
        self.t0, self.wall0 = time.monotonic(), time.time()

    def say(self, line: str) -> None:
        with self.lock:
            self.progress.clear()
            print(f"[+{time.monotonic() - self.t0:5.2f}s] {line}", flush=True)

    def send(self) -> None:
        self.say(f"sending {self.n} requests to {' and '.join(WRAPPERS)} from {self.args.threads} threads")
        with ThreadPoolExecutor(self.args.threads, thread_name_prefix="demo") as pool:
            list(pool.map(self.one, range(self.n)))
        self.say(f"done: {self.n} requests in {time.monotonic() - self.t0:.2f}s")

    def one(self, i: int) -> None:
        names, s = ", ".join(self.outage), "s" if len(self.outage) == 1 else ""
        if i == self.start:
            self.say(
                f"OUTAGE STARTS at request {i + 1}/{self.n}: {names} now fail{s} every call with HTTP 503"
            )
            for name in self.outage:
                self.rt.simulation_control(name).fail(503)
        if i == self.end:
            self.say(
                f"OUTAGE ENDS at request {i + 1}/{self.n}: {names} answer{s} again (open breakers wait to recover)"
            )
            for name in self.outage:
                self.rt.simulation_control(name).heal()
        wrapper = self.wrappers[self.plan[i]]
        try:
            response = wrapper.generate(f"request {i + 1}", queue_timeout=self.args.queue_timeout)
        except LLMError as exc:
            key = type(exc).__name__
        except Exception as exc:  # anything untyped is a bug the demo must not hide
            key = "unexpected"
            self.say(f"UNEXPECTED {type(exc).__name__} on request {i + 1}: {exc}")
        else:
            key = "answered"
            first = wrapper.route.first_label
            lower = response.target != first
            retried = len(response.attempts) > 1
            skipped = lower and all(a.target != first for a in response.attempts)
            with self.lock:
                self.answered[response.instance][PHASES[(i >= self.start) + (i >= self.end)]] += 1
                self.count.update(
                    {
                        (wrapper.name, "retried"): retried,
                        (wrapper.name, "lower"): lower,
                        (wrapper.name, "skipped"): skipped,
                        (wrapper.name, "fell back"): lower or retried,
                    }
                )
        with self.lock:
            self.tally[key] += 1
            done = sum(self.tally.values())
            self.progress.update(self.tally["answered"], done - self.tally["answered"])
        self.watch(done)

    def watch(self, done: int) -> None:
        """Say when a breaker of a broken instance changes state on a route this demo uses."""
        state = self.rt.state
        assert state is not None  # the demo runs inside ``with rt``
        with self.lock:  # one reader at a time, so no stale state is said
            snapshot = state.snapshot(time.monotonic())
            states = {key: snapshot[key[0]]["breakers"][key[1]]["state"] for key in self.breakers}
            changed = [(key, state) for key, state in states.items() if self.breakers[key] != state]
            self.breakers.update(changed)
        for (name, route), state in changed:
            self.say(
                f"BREAKER {state.upper()}: {name} on {route} (noticed with {done}/{self.n} requests done)"
            )

    def report(self) -> None:
        stats = self.rt.stats()
        history = stats["supervisor"]["history"]
        now = time.monotonic()
        rows = [
            (
                f"+{h['timestamp'] - self.wall0:.2f}s",
                h["instance"],
                h["event"],
                h["route"],
                f"{h['until'] - now:.0f}s from now" if h.get("until") else "-",
            )
            for h in history
        ]
        print("\nBreaker events, from the rotation supervisor (every route through an instance judges it)")
        print(table(("WHEN", "INSTANCE", "EVENT", "ROUTE", "UNTIL"), rows) if rows else "(none)")

        opens = collections.Counter(h["instance"] for h in history if h["event"] == "open")
        tier_of: dict[str, str] = {}
        for member in (
            m for w in self.wrappers.values() for step in w.route.steps for m in step.target.members
        ):
            tier_of.setdefault(member.name, member.tier)
        rows = []
        for name, tier in tier_of.items():
            s = stats["instances"][name]
            failed = ", ".join(f"{v} {k}" for k, v in sorted(s["outcomes"].items()) if k != "success") or "-"
            rows.append(
                (
                    name + (" (broken)" if name in self.outage else ""),
                    tier,
                    s["total_requests"],
                    s["successful_requests"],
                    failed,
                    _state(s),
                    opens[name],
                    _ms(s["latency_ewma"]),
                    *(self.answered[name][p] for p in PHASES),
                )
            )
        print("\nInstances (BEFORE / OUTAGE / AFTER: requests each one answered in that phase)")
        print(
            table(
                (
                    "INSTANCE",
                    "TIER",
                    "CALLS",
                    "OK",
                    "FAILED",
                    "STATE NOW",
                    "OPENS",
                    "EWMA MS",
                    "BEFORE",
                    "OUTAGE",
                    "AFTER",
                ),
                rows,
            )
        )

        rows = []
        for name in WRAPPERS:
            s = stats["wrappers"]["wrapper_stats"][name]["stats"]
            rows.append(
                (
                    name,
                    s["total_requests"],
                    s["successful_requests"],
                    s["failed_requests"],
                    self.count[name, "retried"],
                    s["fallbacks"],
                    s["attempts"],
                    *(_ms(s[f"latency_p{q}"]) for q in (50, 95, 99)),
                )
            )
        print(
            "\nWrappers (RETRIED: answered by another instance after a failed attempt; FALLBACKS: to a lower tier)"
        )
        print(
            table(
                (
                    "WRAPPER",
                    "REQUESTS",
                    "OK",
                    "FAILED",
                    "RETRIED",
                    "FALLBACKS",
                    "ATTEMPTS",
                    "P50 MS",
                    "P95 MS",
                    "P99 MS",
                ),
                rows,
            )
        )
        self.summary()

    def summary(self) -> None:
        t, count = self.tally, self.count
        fell_back, retried = (sum(count[w, kind] for w in WRAPPERS) for kind in ("fell back", "retried"))
        errors = {k: v for k, v in t.items() if k not in ("answered", "unexpected")}
        was = "was" if len(self.outage) == 1 else "were"
        print(
            f"\n{self.n} requests, {t['answered']} succeeded, {fell_back} fell back;"
            f" {', '.join(self.outage)} {was} out from request {self.start + 1} to {self.end}."
        )
        detail = f" ({', '.join(f'{v} {k}' for k, v in errors.items())})" if errors else ""
        print(
            f"  {sum(errors.values())} ended in a typed LLMError{detail}, {t['unexpected']} in anything else."
        )
        print(f"  {retried} were answered by another instance after a failed attempt.")
        for name in (name for name in WRAPPERS if count[name, "lower"]):
            first = self.wrappers[name].route.first_label
            group, _, tier_name = first.partition(".")  # only a task-group wrapper has lower tiers
            tier = self.rt.config.groups[group].tiers[tier_name]
            print(
                f"  {name}: {count[name, 'lower']} answered by a tier below {first}, {count[name, 'skipped']} of them"
                f" without trying it: it was full (rpm_limit {tier.rpm_limit}/min, concurrency_limit"
                f" {tier.concurrency_limit}) or none of its instances was available."
            )


def _state(s: dict[str, Any]) -> str:
    """The state with its reason, or when an open breaker lets a trial call through."""
    if s["reason"]:
        return f"{s['state']}: {s['reason']}"
    left = [b["open_until"] - time.monotonic() for b in s["breakers"].values() if b["open_until"] is not None]
    return f"open, retry in {min(left):.0f}s" if s["state"] == "open" and left else s["state"]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


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


class _Progress:
    """A carriage-return bar on a terminal; a few milestone lines anywhere else."""

    WIDTH = 30

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.done = total, out, 0
        self.tty = out.isatty()
        self.milestones = {total * q // 4 for q in (1, 2, 3, 4)} - {0}

    def update(self, ok: int, errors: int) -> None:
        self.done = done = ok + errors
        if self.tty:
            bar = "#" * (self.WIDTH * done // self.total)
            self.out.write(f"\r[{bar:.<{self.WIDTH}}] {done}/{self.total}  ok {ok}  errors {errors}")
            self.out.flush()
        elif done in self.milestones:
            self.out.write(f"progress: {done}/{self.total} requests done ({ok} ok, {errors} errors)\n")

    def clear(self) -> None:
        if self.tty and self.done:
            self.out.write("\r" + " " * (self.WIDTH + 40) + "\r")
            self.out.flush()
