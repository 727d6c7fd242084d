"""The daemon against the bars of issue 12, as ratios to the fake provider called directly.

    python bench/daemon.py                 # about 4 minutes
    python bench/daemon.py --quick         # about 1 minute, 20,000 requests for the memory figure
    python bench/daemon.py --compare ../main   # also the daemon of another checkout, in the same run
                                               # (its throughput, latency and first text)

Processes: the fake provider (``python -m actors fake-provider``), the daemon (``python -m
actors serve`` over a round-robin pool of three instances on that fake, access log on, written
to /dev/null), a second daemon over the in-process simulated provider (no upstream HTTP), the
LiteLLM proxy over the same fake when ``litellm`` is installed (``pip install
'llm-actors[bench]'``), and the load generator: ``wrk`` (C, an event loop per thread, so it is
not the bottleneck). The fake called directly receives the exact body the daemon sends upstream,
built by the same provider code. Sides alternate their order from round to round, and every
figure is compared within the same run, so a machine busy with other work moves both sides.

Figures and bars (on a 2-core machine):

- throughput at ``--connections`` (64): daemon / direct >= 0.09 (aim 0.2); CPU per request;
- median latency at 1 connection: daemon - direct <= 1.0 ms (aim 0.5);
- streaming: time to the first text (the fake's events 2 ms apart, as a model streams
  tokens), daemon - direct <= 1 ms; 500 concurrent streams complete; the first text of a reply
  sent in one burst is shown too, and, for reference, both through a byte relay in front of the
  fake (``bench/_relay.py``: one more process on the path, doing nothing but forwarding);
- memory: the daemon's RSS after 100,000 requests <= 1.2 x its RSS after 1,000.

Exits 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
sys.path.insert(0, str(_HERE))
if str(_REPO) not in sys.path:
    sys.path.insert(1, str(_REPO))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from _servers import DaemonProcess, LiteLLMProcess, RelayProcess, litellm_available, rss_bytes  # noqa: E402
from _topology import FakeProcess, FakeURLs, write_topology  # noqa: E402
from _wrk import Run, available, script, wrk  # noqa: E402

from actors.messages import normalize_messages  # noqa: E402
from actors.providers.base import merge_params  # noqa: E402
from actors.runtime import Runtime  # noqa: E402
from actors.state.table import pool_label  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something short about benchmarks."}]
PARAMS = {"max_tokens": 16}
MEMBERS = ("a", "b", "c")
WRAPPER = "bench"
JSON = {"content-type": "application/json"}
#: Seconds between the fake's stream events when timing the first one (a fast model's pace).
SPACING = 0.002
#: How the fake's reply (an echo of the last message) begins.
FIRST_TEXT = b"echo:"


@dataclass
class Side:
    """One way of sending the request, and what its runs measured."""

    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    stream_body: bytes = b""
    pid: int | None = None  # the server process, when it is not the fake
    lua: Path | None = None
    load: list[Run] = field(default_factory=list)
    single: list[Run] = field(default_factory=list)
    cpu: float = 0.0  # this side's server's CPU seconds over the load runs
    fake_cpu: float = 0.0
    ttfb: list[float] = field(default_factory=list)  # events spaced as a model streams them
    ttfb_burst: list[float] = field(default_factory=list)  # the whole reply in one write
    stream_cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds over timed streams

    def rate(self) -> float:
        seconds = sum(r.seconds for r in self.load)
        return sum(r.requests for r in self.load) / seconds if seconds else 0.0

    def errors(self) -> int:
        return sum(r.errors + r.status_errors for r in self.load + self.single)

    def median(self) -> float:
        return statistics.median(r.p50 for r in self.single) if self.single else float("nan")

    def p99(self) -> float:
        return statistics.median(r.p99 for r in self.single) if self.single else float("nan")

    def per_request(self, seconds: float) -> float:
        done = sum(r.requests for r in self.load)
        return seconds / done * 1e6 if done else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def upstream_request(root: Path, stream: bool) -> tuple[str, bytes, dict[str, str]]:
    """The URL, JSON body and headers of the daemon's attempt on instance ``a``, built by the
    same code (pool defaults, model parameters, provider codec), so both sides send the same bytes."""
    with Runtime.from_config(root) as rt:
        assert rt.table is not None
        provider = rt.table.gates["a"].client
        target = rt.table.targets[pool_label("p")]
        merged = merge_params(provider.model.parameters, target.merge(dict(PARAMS)))
        request = provider.build_request(normalize_messages(MESSAGES), merged, stream=stream)
        headers, body = provider._wire(request)  # type: ignore[attr-defined]
        assert body is not None
        return request.url, body, dict(headers)


def alternate(sides: list[Side], rounds: int, measure: Callable[[Side], None]) -> None:
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            measure(side)


def throughput(sides: list[Side], args: argparse.Namespace, fake_pid: int) -> None:
    for side in sides:  # open the connections and warm every path up
        assert side.lua is not None
        wrk(side.url, side.lua, connections=args.connections, seconds=1)

    def measure(side: Side) -> None:
        assert side.lua is not None
        before = cpu_seconds(side.pid) if side.pid else 0.0
        fake_before = cpu_seconds(fake_pid)
        side.load.append(wrk(side.url, side.lua, connections=args.connections, seconds=args.seconds))
        side.fake_cpu += cpu_seconds(fake_pid) - fake_before
        if side.pid:
            side.cpu += cpu_seconds(side.pid) - before

    alternate(sides, args.rounds, measure)


def latency(sides: list[Side], args: argparse.Namespace) -> None:
    def measure(side: Side) -> None:
        assert side.lua is not None
        side.single.append(wrk(side.url, side.lua, connections=1, seconds=args.seconds, threads=1))

    alternate(sides, args.rounds, measure)


async def _first_event(session: aiohttp.ClientSession, side: Side) -> tuple[float, bool]:
    """Seconds to the first text of a stream, and whether it ended with its terminator.

    The text, not the first event: the fake opens with an empty role delta that the daemon
    (which answers only once it has text, so that it can still fall back) does not forward."""
    t0 = time.perf_counter()
    first = 0.0
    seen = b""
    async with session.post(side.url, data=side.stream_body, headers=side.headers) as response:
        async for piece in response.content.iter_any():
            if not first and FIRST_TEXT in (seen + piece):
                first = time.perf_counter() - t0
            seen = (seen + piece)[-64:]
        ok = response.status == 200 and (b"[DONE]" in seen or b"message_stop" in seen)
    return first, ok


async def streaming(sides: list[Side], args: argparse.Namespace, into: str) -> None:
    """Time to the first text at one connection, into each side's list ``into``: ``args.streams``
    per side, in batches of 20 alternating sides, so that drift in the machine's load falls on both."""
    sessions = {s.name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for s in sides}
    try:
        for side in sides:
            for _ in range(20):
                await _first_event(sessions[side.name], side)
        for r in range(max(1, args.streams // 20)):
            for side in sides if r % 2 == 0 else sides[::-1]:
                before = cpu_seconds(side.pid) if side.pid else 0.0
                for _ in range(20):
                    first, _ = await _first_event(sessions[side.name], side)
                    getattr(side, into).append(first)
                if side.pid:
                    side.stream_cpu[into] = side.stream_cpu.get(into, 0.0) + cpu_seconds(side.pid) - before
    finally:
        for session in sessions.values():
            await session.close()


async def concurrent_streams(side: Side, count: int) -> tuple[int, float]:
    """``count`` streams at once through ``side``; how many completed, and the seconds it took."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()

        async def one() -> bool:
            try:
                return (await _first_event(session, side))[1]
            except (aiohttp.ClientError, TimeoutError):
                return False

        results = await asyncio.gather(*(one() for _ in range(count)))
        return sum(results), time.perf_counter() - t0


def space_events(fake_url: str, seconds: float | None) -> None:
    """Have the fake's instances wait ``seconds`` between stream events (None: send at once)."""
    for member in MEMBERS:
        if seconds is None:
            httpx.delete(f"{fake_url}/_control/{member}").raise_for_status()
        else:
            httpx.post(f"{fake_url}/_control/{member}", json={"chunk_delay": seconds}).raise_for_status()


def memory(root: Path, daemon_side: Side, args: argparse.Namespace, tmp: Path) -> tuple[int, int, int]:
    """A fresh daemon's RSS after 1,000 requests and after ``args.memory_requests``."""
    with DaemonProcess(root, args.log_level) as daemon:
        url = daemon.url + "/v1/chat/completions"
        with httpx.Client(timeout=30) as client:
            for _ in range(1000):
                client.post(url, content=daemon_side.body, headers=daemon_side.headers)
        first = rss_bytes(daemon.pid)
        done = 1000
        lua = script(tmp, "memory", daemon_side.body, daemon_side.headers)
        while done < args.memory_requests:
            done += wrk(url, lua, connections=args.connections, seconds=5).requests
        return first, rss_bytes(daemon.pid), done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--seconds", type=int, default=5, help="seconds per wrk run (default 5)")
    add("--rounds", type=int, default=3, help="rounds, each measuring every side (default 3)")
    add("--connections", type=int, default=64, help="connections for the throughput runs (default 64)")
    add("--streams", type=int, default=600, help="streams per side for the first-event time (default 600)")
    add("--concurrent-streams", type=int, default=500, help="streams at once (default 500)")
    add("--memory-requests", type=int, default=100_000, help="requests before the second RSS reading")
    add("--log-level", default="info", help="the daemons' log level (default info: access logs on)")
    add("--quick", action="store_true", help="2 rounds of 2 s, 200 streams, 20,000 requests for memory")
    add("--no-simulated", dest="simulated", action="store_false", help="skip the simulated daemon")
    add("--compare", type=Path, metavar="CHECKOUT", help="also measure the daemon of another checkout")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.streams, args.memory_requests = 2, 2, 200, 20_000
    if not available():
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s)"
    load_before = os.getloadavg()
    print(f"llm-actors daemon benchmark: {machine}; load average {load_before[0]:.2f} at the start")
    with FakeProcess() as fake, tempfile.TemporaryDirectory(prefix="llm-actors-bench-") as tmp_name:
        tmp = Path(tmp_name)
        pool = {
            "groups": {"g": {"echelon1": {"models": list(MEMBERS), "priority": 1}}},
            "pools": {"p": {"task_groups": ["g.echelon1"], "rotation_strategy": "round_robin"}},
            "wrappers": {WRAPPER: {"type": "polling_pool", "pool": "p"}},
        }
        models = {n: {"model_name": "bench-model", "timeout": 30} for n in MEMBERS}
        root = write_topology(tmp / "fake", FakeURLs(fake.url), models=models, **pool)
        simulated = {
            n: {"model_type": "simulated", "model_name": "bench-model", "simulation": {"latency": 0}}
            for n in MEMBERS
        }
        sim_root = write_topology(tmp / "simulated", None, models=simulated, **pool)
        url, body, headers = upstream_request(root, stream=False)
        _, stream_body, _ = upstream_request(root, stream=True)
        request = {"model": WRAPPER, "messages": MESSAGES, **PARAMS}
        daemon_body = json.dumps(request).encode()
        daemon_stream = json.dumps({**request, "stream": True}).encode()
        servers: dict[str, DaemonProcess | LiteLLMProcess | RelayProcess] = {}
        statuses: dict[str, int | None] = {}
        try:
            sides = [Side("direct", url, body, headers, stream_body)]
            daemon = DaemonProcess(root, args.log_level).start()
            servers["daemon"] = daemon
            path = "/v1/chat/completions"
            sides.append(Side("daemon", daemon.url + path, daemon_body, JSON, daemon_stream, daemon.pid))
            if args.simulated:
                sim = DaemonProcess(sim_root, args.log_level).start()
                servers["daemon/sim"] = sim
                sides.append(Side("daemon/sim", sim.url + path, daemon_body, JSON, daemon_stream, sim.pid))
            if args.compare is not None:
                other = DaemonProcess(root, args.log_level, repo=args.compare.resolve()).start()
                servers["compared"] = other
                name = f"daemon@{args.compare.name}"
                sides.append(Side(name, other.url + path, daemon_body, JSON, daemon_stream, other.pid))
            if litellm_available():
                proxy = LiteLLMProcess(fake.url, tmp).start()
                servers["litellm"] = proxy
                body_l = json.dumps({**request, "model": "bench"}).encode()
                sides.append(Side("litellm", proxy.url + path, body_l, proxy.headers, b"", proxy.pid))
            check = [httpx.post(s.url, content=s.body, headers=s.headers, timeout=30) for s in sides]
            texts = {r.json()["choices"][0]["message"]["content"] for r in check}
            if len(texts) != 1:
                raise SystemExit(f"the paths disagree: {sorted(texts)}")
            for side in sides:
                side.lua = script(tmp, side.name.replace("/", "-"), side.body, side.headers)
            print("  throughput ...", flush=True)
            throughput(sides, args, fake.pid)
            print("  latency at 1 connection ...", flush=True)
            latency(sides, args)
            # Quiet for the rest, but for the compared daemon, whose streams are timed too.
            for name in [name for name in servers if name not in ("daemon", "compared")]:
                statuses[name] = servers.pop(name).stop()
            print("  streaming ...", flush=True)
            origin = urlsplit(fake.url)
            relay = RelayProcess(str(origin.hostname), int(origin.port or 80)).start()
            servers["relay"] = relay
            relayed = Side("relay", url.replace(fake.url, relay.url), body, headers, stream_body)
            # The fake writes a whole reply at once unless told to space its events. Spaced as a
            # model streams tokens, the first text is timed alone; in a burst, the time includes
            # the rest of the burst (on two busy cores the client waits for a CPU meanwhile).
            timed = [*sides[:2], relayed, *(s for s in sides if s.name.startswith("daemon@"))]
            asyncio.run(streaming(timed, args, "ttfb_burst"))
            space_events(fake.url, SPACING)
            asyncio.run(streaming(timed, args, "ttfb"))
            servers.pop("relay").stop()  # not a server under test: its exit status is not reported
            if "compared" in servers:
                statuses["compared"] = servers.pop("compared").stop()
            space_events(fake.url, 0.02)  # slow streams, so that all of them are open at once
            completed, took = asyncio.run(concurrent_streams(sides[1], args.concurrent_streams))
            space_events(fake.url, None)
        finally:
            statuses.update({name: server.stop() for name, server in servers.items()})
        print("  memory ...", flush=True)
        rss = memory(root, sides[1], args, tmp)
    load_after = os.getloadavg()
    return report(
        sides, relayed, (completed, took, args.concurrent_streams), rss, statuses, load_before, load_after
    )


def report(
    sides: list[Side],
    relayed: Side,
    streams: tuple[int, float, int],
    rss: tuple[int, int, int],
    statuses: dict[str, int | None],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> int:
    direct, daemon = sides[0], sides[1]
    print(f"\n  fake provider called directly: the body the daemon sends upstream ({len(direct.body)} bytes)")
    print(
        "  side         req/s @64   ratio   median @1   p99 @1   added median   server CPU/req   fake CPU/req  errors"
    )
    for side in sides:
        ratio = side.rate() / direct.rate() if direct.rate() else float("nan")
        added = (side.median() - direct.median()) * 1e3
        server = f"{side.per_request(side.cpu):9.0f} us" if side.pid else "          -"
        print(
            f"  {side.name:<11} {side.rate():10.0f} {ratio:7.3f} {side.median() * 1e3:9.3f} ms"
            f" {side.p99() * 1e3:6.2f} ms {added:+10.3f} ms     {server}     {side.per_request(side.fake_cpu):6.0f} us"
            f"  {side.errors():6d}"
        )
    ttfb_direct = statistics.median(direct.ttfb)
    ttfb_daemon = statistics.median(daemon.ttfb)
    burst_direct = statistics.median(direct.ttfb_burst)
    burst_daemon = statistics.median(daemon.ttfb_burst)
    completed, took, asked = streams
    first, after, total = rss
    ratio = daemon.rate() / direct.rate()
    added = (daemon.median() - direct.median()) * 1e3
    ttfb_added = (ttfb_daemon - ttfb_direct) * 1e3
    ttfb_relay = statistics.median(relayed.ttfb)
    burst_relay = statistics.median(relayed.ttfb_burst)
    print(
        f"  streaming, first text at 1 connection, events {SPACING * 1e3:g} ms apart: direct "
        f"{ttfb_direct * 1e3:.3f} ms, daemon {ttfb_daemon * 1e3:.3f} ms (added {ttfb_added:+.3f} ms);"
        f" the whole reply in one burst: direct {burst_direct * 1e3:.3f} ms, daemon "
        f"{burst_daemon * 1e3:.3f} ms (added {(burst_daemon - burst_direct) * 1e3:+.3f} ms)"
    )
    print(
        f"  for reference, a byte relay in front of the fake adds {(ttfb_relay - ttfb_direct) * 1e3:+.3f} ms"
        f" (burst: {(burst_relay - burst_direct) * 1e3:+.3f} ms): one more process on the path, doing nothing"
    )
    for other in (s for s in sides[2:] if s.ttfb):
        print(
            f"  {other.name} in the same streaming rounds: added {(statistics.median(other.ttfb) - ttfb_direct) * 1e3:+.3f}"
            f" ms (burst: {(statistics.median(other.ttfb_burst) - burst_direct) * 1e3:+.3f} ms)"
        )
    per_stream = {k: v / len(getattr(daemon, k)) * 1e6 for k, v in daemon.stream_cpu.items()}
    print(
        f"  daemon CPU per stream at 1 connection: {per_stream.get('ttfb', float('nan')):.0f} us with events"
        f" spaced, {per_stream.get('ttfb_burst', float('nan')):.0f} us in a burst"
    )
    print(f"  {completed}/{asked} concurrent streams completed in {took:.2f} s")
    print(
        f"  memory: RSS {first / 2**20:.1f} MiB after 1,000 requests, {after / 2**20:.1f} MiB after {total:,}"
        f" (x{after / first:.3f})"
    )
    print(f"  exit status after SIGTERM: {statuses}")
    print(f"  load average: {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end")
    bars = [
        (f"throughput ratio {ratio:.3f} >= 0.09 (aim 0.2)", ratio >= 0.09),
        (f"added median at 1 connection {added:.3f} ms <= 1.0 (aim 0.5)", added <= 1.0),
        (f"added time to first text {ttfb_added:.3f} ms <= 1.0", ttfb_added <= 1.0),
        (f"{completed}/{asked} concurrent streams complete", completed == asked),
        (f"RSS growth x{after / first:.3f} <= 1.2", after <= 1.2 * first),
        ("no errors", all(s.errors() == 0 for s in sides)),
    ]
    for text, met in bars:
        print(f"  {'met   ' if met else 'MISSED'} {text}")
    return 0 if all(met for _, met in bars) else 1


if __name__ == "__main__":
    sys.exit(main())
