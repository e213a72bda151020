"""Every defence is a switch in CachePolicy, and switching one off takes away that behaviour, in both twins.

The labs switch them off to show what each prevents; here each switch is checked to do what
its line in simulator/policy.py says, and the answers stay right either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import cast

import pytest
import redis
import redis.asyncio

from config.database import AsyncSqliteConnector, SqliteConnector
from config.redis import get_redis
from config.settings import Settings
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.policy import CachePolicy
from simulator.records import UserRecord, encode_record, user_record
from simulator.results import Source, StampedeReport
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from tests.twins import EVENT_WAIT_SECONDS, Twin, assert_ttl_given, make_twin, watch_redis

LOOKUPS = 12


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def twin_with(name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, **switches: object) -> Twin:
    return make_twin(name, sync_client, async_client, dataclasses.replace(CachePolicy(), **switches))


async def call(twin: Twin, method: str, *arguments: object) -> object:
    outcome = getattr(twin.cache, method)(*arguments)
    return await outcome if asyncio.iscoroutine(outcome) else outcome


def test_every_defence_is_on_by_default_but_early_refresh_and_jitter() -> None:
    policy = CachePolicy()
    switches = ("read_coalescing", "single_flight", "lease", "negative_caching", "breaker", "expiry_audit")
    assert all(getattr(policy, switch) for switch in switches)
    assert (policy.early_refresh, policy.ttl_jitter) == (False, 0.0)
    settings = CachePolicy.from_settings(Settings())
    assert all(getattr(settings, switch) for switch in switches)


# --- single flight and the lease: how many database reads a stampede of one cold id costs ---


class MeetingDatabase(Database):
    """Reads wait until `meet` of them are under way at once: every lookup that reads the database does it
    together, so a test sees how many did without depending on how the scheduler orders them."""

    def __init__(self, path: str, meet: int) -> None:
        super().__init__(SqliteConnector(path, 5.0), 0)
        self.meet, self.entered, self._lock = meet, 0, threading.Lock()
        self.everyone = threading.Event()

    def fetch(self, user_id: int) -> UserRecord | None:
        with self._lock:
            self.entered += 1
            if self.entered == self.meet:
                self.everyone.set()
        assert self.everyone.wait(EVENT_WAIT_SECONDS), f"only {self.entered} of {self.meet} lookups read"
        return super().fetch(user_id)


class AsyncMeetingDatabase(AsyncDatabase):
    """The async twin's MeetingDatabase."""

    def __init__(self, path: str, meet: int) -> None:
        super().__init__(AsyncSqliteConnector(path, 5.0), 0)
        self.meet, self.entered = meet, 0
        self.everyone = asyncio.Event()

    async def fetch(self, user_id: int) -> UserRecord | None:
        self.entered += 1
        if self.entered == self.meet:
            self.everyone.set()
        await asyncio.wait_for(self.everyone.wait(), EVENT_WAIT_SECONDS)
        return await super().fetch(user_id)


async def test_without_single_flight_and_the_lease_every_concurrent_miss_reads_the_database(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    policy = CachePolicy(single_flight=False, lease=False, read_coalescing=False)
    cache: CacheAside | AsyncCacheAside
    if name == "sync":
        database: Database | AsyncDatabase = MeetingDatabase("users.db", LOOKUPS)
        cache = CacheAside(sync_client, database, policy)
        report = cache.stampede(42, LOOKUPS)
    else:
        database = AsyncMeetingDatabase("users.db", LOOKUPS)
        cache = AsyncCacheAside(async_client, database, policy)
        report = await cache.stampede(42, LOOKUPS)
    assert report.database_reads == LOOKUPS  # the stampede, unchecked
    assert report.sources == {"database": LOOKUPS}
    assert sync_client.get("user-42") == encode_record(user_record(42)).encode()  # each stored the same record


@pytest.mark.parametrize(
    ("single_flight", "lease"), [(True, True), (True, False), (False, True)], ids=["both", "single flight", "lease"]
)
async def test_single_flight_or_the_lease_alone_reads_the_database_once(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, single_flight: bool, lease: bool
) -> None:
    twin = twin_with(name, sync_client, async_client, single_flight=single_flight, lease=lease)
    report = cast(StampedeReport, await call(twin, "stampede", 42, LOOKUPS))
    assert report.database_reads == 1
    # Every other lookup is answered by that one read: single flight hands it to the lookups waiting in this
    # process (shared); the lease makes them wait for the record it stored (a hit). A lookup that starts after
    # the read has ended is a hit in either case, so how the others split depends on when they start.
    assert report.shared + report.sources.get("cache", 0) == LOOKUPS - 1
    if not single_flight:
        assert report.shared == 0


# --- negative caching ---


@pytest.mark.parametrize("negative_caching", [True, False])
async def test_negative_caching_remembers_a_not_found_or_not(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, negative_caching: bool
) -> None:
    twin = twin_with(name, sync_client, async_client, negative_caching=negative_caching)
    first, second = await twin.lookup(7_000_000), await twin.lookup(7_000_000)
    assert first.source is Source.NOT_FOUND
    assert second.source is (Source.NEGATIVE_CACHE if negative_caching else Source.NOT_FOUND)
    assert twin.database_reads == (1 if negative_caching else 2)
    assert (sync_client.exists("user-7000000") == 1) is negative_caching
    assert not first.not_cached or first.not_cached.chosen  # switched off is no warning


# --- the expiry audit ---


@pytest.mark.parametrize("expiry_audit", [True, False])
async def test_the_expiry_audit_repairs_a_value_another_client_wrote_without_a_ttl_or_not(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, expiry_audit: bool
) -> None:
    sync_client.set("user-42", encode_record(user_record(42)))  # no expiry: the demo never writes one
    twin = twin_with(name, sync_client, async_client, expiry_audit=expiry_audit)
    result = await twin.lookup(42)
    assert result.record == user_record(42)
    assert result.source is (Source.DATABASE if expiry_audit else Source.CACHE)
    assert (sync_client.ttl("user-42") > 0) is expiry_audit  # repaired with a TTL, or left as it was


# --- the breaker ---


@pytest.mark.integration
@pytest.mark.parametrize("breaker", [True, False])
async def test_the_breaker_keeps_lookups_off_a_dead_redis_or_not(
    name: str, free_port: int, breaker: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens at the port: with the breaker, the lookups after the first do not even try."""
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port}/0", redis_configured=True, db_latency_seconds=0)
    policy = dataclasses.replace(CachePolicy.from_settings(settings), breaker=breaker)
    clients = get_redis(settings)
    traffic = watch_redis(monkeypatch)
    try:
        if name == "sync":
            cache: CacheAside | AsyncCacheAside = CacheAside(
                clients.sync_client(), Database(SqliteConnector("users.db", 5.0), 0), policy
            )
            results = [cache.lookup(user_id) for user_id in (1, 2, 3)]
        else:
            cache = AsyncCacheAside(
                clients.async_client(), AsyncDatabase(AsyncSqliteConnector("users.db", 5.0), 0), policy
            )
            results = [await cache.lookup(user_id) for user_id in (1, 2, 3)]
    finally:
        clients.close()
        await clients.aclose()
    assert [(result.degraded, result.record) for result in results] == [(True, user_record(n)) for n in (1, 2, 3)]
    tried = len(traffic.connects)
    assert (tried <= 2) is breaker  # one lookup's attempt (and its one retry), or every lookup's


# --- jitter and early refresh: their own tests (tests/test_cache_behaviour.py); here, their defaults' effect ---


async def test_without_jitter_every_record_gets_the_same_ttl(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    twin = twin_with(name, sync_client, async_client, ttl_jitter=0.0, ttl_seconds=3600)
    for user_id in range(1, 6):
        started = time.time()
        await twin.lookup(user_id)
        assert_ttl_given(sync_client, f"user-{user_id}", started, time.time(), 3600)
