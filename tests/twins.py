"""One face for both twins, so each scenario is written once and run through both.

The sync shell is called directly (it blocks the test's event loop, which is fine for an
in-memory server and millisecond database latency); the async shell is awaited. Also the
suite's ways of checking what depends on time without a timing margin: the TTL a key was
given (from its absolute expiry), what a client tried on the wire (counted, not timed),
and waiting for an event instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.connection

from config.database import AsyncSqliteConnector, SqliteConnector
from config.redis import get_redis
from config.settings import Settings
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.breaker import CacheEvent
from simulator.policy import CachePolicy
from simulator.results import LookupResult
from simulator.seeding import SeedProgress, SeedReport
from simulator.simulate_cache_db_flow import AsyncCacheAside, AsyncSeeder, CacheAside, Seeder

TEST_DB_SIZE = 10_000  # users in every test's ./users.db (conftest copies it in)
EVENT_WAIT_SECONDS = 30.0  # a safety net only: an event that never comes fails the test instead of hanging it
_open: list[Database | AsyncDatabase] = []


def assert_ttl_given(
    client: redis.Redis, key: str, started: float, ended: float, shortest: float, longest: float | None = None
) -> None:
    """`key` was given a TTL from `shortest` to `longest` seconds by a write between `started` and `ended`.

    `started` and `ended` are `time.time()` readings around the write. The check reads the
    key's absolute expiry (PEXPIRETIME), not what is left of its TTL, so however long the
    test took since, no time passing can make it fail: the write happened inside the
    window, so the TTL it gave is `expiry - ended` at least and `expiry - started` at most.
    """
    longest = shortest if longest is None else longest
    expires_ms = client.pexpiretime(key)
    assert expires_ms > 0, f"{key} has no expiry (PEXPIRETIME {expires_ms})"
    slack_ms = 2  # Redis and fakeredis keep the time of a write in whole milliseconds
    given_at_least, given_at_most = expires_ms - ended * 1000 - slack_ms, expires_ms - started * 1000 + slack_ms
    assert given_at_least <= longest * 1000, f"{key}: a TTL of at least {given_at_least / 1000:.3f} s"
    assert given_at_most >= shortest * 1000, f"{key}: a TTL of at most {given_at_most / 1000:.3f} s"


@dataclass
class RedisTraffic:
    """What redis-py put on the wire since `watch_redis`: each connection it tried to open, each write."""

    connects: list[str] = field(default_factory=list)  # "host:port", one per attempt
    sends: int = 0  # packed writes: a command, or a whole pipeline

    @property
    def total(self) -> int:
        return len(self.connects) + self.sends


def watch_redis(monkeypatch: pytest.MonkeyPatch) -> RedisTraffic:
    """From now on, count what every redis-py client (sync or asyncio) tries on the wire.

    How a client fails fast, or keeps off a dead server, counted instead of timed: a
    refused connection costs no time, retries with backoff do.
    """
    traffic = RedisTraffic()
    sync_connect = redis.connection.Connection._connect
    sync_send = redis.connection.AbstractConnection.send_packed_command
    async_connect = redis.asyncio.connection.Connection._connect
    async_send = redis.asyncio.connection.AbstractConnection.send_packed_command

    def connect(connection: Any) -> Any:
        traffic.connects.append(f"{connection.host}:{connection.port}")
        return sync_connect(connection)

    def send(connection: Any, *arguments: Any, **options: Any) -> Any:
        traffic.sends += 1
        return sync_send(connection, *arguments, **options)

    async def async_connect_counted(connection: Any) -> Any:
        traffic.connects.append(f"{connection.host}:{connection.port}")
        return await async_connect(connection)

    async def async_send_counted(connection: Any, *arguments: Any, **options: Any) -> Any:
        traffic.sends += 1
        return await async_send(connection, *arguments, **options)

    monkeypatch.setattr(redis.connection.Connection, "_connect", connect)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
    monkeypatch.setattr(redis.asyncio.connection.Connection, "_connect", async_connect_counted)
    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", async_send_counted)
    return traffic


def wait_until(condition: Callable[[], object], what: str, seconds: float = EVENT_WAIT_SECONDS) -> None:
    """Poll until `condition()` holds: waiting for an event nobody can signal (a server's state, another process)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        time.sleep(0.01)  # polling the event, not a wait for something to happen by itself


async def await_until(condition: Callable[[], object], what: str, seconds: float = EVENT_WAIT_SECONDS) -> None:
    """The event loop's `wait_until`: background tasks keep running while it polls."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:g} s for {what}"
        await asyncio.sleep(0.01)  # polling the event, not a wait for something to happen by itself


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
