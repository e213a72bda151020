"""Benchmark, definitions: the shape every contender of the concurrency scenarios takes, and ours.

A contender is ours or a peer library, built on the run's Redis and a database it loads
from, as an `AsyncCache` or a `SyncCache`: a lookup that gives an `Answer`, the key a user's
value lives under, and a way to close it. The types live here, apart from the runner
(`concurrency.py`), because both the runner and `peers.py` need them and the runner imports
the peers: this module must never import either, so the imports never form a cycle. Building ours
creates the demo's shells and sends nothing; nothing here runs a lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.plan import POLICY
from config.redis import RedisClients
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside


@dataclass(frozen=True, slots=True)
class Answer:
    """One lookup's answer, whoever gave it: the value, and whether the cache was left out."""

    value: str | None
    degraded: bool = False


@dataclass(frozen=True)
class AsyncCache:
    """A contender built in the running event loop: one lookup, the key a user's value lives under, and aclose."""

    lookup: Callable[[int], Awaitable[Answer]]
    key: Callable[[int], str]
    aclose: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class SyncCache:
    """A blocking contender: one lookup (called from many threads), the key of a user's value, and close."""

    lookup: Callable[[int], Answer]
    key: Callable[[int], str]
    close: Callable[[], object]


@dataclass(frozen=True)
class Contender:
    """Ours or a peer library, as its builder sets it up on the run's Redis and a database it loads from."""

    name: str  # "ours-async", "cashews", ...: the figures' key
    library: str  # "ours", or the peer's distribution name
    build_async: Callable[[RedisClients, AsyncDatabase], Awaitable[AsyncCache]] | None = None
    build_sync: Callable[[RedisClients, Database], SyncCache] | None = None
    hit_only: bool = False  # measured for a hit's cost only
    loggers: tuple[str, ...] = ()  # where the library logs the failures it answers past


async def _ours_async(clients: RedisClients, database: AsyncDatabase) -> AsyncCache:
    cache = AsyncCacheAside(clients.async_client(), database, POLICY)

    async def lookup(user_id: int) -> Answer:
        result = await cache.lookup(user_id)
        return Answer(result.value, result.degraded)

    return AsyncCache(lookup, POLICY.key, cache.aclose)


def _ours_sync(clients: RedisClients, database: Database) -> SyncCache:
    cache = CacheAside(clients.sync_client(), database, POLICY)

    def lookup(user_id: int) -> Answer:
        result = cache.lookup(user_id)
        return Answer(result.value, result.degraded)

    return SyncCache(lookup, POLICY.key, cache.close)


OURS = (
    Contender("ours-async", "ours", build_async=_ours_async),
    Contender("ours-sync", "ours", build_sync=_ours_sync),
)
