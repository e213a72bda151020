"""Dev tooling, I/O: redis-servers of our own on loopback, for the benchmark and the tests.

`LocalRedis` is one redis-server process that can be killed (SIGKILL), frozen (SIGSTOP),
thawed and restarted on the same port; `start_cluster` makes a Redis Cluster of such
processes and `start_sentinel_group` a master, a replica and a Sentinel. Everything lives
in a temp dir, binds 127.0.0.1 only and keeps nothing on disk. Each takes the paths of the
binaries it runs (the tests pass the ones their lookup found); without them it looks them up
on PATH, and a missing one is a FileNotFoundError whose message is one line saying what to
install. Never used by the demo.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    """One redis-server (or Sentinel) process under our control."""

    def __init__(
        self,
        directory: Path,
        *arguments: str,
        tls: bool = False,
        sentinel_config: Path | None = None,
        binary: str | None = None,
    ) -> None:
        binary = binary or redis_binary("redis-server")
        self.port = free_port()
        self.tls = tls
        self.directory = directory / f"redis-{self.port}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        mode = [str(sentinel_config), "--sentinel"] if sentinel_config else ["--save", "", "--appendonly", "no"]
        self._command = [
            binary,
            *mode,
            *ports,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            *arguments,
        ]

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRedis:
        """Start, and wait until it accepts connections."""
        self.process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_SECONDS
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start: see {self.directory}/redis.log")
            time.sleep(0.02)  # polling a starting server
        return self

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
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def admin(self, **options: Any) -> redis.Redis:  # Any: redis.Redis's keyword arguments are of many types
        """A plain client for setting up a test, never the demo's (over TLS to a TLS port, unverified:
        what is checked is the demo's connection, not this one)."""
        if self.tls:
            options = {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False, **options}
        return redis.Redis(host="127.0.0.1", port=self.port, **options)


def start_cluster(
    directory: Path,
    masters: int = 3,
    *,
    server_binary: str | None = None,
    cli_binary: str | None = None,
    tls_arguments: Sequence[str] = (),
) -> list[LocalRedis]:
    """A Redis Cluster of `masters` masters, no replicas, that keeps serving the slots it still has.

    With `tls_arguments` (redis-server's --tls-cert-file and the rest), every node serves TLS only,
    and the nodes talk to each other over TLS too.
    """
    tls = ("--tls-cluster", "yes", *tls_arguments) if tls_arguments else ()
    # Both are looked up before any node starts: a missing redis-cli is one line, not a half-built cluster.
    server_binary = server_binary or redis_binary("redis-server")
    cli_binary = cli_binary or redis_binary("redis-cli")
    nodes: list[LocalRedis] = []
    try:
        for _ in range(masters):
            bus = free_port()
            nodes.append(
                LocalRedis(
                    directory,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(bus),
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-require-full-coverage",
                    "no",
                    *tls,
                    tls=bool(tls),
                    binary=server_binary,
                ).start()
            )
        addresses = [node.address for node in nodes]
        done = subprocess.run(
            [
                cli_binary,
                *(("--tls", "--insecure") if tls else ()),  # redis-cli only joins the nodes: no check needed
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[-300:]
            raise RuntimeError(f"redis-cli --cluster create failed (exit {done.returncode}): {said}")
        _wait_for(
            lambda: all(_ask(node, _cluster_ok) for node in nodes),
            "the cluster to be ok",
        )
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def start_sentinel_group(
    directory: Path,
    master_name: str = "mymaster",
    *,
    server_binary: str | None = None,
    tls_arguments: Sequence[str] = (),
) -> tuple[LocalRedis, LocalRedis, LocalRedis]:
    """A master, its replica, and one Sentinel watching them (quorum 1, fast failover).

    With `tls_arguments`, the master and the replica serve TLS only and replicate over TLS; the
    Sentinel answers clients in plain text (as the demo expects) and watches them over TLS.
    """
    server_binary = server_binary or redis_binary("redis-server")
    tls = ("--tls-replication", "yes", *tls_arguments) if tls_arguments else ()
    master = LocalRedis(directory, "--repl-diskless-sync-delay", "0", *tls, tls=bool(tls), binary=server_binary)
    master.start()
    replica = LocalRedis(
        directory, "--replicaof", "127.0.0.1", str(master.port), *tls, tls=bool(tls), binary=server_binary
    ).start()
    config = directory / f"sentinel-{master.port}.conf"
    config.write_text(
        f"sentinel monitor {master_name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 1000\n"
        f"sentinel failover-timeout {master_name} 3000\n"
        f"sentinel parallel-syncs {master_name} 1\n"
    )
    sentinel = LocalRedis(directory, *tls, sentinel_config=config, binary=server_binary).start()
    _wait_for(
        lambda: _ask(replica, lambda client: client.info("replication").get("master_link_status") == "up"),
        "the replica to sync",
    )
    return master, replica, sentinel


def _cluster_ok(client: redis.Redis) -> bool:
    execute: Callable[..., bytes] = client.execute_command  # redis-py leaves it unannotated
    info = execute("CLUSTER", "INFO")
    return b"cluster_state:ok" in info


def _ask(server: LocalRedis, question: Callable[[redis.Redis], bool]) -> bool:
    with server.admin(socket_timeout=1) as client:
        return question(client)


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)  # polling servers that are settling
    raise RuntimeError(f"timed out waiting for {what}")
