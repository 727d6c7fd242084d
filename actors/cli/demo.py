"""Send simulated traffic, break an instance part-way through, heal it, and show the failover.

Every provider is replaced by the in-process simulated one, so no API key or network is needed.
The story is driven by what happens, not by timing, so it reads the same on every run:

1. BEFORE: a third of the requests, every instance healthy.
2. OUTAGE: ``--outage`` fails every call with HTTP 503; requests go on (at least another third)
   until its circuit breakers have opened on every route the demo uses.
3. AFTER: it answers again; requests go on (at least the last third, then slowly, so the tier's
   rate limit is not spent) until a trial call has closed every one of those breakers: the
   instance is back in rotation. Breakers recover after ``--recovery`` seconds here (instead of
   the configured ``recovery_time``) so the healing shows within the run.

Tables then show the breaker events, where the requests went in each phase, and why requests
were retried or fell back: because of the outage, or because a tier was full (its ``rpm_limit``
or ``concurrency_limit``). Ctrl-C stops the traffic and prints the summary so far; a closed output
(``| head``) stops it quietly.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from actors.cli.output import Out, Progress, table
from actors.config import LLMConfig, load_config
from actors.errors import ConfigError, LLMError
from actors.proxy import WrapperProxy
from actors.runtime import Runtime

__all__ = ["add_arguments", "run", "table"]

WRAPPERS = ("fast_group_wrapper", "fast_pool_wrapper")
PHASES = ("before", "outage", "after")
#: Seconds between requests once the after-phase quota is sent and a breaker is still recovering.
_TRICKLE = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", default="config", metavar="DIR", help="configuration directory (default: config)")
    add(
        "--requests",
        type=int,
        default=120,
        metavar="N",
        help="requests to send at least; more while breakers open or heal (default: 120)",
    )
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
        "--recovery",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how long an open breaker waits before a trial call, in this demo (default: 0.5)",
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
    if (
        min(args.requests, args.threads) < 1
        or min(args.latency, args.queue_timeout) < 0
        or args.recovery <= 0
    ):
        print(
            "error: --requests and --threads must be at least 1, --recovery above 0, the times at least 0",
            file=sys.stderr,
        )
        return 2
    try:
        rt = Runtime(_with_recovery(args.config, args.recovery), simulate=True)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    outage = [name.strip() for name in args.outage.split(",") if name.strip()]
    if not outage or any(name not in rt.config.models for name in outage):
        print(
            f"error: no instance {args.outage!r}; choose from: {', '.join(rt.config.models)}", file=sys.stderr
        )
        return 2
    try:
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
            interrupted = demo.send()
            if demo.out.closed:
                return 0  # the reader went away (| head): nothing more to say
            demo.report(interrupted)
            if interrupted:
                return 130
            return 1 if demo.tally["unexpected"] else 0
    except BrokenPipeError:
        Out.silence()
        return 0


def _with_recovery(path: str, seconds: float) -> LLMConfig:
    """The configuration with every breaker's ``recovery_time`` set to ``seconds``."""

    config = load_config(path)
    groups = {}
    for name, group in config.groups.items():
        fb = group.effective_fallback
        breaker = fb.circuit_breaker.model_copy(update={"recovery_time": seconds})
        update = {"fallback_config": fb.model_copy(update={"circuit_breaker": breaker})}
        groups[name] = group.model_copy(update={**update, "fallback_strategy": None, "circuit_breaker": None})
    pools = {name: pool.model_copy(update={"recovery_time": seconds}) for name, pool in config.pools.items()}
    return config.model_copy(update={"groups": groups, "pools": pools})


class _Demo:
    """One run: the traffic, the outage schedule, and what each request ended in."""

    def __init__(
        self, rt: Runtime, wrappers: dict[str, WrapperProxy], args: argparse.Namespace, outage: list[str]
    ) -> None:
        self.rt, self.args, self.outage, self.n = rt, args, outage, args.requests
        self.quota = [self.n // 3, self.n // 3, self.n - 2 * (self.n // 3)]  # per phase, at least
        self.rng = random.Random(args.seed)
        self.wrappers = wrappers
        self.lock = threading.Lock()
        self.out = Out()
        self.stop = threading.Event()
        self.sent = 0  # requests handed out so far
        self.phase = 0
        self.bounds: list[int] = []  # the request number each later phase started at
        self.tally: collections.Counter[str] = (
            collections.Counter()
        )  # "answered", an error's name, "unexpected"
        self.answered: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        # (wrapper, kind) -> answered requests that were "retried" after a failed attempt, answered by a
        # "lower" tier than the first, either ("moved"), because of the "outage" or because a tier was "full"
        self.count: collections.Counter[tuple[str, str]] = collections.Counter()
        routes = {step.target.route for w in self.wrappers.values() for step in w.route.steps}
        self.breakers = {(name, route): "closed" for name in outage for route in routes}  # as last said
        self.opened: set[tuple[str, str]] = set()
        self.events: collections.deque[tuple[str, str, str]] = collections.deque()
        self.healed_at: int | None = None  # requests done when every watched breaker had closed again
        self.progress = Progress(self.n, sys.stderr)
        self.t0, self.wall0 = time.monotonic(), time.time()
        self.listen()

    def say(self, line: str) -> None:
        with self.lock:
            self.progress.clear()
            self.out.print(f"[+{time.monotonic() - self.t0:5.2f}s] {line}")
            if self.out.closed:
                self.stop.set()

    # -- the story ------------------------------------------------------------------------

    def send(self) -> bool:
        """Run the three phases; True when Ctrl-C cut them short."""
        names, s = ", ".join(self.outage), "s" if len(self.outage) == 1 else ""
        limit = max(10.0, 20 * self.args.recovery)  # no phase waits longer for a breaker
        try:
            self.say(
                f"sending {self.n}+ requests to {' and '.join(WRAPPERS)} from {self.args.threads} threads "
                f"(breakers recover after {self.args.recovery:g} s in this demo)"
            )
            self.run_phase(0, lambda: True, limit)
            self.say(f"OUTAGE STARTS after request {self.sent}: {names} now fail{s} every call with HTTP 503")
            for name in self.outage:
                self.rt.simulation_control(name).fail(503)
            self.run_phase(1, lambda: self.opened == set(self.breakers), limit)
            self.say(
                f"OUTAGE ENDS after request {self.sent}: {names} answer{s} again; each open breaker lets a "
                "trial call through once it has waited its recovery time"
            )
            for name in self.outage:
                self.rt.simulation_control(name).heal()
            self.run_phase(2, lambda: all(state == "closed" for state in self.breakers.values()), limit)
        except KeyboardInterrupt:
            self.stop.set()
            self.say(f"INTERRUPTED after {self.sent} requests: the summary so far")
            return True
        if not self.stop.is_set():
            self.say(f"done: {self.sent} requests in {time.monotonic() - self.t0:.2f}s")
        return False

    def run_phase(self, phase: int, done: Callable[[], bool], limit: float) -> None:
        """Send this phase's quota from the caller threads, then more until ``done()``."""
        self.phase = phase
        if phase:
            self.bounds.append(self.sent)
        last = self.sent + self.quota[phase]
        with ThreadPoolExecutor(self.args.threads, thread_name_prefix="demo") as pool:
            futures = [pool.submit(self.worker, last) for _ in range(self.args.threads)]
            try:
                while not wait(futures, timeout=0.1, return_when=FIRST_EXCEPTION).done >= set(futures):
                    pass  # short waits keep Ctrl-C responsive
            except KeyboardInterrupt:
                self.stop.set()  # the workers finish the request they are on, and stop
                raise
            for future in futures:
                future.result()
        # The quota is sent; go on one request at a time until the phase's condition holds, so
        # a recovering breaker gets its trial call without the tier's rate limit being spent.
        deadline = time.monotonic() + limit
        while not self.stop.is_set() and not done():
            if time.monotonic() > deadline:
                still = ", ".join(f"{n} on {r} ({s})" for (n, r), s in self.breakers.items() if s != "closed")
                self.say(f"GIVING UP waiting after {limit:g} s: {still or 'no breaker change'}")
                return
            self.one(self.next_index())
            self.stop.wait(_TRICKLE if phase == 2 else 0)

    def worker(self, last: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                if self.sent >= last:
                    return
            self.one(self.next_index())

    def next_index(self) -> int:
        with self.lock:
            self.sent += 1
            return self.sent - 1

    def one(self, i: int) -> None:
        name = WRAPPERS[self.rng.random() < 0.5] if self.args.seed is not None else WRAPPERS[i % 2]
        wrapper = self.wrappers[name]
        phase = PHASES[self.phase]
        request = wrapper.request(f"request {i + 1}", queue_timeout=self.args.queue_timeout)
        try:
            response = request.complete()
        except LLMError as exc:
            key = type(exc).__name__
        except Exception as exc:  # anything untyped is a bug the demo must not hide
            key = "unexpected"
            self.say(f"UNEXPECTED {type(exc).__name__} on request {i + 1}: {exc}")
        else:
            key = "answered"
            first = wrapper.route.first_label
            lower = response.target != first
            failed_here = any(
                a.instance in self.outage and a.outcome.value != "success" for a in response.attempts
            )
            skipped = lower and all(a.target != first for a in response.attempts)
            # A tier skipped without a try was full (its limits) or had no instance up (the outage).
            full = skipped and getattr(request.run, "waited_full", False)
            with self.lock:
                self.answered[response.instance][phase] += 1
                self.count.update(
                    {
                        (name, "retried"): len(response.attempts) > 1,
                        (name, "lower"): lower,
                        (name, "moved"): lower or len(response.attempts) > 1,
                        (name, "outage"): failed_here or (skipped and not full),
                        (name, "full"): full and not failed_here,
                    }
                )
        with self.lock:
            self.tally[key] += 1
            done = sum(self.tally.values())
            self.progress.update(self.tally["answered"], done - self.tally["answered"])
        self.watch(done)

    def listen(self) -> None:
        """Hear every breaker change of the broken instances as it happens (the runtime's state
        listener, whichever owner holds the state), so a breaker that opens and turns half-open
        between two requests is still told."""

        def heard(name: str, route: str, event: str, until: float | None) -> None:
            if (name, route) in self.breakers and event in ("open", "half_open", "closed"):
                self.events.append((name, route, event))  # deque.append: safe from any thread

        self.rt.add_state_listener(heard)

    def watch(self, done: int) -> None:
        """Say each breaker change of a broken instance on a route this demo uses, in order."""
        changed = []
        with self.lock:  # one reader at a time, so the lines come out in the order heard
            while self.events:
                name, route, state = self.events.popleft()
                self.breakers[name, route] = state
                changed.append((name, route, state))
                if state == "open":
                    self.opened.add((name, route))
            if (
                self.healed_at is None
                and self.phase == 2
                and all(v == "closed" for v in self.breakers.values())
            ):
                self.healed_at = done
            for name, route, state in changed:
                back = ": back in rotation" if state == "closed" else ""
                self.progress.clear()
                self.out.print(
                    f"[+{time.monotonic() - self.t0:5.2f}s] BREAKER {state.upper()}: {name} on {route}{back} "
                    f"(noticed with {done} requests done)"
                )
            if self.out.closed:
                self.stop.set()

    def report(self, interrupted: bool = False) -> None:
        stats = self.rt.stats()
        history = stats["supervisor"]["history"]
        now = time.monotonic()
        rows = [
            (
                f"+{h['timestamp'] - self.wall0:.2f}s",
                h["instance"],
                h["event"],
                h["route"],
                f"{h['until'] - now:.1f}s from now" if h.get("until") and h["until"] > now else "-",
            )
            for h in history
        ]
        self.out.print(
            "\nBreaker events, from the rotation supervisor (every route through an instance judges it)"
        )
        self.out.print(table(("WHEN", "INSTANCE", "EVENT", "ROUTE", "UNTIL"), rows) if rows else "(none)")

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
        self.out.print("\nInstances (BEFORE / OUTAGE / AFTER: requests each one answered in that phase)")
        self.out.print(
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
        self.out.print(
            "\nWrappers (RETRIED: answered by another instance after a failed attempt; FALLBACKS: to a lower tier)"
        )
        self.out.print(
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
        self.summary(interrupted)

    def summary(self, interrupted: bool) -> None:
        t, count = self.tally, self.count
        total = {
            kind: sum(count[w, kind] for w in WRAPPERS) for kind in ("moved", "retried", "outage", "full")
        }
        errors = {k: v for k, v in t.items() if k not in ("answered", "unexpected")}
        names, was = ", ".join(self.outage), "was" if len(self.outage) == 1 else "were"
        say = self.out.print
        say(
            f"\n{self.sent} requests{' (interrupted)' if interrupted else ''}, {t['answered']} succeeded, "
            # The table's two columns in one count: RETRIED or FALLBACKS (a request may be both).
            f"{total['moved']} retried or fell back: {total['outage']} because of the outage, {total['full']} "
            "because a tier was full."
        )
        if len(self.bounds) == 2:
            back = [key for key, state in self.breakers.items() if state != "closed"]
            healed = (
                f"back in rotation on every route by request {self.healed_at}"
                if not back and self.healed_at is not None
                else "not back yet on " + ", ".join(route for _, route in back)
            )
            say(f"  {names} {was} out from request {self.bounds[0] + 1} to {self.bounds[1]}; {healed}.")
        detail = f" ({', '.join(f'{v} {k}' for k, v in errors.items())})" if errors else ""
        say(
            f"  {sum(errors.values())} ended in a typed LLMError{detail}, {t['unexpected']} in anything else."
        )
        say(f"  {total['retried']} were answered by another instance after a failed attempt.")
        for name in (name for name in WRAPPERS if count[name, "lower"]):
            first = self.wrappers[name].route.first_label
            group, _, tier_name = first.partition(".")  # only a task-group wrapper has lower tiers
            tier = self.rt.config.groups[group].tiers[tier_name]
            say(
                f"  {name}: {count[name, 'lower']} answered by a tier below {first}: {count[name, 'outage']} because "
                f"of the outage (a failed attempt on {names}, or no instance of the tier up), {count[name, 'full']} "
                f"because the tier was full (rpm_limit {tier.rpm_limit}/min, concurrency_limit "
                f"{tier.concurrency_limit})."
            )


def _state(s: dict[str, Any]) -> str:
    """The state with its reason, or when an open breaker lets a trial call through."""
    if s["reason"]:
        return f"{s['state']}: {s['reason']}"
    left = [b["open_until"] - time.monotonic() for b in s["breakers"].values() if b["open_until"] is not None]
    return f"open, retry in {min(left):.0f}s" if s["state"] == "open" and left else s["state"]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
