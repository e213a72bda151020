"""Benchmark I/O: a single server against a private Redis Cluster: pipelined seeding, and one lookup's round trips.

The Cluster is three masters of our own (`environment.private_cluster`), stopped after;
without redis-server or redis-cli to build it, its rows say n/a. The round trips of one hit
and one miss are counted by `round_trips.py`'s proxy in front of each server; the seeds are
`seeding.seed_once`'s. It never builds a cluster of servers it did not start.
"""

from __future__ import annotations

import contextlib
import subprocess

from benchmarks.environment import private_cluster
from benchmarks.harness import BenchDatabase, cleanup
from benchmarks.measurements import Measurements
from benchmarks.plan import HIT_ID, Plan
from benchmarks.round_trips import count_round_trips
from benchmarks.seeding import seed_once
from config.redis import RedisClients, get_redis
from config.settings import Settings


def measure_topologies(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Pipelined seeding on the single server against a private 3-master Redis Cluster, both twins;
    and the round trips of one miss and one hit on each, counted by a proxy in front of the servers."""
    with contextlib.ExitStack() as stack:
        try:
            cluster_url: str | None = stack.enter_context(private_cluster())
        except (FileNotFoundError, RuntimeError, subprocess.SubprocessError):
            cluster_url = None  # no redis-server or redis-cli to build a cluster with: the rows say n/a
        for twin in ("sync", "async"):
            counted = count_round_trips(
                clients.settings.redis_url, data.url, twin=twin, cluster_url=cluster_url, user_id=HIT_ID
            )
            measurements.round_trips.update({f"{name}-{twin}": count for name, count in counted.items()})
        if cluster_url is None:
            return
        cluster = get_redis(Settings(redis_url=cluster_url, redis_configured=True, redis_cluster=True))
        stack.callback(cluster.close)
        for _ in range(min(plan.rounds, 3)):
            for topology, target in (("single", clients), ("cluster", cluster)):
                for twin in ("sync", "async"):
                    cleanup(target.sync_client())
                    seconds = seed_once(target, data, f"pipelined-{twin}", plan.cluster_records, plan.seed_batch_size)
                    measurements.topologies.setdefault(f"{topology}-{twin}", []).append(seconds)
        cleanup(clients.sync_client())
