"""Benchmark I/O: the benchmark's private redis-servers joined into a Redis Cluster.

Each node is a `LocalRedis` (labs/private_redis.py: one plain redis-server on a free loopback
port, keeping nothing on disk); `start_cluster` joins such processes into a Redis Cluster,
through `build_cluster`, which joins nodes of any kind (the tests' TLS nodes too). Nothing
here may import the tests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import redis

from labs.private_redis import LocalRedis, ask, free_port, redis_binary, wait_for

Node = TypeVar("Node", bound=LocalRedis)


def start_cluster(directory: Path, masters: int = 3) -> list[LocalRedis]:
    """A Redis Cluster of `masters` masters, no replicas, that keeps serving the slots it still has."""
    # Both are looked up before any node starts: a missing redis-cli is one line, not a half-built cluster.
    server_binary = redis_binary("redis-server")
    cli_binary = redis_binary("redis-cli")

    def new_node(arguments: Sequence[str]) -> LocalRedis:
        return LocalRedis(directory, *arguments, binary=server_binary)

    return build_cluster(new_node, masters, [cli_binary])


def build_cluster(new_node: Callable[[Sequence[str]], Node], masters: int, join: Sequence[str]) -> list[Node]:
    """Start `masters` nodes, each `new_node(its cluster arguments)`, join them with `join` (redis-cli and its
    options) `--cluster create`, and wait until the cluster is ok; if any step fails, every node is stopped."""
    nodes: list[Node] = []
    try:
        for _ in range(masters):
            bus = free_port()
            cluster_arguments = (
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
            )
            nodes.append(new_node(cluster_arguments).start())
        addresses = [node.address for node in nodes]
        done = subprocess.run(
            [*join, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[-300:]
            raise RuntimeError(f"redis-cli --cluster create failed (exit {done.returncode}): {said}")
        wait_for(lambda: all(ask(node, _cluster_ok) for node in nodes), "the cluster to be ok")
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def _cluster_ok(client: redis.Redis) -> bool:
    execute: Callable[..., bytes] = client.execute_command  # redis-py leaves it unannotated
    info = execute("CLUSTER", "INFO")
    return b"cluster_state:ok" in info
