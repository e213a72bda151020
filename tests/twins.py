"""One face for both twins, so each scenario is written once and run through both.

The sync shell is called directly (it blocks the test's event loop, which is fine for an
in-memory server and millisecond database latency); the async shell is awaited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
import redis.asyncio

from config.database import AsyncSqliteConnector, SqliteConnector
from config.redis import get_redis
from config.settings import Settings
from simulator.core import CacheEvent, CachePolicy, LookupResult, SeedProgress, SeedReport
from simulator.database import AsyncDatabase, Database
from simulator.simulate_cache_db_flow import AsyncCacheAside, AsyncSeeder, CacheAside, Seeder

TEST_DB_SIZE = 10_000  # users in every test's ./users.db (conftest copies it in)
_open: list[Database | AsyncDatabase] = []


def sqlite_database(latency_seconds: float, path: str = "users.db") -> Database:
    """The sync twin's database on a SQLite file (the test's own ./users.db by default); closed after the test."""
    database = Database(SqliteConnector(path, 5.0), latency_seconds)
    _open.append(database)
    return database


def async_sqlite_database(latency_seconds: float, path: str = "users.db") -> AsyncDatabase:
    """The async twin's database on a SQLite file; it connects on first use, inside the test's loop."""
    database = AsyncDatabase(AsyncSqliteConnector(path, 5.0), latency_seconds)
    _open.append(database)
    return database


async def close_databases() -> None:
    """Close every database a test opened through this module."""
    while _open:
        database = _open.pop()
        if isinstance(database, Database):
            database.close()
        else:
            await database.aclose()


@dataclass
class Twin:
    """A twin under test: its lookup, its seeder and its database, behind async methods."""

    name: str
    cache: CacheAside | AsyncCacheAside
    seeder: Seeder | AsyncSeeder
    database: Database | AsyncDatabase

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
    database_path: str = "users.db",
) -> Twin:
    policy = policy or CachePolicy()
    if name == "sync":
        database = sqlite_database(latency_seconds, database_path)
        return Twin(
            name, CacheAside(sync_client, database, policy), Seeder(sync_client, database, policy, batch_size), database
        )
    async_database = async_sqlite_database(latency_seconds, database_path)
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
    path = settings.sqlite_path or "users.db"
    if name == "sync":
        database = sqlite_database(settings.db_latency_seconds, path)
        cache = CacheAside(clients.sync_client(), database, policy, notify=events.append)
        return Twin(name, cache, Seeder(clients.sync_client(), database, policy, settings.seed_batch_size), database)
    async_database = async_sqlite_database(settings.db_latency_seconds, path)
    async_cache = AsyncCacheAside(clients.async_client(), async_database, policy, notify=events.append)
    seeder = AsyncSeeder(clients.async_bulk_client(), async_database, policy, settings.seed_batch_size)
    return Twin(name, async_cache, seeder, async_database)
