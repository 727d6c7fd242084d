"""A private ``redis-server`` (or ``valkey-server``) on a free loopback port, for tests and benchmarks.

Never the machine's default port and never on disk: no RDB snapshots, no AOF, so a ``restart``
starts empty, exactly like a store that lost every key. Stopped by its own PID.

``cluster=True`` starts a Redis Cluster node (``--cluster-enabled yes``, its ``nodes.conf`` in the
server's own temporary directory) that owns all 16384 slots: a one-node cluster, which refuses a
command whose keys span two hash slots (``CROSSSLOT``) as a real cluster does. ``RedisCluster``
starts several nodes that share the slots and meet: a cluster whose slots live on different nodes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RedisCluster", "RedisServer", "redis_server_binary"]

_SLOTS = 16384

_DEFAULT_PORT = 6379


def redis_server_binary() -> str | None:
    """The server binary on PATH (``redis-server``, else ``valkey-server``), or None."""
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != _DEFAULT_PORT:
            return port


class RedisServer:
    """One ``redis-server`` child process; ``url`` once it answers ``PING``."""

    def __init__(
        self,
        binary: str | None = None,
        timeout: float = 10.0,
        *,
        cluster: bool = False,
        slots: tuple[int, int] = (0, _SLOTS - 1),
    ) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise RuntimeError(
                "redis-server not found on PATH: install it (Debian: apt-get install redis-server, "
                "or valkey-server)"
            )
        self.binary = found
        self.timeout = timeout
        self.cluster = cluster
        self.slots = slots  # the first and last slot a cluster node owns
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="llm-actors-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> RedisServer:
        """Start on a free port (or the port of a previous run, for ``restart``)."""
        for _ in range(5):  # another process may take the free port before the server binds it
            port = self.port or _free_port()
            argv = [
                self.binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ]
            if self.cluster:
                argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._answers(port, proc):
                self.proc, self.port = proc, port
                if self.cluster:
                    try:
                        self._own_slots()
                    except BaseException:  # never leave a node running that no one will stop
                        self.kill()
                        raise
                return self
            _end(proc, signal.SIGKILL)
        raise RuntimeError(f"{self.binary} did not start answering on a loopback port")

    def _answers(self, port: int, proc: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)  # polling a child's start-up: no event announces it
        return False

    def _own_slots(self) -> None:
        """Assign this node its slots (kept in nodes.conf across a restart); alone with all of
        them, wait for ``cluster_state:ok``."""
        if int(self.cluster_info().get("cluster_slots_assigned", 0)) == 0:
            self.command("CLUSTER", "ADDSLOTSRANGE", *self.slots)
        if self.slots == (0, _SLOTS - 1):
            self.wait_ok(1)

    def command(self, *args: object) -> object:
        import redis  # the cluster mode serves the shared-state tests, which have it

        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            return client.execute_command(*args)

    def cluster_info(self) -> dict[str, str]:
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            return dict(client.cluster("INFO"))

    @contextmanager
    def user(self, name: str, password: str, *commands: str) -> Iterator[str]:
        """The server's URL as ``name``, an ACL user allowed ``commands`` (``+@all``,
        ``-@dangerous``...) on every key and channel; the user is deleted afterwards."""
        self.command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*", *commands)
        try:
            yield self.url.replace("redis://", f"redis://{name}:{password}@", 1)
        finally:
            self.command("ACL", "DELUSER", name)

    def wait_ok(self, nodes: int) -> None:
        """Until this node says ``cluster_state:ok`` and knows ``nodes`` nodes."""
        deadline = time.monotonic() + self.timeout
        while True:
            info = self.cluster_info()
            if info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == nodes:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.binary} cluster node did not reach cluster_state:ok: {info}")
            time.sleep(0.02)  # polling the cluster's convergence: no event announces it

    def kill(self) -> None:
        """SIGKILL the server (an outage); ``start()`` brings it back, empty, on the same port."""
        if self.proc is not None:
            _end(self.proc, signal.SIGKILL)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc, signal.SIGTERM)
            self.proc = None

    def restart(self) -> None:
        """Kill and start again on the same port, with every key lost."""
        self.kill()
        self.start()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


class RedisCluster:
    """``n`` cluster nodes on loopback, each owning an equal share of the slots, met into one
    cluster; ``url`` names the first (a cluster client discovers the others)."""

    def __init__(self, n: int = 3, binary: str | None = None, timeout: float = 20.0) -> None:
        bounds = [i * _SLOTS // n for i in range(n + 1)]
        self.nodes = [
            RedisServer(binary, timeout, cluster=True, slots=(bounds[i], bounds[i + 1] - 1)) for i in range(n)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes[1:]:
                self.nodes[0].command("CLUSTER", "MEET", "127.0.0.1", node.port)
            for node in self.nodes:
                node.wait_ok(len(self.nodes))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
