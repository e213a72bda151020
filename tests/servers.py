"""Private redis-servers, clusters and Sentinel groups for the tests, with the suite's skip/fail policy.

The processes come from `benchmarks.local_redis` (shared with the benchmark); this module
only decides what happens without a redis-server: skip locally, fail in CI, where the
integration tests must run.
"""

from __future__ import annotations

import os
import shutil

import pytest

from benchmarks.local_redis import LocalRedis, start_cluster, start_sentinel_group

RedisServer = LocalRedis
__all__ = ["RedisServer", "redis_server_binary", "start_cluster", "start_sentinel_group"]


def redis_server_binary() -> str:
    """The redis-server to start; skips without one, but fails in CI, where tests must run."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but redis-server is not installed: integration tests must run in CI")
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    return path
