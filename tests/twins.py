"""One face for both twins, so each scenario is written once and run through both.

The sync shell is called directly (it blocks the test's event loop, which is fine for an
in-memory server and millisecond database latency); the async shell is awaited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import redis.asyncio

from config.redis import get_redis
from config.settings import Settings
from simulator.core import CacheEvent, CachePolicy, DatabaseState, LookupResult, SeedProgress, SeedReport
from simulator.simulate_cache_db_flow import (
    AsyncCacheAside,
    AsyncSeeder,
    AsyncSimulatedDatabase,
    CacheAside,
    Seeder,
    SimulatedDatabase,
)


@dataclass
class Twin:
    """A twin under test: its lookup, its seeder and its database, behind async methods."""

    name: str
    cache: CacheAside | AsyncCacheAside
    seeder: Seeder | AsyncSeeder
    database: SimulatedDatabase | AsyncSimulatedDatabase

    async def lookup(self, user_id: int) -> LookupResult:
        if isinstance(self.cache, CacheAside):
            return self.cache.lookup(user_id)
        return await self.cache.lookup(user_id)

    async def seed(self, mode: str, count: int) -> SeedReport:
        progress = SeedProgress(mode, count, time.perf_counter())
        method = getattr(self.seeder, f"seed_{mode}")
        if isinstance(self.seeder, Seeder):
            report: SeedReport = method(progress)
        else:
            report = await method(progress)
        return report

    @property
    def database_reads(self) -> int:
        return self.database.reads.value


def make_twin(
    name: str,
    sync_client: redis.Redis,
    async_client: redis.asyncio.Redis,
    policy: CachePolicy | None = None,
    latency_seconds: float = 0.001,
    batch_size: int = 100,
) -> Twin:
    policy = policy or CachePolicy()
    if name == "sync":
        database = SimulatedDatabase(latency_seconds)
        return Twin(
            name, CacheAside(sync_client, database, policy), Seeder(sync_client, database, policy, batch_size), database
        )
    async_database = AsyncSimulatedDatabase(latency_seconds)
    return Twin(
        name,
        AsyncCacheAside(async_client, async_database, policy),
        AsyncSeeder(async_client, async_database, policy, batch_size),
        async_database,
    )


def app_twin(name: str, settings: Settings, events: list[CacheEvent]) -> Twin:
    """A twin wired as main.py / main_async.py wire it: the demo's own clients, policy and breaker.

    Call it inside a running event loop (the async client belongs to it); close the
    async client with `await get_redis(settings).aclose()`.
    """
    clients = get_redis(settings)
    policy = CachePolicy.from_settings(settings)
    state = DatabaseState(settings.db_size)
    if name == "sync":
        database = SimulatedDatabase(settings.db_latency_seconds, state)
        cache = CacheAside(clients.sync_client(), database, policy, notify=events.append)
        return Twin(name, cache, Seeder(clients.sync_client(), database, policy, settings.seed_batch_size), database)
    async_database = AsyncSimulatedDatabase(settings.db_latency_seconds, state)
    async_cache = AsyncCacheAside(clients.async_client(), async_database, policy, notify=events.append)
    seeder = AsyncSeeder(clients.async_bulk_client(), async_database, policy, settings.seed_batch_size)
    return Twin(name, async_cache, seeder, async_database)
