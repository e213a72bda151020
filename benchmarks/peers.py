"""Benchmark I/O: other Python caching libraries on Redis, each used as its documentation shows.

cashews (`@cache(ttl=...)`, its `lock=True` option, and `await cache.get(key)`), aiocache
(`@cached(cache=Cache.REDIS)` and `@cached_stampede`) and dogpile.cache
(`region.get_or_create` on the `dogpile.cache.redis` backend, from threads). Each is set up
with its defaults on the run's private server, keys under `bench:<library>:`, and loads
from the same database as ours: `AsyncDatabase.fetch` / `Database.fetch` with the same
simulated delay, returning the record encoded as the demo stores it. `concurrency.py` runs
them through the same scenarios as ours. A library is imported only when the benchmark
runs it (`importlib`: none of them is a dependency of the demo or of CI); one that is not
installed is recorded as such and its rows say so.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlsplit

from benchmarks.contenders import Answer, AsyncCache, Contender, SyncCache
from benchmarks.measurements import Measurements
from benchmarks.plan import POLICY, PREFIX
from config.redis import RedisClients
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.records import encode_record

TTL_SECONDS = POLICY.ttl_seconds
Loader = Callable[[int], Awaitable[str | None]]  # what an async library's decorator wraps


async def load(database: AsyncDatabase, user_id: int) -> str | None:
    """The loader every async library calls: one database read, the record as the demo encodes it."""
    record = await database.fetch(user_id)
    return None if record is None else encode_record(record)


def load_sync(database: Database, user_id: int) -> str | None:
    """The loader of a blocking library: one database read, the record as the demo encodes it."""
    record = database.fetch(user_id)
    return None if record is None else encode_record(record)


def _keys(namespace: str) -> Callable[[int], str]:
    return lambda user_id: f"{namespace}user-{user_id}"


# --- cashews ---


async def _cashews(clients: RedisClients) -> Any:
    """A cashews cache on the run's Redis: `Cache().setup(url)`, as its README's `cache.setup("redis://...")`.

    A fresh instance rather than the module's `cashews.cache`: its Redis client belongs to
    the event loop it was initialised in, and every scenario runs in a loop of its own.
    """
    cashews = importlib.import_module("cashews")
    cache = cashews.Cache()
    cache.setup(clients.settings.redis_url)
    await cache.init()
    return cache


async def cashews_cache(clients: RedisClients, database: AsyncDatabase, *, lock: bool = False) -> AsyncCache:
    """`@cache(ttl=..., key=...)`, cashews' default decorator (lock=True: its Redis lock around a miss)."""
    cache = await _cashews(clients)
    namespace = f"{PREFIX}cashews{'-lock' if lock else ''}:"

    # cashews is imported at run time (mypy sees Any): what its decorator takes and gives
    cached: Callable[[Loader], Loader] = cache(ttl=TTL_SECONDS, key=namespace + "user-{user_id}", lock=lock)

    @cached
    async def get_user(user_id: int) -> str | None:
        return await load(database, user_id)

    async def lookup(user_id: int) -> Answer:
        return Answer(await get_user(user_id))

    return AsyncCache(lookup, _keys(namespace), cache.close)


async def cashews_locked(clients: RedisClients, database: AsyncDatabase) -> AsyncCache:
    """`@cache(ttl=..., key=..., lock=True)`."""
    return await cashews_cache(clients, database, lock=True)


async def cashews_get(clients: RedisClients, database: AsyncDatabase) -> AsyncCache:
    """`await cache.get(key)`, then on a miss the loader and `await cache.set(key, value, expire=ttl)`."""
    cache = await _cashews(clients)
    namespace = f"{PREFIX}cashews-get:"

    async def lookup(user_id: int) -> Answer:
        key = f"{namespace}user-{user_id}"
        value = await cache.get(key)
        if value is None:
            value = await load(database, user_id)
            await cache.set(key, value, expire=TTL_SECONDS)
        return Answer(value)

    return AsyncCache(lookup, _keys(namespace), cache.close)


# --- aiocache ---


async def aiocache_cached(clients: RedisClients, database: AsyncDatabase, *, stampede: bool = False) -> AsyncCache:
    """`@cached(ttl=..., cache=Cache.REDIS, endpoint=..., port=..., namespace=...)` (or `@cached_stampede`)."""
    aiocache = importlib.import_module("aiocache")
    parts = urlsplit(clients.settings.redis_url)
    namespace = f"{PREFIX}aiocache{'-stampede' if stampede else ''}"
    options: dict[str, Any] = {
        "ttl": TTL_SECONDS,
        "cache": aiocache.Cache.REDIS,
        "endpoint": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": int(parts.path.strip("/") or 0),
        "namespace": namespace,
        "key_builder": lambda function, user_id: f"user-{user_id}",
    }
    if parts.password:
        options["password"] = unquote(parts.password)
    if parts.username:
        options["connection_pool_kwargs"] = {"username": unquote(parts.username)}
    decorator = aiocache.cached_stampede if stampede else aiocache.cached

    # aiocache is imported at run time (mypy sees Any): its decorator takes a loader, gives one with `.cache`
    cached: Callable[[Loader], Any] = decorator(**options)

    @cached
    async def get_user(user_id: int) -> str | None:
        return await load(database, user_id)

    async def lookup(user_id: int) -> Answer:
        return Answer(await get_user(user_id))

    return AsyncCache(lookup, _keys(f"{namespace}:"), get_user.cache.close)


async def aiocache_stampede(clients: RedisClients, database: AsyncDatabase) -> AsyncCache:
    """`@cached_stampede(ttl=..., ...)`: its Redis lock (lease 2 s, the default) around a miss."""
    return await aiocache_cached(clients, database, stampede=True)


# --- dogpile.cache ---


def dogpile_region(clients: RedisClients, database: Database) -> SyncCache:
    """`make_region().configure("dogpile.cache.redis", ...)` and `region.get_or_create(key, creator)`.

    Its defaults: one in-process mutex per key (`distributed_lock=False`) and pickled
    values; `redis_expiration_time` as its documentation's example sets it, so Redis
    expires what dogpile stores.
    """
    dogpile_cache = importlib.import_module("dogpile.cache")
    region = dogpile_cache.make_region().configure(
        "dogpile.cache.redis",
        expiration_time=TTL_SECONDS,
        arguments={"url": clients.settings.redis_url, "redis_expiration_time": 2 * TTL_SECONDS},
    )
    namespace = f"{PREFIX}dogpile:"

    def lookup(user_id: int) -> Answer:
        value = region.get_or_create(f"{namespace}user-{user_id}", lambda: load_sync(database, user_id))
        return Answer(value)

    return SyncCache(lookup, _keys(namespace), region.backend.writer_client.close)


# distribution name: its contenders, in the order the table shows them
LIBRARIES: dict[str, tuple[Contender, ...]] = {
    "cashews": (
        Contender("cashews", "cashews", build_async=cashews_cache, loggers=("cashews",)),
        Contender("cashews-lock", "cashews", build_async=cashews_locked, loggers=("cashews",)),
        Contender("cashews-get", "cashews", build_async=cashews_get, hit_only=True, loggers=("cashews",)),
    ),
    "aiocache": (
        Contender("aiocache", "aiocache", build_async=aiocache_cached, loggers=("aiocache",)),
        Contender("aiocache-stampede", "aiocache", build_async=aiocache_stampede, loggers=("aiocache",)),
    ),
    "dogpile.cache": (Contender("dogpile", "dogpile.cache", build_sync=dogpile_region, loggers=("dogpile",)),),
}


def contenders(measurements: Measurements) -> list[Contender]:
    """The installed peers' contenders; every library's version (None: not installed) goes in `measurements`."""
    found: list[Contender] = []
    for library, library_contenders in LIBRARIES.items():
        try:
            measurements.peers[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            measurements.peers[library] = None
            continue
        found += library_contenders
    return found
