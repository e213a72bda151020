"""Private redis-servers, clusters and Sentinel groups for the tests, with the suite's no-skip policy.

The processes come from `benchmarks.local_redis` (shared with the benchmark); this module
only decides what happens without the Redis binaries the integration tests need
(`redis-server`, and `redis-cli` to join a cluster): the run stops with one line that says
what to install. Integration tests never skip, so a green run always means they ran.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence

import pytest

from benchmarks.local_redis import LocalRedis, start_cluster, start_sentinel_group

RedisServer = LocalRedis
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
