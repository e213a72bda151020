"""Benchmark I/O: one run, step by step: every measurement, in order, on one Redis and the run's own database.

In-process measurements (seeding, hit and miss latency, a hit against a database read) call
the same shells the twins use (`seeding.py`, `latency.py`, `reads.py`); measurements of a
whole program run the real scripts (`real_scripts.py`); then come the Cluster
(`topologies.py`), ours against the peers (`concurrency.py`) and the traffic simulator
(`traffic.py`) and the labs (`labs.py`), all in the harness of `harness.py`. Repeated measurements are interleaved
round by round so machine noise hits every contender alike. This module only orders the
steps and says which one runs: it never measures, summarises or prints a figure itself.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.concurrency import measure_concurrency
from benchmarks.harness import BenchDatabase, bench_database
from benchmarks.labs import measure_labs, measure_memory
from benchmarks.latency import measure_hits, measure_misses
from benchmarks.measurements import Measurements
from benchmarks.plan import Plan
from benchmarks.reads import measure_reads
from benchmarks.real_scripts import measure_hits_during_seed, measure_scale, measure_startup
from benchmarks.seeding import measure_setup
from benchmarks.topologies import measure_topologies
from benchmarks.traffic import measure_traffic
from config.redis import RedisClients, get_redis
from config.settings import Settings
from simulator.records import vocabulary

Step = Callable[[RedisClients, Plan, Measurements, BenchDatabase], None]


def measure_everything(url: str, plan: Plan, progress: Callable[[str], object]) -> Measurements:
    """Every measurement of one run, against the Redis at `url` and a SQLite file the run fills first."""
    vocabulary()  # a one-off 0.2 s that no figure should include, as in the demo itself
    clients = get_redis(Settings(redis_url=url, redis_configured=True))
    measurements = Measurements()
    steps: list[tuple[str, Step]] = [
        ("initial setup", measure_setup),
        ("hit latency", measure_hits),
        ("a cache hit against a database read (SQLite, PostgreSQL)", measure_reads),
        ("misses", measure_misses),
        ("scale and memory", measure_scale),
        ("hits during a background seed", measure_hits_during_seed),
        ("start-up", measure_startup),
        ("Redis Cluster seeding, and round trips", measure_topologies),
        ("concurrency: ours and the peers (stampede, mixed load, hit)", measure_concurrency),
        ("the traffic simulator (the prompt's load command)", measure_traffic),
        ("the labs (the prompt's lab command: each defence off, then on)", measure_labs),
        ("lab memory (hit ratio by memory size, on a redis-server of its own)", measure_memory),
    ]
    try:
        progress(f"creating {plan.users:,} users in a SQLite file...")
        with bench_database(plan.users, measurements) as data:
            for name, step in steps:
                progress(f"measuring {name}...")
                step(clients, plan, measurements, data)
    finally:
        clients.close()
    return measurements
