"""The stale-write race, closed: a fill that read an old version never reaches the cache.

The classic cache-aside race: a reader misses and reads version 0 from the database; a
writer then commits version 1 and deletes the key; the reader, late, stores version 0,
and the cache contradicts the database until the TTL ends. Here the reader's database
read is held open by a gate (events, never sleeps) while another cache, as another
process would, commits an update; then the reader is let go. In both twins, on a single
redis-server and on a Redis Cluster, for a lookup and for a seed, the old record never
reaches the cache and the next lookup reads the new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from cli.answers import warning_of
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.policy import CachePolicy
from simulator.results import Source
from simulator.seeding import SeedProgress
from simulator.simulate_cache_db_flow import AsyncCacheAside, AsyncSeeder, CacheAside, Seeder
from tests.conftest import AsyncGatedDatabase, GatedDatabase
from tests.twins import async_sqlite_database, sqlite_database

pytestmark = pytest.mark.integration
POLICY = CachePolicy(lease_seconds=30, wait_poll_seconds=0.01)  # no lease expires during a test
GATE_SECONDS = 30  # a safety net: a gate never opened fails the test instead of hanging it


@dataclass
class Topology:
    """A sync and an async client on one Redis (a server or a cluster), and a plain client to inspect it."""

    sync_client: Any
    async_client: Any

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.sync_client.get(key)
        return value


@pytest.fixture(params=["server", "cluster"])
async def topology(request: pytest.FixtureRequest) -> AsyncIterator[Topology]:
    if request.param == "server":
        url = request.getfixturevalue("redis_url")
        sync_client: Any = redis.Redis.from_url(url)
        async_client: Any = redis.asyncio.Redis.from_url(url)
    else:
        url = request.getfixturevalue("cluster")[0].url
        sync_client = RedisCluster.from_url(url)
        async_client = AsyncRedisCluster.from_url(url)
        await async_client.initialize()
    yield Topology(sync_client, async_client)
    sync_client.close()
    await async_client.aclose()


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_lookup_that_read_before_an_update_never_stores_the_old_record(topology: Topology, twin: str) -> None:
    if twin == "sync":
        gated = GatedDatabase("users.db")
        reader: Any = CacheAside(topology.sync_client, gated, POLICY)
        writer: Any = CacheAside(topology.sync_client, sqlite_database(0), POLICY)  # another process's cache
        reading = asyncio.ensure_future(asyncio.to_thread(reader.lookup, 42))
        assert await asyncio.to_thread(gated.read_done.wait, GATE_SECONDS)
    else:
        async_gated = AsyncGatedDatabase("users.db")
        reader = AsyncCacheAside(topology.async_client, async_gated, POLICY)
        writer = AsyncCacheAside(topology.async_client, async_sqlite_database(0), POLICY)
        reading = asyncio.ensure_future(reader.lookup(42))
        await asyncio.wait_for(async_gated.read_done.wait(), GATE_SECONDS)
    assert (topology.get("user-42") or b"").startswith(b'{"lease":')  # the reader holds the key's lease

    # The reader has read version 0 and is held; the writer commits version 1 and invalidates.
    update = writer.update(42) if twin == "sync" else await writer.update(42)
    assert update.record.version == 1
    (gated if twin == "sync" else async_gated).gate.set()
    late = await reading

    assert late.record is not None
    assert late.record.version == 0  # it answers what it read, a read that began before the update...
    assert not late.stored  # ...but never stores it:
    assert warning_of(late) is not None
    assert "changed while the database was read" in warning_of(late)
    assert topology.get("user-42") is None  # the old record never reached the cache
    fresh = writer.lookup(42) if twin == "sync" else await writer.lookup(42)
    assert (fresh.source, fresh.record.version, fresh.stored) == (Source.DATABASE, 1, True)
    assert b'"version":1' in (topology.get("user-42") or b"")
    await close(gated if twin == "sync" else async_gated)


async def test_a_seed_batch_read_before_an_update_never_stores_the_old_record(topology: Topology, twin: str) -> None:
    if twin == "sync":
        gated = GatedDatabase("users.db")
        seeder: Any = Seeder(topology.sync_client, gated, POLICY, batch_size=100)
        writer: Any = CacheAside(topology.sync_client, sqlite_database(0), POLICY)
        progress = SeedProgress("pipelined", 100, 0.0)
        seeding = asyncio.ensure_future(asyncio.to_thread(seeder.seed_pipelined, progress))
        assert await asyncio.to_thread(gated.read_done.wait, GATE_SECONDS)
    else:
        async_gated = AsyncGatedDatabase("users.db")
        seeder = AsyncSeeder(topology.async_client, async_gated, POLICY, batch_size=100)
        writer = AsyncCacheAside(topology.async_client, async_sqlite_database(0), POLICY)
        progress = SeedProgress("pipelined", 100, 0.0)
        seeding = asyncio.ensure_future(seeder.seed_pipelined(progress))
        await asyncio.wait_for(async_gated.read_done.wait(), GATE_SECONDS)

    # The batch 1..100 has been read at version 0 and is held; the writer updates user 42.
    update = writer.update(42) if twin == "sync" else await writer.update(42)
    assert update.record.version == 1
    (gated if twin == "sync" else async_gated).gate.set()
    report = await seeding

    assert (report.written, report.skipped) == (99, 1)  # every record but the one updated meanwhile
    assert topology.get("user-42") is None  # its old version never reached the cache
    assert b'"version":0' in (topology.get("user-41") or b"")
    fresh = writer.lookup(42) if twin == "sync" else await writer.lookup(42)
    assert (fresh.source, fresh.record.version) == (Source.DATABASE, 1)
    await close(gated if twin == "sync" else async_gated)


async def close(database: Database | AsyncDatabase) -> None:
    if isinstance(database, Database):
        database.close()
    else:
        await database.aclose()
