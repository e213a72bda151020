"""Against a real redis-server (private, started by the fixtures): seeding, lookups, the singleton, start-up."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cli.messages import StartupError
from cli.startup import aconnect, connect
from config.redis import RedisClients, get_redis
from config.settings import Settings
from simulator.entries import LEASE_PREFIX, MAX_LEASE_MS
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.results import Source
from simulator.seeding import SeedProgress, SeedReport
from simulator.simulate_cache_db_flow import (
    AsyncSeeder,
    Seeder,
    set_redis_with_mock_data,
    set_redis_with_mock_data_async,
    set_redis_with_mock_data_async_aioredis,
)
from tests.twins import assert_ttl_given, async_sqlite_database, make_twin, sqlite_database, watch_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def assert_seeded(client: redis.Redis, count: int, ttl: int = 3600) -> None:
    """Every id 1..count is present, expires, and equals the database record; nothing else is there."""
    assert client.dbsize() == count
    for user_id in range(1, count + 1):
        assert client.get(f"user-{user_id}") == encode_record(user_record(user_id)).encode()
    assert all(0 < client.ttl(f"user-{user_id}") <= ttl for user_id in range(1, count + 1, 97))


# The flow diagram's three seeding paths, by the names main.py and main_async.py call them.


def test_seeding_sequentially_one_set_per_round_trip(client: redis.Redis) -> None:
    seeder = Seeder(client, sqlite_database(0), CachePolicy(ttl_seconds=120), 64)
    report = set_redis_with_mock_data(seeder, SeedProgress("sequential", 300, time.perf_counter()))
    assert (report.mode, report.written, report.stopped) == ("sequential", 300, False)
    assert_seeded(client, 300, ttl=120)


def test_seeding_in_a_background_thread(client: redis.Redis) -> None:
    ended: list[tuple[SeedReport, Exception | None]] = []
    seeder = Seeder(client, sqlite_database(0), CachePolicy(), 200)
    progress = SeedProgress("threaded", 1500, time.perf_counter())
    background = set_redis_with_mock_data_async(seeder, progress, lambda report, error: ended.append((report, error)))
    report = background.wait()
    assert (report.mode, report.written, report.stopped) == ("threaded", 1500, False)
    assert ended == [(report, None)]
    assert_seeded(client, 1500)


async def test_seeding_with_asyncio_pipelines(redis_url: str, client: redis.Redis) -> None:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    seeder = AsyncSeeder(async_client, async_sqlite_database(0), CachePolicy(), 250)
    progress = SeedProgress("pipelined", 1500, time.perf_counter())
    background = set_redis_with_mock_data_async_aioredis(seeder, progress, lambda report, error: None)
    report = await background.wait()
    await async_client.aclose()
    assert (report.mode, report.written) == ("pipelined", 1500)
    assert_seeded(client, 1500)


async def test_the_other_two_seed_paths_sync_pipelined_and_async_sequential(
    redis_url: str, client: redis.Redis
) -> None:
    Seeder(client, sqlite_database(0), CachePolicy(), 100).seed_pipelined(SeedProgress("p", 400, time.perf_counter()))
    assert_seeded(client, 400)
    client.flushdb()
    async_client = redis.asyncio.Redis.from_url(redis_url)
    seeder = AsyncSeeder(async_client, async_sqlite_database(0), CachePolicy(), 100)
    await seeder.seed_sequential(SeedProgress("s", 400, time.perf_counter()))
    await async_client.aclose()
    assert_seeded(client, 400)


@pytest.mark.parametrize("name", ["sync", "async"])
async def test_a_miss_then_a_hit_on_a_real_server(name: str, redis_url: str, client: redis.Redis) -> None:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    twin = make_twin(name, client, async_client, CachePolicy(ttl_seconds=90), latency_seconds=0.02)
    started = time.time()
    miss = await twin.lookup(4321)
    ended = time.time()
    hit = await twin.lookup(4321)
    await async_client.aclose()
    assert (miss.source, hit.source) == (Source.DATABASE, Source.CACHE)
    assert miss.elapsed_seconds >= 0.02  # a miss waits for the database: a lower bound, never a margin
    assert twin.database_reads == 1  # the hit did not (how fast it was is the benchmark's business)
    assert json.loads(hit.value) == json.loads(encode_record(user_record(4321)))
    assert_ttl_given(client, "user-4321", started, ended, 90)


HOSTILE_VALUES = {
    "an empty value": (b"", None),
    "deeply nested JSON": (b"[" * 1100 + b"]" * 1100, 60_000),
    "a large value": (b"x" * 200_000, 60_000),
    "a record with no expiry": (encode_record(user_record(77, version=3)).encode(), None),
    "a lease with no expiry": (LEASE_PREFIX + b'left-by-another-client"}', None),
    "a lease longer than any the demo writes": (LEASE_PREFIX + b'left-by-another-client"}', MAX_LEASE_MS + 60_000),
}


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("name", ["sync", "async"])
async def test_a_hostile_value_under_a_demo_key_is_answered_from_the_database_and_repaired(
    name: str, value: str, redis_url: str, client: redis.Redis
) -> None:
    """The scripts' Lua runs on a real server: every value another client can write is handled there too."""
    raw, life_ms = HOSTILE_VALUES[value]
    client.set("user-77", raw, px=life_ms)
    async_client = redis.asyncio.Redis.from_url(redis_url)
    twin = make_twin(name, client, async_client, CachePolicy(ttl_seconds=90), latency_seconds=0.001)
    first, second = await twin.lookup(77), await twin.lookup(77)
    await async_client.aclose()
    assert (first.source, first.record, first.stored) == (Source.DATABASE, user_record(77), True)
    assert second.source is Source.CACHE
    assert client.get("user-77") == encode_record(user_record(77)).encode()
    assert 0 < client.ttl("user-77") <= 90


# --- the singleton ---


def test_get_redis_is_one_instance_per_settings_even_across_threads(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, redis_configured=True)
    seen: list[RedisClients] = []
    threads = [threading.Thread(target=lambda: seen.append(get_redis(settings))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(clients) for clients in seen}) == 1
    clients = seen[0]
    assert clients.sync_client() is clients.sync_client()


def test_creating_the_clients_connects_nothing(free_port: int) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port}/0", redis_configured=True)
    clients = get_redis(settings)
    client = clients.sync_client()  # nothing listens there: building the client must not fail
    assert client.connection_pool.get_connection is not None
    with pytest.raises(redis.ConnectionError):
        client.ping()
    clients.close()


async def test_the_async_client_belongs_to_its_event_loop(redis_url: str) -> None:
    clients = get_redis(Settings(redis_url=redis_url, redis_configured=True))
    first = clients.async_client()
    assert first is clients.async_client()
    assert await first.ping()
    await clients.aclose()
    second = clients.async_client()
    assert second is not first
    assert await second.set("user-1", "x", ex=10)
    await clients.aclose()


def test_sync_and_async_clients_use_explicit_short_timeouts(redis_url: str) -> None:
    clients = get_redis(Settings(redis_url=redis_url, redis_configured=True))
    options = clients.sync_client().connection_pool.connection_kwargs
    assert options["socket_timeout"] <= 1.0
    assert options["socket_connect_timeout"] <= 1.0

    async def async_options() -> dict[str, object]:
        kwargs = dict(clients.async_client().connection_pool.connection_kwargs)
        await clients.aclose()
        return kwargs

    assert asyncio.run(async_options())["socket_timeout"] == options["socket_timeout"]
    clients.close()


# --- start-up ---


async def start(connector: str, settings: Settings) -> tuple[RedisClients, str]:
    """Connect the way one twin does."""
    return connect(settings) if connector == "sync" else await aconnect(settings)


def test_connect_pings_a_configured_server(redis_url: str) -> None:
    clients, line = connect(Settings(redis_url=redis_url, redis_configured=True))
    assert line == f"Connected to Redis at {redis_url}"
    clients.close()


@pytest.mark.parametrize("connector", ["sync", "async"])
async def test_an_unreachable_configured_server_is_one_clear_error(
    connector: str, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(redis_url=f"redis://demo:s3cret@127.0.0.1:{free_port}/0", redis_configured=True)
    traffic = watch_redis(monkeypatch)
    with pytest.raises(StartupError) as raised:
        await start(connector, settings)
    # Quick by construction: a refusal costs no time, so what must not happen is redis-py's
    # default of several retries with backoff. One try and at most one retry, then the error.
    assert traffic.connects in ([f"127.0.0.1:{free_port}"], [f"127.0.0.1:{free_port}"] * 2)
    message = str(raised.value)
    assert message.startswith(f"Cannot use Redis at redis://demo:****@127.0.0.1:{free_port}/0: connection refused")
    assert "docker compose up -d redis" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("connector", ["sync", "async"])
async def test_with_nothing_configured_and_nothing_listening_the_embedded_redis_stands_in(
    connector: str, free_port: int
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port}/0", redis_configured=False)
    if connector == "sync":
        clients, line = connect(settings)
        assert clients.sync_client().set("user-1", "x", ex=5)
    else:
        clients, line = await aconnect(settings)
        assert await clients.async_client().set("user-1", "x", ex=5)
        await clients.aclose()
    assert clients.embedded
    assert "embedded in-memory Redis" in line


def test_the_embedded_sync_and_async_clients_share_one_server() -> None:
    clients = get_redis(Settings(redis_url="memory://", redis_configured=True))
    clients.sync_client().set("user-1", "shared", ex=5)

    async def read() -> bytes | None:
        value = await clients.async_client().get("user-1")
        await clients.aclose()
        return value

    assert asyncio.run(read()) == b"shared"


@pytest.mark.parametrize("connector", ["sync", "async"])
async def test_wrong_credentials_are_an_authentication_failure(
    connector: str, redis_server: object, redis_url: str, client: redis.Redis
) -> None:
    client.acl_setuser("demo-user", enabled=True, passwords=["+right-password"], keys=["*"], commands=["+@all"])
    try:
        url = redis_url.replace("redis://", "redis://demo-user:wrong-password@")
        with pytest.raises(StartupError) as raised:
            await start(connector, Settings(redis_url=url, redis_configured=True))
        assert "authentication failed" in str(raised.value)
        assert "wrong-password" not in str(raised.value)
    finally:
        client.acl_deluser("demo-user")
