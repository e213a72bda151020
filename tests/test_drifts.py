"""Four one-sided changes to the async twin once passed every test; each is now a behaviour both twins must show.

1. a background refresh whose database error escaped ("Task exception was never retrieved");
2. single flight handing its followers a CancelledError instead of the leader's error;
3. an async SQLite transaction left open after a failure, so every later `update` failed;
4. `aclose` no longer ending the background refreshes.
The sync twin is generated from the async one (tests/test_generated.py), so a change to one twin
alone cannot happen; these tests hold what the code must do, whoever writes it.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from config.database import AsyncSqliteConnector, DatabaseError, SqliteConnector
from simulator._async.database import AsyncDatabase
from simulator._sync import backend
from simulator._sync.database import Database
from simulator.policy import CachePolicy
from simulator.records import UserRecord, encode_record, user_record
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from tests.conftest import AsyncGatedDatabase, GatedDatabase
from tests.twins import EVENT_WAIT_SECONDS, await_until, wait_until

# XFetch refreshes when last_fetch * beta * -ln(u) reaches the time left: with this beta, every hit refreshes.
ALWAYS_REFRESH = CachePolicy(early_refresh=True, early_refresh_beta=1e12, random=lambda: 0.5)


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FailingAfter(Database):
    """A database whose reads fail after the first `good` ones."""

    def __init__(self, good: int) -> None:
        super().__init__(SqliteConnector("users.db", 5.0), 0)
        self.good = good

    def fetch(self, user_id: int) -> UserRecord | None:
        if self.reads.value >= self.good:
            self.reads.increment()
            raise DatabaseError("the database went away")
        return super().fetch(user_id)


class AsyncFailingAfter(AsyncDatabase):
    """The async twin's FailingAfter."""

    def __init__(self, good: int) -> None:
        super().__init__(AsyncSqliteConnector("users.db", 5.0), 0)
        self.good = good

    async def fetch(self, user_id: int) -> UserRecord | None:
        if self.reads.value >= self.good:
            self.reads.increment()
            raise DatabaseError("the database went away")
        return await super().fetch(user_id)


@pytest.fixture
def unhandled() -> Iterator[list[str]]:
    """What escaped into the background: a thread's exception, or a task's nobody retrieved."""
    escaped: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda hook: escaped.append(repr(hook.exc_value))
    yield escaped
    threading.excepthook = previous


# --- 1. a failing early refresh is silent and leaves the old value ---


async def test_a_background_refresh_that_fails_escapes_nowhere(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, unhandled: list[str]
) -> None:
    if name == "async":
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unhandled.append(str(context)))
    cache: CacheAside | AsyncCacheAside
    if name == "sync":
        cache = CacheAside(sync_client, FailingAfter(good=1), ALWAYS_REFRESH)
        cache.lookup(42)  # the one good read: stored
        assert cache.lookup(42).record == user_record(42)  # a hit, which starts a refresh that fails
        wait_until(lambda: cache.database.reads.value == 2, "the refresh to read")
        cache.close()
    else:
        cache = AsyncCacheAside(async_client, AsyncFailingAfter(good=1), ALWAYS_REFRESH)
        await cache.lookup(42)
        assert (await cache.lookup(42)).record == user_record(42)
        await await_until(lambda: cache.database.reads.value == 2, "the refresh to read")
        await await_until(lambda: all(worker.done() for worker in cache.refreshes), "the refresh to end")
        await cache.lookup(42)  # another hit: it forgets the refresh that ended (and starts one more)
        await await_until(lambda: cache.database.reads.value == 3, "the next refresh to read")
        gc.collect()  # a task exception nobody retrieved is reported when the task is collected
        await cache.aclose()
    assert unhandled == []
    assert sync_client.get("user-42") == encode_record(user_record(42)).encode()  # the old value stays


# --- 2. single flight's followers get the leader's error ---


async def test_lookups_that_shared_a_failing_read_all_get_its_error(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    outcomes: list[Any]
    if name == "sync":
        cache = CacheAside(sync_client, FailingAfter(good=0), CachePolicy())
        outcomes = backend.gather([lambda: cache.lookup(42)] * 20)
    else:
        async_cache = AsyncCacheAside(async_client, AsyncFailingAfter(good=0), CachePolicy())
        outcomes = await asyncio.gather(*(async_cache.lookup(42) for _ in range(20)), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [DatabaseError] * 20  # the leader's error; none cancelled
    assert all(str(outcome) == "the database went away" for outcome in outcomes)
    assert sync_client.get("user-42") is None  # no lease left behind for the next lookup to wait on


# --- 3. a transaction that failed leaves the database usable ---


async def test_an_update_that_fails_rolls_back_and_the_next_one_works(name: str) -> None:
    with sqlite3.connect("users.db") as connection:
        connection.execute("UPDATE users SET name = x'00ff' WHERE id = 42")  # an update of 42 fails inside
    database: Any = (
        Database(SqliteConnector("users.db", 5.0), 0)
        if name == "sync"
        else AsyncDatabase(AsyncSqliteConnector("users.db", 5.0), 0)
    )

    async def run(outcome: Any) -> Any:
        return await outcome if asyncio.iscoroutine(outcome) else outcome

    await run(database.filled_to())
    with pytest.raises(DatabaseError, match="user 42's row is not a valid user"):
        await run(database.update(42))
    updated = await run(database.update(7))  # the failed transaction was rolled back, not left open
    assert updated.version == 1
    assert (await run(database.fetch(7))) == updated
    await run(database.close() if name == "sync" else database.aclose())
    with sqlite3.connect("users.db") as connection:
        assert connection.execute("SELECT version FROM users WHERE id = 42").fetchone() == (0,)  # rolled back


# --- 4. closing ends the background refreshes ---


async def test_closing_ends_the_refreshes_running_in_the_background(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    sync_client.set("user-42", encode_record(user_record(42)), ex=3600)
    if name == "sync":
        database = GatedDatabase("users.db")
        cache: CacheAside | AsyncCacheAside = CacheAside(sync_client, database, ALWAYS_REFRESH)
        database.gate.set()
        cache.lookup(43)  # one read, through the open gate: XFetch now knows what a read costs
        database.gate.clear()
        database.read_done.clear()
        cache.lookup(42)  # a hit: its refresh is held in the database
        assert database.read_done.wait(EVENT_WAIT_SECONDS)
        database.gate.set()  # a thread cannot be cancelled: close waits for it to end
        cache.close()
    else:
        async_database = AsyncGatedDatabase("users.db")
        cache = AsyncCacheAside(async_client, async_database, ALWAYS_REFRESH)
        async_database.gate.set()
        await cache.lookup(43)  # one read, through the open gate: XFetch now knows what a read costs
        async_database.gate.clear()
        async_database.read_done.clear()
        await cache.lookup(42)
        await asyncio.wait_for(async_database.read_done.wait(), EVENT_WAIT_SECONDS)
        await cache.aclose()  # the gate never opens: the refresh must be ended, not waited for
    assert cache.refreshes
    assert all(worker.done() for worker in cache.refreshes)  # closed, and no refresh left running behind it
