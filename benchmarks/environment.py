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
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata

import redis


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
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_label(machine: dict[str, str]) -> str:
    """One line naming the machine."""
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory']} RAM, {machine['os']}; "
        f"Python {machine['python']}, redis-py {machine['redis-py']} (hiredis {machine['hiredis']}), "
        f"redis-server {machine['redis-server']}; {machine['date']}"
    )


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


def _version_or_none(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def private_redis_server() -> Iterator[str]:
    """A redis-server of our own on a free loopback port; yields its URL, stops it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server), or pass --redis-url")
    with tempfile.TemporaryDirectory(prefix="benchmark-redis-") as directory:
        port = _free_port()
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            "--logfile",
            os.path.join(directory, "redis.log"),
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_until_ready(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("redis-server exited at start")
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)  # polling a starting server, not pacing a measurement
        raise SystemExit("redis-server did not answer within 10 s")
    finally:
        client.close()
