"""Private redis-servers, clusters and Sentinel groups for the tests, with the suite's no-skip policy.

`RedisServer` is the benchmark's `LocalRedis` (benchmarks/local_redis.py, which the tests
share) plus what only the tests do with a server: serve TLS only and be set up over it, run
as a Sentinel, be killed (SIGKILL), frozen (SIGSTOP), thawed and restarted on the same port.
`start_cluster` builds a Cluster of them from the binaries the test's lookup found, over TLS
too, and `start_sentinel_group` a master, its replica and a Sentinel. Without the Redis
binaries the integration tests need (`redis-server`, and `redis-cli` to join a cluster), the
run stops with one line that says what to install: integration tests never skip, so a green
run always means they ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from benchmarks.local_redis import build_cluster
from labs.private_redis import LocalRedis, ask, redis_binary, wait_for

__all__ = [
    "REDIS_BINARIES",
    "RedisServer",
    "missing_redis_binaries",
    "missing_redis_line",
    "redis_cli_binary",
    "redis_server_binary",
    "start_cluster",
    "start_sentinel_group",
]

REDIS_BINARIES = ("redis-server", "redis-cli")


class RedisServer(LocalRedis):
    """One redis-server (or Sentinel) process a test controls: TLS only, a Sentinel, killed, frozen, restarted."""

    def __init__(
        self,
        directory: Path,
        *arguments: str,
        tls: bool = False,
        sentinel_config: Path | None = None,
        binary: str | None = None,
    ) -> None:
        super().__init__(directory, *arguments, binary=binary)
        self.tls = tls
        self.sentinel_config = sentinel_config

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def mode(self) -> list[str]:
        """A Sentinel watching what its config file names, or a cache that keeps nothing on disk."""
        return [str(self.sentinel_config), "--sentinel"] if self.sentinel_config else super().mode()

    def ports(self) -> list[str]:
        """TLS only on `port` (no plain-text port at all), or plain text."""
        return ["--port", "0", "--tls-port", str(self.port)] if self.tls else super().ports()

    def kill(self) -> None:
        """SIGKILL: the server is gone, its connections reset, nothing listens on the port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, but nothing answers."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """A new server on the same port (empty, unless a cluster node's config brings it back)."""
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()  # a frozen server would never act on the SIGTERM
        super().stop()

    def admin(self, **options: Any) -> redis.Redis:
        """A plain client for setting up a test, never the demo's (over TLS to a TLS port, unverified:
        what is checked is the demo's connection, not this one)."""
        if self.tls:
            options = {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False, **options}
        return super().admin(**options)


def start_cluster(
    directory: Path,
    masters: int = 3,
    *,
    server_binary: str | None = None,
    cli_binary: str | None = None,
    tls_arguments: Sequence[str] = (),
) -> list[RedisServer]:
    """A Redis Cluster of `masters` masters, no replicas, that keeps serving the slots it still has.

    With `tls_arguments` (redis-server's --tls-cert-file and the rest), every node serves TLS only,
    and the nodes talk to each other over TLS too.
    """
    tls = ("--tls-cluster", "yes", *tls_arguments) if tls_arguments else ()
    # Both are looked up before any node starts: a missing redis-cli is one line, not a half-built cluster.
    server = server_binary or redis_binary("redis-server")
    cli = cli_binary or redis_binary("redis-cli")
    join = [cli, "--tls", "--insecure"] if tls else [cli]  # redis-cli only joins the nodes: no check needed

    def new_node(arguments: Sequence[str]) -> RedisServer:
        return RedisServer(directory, *arguments, *tls, tls=bool(tls), binary=server)

    return build_cluster(new_node, masters, join)


def start_sentinel_group(
    directory: Path,
    master_name: str = "mymaster",
    *,
    server_binary: str | None = None,
    tls_arguments: Sequence[str] = (),
) -> tuple[RedisServer, RedisServer, RedisServer]:
    """A master, its replica, and one Sentinel watching them (quorum 1, fast failover).

    With `tls_arguments`, the master and the replica serve TLS only and replicate over TLS; the
    Sentinel answers clients in plain text (as the demo expects) and watches them over TLS.
    """
    server_binary = server_binary or redis_binary("redis-server")
    tls = ("--tls-replication", "yes", *tls_arguments) if tls_arguments else ()
    master = RedisServer(directory, "--repl-diskless-sync-delay", "0", *tls, tls=bool(tls), binary=server_binary)
    master.start()
    replica = RedisServer(
        directory, "--replicaof", "127.0.0.1", str(master.port), *tls, tls=bool(tls), binary=server_binary
    ).start()
    config = directory / f"sentinel-{master.port}.conf"
    config.write_text(
        f"sentinel monitor {master_name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 1000\n"
        f"sentinel failover-timeout {master_name} 3000\n"
        f"sentinel parallel-syncs {master_name} 1\n"
    )
    sentinel = RedisServer(directory, *tls, sentinel_config=config, binary=server_binary).start()
    wait_for(
        lambda: ask(replica, lambda client: client.info("replication").get("master_link_status") == "up"),
        "the replica to sync",
    )
    return master, replica, sentinel


def missing_redis_binaries(search_path: str | None = None) -> tuple[str, ...]:
    """The Redis binaries the integration tests need that are not on PATH (or on `search_path`)."""
    return tuple(name for name in REDIS_BINARIES if shutil.which(name, path=search_path) is None)


def missing_redis_line(missing: Sequence[str], platform: str = sys.platform) -> str:
    """The one line a run without these binaries ends with: what is missing, and how to install it here."""
    names = " and ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    if platform == "darwin":
        install = "brew install redis"  # Homebrew's redis holds both, built with TLS
    else:  # Debian's redis-server depends on redis-tools, which holds redis-cli (and redis-benchmark).
        install = f"apt-get install -y {'redis-tools' if tuple(missing) == ('redis-cli',) else 'redis-server'}"
    return f"{names} {verb} not installed: {install} (integration tests never skip)"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(missing_redis_line([name]), pytrace=False)
    return path


def redis_server_binary() -> str:
    """The redis-server to start; fails the test (never skips it) without one."""
    return _binary("redis-server")


def redis_cli_binary() -> str:
    """The redis-cli that joins a cluster; fails the test (never skips it) without one."""
    return _binary("redis-cli")
