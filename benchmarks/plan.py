"""Benchmark, pure: how much a run measures (`Plan`: the full run, or --quick) and the names every measurement shares.

The prefix and cache policy of every key a run writes (`bench:`), the id a hit looks up, the
seeding modes, the databases a read is timed on, and the sizes of the concurrency scenarios
with the mixed load's fixed order (`mixed_workload`): the measuring modules, the figures and
the table read them from here, so they always agree. Nothing here measures, connects or
prints, and it must never import a module that does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.policy import CachePolicy

PREFIX = "bench:"
POLICY = CachePolicy(key_prefix=PREFIX, ttl_seconds=3600)
HIT_ID = 42
SETUP_MODES = ("sequential", "threaded", "pipelined-sync", "pipelined-async")
DATABASES = ("sqlite", "postgresql")
WARM_UP_SAMPLES = 20
NOT_INSTALLED = "not installed"
SCENARIO_LATENCY_SECONDS = 0.1  # the database latency of the concurrency scenarios (stampede, mixed load)
STAMPEDE_ID = 777  # one id no scenario caches beforehand
STAMPEDE_LOOKUPS = 100
MIXED_SEED = 11  # the mixed load's lookups are shuffled the same way in every run
MIXED_REPEATS = 5  # each missing id of the mixed load is looked up this many times
LOAD_WORKERS = 100  # threads a sync contender serves the mixed load with


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or --quick (about a minute, most of it the labs)."""

    records: int = 1000
    rounds: int = 5
    hit_samples: int = 2000
    misses: int = 100
    miss_latency: float = 0.1
    concurrent_lookups: int = 1000
    big: int = 1_000_000
    scale_rounds: int = 3
    seed_batch_size: int = 1000
    startup_rounds: int = 5
    hit_pace_seconds: float = 0.02
    cluster_records: int = 100_000
    read_samples: int = 2000
    load_rounds: int = 3
    traffic_lookups: int = 20_000
    traffic_population: int = 100_000
    memory_users: int = 5_000  # lab memory: the prompt's defaults
    memory_lookups: int = 5_000
    memory_policies: tuple[str, ...] = ("allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-ttl")
    quick: bool = False

    @classmethod
    def quick_plan(cls, records: int) -> Plan:
        """A run that proves everything works in about a minute (the labs, at the prompt's sizes, take 40 s of it)."""
        return cls(
            records=records,
            rounds=3,
            hit_samples=300,
            misses=20,
            miss_latency=0.02,
            big=25_000,
            scale_rounds=1,
            startup_rounds=2,
            cluster_records=5_000,
            read_samples=200,
            load_rounds=2,
            traffic_lookups=2_000,
            traffic_population=20_000,
            memory_users=2_000,
            memory_lookups=2_000,
            memory_policies=("allkeys-lru", "allkeys-lfu"),
            quick=True,
        )

    @property
    def users(self) -> int:
        """Users the run's database holds: every id any measurement reads (misses use the upper half)."""
        return max(
            self.records, self.big, self.cluster_records, self.concurrent_lookups, 8 * self.misses, HIT_ID, STAMPEDE_ID
        )

    @property
    def miss_ids_start(self) -> int:
        """The first id the miss rounds read: above every seeded id, below the last user."""
        return self.users // 2 + 1


def mixed_workload(lookups: int) -> tuple[range, list[int]]:
    """The mixed load: the ids cached beforehand, and every lookup in the order they start.

    Half the lookups are hits, one each of ids 1..lookups/2; the other half are misses,
    MIXED_REPEATS each of the lookups/10 ids after them; shuffled with a fixed seed.
    """
    cached = range(1, lookups // 2 + 1)
    missing = range(cached.stop, cached.stop + lookups // (2 * MIXED_REPEATS))
    order = [*cached, *(user_id for user_id in missing for _ in range(MIXED_REPEATS))]
    random.Random(MIXED_SEED).shuffle(order)
    return cached, order
