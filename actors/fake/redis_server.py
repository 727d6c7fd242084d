"""A private ``redis-server`` (or ``valkey-server``) on a free loopback port, for tests and benchmarks.

Never the machine's default port and never on disk: no RDB snapshots, no AOF, so a ``restart``
starts empty, exactly like a store that lost every key. Stopped by its own PID.

``cluster=True`` starts a Redis Cluster node (``--cluster-enabled yes``, its ``nodes.conf`` in the
server's own temporary directory) that owns all 16384 slots: a one-node cluster, which refuses a
command whose keys span two hash slots (``CROSSSLOT``) as a real cluster does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

__all__ = ["RedisServer", "redis_server_binary"]

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

    def __init__(self, binary: str | None = None, timeout: float = 10.0, *, cluster: bool = False) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise RuntimeError(
                "redis-server not found on PATH: install it (Debian: apt-get install redis-server, "
                "or valkey-server)"
            )
        self.binary = found
        self.timeout = timeout
        self.cluster = cluster
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
                    self._own_every_slot()
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

    def _own_every_slot(self) -> None:
        """Assign every slot to this node (kept in nodes.conf across a restart) and wait for
        ``cluster_state:ok``."""
        import redis  # the cluster mode serves the shared-state tests, which have it

        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            if int(client.cluster("INFO").get("cluster_slots_assigned", 0)) == 0:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + self.timeout
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary} cluster node did not reach cluster_state:ok")
                time.sleep(0.02)  # polling the node's start-up: no event announces it

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
