"""Labs and benchmarks, I/O: a redis-server of our own, on a free loopback port, that keeps nothing on disk.

`LocalRedis` is one plain redis-server process on a free port of 127.0.0.1, in a folder of
its own. `lab memory` runs one to try eviction policies and memory limits on (never the
server the demo is using); the benchmark and the tests start theirs from it
(benchmarks/local_redis.py joins them into a Cluster; tests/servers.py adds TLS, Sentinel,
a server killed, frozen or restarted). A binary is looked up on PATH, and a missing one is a
FileNotFoundError whose message is one line saying what to install.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import redis

READY_SECONDS = 15.0
# Debian's redis-server package depends on redis-tools, which holds redis-cli.
_PACKAGES = {"redis-server": "redis-server", "redis-cli": "redis-tools"}


def redis_binary(name: str) -> str:
    """The path of `name` (redis-server or redis-cli) on PATH; FileNotFoundError saying what to install if none."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install -y {_PACKAGES.get(name, name)})")
    return path


_HANDED_OUT: set[int] = set()  # ports free_port gave: none twice, though none is bound until its server starts


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, and that this process was not given before.

    (A cluster node takes two ports, its own and its bus's; the kernel may offer the same free
    port for both, since neither is bound until the server starts.)
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class LocalRedis:
    """One redis-server process under our control: plain text on a free loopback port, nothing kept on disk."""

    def __init__(self, directory: Path, *arguments: str, binary: str | None = None) -> None:
        self.binary = binary or redis_binary("redis-server")
        self.port = free_port()
        self.arguments = arguments
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def mode(self) -> list[str]:
        """What kind of server: a cache that keeps nothing on disk."""
        return ["--save", "", "--appendonly", "no"]

    def ports(self) -> list[str]:
        """Where it listens: plain text on `port`."""
        return ["--port", str(self.port)]

    def command(self) -> list[str]:
        """The redis-server command line: its mode and ports, loopback only, its files in its own directory."""
        return [
            self.binary,
            *self.mode(),
            *self.ports(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            *self.arguments,
        ]

    def start(self) -> Self:
        """Start, and wait until it accepts connections."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_SECONDS
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start: see {self.directory}/redis.log")
            time.sleep(0.02)  # polling a starting server
        return self

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def admin(self, **options: Any) -> redis.Redis:  # Any: redis.Redis's keyword arguments are of many types
        """A plain client for setting a server up, never the demo's."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)


def ask(server: LocalRedis, question: Callable[[redis.Redis], bool]) -> bool:
    """`question` put to the server on an admin client that gives up after 1 s."""
    with server.admin(socket_timeout=1) as client:
        return question(client)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = READY_SECONDS) -> None:
    """Poll `condition` until it holds (a Redis or socket error counts as not yet); RuntimeError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)  # polling servers that are settling
    raise RuntimeError(f"timed out waiting for {what}")
