"""When Redis fails: both twins keep answering from the database, warn once, and recover by themselves.

Every test runs a private redis-server it kills (SIGKILL), freezes (SIGSTOP), thaws,
restarts on the same port, fills, or starts with a short idle timeout. Time bounds carry
about 2x margin over the behaviour promised in README ("When Redis fails").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

from config.redis import get_redis
from config.settings import Settings
from simulator.core import CacheEvent, SeedProgress, Source
from simulator.records import encode_record, user_record
from tests.servers import RedisServer
from tests.twins import Twin, app_twin

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


@pytest.fixture
async def twin(name: str, server: RedisServer, events: list[CacheEvent]) -> AsyncIterator[Twin]:
    settings = Settings(
        redis_url=server.url,
        redis_configured=True,
        db_latency_seconds=LATENCY,
        cache_cooldown_seconds=COOLDOWN,
        seed_batch_size=500,
    )
    yield app_twin(name, settings, events)
    clients = get_redis(settings)
    clients.close()
    await clients.aclose()


def fill(client: redis.Redis) -> None:
    """Write until Redis refuses: maxmemory reached."""
    for number in range(100_000):
        client.set(f"filler-{number}", "x" * 1000)


async def timed_lookup(twin: Twin, user_id: int) -> tuple[float, object]:
    started = time.perf_counter()
    result = await twin.lookup(user_id)
    return time.perf_counter() - started, result


async def wait_for_the_cache(twin: Twin, user_id: int, within: float) -> float:
    """Look up every 50 ms until an answer comes through the cache again; how long that took."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        if not (await twin.lookup(user_id)).degraded:
            return time.perf_counter() - started
        await asyncio.sleep(0.05)  # a user's pace between lookups, part of the scenario
    raise AssertionError(f"the cache was not used again within {within} s")


async def test_a_killed_server_is_answered_around_from_the_database_with_one_warning(
    twin: Twin, server: RedisServer, events: list[CacheEvent]
) -> None:
    assert (await twin.lookup(1)).source is Source.DATABASE
    assert (await twin.lookup(1)).source is Source.CACHE
    server.kill()
    seconds, result = await timed_lookup(twin, 1)
    assert result.degraded  # type: ignore[attr-defined]
    assert result.source is Source.DATABASE  # type: ignore[attr-defined]
    assert result.record == user_record(1)  # type: ignore[attr-defined]
    assert seconds < 2 * 0.5 + LATENCY
    for user_id in (2, 3, 1_500_000):  # the breaker is open: only the database is asked
        seconds, result = await timed_lookup(twin, user_id)
        assert result.degraded  # type: ignore[attr-defined]
        assert seconds < LATENCY + 0.1
    assert [event.available for event in events] == [False]
    assert "connection refused" in events[0].reason
    assert twin.cache.stats.snapshot().degraded == 4


async def test_a_frozen_server_costs_one_timeout_then_the_breaker_skips_it(
    twin: Twin, server: RedisServer, events: list[CacheEvent]
) -> None:
    await twin.lookup(1)
    server.freeze()
    seconds, result = await timed_lookup(twin, 1)
    assert result.degraded  # type: ignore[attr-defined]
    assert seconds < 2 * 1.5 + LATENCY  # far under redis-py's default 5 s read timeout x 10 retries
    seconds, result = await timed_lookup(twin, 2)
    assert result.degraded  # type: ignore[attr-defined]
    assert seconds < LATENCY + 0.1
    server.thaw()
    assert await wait_for_the_cache(twin, 1, within=2 * (COOLDOWN + 1)) <= 2 * (COOLDOWN + 1)
    assert [event.available for event in events] == [False, True]
    assert "timed out" in events[0].reason


async def test_a_restarted_empty_server_is_used_again_by_the_same_program(
    twin: Twin, server: RedisServer, events: list[CacheEvent]
) -> None:
    await twin.lookup(7)
    server.kill()
    assert (await twin.lookup(7)).degraded
    server.restart()  # same port, no data
    await wait_for_the_cache(twin, 8, within=2 * (COOLDOWN + 1))
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
    await asyncio.sleep(2.5)  # idle at the prompt past the server's 1 s client timeout: the scenario
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
    assert result.warning == "not cached: Redis is out of memory (maxmemory reached with a noeviction policy)"
    assert events == []  # a full cache is not a dead one
    admin.close()
    get_redis(settings).close()
    await get_redis(settings).aclose()


async def test_a_seed_cut_short_by_an_outage_reports_what_it_wrote_and_lookups_go_on(
    twin: Twin, server: RedisServer, events: list[CacheEvent]
) -> None:
    progress = SeedProgress("pipelined", 1_000_000, time.perf_counter(), on_advance=lambda _: None)
    method = twin.seeder.seed_pipelined

    async def seed() -> object:
        return await asyncio.to_thread(method, progress) if twin.name == "sync" else await method(progress)  # type: ignore[arg-type]

    seeding = asyncio.ensure_future(seed())
    while progress.written < 5000 and not seeding.done():  # noqa: ASYNC110 (the seed's own counter, not an event)
        await asyncio.sleep(0.01)  # let the seed get going before the outage: the scenario
    assert not seeding.done(), seeding.exception()
    server.kill()
    with pytest.raises(redis.RedisError):
        await asyncio.wait_for(seeding, timeout=15)
    assert 5000 <= progress.written < 1_000_000
    result = await twin.lookup(3)
    assert result.degraded
    assert result.record == user_record(3)


async def test_a_cached_value_survives_a_freeze_and_thaw(twin: Twin, server: RedisServer) -> None:
    server.admin().set("user-4", encode_record(user_record(4)), ex=60)
    server.freeze()
    assert (await twin.lookup(4)).degraded
    server.thaw()
    await wait_for_the_cache(twin, 4, within=2 * (COOLDOWN + 1))
    assert (await twin.lookup(4)).source is Source.CACHE


async def test_update_while_redis_is_down_writes_the_database_and_says_the_copy_may_be_stale(
    twin: Twin, server: RedisServer
) -> None:
    await twin.lookup(12)
    server.kill()
    outcome = twin.cache.update(12)
    report = await outcome if asyncio.iscoroutine(outcome) else outcome
    assert report.record is not None  # type: ignore[union-attr]
    assert "+v1@" in report.record.email  # type: ignore[union-attr]
    assert not report.invalidated  # type: ignore[union-attr]
    assert "connection refused" in (report.problem or "")  # type: ignore[union-attr]


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
    from simulator import simulate_cache_db_flow as shells

    monkeypatch.setattr(shells, "BULK_BATCH_TIMEOUT_SECONDS", 0.5)
    settings = Settings(redis_url=server.url, redis_configured=True)
    twin = app_twin("async", settings, [])
    progress = SeedProgress("sequential", 1_000_000, time.perf_counter())
    seeding = asyncio.ensure_future(twin.seeder.seed_sequential(progress))  # type: ignore[arg-type]
    while progress.written < 100 and not seeding.done():  # noqa: ASYNC110 (the seed's own counter, not an event)
        await asyncio.sleep(0.01)
    assert not seeding.done(), seeding.exception()
    server.freeze()
    started = time.perf_counter()
    with pytest.raises(redis.TimeoutError):
        await asyncio.wait_for(seeding, timeout=10)
    assert time.perf_counter() - started < 2 * 0.5 + 0.5
    server.thaw()
    await get_redis(settings).aclose()
