"""Simulator layer: the cache-aside lookup and seeding, as the user's flow diagram names them.

Start reading here. The lookup is `AsyncCacheAside.lookup` in simulator/_async/cache_aside.py
(the asyncio twin, written by hand) and `CacheAside.lookup` in simulator/_sync/cache_aside.py
(the blocking twin, written from it by scripts/unasync.py): check the cache with one GET; on a
hit, answer; on a miss, take the key's lease, read the database, store the answer with a TTL
while the lease is still ours, and answer. Seeding is `Seeder` and `AsyncSeeder`, and a seed
in the background `BackgroundSeed` and `AsyncBackgroundSeed`. This module presents them, and
the three seeding functions of the diagram, which main.py and main_async.py call:

- `set_redis_with_mock_data`: the diagram's sync path: seed in this thread, blocking until done;
- `set_redis_with_mock_data_async`: the threaded path: seed in a background thread, at once;
- `set_redis_with_mock_data_async_aioredis`: the async path: seed as an asyncio task, at once
  (aioredis lives on as redis.asyncio).
"""

from __future__ import annotations

from collections.abc import Callable

from simulator._async.cache_aside import AsyncCacheAside
from simulator._async.seeding import AsyncBackgroundSeed, AsyncSeeder
from simulator._sync.cache_aside import CacheAside
from simulator._sync.seeding import BackgroundSeed, Seeder
from simulator.seeding import SeedProgress, SeedReport

__all__ = [
    "AsyncBackgroundSeed",
    "AsyncCacheAside",
    "AsyncSeeder",
    "BackgroundSeed",
    "CacheAside",
    "Seeder",
    "set_redis_with_mock_data",
    "set_redis_with_mock_data_async",
    "set_redis_with_mock_data_async_aioredis",
]

SeedEnded = Callable[[SeedReport, Exception | None], object]


def set_redis_with_mock_data(seeder: Seeder, progress: SeedProgress) -> SeedReport:
    """Seed ids 1..progress.requested in this thread, blocking until done: pipelined, or (SEED_MODE=sequential)
    one command per round trip."""
    return seeder.seed_sequential(progress) if progress.mode == "sequential" else seeder.seed_pipelined(progress)


def set_redis_with_mock_data_async(seeder: Seeder, progress: SeedProgress, on_done: SeedEnded) -> BackgroundSeed:
    """Seed with pipelines in a background thread; returns at once (`on_done` hears how it ended)."""
    return BackgroundSeed(seeder.seed_pipelined, progress, on_done).start()


def set_redis_with_mock_data_async_aioredis(
    seeder: AsyncSeeder, progress: SeedProgress, on_done: SeedEnded
) -> AsyncBackgroundSeed:
    """Seed with asyncio pipelines (or one command at a time, SEED_MODE=sequential) as a task; returns at once."""
    seed = seeder.seed_sequential if progress.mode == "sequential" else seeder.seed_pipelined
    return AsyncBackgroundSeed(seed, progress, on_done).start()
