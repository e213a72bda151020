"""The cache-aside shells, both twins through the same scenarios, on a fresh fakeredis server.

Each test runs once per twin (the `twin` fixture), so the sync and async shells are held
to one specification and cannot drift apart; test_parity.py compares them side by side.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis

from cli.answers import warning_of
from simulator.entries import LEASE_PREFIX, MAX_LEASE_MS, encode_not_found
from simulator.policy import CachePolicy
from simulator.records import Problem, encode_record, user_record
from simulator.results import Source
from simulator.seeding import SeedProgress, SeedReport, batches_in_flight
from simulator.simulate_cache_db_flow import BackgroundSeed, Seeder
from tests.twins import Twin, assert_ttl_given, make_twin, sqlite_database


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(request.param, sync_client, async_client)


async def test_a_missing_user_is_read_from_the_database_and_stored_with_a_ttl(
    twin: Twin, sync_client: redis.Redis
) -> None:
    started = time.time()
    result = await twin.lookup(5000)
    ended = time.time()
    assert result.source is Source.DATABASE
    assert result.key == "user-5000"
    assert result.record == user_record(5000)
    assert sync_client.get("user-5000") == encode_record(user_record(5000)).encode()
    assert_ttl_given(sync_client, "user-5000", started, ended, 3600)
    assert twin.database_reads == 1


async def test_a_stored_user_is_then_found_in_the_cache(twin: Twin) -> None:
    first = await twin.lookup(7)
    second = await twin.lookup(7)
    assert (first.source, second.source) == (Source.DATABASE, Source.CACHE)
    assert second.value == first.value
    assert twin.database_reads == 1  # the hit never reached the database (how fast it was is not the point)


async def test_a_miss_waits_for_the_database_latency(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    for name in ("sync", "async"):
        slow = make_twin(name, sync_client, async_client, latency_seconds=0.05)
        result = await slow.lookup(1000 + len(name))
        assert result.source is Source.DATABASE
        assert result.elapsed_seconds >= 0.05


async def test_keys_live_in_the_prefix_namespace(sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> None:
    for name in ("sync", "async"):
        namespaced = make_twin(name, sync_client, async_client, policy=CachePolicy(key_prefix=f"{name}:"))
        result = await namespaced.lookup(3)
        assert result.key == f"{name}:user-3"
    assert sorted(sync_client.keys()) == [b"async:user-3", b"sync:user-3"]


def _corrupt_values() -> list[tuple[Problem, Callable[[redis.Redis], object]]]:
    return [
        (Problem.NOT_UTF8, lambda client: client.set("user-9", b"\xff\xfe")),
        (Problem.NOT_JSON, lambda client: client.set("user-9", b"{oops")),
        (Problem.NOT_JSON, lambda client: client.set("user-9", b"")),  # empty: must not read as "nothing seen"
        (Problem.WRONG_FIELDS, lambda client: client.set("user-9", b'{"id": 9}')),
        (Problem.WRONG_USER, lambda client: client.set("user-9", encode_record(user_record(8)))),
        (Problem.WRONG_TYPE, lambda client: client.hset("user-9", "id", "9")),
        (
            Problem.WRONG_FIELDS,
            lambda client: client.set("user-9", encode_record(user_record(9)).replace('"version":0', '"version":true')),
        ),
        (Problem.WRONG_FIELDS, lambda client: client.set("user-9", b'{"id": 9, "not_found": true}')),
        (Problem.TOO_DEEP, lambda client: client.set("user-9", b"[" * 1100 + b"]" * 1100, ex=60)),
        (Problem.TOO_DEEP, lambda client: client.set("user-9", b'{"a":' * 1100 + b"1" + b"}" * 1100, ex=60)),
        (
            Problem.TOO_LARGE,
            lambda client: client.set("user-9", b'{"id": 9, "name": "' + b"x" * 100_000 + b'"}', ex=60),
        ),
        (Problem.NO_EXPIRY, lambda client: client.set("user-9", encode_record(user_record(9, version=5)))),
        (Problem.NO_EXPIRY, lambda client: client.set("user-9", encode_not_found(9))),
    ]


@pytest.mark.parametrize(
    ("problem", "corrupt"), _corrupt_values(), ids=[f"{p.name}-{i}" for i, (p, _) in enumerate(_corrupt_values())]
)
async def test_each_kind_of_corrupt_entry_is_a_miss_with_a_warning_and_is_repaired(
    twin: Twin, sync_client: redis.Redis, problem: Problem, corrupt: Callable[[redis.Redis], object]
) -> None:
    corrupt(sync_client)
    result = await twin.lookup(9)
    assert result.source is Source.DATABASE
    assert warning_of(result) is not None
    assert problem.value in warning_of(result)
    assert warning_of(result).endswith("; repaired it")  # said only because it is true:
    assert sync_client.get("user-9") == encode_record(user_record(9)).encode()
    assert (await twin.lookup(9)).source is Source.CACHE


async def test_a_value_with_no_expiry_is_checked_on_its_first_hit_not_trusted_forever(
    twin: Twin, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    await twin.lookup(9)  # stored by this twin: it knows the key has an expiry
    sync_client.persist("user-9")  # another client takes the expiry away
    assert (await twin.lookup(9)).source is Source.CACHE  # checked already: trusted for one TTL, not forever
    fresh = make_twin(twin.name, sync_client, async_client)  # another process: its first hit checks the key
    result = await fresh.lookup(9)
    assert result.source is Source.DATABASE
    assert warning_of(result) is not None
    assert Problem.NO_EXPIRY.value in warning_of(result)
    assert 0 < sync_client.ttl("user-9") <= 3600


@pytest.mark.parametrize("life", ["none", "longer than any demo lease"])
async def test_a_lease_another_client_left_without_a_proper_expiry_does_not_hold_misses_back(
    twin: Twin, sync_client: redis.Redis, life: str
) -> None:
    foreign_lease = LEASE_PREFIX + b'someone-else"}'
    if life == "none":
        sync_client.set("user-9", foreign_lease)
    else:
        sync_client.set("user-9", foreign_lease, px=MAX_LEASE_MS + 60_000)
    result = await twin.lookup(9)
    assert result.source is Source.DATABASE
    assert result.stored  # it took the lease over, instead of waiting a lease's life and storing nothing
    assert sync_client.get("user-9") == encode_record(user_record(9)).encode()
    assert 0 < sync_client.ttl("user-9") <= 3600


@pytest.mark.parametrize("mode", ["sequential", "pipelined"])
async def test_seeding_writes_every_record_with_a_ttl(twin: Twin, sync_client: redis.Redis, mode: str) -> None:
    report = await twin.seed(mode, 250)
    assert (report.requested, report.written, report.stopped) == (250, 250, False)
    assert report.seconds > 0
    assert sync_client.dbsize() == 250
    for user_id in (1, 100, 101, 250):
        assert json.loads(sync_client.get(f"user-{user_id}") or b"") == json.loads(encode_record(user_record(user_id)))
        assert 0 < sync_client.ttl(f"user-{user_id}") <= 3600
    assert twin.database_reads == 0  # seeding reads ranges of rows, not 250 slow single reads


async def test_seeding_again_leaves_cached_keys_and_touches_no_other_key(twin: Twin, sync_client: redis.Redis) -> None:
    sync_client.set("someone-elses-key", "keep me")
    sync_client.set("user-settings", "keep me too")
    await twin.seed("pipelined", 50)
    again = await twin.seed("pipelined", 60)
    assert (again.written, again.skipped) == (10, 50)  # already cached: left as they were
    assert sync_client.dbsize() == 62
    assert sync_client.get("someone-elses-key") == b"keep me"
    assert sync_client.get("user-settings") == b"keep me too"


async def test_a_stopped_seed_keeps_what_it_wrote(twin: Twin, sync_client: redis.Redis) -> None:
    progress = SeedProgress("pipelined", 1000, time.perf_counter(), on_advance=lambda records: progress.request_stop())
    if twin.name == "sync":
        report = twin.seeder.seed_pipelined(progress)
    else:
        report = await twin.seeder.seed_pipelined(progress)
    assert report.stopped
    # the stop is seen once the first batch is done; the batch in flight beside it is finished, not abandoned
    assert report.written == 100 * batches_in_flight(pipelined=True) == 200
    assert sync_client.dbsize() == 200
    assert not [key for key in sync_client.scan_iter() if sync_client.get(key).startswith(b'{"lease"')]


def test_a_background_seed_reports_when_done(sync_client: redis.Redis) -> None:
    seeder = Seeder(sync_client, sqlite_database(0), CachePolicy(), 100)
    outcomes: list[tuple[SeedReport, Exception | None]] = []
    background = BackgroundSeed(
        seeder.seed_pipelined, SeedProgress("threaded", 300, time.perf_counter()), lambda r, e: outcomes.append((r, e))
    ).start()
    report = background.wait()
    assert outcomes == [(report, None)]
    assert (report.written, report.stopped) == (300, False)
    assert sync_client.dbsize() == 300


def test_a_seed_that_ended_by_itself_is_reported_once_even_if_stopped_after(sync_client: redis.Redis) -> None:
    seeder = Seeder(sync_client, sqlite_database(0), CachePolicy(), 100)
    outcomes: list[SeedReport] = []
    background = BackgroundSeed(
        seeder.seed_pipelined, SeedProgress("threaded", 50, time.perf_counter()), lambda r, e: outcomes.append(r)
    ).start()
    background.wait()
    assert background.stop() is None  # it already said how it ended
    assert len(outcomes) == 1
