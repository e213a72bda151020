"""Private redis-servers that a test can kill, freeze, thaw and restart on the same port.

Built on mirakuru's TCPExecutor (what pytest-redis itself runs redis-server with), for the
servers the shared fixture cannot give: with a password, an ACL, a short idle timeout, a
memory limit, or TLS. Each lives in the test's temp dir, listens on loopback only, keeps
nothing on disk, and is stopped by the `redis_servers` fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

import pytest
import redis
from mirakuru import TCPExecutor


def redis_server_binary() -> str:
    """The redis-server to start; skips without one, but fails in CI, where tests must run."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but redis-server is not installed: integration tests must run in CI")
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process under a test's control."""

    def __init__(self, directory: Path, *arguments: str, tls: bool = False) -> None:
        self.port = free_port()
        self.directory = directory
        self.tls = tls
        port_arguments = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        command = [
            redis_server_binary(),
            *port_arguments,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--logfile",
            str(directory / f"redis-{self.port}.log"),
            *arguments,
        ]
        self._executor = TCPExecutor(command, host="127.0.0.1", port=self.port, timeout=15)

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self._executor.start()
        return self

    def kill(self) -> None:
        """SIGKILL: the server is gone, connections reset, nothing listens on the port."""
        self._executor.kill(sig=signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, but nothing answers."""
        os.kill(self._executor.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._executor.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """A new, empty server on the same port."""
        self._executor.start()

    def stop(self) -> None:
        if self._executor.running():
            self.thaw()
            self._executor.stop()

    def admin(self, **options: object) -> redis.Redis:
        """A plain client for the test's own setup (never the demo's)."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]
