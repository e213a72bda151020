"""Benchmark I/O: the machine a run is labelled with, and the private redis-server it uses.

The server is started on a free port in a temp dir, with no persistence, and stopped at
the end; a benchmark never touches a Redis it did not start unless given --redis-url,
and then only keys under its own prefix.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import redis

from benchmarks.local_postgres import postgres_binaries
from benchmarks.local_redis import start_cluster
from labs.private_redis import LocalRedis

PEERS = ("cashews", "aiocache", "dogpile.cache")  # the other libraries `peers.py` measures, when installed


def describe_machine(client: redis.Redis) -> dict[str, str]:
    """What every figure of a run is labelled with."""
    server = client.info("server")
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory_total(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "redis-py": metadata.version("redis"),
        "hiredis": _version_or_none("hiredis"),
        "redis-server": str(server.get("redis_version", "?")),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres_version(),
        "redis-cli": _redis_cli_version(),
        **{library: _version_or_none(library, "not installed") for library in PEERS},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_label(machine: dict[str, str]) -> str:
    """One line naming the machine."""
    peers = ", ".join(f"{library} {machine[library]}" for library in PEERS if library in machine)
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory']} RAM, {machine['os']}; "
        f"Python {machine['python']}, redis-py {machine['redis-py']} (hiredis {machine['hiredis']}), "
        f"redis-server {machine['redis-server']}, redis-cli {machine.get('redis-cli', '?')}, "
        f"SQLite {machine.get('sqlite', '?')}, PostgreSQL {machine.get('postgresql', '?')}"
        f"{'; peers: ' + peers if peers else ''}; {machine['date']}"
    )


def _redis_cli_version() -> str:
    """The version of the redis-cli the seeding ceiling runs, or "none" without it."""
    binary = shutil.which("redis-cli")
    if binary is None:
        return "none"
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = re.search(r"\d+(?:\.\d+)+", done.stdout)  # "redis-cli 7.0.15"
    return found.group() if found else "?"


def _postgres_version() -> str:
    """The version of the PostgreSQL server binaries the run starts, or "none" without them."""
    binaries = postgres_binaries()
    if binaries is None:
        return "none"
    try:
        done = subprocess.run(
            [str(binaries / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = re.search(r"\d+(?:\.\d+)+", done.stdout)  # "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    return found.group() if found else "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as meminfo:
        kilobytes = int(meminfo.readline().split()[1])
        return f"{kilobytes / 1024 / 1024:.0f} GiB"
    return "?"


def _version_or_none(package: str, missing: str = "none") -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return missing


@contextlib.contextmanager
def private_redis_server() -> Iterator[str]:
    """A redis-server of our own on a free loopback port; yields its URL, stops it after."""
    with tempfile.TemporaryDirectory(prefix="benchmark-redis-") as directory:
        try:
            server = LocalRedis(Path(directory)).start()
        except FileNotFoundError as error:
            raise SystemExit(f"{error}, or pass --redis-url") from None
        try:
            yield server.url
        finally:
            server.stop()


@contextlib.contextmanager
def private_cluster(masters: int = 3) -> Iterator[str]:
    """A Redis Cluster of our own; yields one node's URL, stops every node after."""
    with tempfile.TemporaryDirectory(prefix="benchmark-cluster-") as directory:
        nodes = start_cluster(Path(directory), masters)
        try:
            yield nodes[0].url
        finally:
            for node in nodes:
                node.stop()
