"""When Redis fails: both twins keep answering from the database, warn once, and recover by themselves.

Every test runs a private redis-server it kills (SIGKILL), freezes (SIGSTOP), thaws,
restarts on the same port, fills, or starts with a short idle timeout. Nothing is timed:
how fast a failure is answered is counted on the wire (connection attempts, commands
sent: one timeout, not eleven; nothing at all while the breaker is open), and the
breaker's cool-down passes on a clock the test moves, not by waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from cli.answers import warning_of
from config.redis import get_redis
from config.settings import Settings
from simulator.breaker import CacheEvent, CircuitBreakers
from simulator.records import encode_record, user_record
from simulator.results import Source
from simulator.seeding import SeedProgress
from tests.servers import RedisServer
from tests.twins import Twin, app_twin, wait_until, watch_redis

pytestmark = pytest.mark.integration
LATENCY = 0.05
COOLDOWN = 1.0


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(start_redis: Callable[..., RedisServer]) -> RedisServer:
    return start_redis()


@pytest.fixture
async def events() -> list[CacheEvent]:
    return []


class Clock:
    """The breakers' clock, moved by the test: a cool-down ends when the test says, however loaded the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def twin(name: str, server: RedisServer, events: list[CacheEvent], clock: Clock) -> AsyncIterator[Twin]:
    settings = Settings(
        redis_url=server.url,
        redis_configured=True,
        db_latency_seconds=LATENCY,
        cache_cooldown_seconds=COOLDOWN,
        seed_batch_size=500,
    )
    twin = app_twin(name, settings, events)
    twin.cache.breakers = CircuitBreakers(COOLDOWN, clock)  # the demo's breakers, on the test's clock
    yield twin
    clients = get_redis(settings)
    clients.close()
    await clients.aclose()


def fill(client: redis.Redis) -> None:
    """Write until Redis refuses: maxmemory reached."""
    for number in range(100_000):
        client.set(f"filler-{number}", "x" * 1000)


def answering(server: RedisServer) -> None:
    """Wait until the server answers again (after a thaw or a restart): an event, not a pause."""
    with server.admin(socket_timeout=5) as admin:
        wait_until(admin.ping, f"{server.address} to answer")


async def after_the_cool_down(twin: Twin, clock: Clock, user_id: int) -> object:
    """The cool-down ends: the next lookup probes Redis (once) and, if it answers, uses it again."""
    clock.advance(COOLDOWN)
    return await twin.lookup(user_id)


async def test_a_killed_server_is_answered_around_from_the_database_with_one_warning(
    twin: Twin, server: RedisServer, events: list[CacheEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await twin.lookup(1)).source is Source.DATABASE
    assert (await twin.lookup(1)).source is Source.CACHE
    server.kill()
    traffic = watch_redis(monkeypatch)
    result = await twin.lookup(1)
    assert result.degraded
    assert result.source is Source.DATABASE
    assert result.record == user_record(1)
    # Quick without a clock: the dropped connection is reopened once, and retried at most once, both refused.
    assert traffic.connects in ([], [server.address], [server.address] * 2)
    tried = traffic.total
    for user_id in (2, 3, 1_500_000):  # the breaker is open: only the database is asked
        assert (await twin.lookup(user_id)).degraded
    assert traffic.total == tried  # not one connection, not one command
    assert [event.available for event in events] == [False]
    assert "connection refused" in events[0].reason
    assert twin.cache.stats.snapshot().degraded == 4


async def test_a_frozen_server_costs_one_timeout_then_the_breaker_skips_it(
    twin: Twin, server: RedisServer, events: list[CacheEvent], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await twin.lookup(1)
    server.freeze()
    traffic = watch_redis(monkeypatch)
    assert (await twin.lookup(1)).degraded
    # One command, one socket timeout: a timeout is not retried (redis-py's default would be 10 retries of 5 s).
    assert (traffic.sends, traffic.connects) == (1, [])
    assert (await twin.lookup(2)).degraded
    assert (traffic.sends, traffic.connects) == (1, [])  # the breaker is open: Redis is not asked
    server.thaw()
    answering(server)
    result = await after_the_cool_down(twin, clock, 1)
    assert (result.source, result.degraded) == (Source.CACHE, False)
    assert [event.available for event in events] == [False, True]
    assert "timed out" in events[0].reason


async def test_a_restarted_empty_server_is_used_again_by_the_same_program(
    twin: Twin, server: RedisServer, events: list[CacheEvent], clock: Clock
) -> None:
    await twin.lookup(7)
    server.kill()
    assert (await twin.lookup(7)).degraded
    server.restart()  # same port, no data
    answering(server)
    assert not (await after_the_cool_down(twin, clock, 8)).degraded
    assert (await twin.lookup(9)).source is Source.DATABASE
    assert (await twin.lookup(9)).source is Source.CACHE
    assert [event.available for event in events] == [False, True]


async def test_idle_longer_than_the_servers_client_timeout_is_no_failure(
    name: str, start_redis: Callable[..., RedisServer], events: list[CacheEvent]
) -> None:
    server = start_redis("--timeout", "1")
    settings = Settings(redis_url=server.url, redis_configured=True, db_latency_seconds=LATENCY)
    twin = app_twin(name, settings, events)
    await twin.lookup(5)
    with server.admin() as admin:  # idle at the prompt until the server has closed the demo's connections
        admin_id = str(admin.client_id())
        wait_until(
            lambda: all(client["id"] == admin_id for client in admin.client_list()),
            "the server to close the idle connections",
        )
    result = await twin.lookup(5)
    assert result.source is Source.CACHE
    assert not result.degraded
    assert events == []
    get_redis(settings).close()
    await get_redis(settings).aclose()


async def test_a_full_redis_is_a_warning_and_the_answer_still_comes(
    name: str, start_redis: Callable[..., RedisServer], events: list[CacheEvent]
) -> None:
    server = start_redis("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    admin = server.admin()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        fill(admin)
    settings = Settings(redis_url=server.url, redis_configured=True, db_latency_seconds=LATENCY)
    twin = app_twin(name, settings, events)
    result = await twin.lookup(77)
    assert result.source is Source.DATABASE
    assert result.record == user_record(77)
    assert not result.degraded
    assert not result.stored
    assert warning_of(result) == "not cached: Redis is out of memory (maxmemory reached with a noeviction policy)"
    assert events == []  # a full cache is not a dead one
    admin.close()
    get_redis(settings).close()
    await get_redis(settings).aclose()


async def test_a_seed_cut_short_by_an_outage_reports_what_it_wrote_and_lookups_go_on(
    twin: Twin, server: RedisServer, events: list[CacheEvent]
) -> None:
    def outage_once_5000_are_written(records: int) -> None:
        if progress.written >= 5000:  # the seed is well under way (its own thread or task calls this)
            server.kill()

    progress = SeedProgress("pipelined", 1_000_000, time.perf_counter(), on_advance=outage_once_5000_are_written)
    method = twin.seeder.seed_pipelined

    async def seed() -> object:
        return await asyncio.to_thread(method, progress) if twin.name == "sync" else await method(progress)

    with pytest.raises(redis.RedisError):
        await asyncio.wait_for(seed(), timeout=30)
    # ten batches of 500 stored; the batch in flight beside the tenth may have finished before the server died
    assert progress.written in (5000, 5500)
    result = await twin.lookup(3)
    assert result.degraded
    assert result.record == user_record(3)


async def test_a_cached_value_survives_a_freeze_and_thaw(twin: Twin, server: RedisServer, clock: Clock) -> None:
    with server.admin() as admin:
        admin.set("user-4", encode_record(user_record(4)), ex=60)
    server.freeze()
    assert (await twin.lookup(4)).degraded
    server.thaw()
    answering(server)
    result = await after_the_cool_down(twin, clock, 4)
    assert (result.source, result.degraded) == (Source.CACHE, False)
    assert (await twin.lookup(4)).source is Source.CACHE


async def test_update_while_redis_is_down_writes_the_database_and_says_the_copy_may_be_stale(
    twin: Twin, server: RedisServer
) -> None:
    await twin.lookup(12)
    server.kill()
    outcome = twin.cache.update(12)
    report = await outcome if asyncio.iscoroutine(outcome) else outcome
    assert report.record is not None
    assert "+v1@" in report.record.email
    assert not report.invalidated
    assert "connection refused" in (report.problem or "")


@pytest.mark.parametrize("script", ["main.py", "main_async.py"])
def test_the_scripts_keep_answering_through_an_outage(script: str, server: RedisServer, tmp_path: Path) -> None:
    from tests.test_e2e import assert_clean, start_script

    arguments = ["--redis-url", server.url, "--seed-mode", "none", "--db-latency", "0.05", "--cooldown", "1", "--json"]
    process = start_script(script, *arguments, cwd=tmp_path)
    assert process.stdin is not None
    assert process.stdout is not None
    answers = []
    for step, user_id in (("up", 1), ("kill", 1), ("down", 2), ("ttl", 1)):
        if step == "kill":
            server.kill()
        process.stdin.write(f"{'ttl ' if step == 'ttl' else ''}{user_id}\n".encode())
        process.stdin.flush()
        answers.append(json.loads(process.stdout.readline()))
    _, err = process.communicate(b"", timeout=30)
    assert process.returncode == 0
    assert [answer.get("degraded") for answer in answers[:3]] == [False, True, True]
    assert answers[3]["error"].startswith("Redis error: connection refused")
    warnings = [line for line in err.decode().splitlines() if "cache is unavailable" in line]
    assert len(warnings) == 1
    assert "2 answered without the cache" in err.decode()
    assert_clean(err)


async def test_a_sequential_seed_in_the_async_twin_cannot_hang_on_a_frozen_server(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator._async import seeding

    monkeypatch.setattr(seeding, "BULK_BATCH_TIMEOUT_SECONDS", 0.5)
    settings = Settings(redis_url=server.url, redis_configured=True)
    twin = app_twin("async", settings, [])
    progress = SeedProgress("sequential", 1_000_000, time.perf_counter())
    seeding = asyncio.ensure_future(twin.seeder.seed_sequential(progress))
    while progress.written < 100 and not seeding.done():  # noqa: ASYNC110 (the seed's own counter, not an event)
        await asyncio.sleep(0.01)
    assert not seeding.done(), seeding.exception()
    server.freeze()  # no await since the check: the seed is still running
    # The bulk client has no reply timeout: what ends the seed is the batch deadline (never a hang,
    # which wait_for would end with a builtin TimeoutError, not redis-py's).
    with pytest.raises(redis.TimeoutError, match=r"^a seeding command took over 0\.5 s$"):
        await asyncio.wait_for(seeding, timeout=30)
    server.thaw()
    await get_redis(settings).aclose()
