"""What the speed-ups rest on: concurrent lookups share one GET and one fill, an async pool
that waits for a free connection, SQLite reads that never see a transaction half done,
scripts that reach a server which lost them, and a seed value equal to a fill's.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from config.database import AsyncSqliteConnector
from config.speedups import WaitingConnectionPool
from simulator._sync.backend import SingleFlight
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.results import Filled, Source
from simulator.seeding import seed_value
from simulator.simulate_cache_db_flow import AsyncCacheAside
from tests.twins import EVENT_WAIT_SECONDS, async_sqlite_database, wait_until


class CountingClient:
    """An asyncio client that counts the commands a lookup sends, one per call."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self.sent: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in {"get", "evalsha", "eval"}:
            return attribute

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.sent[name] += 1
            return await attribute(*args, **kwargs)

        return counted


async def test_concurrent_lookups_of_one_id_share_one_get_and_one_fill(async_client: redis.asyncio.Redis) -> None:
    await async_client.set("user-7", encode_record(user_record(7)), ex=3600)
    counting = CountingClient(async_client)
    database = async_sqlite_database(0.001)
    cache = AsyncCacheAside(counting, database, CachePolicy())
    await cache.lookup(6)  # a miss of another id: the server now has the scripts
    counting.sent.clear()
    database.reads.value = 0
    hits = await asyncio.gather(*(cache.lookup(7) for _ in range(50)))
    assert {result.source for result in hits} == {Source.CACHE}
    assert sum(counting.sent.values()) == 1  # one read (GET and PTTL in one script: its first hit here)
    counting.sent.clear()
    misses = await asyncio.gather(*(cache.lookup(8) for _ in range(50)))
    assert {result.record for result in misses} == {user_record(8)}
    assert sum(result.shared for result in misses) == 49
    assert database.reads.value == 1
    assert sum(counting.sent.values()) == 3  # one read, one claim, one store for all fifty


def test_the_sync_single_flight_makes_a_future_only_for_a_caller_that_waits() -> None:
    flight: SingleFlight[str] = SingleFlight()
    assert flight.run(1, lambda: "alone") == ("alone", False)
    assert not flight.in_flight(1)
    leader_may_finish, calls = threading.Event(), []

    def fill() -> str:
        calls.append(1)
        leader_may_finish.wait(EVENT_WAIT_SECONDS)
        return "shared"

    outcomes: list[tuple[str, bool]] = []
    leader = threading.Thread(target=lambda: outcomes.append(flight.run(2, fill)))
    leader.start()
    wait_until(lambda: flight.in_flight(2), "the leader's fill to start")
    follower = threading.Thread(target=lambda: outcomes.append(flight.run(2, fill)))
    follower.start()
    wait_until(lambda: flight._flights.get(2) is not None, "the follower to wait")  # it made the future
    leader_may_finish.set()
    leader.join(EVENT_WAIT_SECONDS)
    follower.join(EVENT_WAIT_SECONDS)
    assert sorted(outcomes) == [("shared", False), ("shared", True)]
    assert calls == [1]
    assert not flight.in_flight(2)


def test_the_sync_single_flight_hands_a_failure_to_the_caller_that_waited() -> None:
    flight: SingleFlight[str] = SingleFlight()
    leader_may_fail = threading.Event()

    def fill() -> str:
        leader_may_fail.wait(EVENT_WAIT_SECONDS)
        raise redis.ConnectionError("gone")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            flight.run(3, fill)
        except redis.ConnectionError as error:
            errors.append(error)

    leader = threading.Thread(target=run)
    leader.start()
    wait_until(lambda: flight.in_flight(3), "the leader's fill to start")
    follower = threading.Thread(target=run)
    follower.start()
    wait_until(lambda: flight._flights.get(3) is not None, "the follower to wait")
    leader_may_fail.set()
    leader.join(EVENT_WAIT_SECONDS)
    follower.join(EVENT_WAIT_SECONDS)
    assert [str(error) for error in errors] == ["gone", "gone"]
    assert not flight.in_flight(3)


async def test_the_async_pool_waits_for_a_released_connection_instead_of_failing() -> None:
    client = fakeredis.FakeAsyncRedis(connection_pool_class=WaitingConnectionPool, max_connections=2)
    pool = client.connection_pool
    first, second = await pool.get_connection(), await pool.get_connection()
    third = asyncio.create_task(pool.get_connection())
    await asyncio.sleep(0)
    assert not third.done()  # all in use: it waits (the default pool would raise "Too many connections")
    await pool.release(first)
    assert await asyncio.wait_for(third, EVENT_WAIT_SECONDS) is first
    pool.timeout = 0.01
    with pytest.raises(redis.ConnectionError, match="No connection available"):
        await pool.get_connection()
    await pool.release(second)
    await pool.release(first)
    assert await client.ping()  # every place given back: the pool still works
    await client.aclose()


async def test_an_async_read_never_sees_a_transaction_half_done(tmp_path: Any) -> None:
    connector = AsyncSqliteConnector(str(tmp_path / "rows.db"), 5.0)
    async with connector.transaction() as session:
        await session.execute("CREATE TABLE t (v INTEGER)")
        await session.execute("INSERT INTO t VALUES (1)")
    async with connector.transaction() as session:
        await session.execute("UPDATE t SET v = 2")
        async with connector.session() as reader:  # the reader is not held back by the open transaction...
            assert await reader.query("SELECT v FROM t") == [(1,)]  # ...and sees only what was committed
    async with connector.session() as reader:
        assert await reader.query("SELECT v FROM t") == [(2,)]
    await connector.aclose()


async def test_a_lookup_reaches_a_server_that_lost_the_scripts(async_client: redis.asyncio.Redis) -> None:
    counting = CountingClient(async_client)
    cache = AsyncCacheAside(counting, async_sqlite_database(0.001), CachePolicy())
    await async_client.set("user-9", encode_record(user_record(9)), ex=3600)
    await async_client.script_flush()  # a restarted server, or a cluster node that never had them
    assert (await cache.lookup(9)).source is Source.CACHE
    assert counting.sent == {"evalsha": 2}  # loaded on the key's own server between them; never EVAL (not in the ACL)


@pytest.mark.parametrize("found", [True, False])
def test_a_seeded_value_is_what_a_fill_would_store(found: bool) -> None:
    policy = CachePolicy(ttl_seconds=3600, ttl_jitter=0.1, random=random.Random(3).random)
    same = CachePolicy(ttl_seconds=3600, ttl_jitter=0.1, random=random.Random(3).random)
    record = user_record(11) if found else None
    filled = Filled.from_database(11, record)
    assert seed_value(11, record, policy) == (filled.value, same.ttl_of(filled.record))
