"""Stampede protection, TTL jitter, negative caching, invalidation, early refresh and stats, in both twins.

The logic runs on fakeredis; the locks run on the private redis-server too, where two
processes' worth of contention is real.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator

import pytest
import redis

from cli.answers import warning_of
from config.redis import get_redis
from config.settings import Settings
from simulator.policy import CachePolicy
from simulator.records import user_record
from simulator.results import ClearReport, Source
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from simulator.stats import Stats, percentile
from tests.twins import Twin, assert_ttl_given, async_sqlite_database, await_until, make_twin, sqlite_database


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(request.param, sync_client, async_client, CachePolicy(ttl_jitter=0.1, negative_ttl_seconds=30))


async def call(twin: Twin, method: str, *arguments: object) -> object:
    """Call a shell method of either twin."""
    outcome = getattr(twin.cache, method)(*arguments)
    return await outcome if asyncio.iscoroutine(outcome) else outcome


# --- the pure policy ---


@pytest.mark.parametrize(
    ("ttl", "jitter", "unit", "expected"),
    [
        (3600, 0.0, 0.99, 3600),
        (3600, 0.1, 0.0, 3240),
        (3600, 0.1, 0.5, 3600),
        (3600, 0.1, 0.999999, 3960),
        (10, 0.5, 0.0, 5),
        (1, 0.5, 0.0, 1),
    ],
)
def test_ttl_jitter_spreads_within_the_bounds(ttl: int, jitter: float, unit: float, expected: int) -> None:
    policy = CachePolicy(ttl_seconds=ttl, ttl_jitter=jitter, random=lambda: unit)
    assert policy.ttl_for(1) == expected
    spread = ttl * jitter  # the shortest and longest TTL a record can get
    assert max(1, math.floor(ttl - spread)) <= expected <= max(1, math.ceil(ttl + spread))


@pytest.mark.parametrize(
    ("remaining_ms", "last_fetch", "unit", "refresh"),
    [
        (None, 2.0, 0.001, False),  # no TTL known
        (-1, 2.0, 0.001, False),  # no expiry
        (3_600_000, 2.0, 0.001, False),  # an hour left: -ln(0.001) * 2 s = 13.8 s of headroom
        (10_000, 2.0, 0.001, True),
        (1_000, 2.0, 0.5, True),  # ln 2 * 2 s = 1.39 s >= 1 s
        (2_000, 2.0, 0.5, False),
        (2_000, 0.1, 1e-9, True),
    ],
)
def test_xfetch_refreshes_more_likely_as_expiry_nears(
    remaining_ms: int | None, last_fetch: float, unit: float, refresh: bool
) -> None:
    policy = CachePolicy(early_refresh=True, random=lambda: unit)
    assert policy.should_refresh_early(remaining_ms, last_fetch) is refresh
    assert CachePolicy(early_refresh=False, random=lambda: unit).should_refresh_early(remaining_ms, last_fetch) is False


class SteppedClock:
    """A clock that moves only when told: by each pause taken, and by what each claim costs."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("claim_seconds", [0.0, 0.05, 0.4, 3.0])
def test_a_claim_is_tried_at_once_then_polled_for_at_most_the_life_of_a_lease(claim_seconds: float) -> None:
    """Bounded in time, not in polls: slow claims (a value to download, a loaded server) use the same budget."""
    clock = SteppedClock()
    pauses = []
    for pause in CachePolicy(lease_seconds=1.0, wait_poll_seconds=0.1, clock=clock).claim_schedule():
        pauses.append(pause)
        clock.now += pause + claim_seconds  # sleep the pause, then send the claim
    assert pauses[0] == 0
    assert all(0 < pause <= 0.1 for pause in pauses[1:])
    # From the first claim's answer (another holds the lease) to the last claim's start:
    waited = sum(pauses) + claim_seconds * (len(pauses) - 2)
    assert waited <= 1.0 + 1e-9
    assert len(pauses) <= 1 + math.ceil(1.0 / max(0.1, claim_seconds)) + 1


def test_a_lease_outlives_the_database_latency() -> None:
    for latency in (0.0, 0.5, 2.0, 30.0):
        assert CachePolicy.from_settings(Settings(db_latency_seconds=latency)).lease_seconds > latency


def test_the_database_holds_its_users_and_an_update_is_a_new_version_every_connection_sees() -> None:
    database = sqlite_database(0)
    assert database.fetch(10) == user_record(10)
    assert database.fetch(10_001) is None  # the test database holds users 1..10,000
    assert database.update(10_001) is None
    updated = database.update(3)
    assert updated is not None
    assert (updated.version, updated.email) == (1, user_record(3, 1).email)
    assert updated.email != user_record(3).email
    assert sqlite_database(0).fetch(3) == updated  # another connection, as another process would have


def test_stats_count_answers_and_their_latencies() -> None:
    stats = Stats()
    from simulator.results import LookupResult

    for source, seconds, shared in [
        (Source.CACHE, 0.001, False),
        (Source.CACHE, 0.003, False),
        (Source.DATABASE, 2.0, False),
        (Source.DATABASE, 2.1, True),
        (Source.NOT_FOUND, 2.0, False),
        (Source.NEGATIVE_CACHE, 0.002, False),
    ]:
        stats.record(LookupResult(1, "user-1", source, None, None, seconds, shared=shared))
    stats.database_read()
    snapshot = stats.snapshot()
    assert (snapshot.lookups, snapshot.hits, snapshot.misses, snapshot.not_found) == (6, 3, 3, 2)
    assert (snapshot.database_reads, snapshot.shared) == (1, 1)
    assert snapshot.hit_ratio == 0.5
    assert snapshot.hit_latency_ms["p50"] == pytest.approx(2.0)
    assert snapshot.miss_latency_ms["p99"] == pytest.approx(2100)
    assert percentile([], 0.5) is None


# --- negative caching ---


async def test_a_user_the_database_lacks_is_not_found_and_remembered_briefly(
    twin: Twin, sync_client: redis.Redis
) -> None:
    missing = 1_000_001  # the test database holds 1..10,000
    first = await twin.lookup(missing)
    second = await twin.lookup(missing)
    assert (first.source, second.source) == (Source.NOT_FOUND, Source.NEGATIVE_CACHE)
    assert first.record is None
    assert second.record is None
    assert twin.database_reads == 1
    assert 0 < sync_client.ttl(f"user-{missing}") <= 30  # NEGATIVE_TTL_SECONDS, far shorter than a record's


# --- invalidation and the write path ---


async def test_del_makes_the_next_lookup_a_miss(twin: Twin, sync_client: redis.Redis) -> None:
    await twin.lookup(5)
    assert await call(twin, "delete", 5) is True
    assert await call(twin, "delete", 5) is False
    assert (await twin.lookup(5)).source is Source.DATABASE
    assert twin.database_reads == 2


async def test_update_writes_the_database_then_the_next_read_fetches_the_new_record(twin: Twin) -> None:
    old = (await twin.lookup(6)).record
    report = await call(twin, "update", 6)
    fresh = await twin.lookup(6)
    assert fresh.source is Source.DATABASE
    assert fresh.record == report.record
    assert report.invalidated
    assert old is not None
    assert fresh.record is not None
    assert fresh.record.email != old.email
    assert (await call(twin, "update", 2_000_000)).record is None


async def test_clear_removes_only_the_demos_keys(sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> None:
    for name in ("sync", "async"):
        keep = {
            "user-settings": "x",
            "user-12abc": "x",
            "other:user-1": "x",
            "demo:user-": "x",
            "demo:users-1": "x",
            "demo:user-7:lock": "x",
        }
        for key, value in keep.items():
            sync_client.set(key, value)
        namespaced = make_twin(name, sync_client, async_client, CachePolicy(key_prefix="demo:"))
        await namespaced.seed("pipelined", 1200)
        sync_client.set("demo:user-1201", '{"lease":"0123456789abcdef"}', px=60_000)  # a lookup's lease is ours too
        sync_client.delete("demo:user-9")
        sync_client.hset("demo:user-9", "field", "wrong type, still ours")
        report = await call(namespaced, "clear")
        assert report == ClearReport(1201)
        assert sorted(key.decode() for key in sync_client.scan_iter()) == sorted(keep)
        sync_client.delete(*keep)


async def test_ttl_reports_what_the_cache_holds(twin: Twin) -> None:
    assert (await call(twin, "ttl", 8)).state == "missing"
    started = time.monotonic()
    await twin.lookup(8)
    await twin.lookup(3_000_000)
    record = await call(twin, "ttl", 8)
    passed = time.monotonic() - started + 0.002  # all the time there was for the TTL to run down (+ 2 ms: whole ms)
    not_found = await call(twin, "ttl", 3_000_000)
    assert record.state == "record"
    assert 3240 - passed <= record.remaining_seconds <= 3960  # 3600 s +- 10%
    assert not_found.state == "not-found"
    assert 0 < not_found.remaining_seconds <= 30


async def test_jittered_ttls_of_a_seeded_batch_differ_and_stay_in_bounds(twin: Twin, sync_client: redis.Redis) -> None:
    started = time.time()
    await twin.seed("pipelined", 300)
    ended = time.time()
    keys = [f"user-{user_id}" for user_id in range(1, 301)]
    assert len({sync_client.pexpiretime(key) for key in keys}) > 50
    for key in keys:
        assert_ttl_given(sync_client, key, started, ended, 3240, 3960)


# --- stampede protection ---


async def test_concurrent_lookups_in_one_process_share_one_database_read(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    for name in ("sync", "async"):
        stampeding = make_twin(name, sync_client, async_client, latency_seconds=0.1)
        report = await call(stampeding, "stampede", 4242 + len(name), 50)  # 4246, 4247: in the database
        assert report.database_reads == 1
        assert report.lookups == 50
        assert stampeding.database_reads == 1
        # every other lookup shared that read, or came after it and hit the cache: how many of
        # each depends on thread scheduling, the sum does not
        assert report.shared + report.sources.get("cache", 0) == 49


@pytest.fixture
def real(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.mark.integration
async def test_200_concurrent_async_lookups_of_one_missing_id_make_1_database_read(redis_url: str) -> None:
    clients = get_redis(Settings(redis_url=redis_url, redis_configured=True))  # the demo's own bounded pool
    database = async_sqlite_database(0.2)
    policy = CachePolicy(lease_seconds=60, wait_poll_seconds=0.02)  # no lease expires during a test, however loaded
    cache = AsyncCacheAside(clients.async_client(), database, policy)
    results = await asyncio.gather(*(cache.lookup(3137) for _ in range(200)))
    await clients.aclose()
    assert database.reads.value == 1
    # every other lookup shared that read, or (its GET queued behind the pool's 32 connections
    # on a loaded machine) came after it and hit the cache
    shared = sum(result.shared for result in results)
    assert shared + sum(result.source is Source.CACHE for result in results) == 199
    assert cache.stats.snapshot().shared == shared


@pytest.mark.integration
def test_50_threads_on_one_missing_id_make_1_database_read(redis_url: str) -> None:
    clients = get_redis(Settings(redis_url=redis_url, redis_configured=True))
    database = sqlite_database(0.2)
    report = CacheAside(clients.sync_client(), database, CachePolicy()).stampede(2718, 50)
    clients.close()
    assert database.reads.value == 1
    assert report.database_reads == 1


@pytest.mark.integration
async def test_two_caches_sharing_redis_make_1_database_read_through_the_lease(redis_url: str) -> None:
    """Two caches with their own single-flight, as two processes would have: only the Redis lease joins them."""
    policy = CachePolicy(lease_seconds=60, wait_poll_seconds=0.02)  # no lease expires during a test, however loaded
    sync_client = redis.Redis.from_url(redis_url)
    async_client = redis.asyncio.Redis.from_url(redis_url)
    sync_database, async_database = sqlite_database(0.3), async_sqlite_database(0.3)
    sync_cache = CacheAside(sync_client, sync_database, policy)
    async_cache = AsyncCacheAside(async_client, async_database, policy)
    sync_result, async_result = await asyncio.gather(asyncio.to_thread(sync_cache.lookup, 777), async_cache.lookup(777))
    await async_client.aclose()
    sync_client.close()
    assert sync_database.reads.value + async_database.reads.value == 1
    assert {sync_result.source, async_result.source} == {Source.DATABASE, Source.CACHE}


@pytest.mark.integration
async def test_a_lease_left_by_a_dead_process_delays_a_lookup_by_at_most_its_life(
    redis_url: str, real: redis.Redis
) -> None:
    started = time.perf_counter()
    real.set("user-99", '{"lease":"0000000000000000"}', px=400)  # its owner died before storing
    database = async_sqlite_database(0.01)
    cache = AsyncCacheAside(
        redis.asyncio.Redis.from_url(redis_url),
        database,
        CachePolicy(lease_seconds=0.4, wait_poll_seconds=0.02),
    )
    result = await cache.lookup(99)
    await cache.client.aclose()
    assert result.source is Source.DATABASE
    # At most its life: the lookup polls for one lease's life (0.4 s of pauses), by which time the dead
    # lease (0.4 s) has expired, so it claimed the key and filled it instead of giving up unstored.
    assert result.stored
    assert database.reads.value == 1
    assert time.perf_counter() - started >= 0.39  # it waited for the dead lease: a lower bound (Redis counts whole ms)


# --- negative entries expire; corrupt tombstones are repaired ---


@pytest.mark.integration
async def test_negative_entries_expire_after_their_ttl(redis_url: str, real: redis.Redis) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    database = async_sqlite_database(0)
    cache = AsyncCacheAside(
        client,
        database,
        CachePolicy(negative_ttl_seconds=1),
    )
    assert (await cache.lookup(5_000_000)).source is Source.NOT_FOUND
    assert (await cache.lookup(5_000_000)).source is Source.NEGATIVE_CACHE
    await await_until(lambda: not real.exists("user-5000000"), "the server to expire the tombstone")
    assert (await cache.lookup(5_000_000)).source is Source.NOT_FOUND
    await client.aclose()
    assert database.reads.value == 2


async def test_a_tombstone_for_another_id_is_corrupt_and_repaired(twin: Twin, sync_client: redis.Redis) -> None:
    sync_client.set("user-12", '{"id":13,"not_found":true}')
    result = await twin.lookup(12)
    assert result.source is Source.DATABASE
    assert warning_of(result) is not None


# --- early refresh ---


async def test_early_refresh_keeps_a_hot_key_from_ever_missing(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    """Expiry nears, XFetch's draw says refresh: the reader gets the cached record, a refresh stores a new one.

    The draw is the test's and the key's remaining life is set, not waited for: with a draw of
    1 there is no headroom (no refresh), with 1e-300 there is -ln(1e-300) = 690 times the last
    database read (0.05 s at least), 34 s, more than the 30 s left.
    """
    for user_id, name in enumerate(("sync", "async"), start=11):
        key, draw = f"user-{user_id}", [1.0]
        policy = CachePolicy(ttl_seconds=60, early_refresh=True, random=lambda: draw[0])  # noqa: B023
        hot = make_twin(name, sync_client, async_client, policy, latency_seconds=0.05)
        assert (await hot.lookup(user_id)).source is Source.DATABASE
        for refreshes in (1, 2):
            draw[0] = 1.0
            assert (await hot.lookup(user_id)).source is Source.CACHE
            assert hot.database_reads == refreshes  # no refresh while the draw leaves no headroom
            sync_client.pexpire(key, 30_000)  # expiry nears
            draw[0] = 1e-300
            assert (await hot.lookup(user_id)).source is Source.CACHE  # the reader never waits for the refresh
            await await_until(lambda: sync_client.pttl(key) > 30_000, "the refresh to store the key anew")  # noqa: B023
            assert hot.database_reads == refreshes + 1
        await call(hot, "aclose" if name == "async" else "close")


# --- the circuit breaker, on a clock of the test's own ---


def test_the_breaker_opens_rests_probes_once_and_never_sticks_half_open() -> None:
    from simulator.breaker import CircuitBreaker

    now = [100.0]
    breaker = CircuitBreaker(5.0, clock=lambda: now[0])
    assert breaker.allow()
    assert breaker.failed() is True  # an outage starts: announce it
    assert breaker.failed() is False  # still down: say nothing
    assert not breaker.allow()
    now[0] += 5
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # everyone else keeps off Redis meanwhile
    now[0] += 5  # the probe never reported (its caller was cancelled)
    assert breaker.allow()  # another probe, instead of staying half-open for good
    assert breaker.succeeded() is True  # the outage ends: announce it
    assert breaker.closed
    assert breaker.succeeded() is False


async def test_early_refresh_still_repairs_a_key_of_the_wrong_type(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    for name in ("sync", "async"):
        twin = make_twin(name, sync_client, async_client, CachePolicy(early_refresh=True))
        sync_client.delete("user-31")
        sync_client.hset("user-31", "id", "31")  # GET inside the GET+PTTL pipeline fails with WRONGTYPE
        result = await twin.lookup(31)
        assert result.source is Source.DATABASE
        assert warning_of(result) is not None
        assert "another Redis type" in warning_of(result)
        assert (await twin.lookup(31)).source is Source.CACHE
