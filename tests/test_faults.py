"""Truth under faults: what the demo promises when Redis, the database or another client misbehaves.

Each test is a finding of an adversarial run, written as the behaviour it now guarantees, in
both twins (docs/failures.md states the promises).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.cluster

from cli.answers import render_cleared, render_ttl
from cli.messages import describe_failure
from config.database import DatabaseError
from config.redis import NodeUnavailable, get_redis
from config.settings import Settings
from simulator._async.inventory import take_inventory as atake_inventory
from simulator._sync.inventory import take_inventory
from simulator.entries import LEASE_PREFIX, MAX_LEASE_BYTES, MAX_LEASE_MS
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.results import LEASE_HELD, ClearReport, Source
from tests.servers import RedisServer
from tests.test_e2e import assert_clean, run_script, stderr_lines
from tests.test_security import ACL_RULES
from tests.test_security import _acl_user as acl_user
from tests.twins import Twin, app_twin, make_twin, wait_until


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(request.param, sync_client, async_client, CachePolicy())


async def call(twin: Twin, method: str, *arguments: object) -> object:
    """Call a shell method of either twin."""
    outcome = getattr(twin.cache, method)(*arguments)
    return await outcome if asyncio.iscoroutine(outcome) else outcome


# --- `clear` removes only keys of the exact shapes the demo writes ---


async def test_clear_leaves_keys_outside_the_id_range_the_demo_serves(twin: Twin, sync_client: redis.Redis) -> None:
    ours = ["user-1", "user-42", "user-1000000000"]  # 1..MAX_USER_ID, as the demo names them
    others = ["user-1000000001", "user-99999999999999999999", "user-0", "user-042", "user-00", "user-4 2"]
    for key in ours + others:
        sync_client.set(key, "x", ex=60)
    assert await call(twin, "clear") == ClearReport(len(ours))
    assert sorted(key.decode() for key in sync_client.scan_iter()) == sorted(others)


# --- a lookup never waits longer than the lease bound, and never downloads a value again and again ---


@pytest.fixture
def server_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the test's private redis-server, for setting up and inspecting."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
async def twin_on_server(
    request: pytest.FixtureRequest, redis_url: str, server_client: redis.Redis
) -> AsyncIterator[tuple[str, redis.Redis, redis.asyncio.Redis]]:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    yield request.param, server_client, async_client
    await async_client.aclose()


def scripts_run(client: redis.Redis) -> int:
    """The scripts (EVALSHA) the server has run since its stats were reset: a lookup's read with the TTL,
    its claims and its store. (A NOSCRIPT answer, before a script is first loaded, is not counted.)"""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0)) - int(stats.get("rejected_calls", 0))


@pytest.mark.integration
@pytest.mark.parametrize("size", [MAX_LEASE_BYTES + 1, 1_000_000])
async def test_a_value_too_long_to_be_a_lease_is_replaced_not_waited_for(
    twin_on_server: tuple[str, redis.Redis, redis.asyncio.Redis], size: int
) -> None:
    name, client, async_client = twin_on_server
    forged = LEASE_PREFIX + b"x" * (size - len(LEASE_PREFIX) - 2) + b'"}'
    client.set("user-42", forged, px=MAX_LEASE_MS)  # a life any lookup's lease could have
    twin = make_twin(name, client, async_client, CachePolicy())
    client.config_resetstat()
    result = await twin.lookup(42)
    assert (result.source, result.stored) == (Source.DATABASE, True)
    assert client.get("user-42") == encode_record(user_record(42)).encode()
    assert scripts_run(client) == 3  # the read; the claim that replaced it, at once; the store


class JumpingClock:
    """A clock on which each reading is `step` seconds after the last: every claim seems to take that long."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.integration
async def test_waiting_for_another_lookups_lease_is_bounded_in_time_not_in_polls(
    twin_on_server: tuple[str, redis.Redis, redis.asyncio.Redis],
) -> None:
    """Another process's lease that never ends in a store: the wait ends after a lease's life on the
    clock, however few polls that is (here each reading of the clock is 2 s after the last)."""
    name, client, async_client = twin_on_server
    client.set("user-42", LEASE_PREFIX + b'0123456789abcdef"}', px=MAX_LEASE_MS)
    policy = CachePolicy(lease_seconds=5.0, wait_poll_seconds=0.001, clock=JumpingClock(2.0))
    twin = make_twin(name, client, async_client, policy)
    client.config_resetstat()
    result = await twin.lookup(42)
    assert (result.source, result.not_cached, result.stored) == (Source.DATABASE, LEASE_HELD, False)
    assert scripts_run(client) <= 5  # the read, and a few claims in 5 s at 2 s a reading, not 5 s / 1 ms of them
    assert client.get("user-42") == LEASE_PREFIX + b'0123456789abcdef"}'  # another's lease is left alone


# --- after `update`, the old version is never answered, even when Redis refuses the DEL ---

SCRIPTS = ["main.py", "main_async.py"]


def answers(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    return done.stdout.decode().splitlines()


def versions_answered(lines: list[str]) -> list[int]:
    """The version of each record answered, in order."""
    return [int(line.rsplit('"version":', 1)[1].split("}", 1)[0]) for line in lines if '"version":' in line]


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_read_only_replica_answers_every_miss_from_the_database_and_never_the_replaced_version(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    master = start_redis()
    replica = start_redis("--replicaof", "127.0.0.1", str(master.port))
    with master.admin() as admin:
        admin.set("user-42", encode_record(user_record(42)), ex=600)  # version 0, cached before the update
    with replica.admin() as admin:
        wait_until(lambda: admin.exists("user-42"), "the replica to hold user-42")
    typed = b"42\n7\nupdate 42\n42\n42\n"
    done = run_script(script, ["--redis-url", replica.url, "--seed-mode", "none", "--db-latency", "0"], typed, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = answers(done)
    assert lines[0].startswith("Found in cache: user-42 = ")  # before the update: the cached version is right
    assert lines[1].startswith('Read from the database (not cached): user-7 = {"id":7,')
    assert lines[2].startswith("Updated user-42 in the database")
    assert "the cache could not delete its copy (the server is a read-only replica (it refuses writes))" in lines[2]
    assert "up to 3,960 s" in lines[2]  # the longest TTL a record can have: 3600 s + 10% jitter
    assert versions_answered(lines) == [0, 0, 1, 1]  # the lookup of 7, then 42's after the update: the new one
    warnings = stderr_lines(done.stderr)
    assert "Warning: user-7: not cached: the server is a read-only replica (it refuses writes)" in warnings
    with replica.admin() as admin:
        assert admin.get("user-42") == encode_record(user_record(42)).encode()  # still there, never answered again
    assert_clean(done.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_an_acl_without_del_cannot_make_an_update_answer_the_old_version(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis()
    url = acl_user(server, ACL_RULES.replace(" +del", ""))
    typed = b"42\n42\nupdate 42\n42\n"
    done = run_script(script, ["--seed-mode", "none", "--db-latency", "0"], typed, tmp_path, REDIS_URL=url)
    assert done.returncode == 0, done.stderr
    lines = answers(done)
    assert lines[0].startswith("Stored: user-42 = ")
    assert lines[1].startswith("Found in cache: user-42 = ")
    assert lines[2].startswith("Updated user-42 in the database")
    assert "the cache could not delete its copy (permission denied by the server's ACL" in lines[2]
    assert versions_answered(lines) == [0, 0, 1]
    assert not lines[3].startswith("Found in cache")
    assert_clean(done.stderr)


# --- a Redis Cluster with one master down: clear, cache, ttl and del degrade per node ---


@pytest.fixture
async def on_cluster(name: str, cluster: list[RedisServer]) -> AsyncIterator[Twin]:
    settings = Settings(redis_url=cluster[0].url, redis_configured=True, redis_cluster=True, db_latency_seconds=0)
    twin = app_twin(name, settings, [])
    if name == "async":
        await twin.cache.client.ping()  # as the demo's start-up does: the cluster client learns its nodes
    yield twin
    get_redis(settings).close()
    await get_redis(settings).aclose()


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def owner(cluster: list[RedisServer], key: str) -> RedisServer:
    slot = redis.cluster.key_slot(key.encode())
    for node in cluster:
        with node.admin() as client:
            for start, end, (_host, port, *_), *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(candidate for candidate in cluster if candidate.port == port)
    raise AssertionError(f"no node holds {key}")


@pytest.mark.integration
async def test_a_dead_master_costs_clear_cache_ttl_and_del_only_its_own_keys(
    on_cluster: Twin, cluster: list[RedisServer]
) -> None:
    await on_cluster.seed("pipelined", 300)
    victim = owner(cluster, "user-1")
    alive = next(user_id for user_id in range(2, 300) if owner(cluster, f"user-{user_id}") is not victim)
    lost = sum(1 for user_id in range(1, 301) if owner(cluster, f"user-{user_id}") is victim)
    victim.kill()

    ttl = await call(on_cluster, "ttl", alive)
    assert ttl.state == "record"
    with pytest.raises(NodeUnavailable) as dead_ttl:
        await call(on_cluster, "ttl", 1)
    assert describe_failure(dead_ttl.value) == (
        f"Redis error: cache node {victim.address}, which holds user-1, is unavailable "
        "(connection refused (nothing is listening there))"
    )
    with pytest.raises(NodeUnavailable):
        await call(on_cluster, "delete", 1)
    assert await call(on_cluster, "delete", alive) is True

    inventory = await (
        atake_inventory(on_cluster.cache.client, on_cluster.cache.policy)
        if on_cluster.name == "async"
        else asyncio.to_thread(take_inventory, on_cluster.cache.client, on_cluster.cache.policy)
    )
    assert inventory.records == 300 - lost - 1  # every key of the live masters, less the one deleted
    assert inventory.unreachable == (f"{victim.address} (connection refused (nothing is listening there))",)

    report = await call(on_cluster, "clear")
    assert report.removed == 300 - lost - 1
    assert report.unreachable == inventory.unreachable
    assert "Not reached, so their keys stay: cache node " + victim.address in render_cleared(report, False)
    assert all(not keys for node in cluster if node is not victim for keys in [list(node.admin().scan_iter())])


# --- the records in a cache are tied to the database they came from; the embedded cache says it is private ---


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_two_databases_on_one_redis_never_answer_each_others_records(
    script: str, redis_url: str, tmp_path: Path
) -> None:
    """A demo on another database (here a 10-user SQLite file) caches 'not found' for user 42; the demo on the
    10,000-user database must still find user 42, and update it, and read its own update back."""
    small = tmp_path / "small"
    small.mkdir()
    args = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0"]
    other = run_script(script, args, b"42\n", small, DB_SIZE="10", SEED_COUNT="10")
    assert other.returncode == 0, other.stderr
    assert answers(other)[0].startswith("Not found: user-42")
    ours = run_script(script, args, b"42\nupdate 42\n42\n", tmp_path)
    assert ours.returncode == 0, ours.stderr
    lines = answers(ours)
    assert lines[0].startswith("Stored: db")  # its own keys, not the other's
    assert ":user-42 = " in lines[0]
    assert versions_answered(lines) == [0, 1]
    moved = [line for line in stderr_lines(ours.stderr) if ", not user-<id>: " in line]
    assert len(moved) == 1
    assert ", not user-<id>: on this Redis those hold the records of another database (SQLite file " in moved[0]
    assert str(small / "users.db") in moved[0]
    with redis.Redis.from_url(redis_url) as client:
        assert client.exists("user-42") == 1  # the other database's tombstone is left alone


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_embedded_cache_says_it_is_this_processs_own(script: str, tmp_path: Path) -> None:
    done = run_script(
        script, ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"], b"update 42\n", tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done.stderr)[0].endswith(
        "this process's own cache, which other processes on the same database do not share"
    )
    [updated] = answers(done)
    assert "Other processes on this database have embedded caches of their own, which may answer the old " in updated
    assert "version for up to 3,960 s" in updated


# --- ttl tells a lease a lookup holds from one no lookup of the demo writes ---


@pytest.mark.parametrize("life_ms", [None, MAX_LEASE_MS + 60_000], ids=["no expiry", "too long"])
async def test_ttl_does_not_call_a_foreign_lease_a_lookup_reading_the_database(
    twin: Twin, sync_client: redis.Redis, life_ms: int | None
) -> None:
    sync_client.set("user-42", LEASE_PREFIX + b'0123456789abcdef"}', px=life_ms)
    report = await call(twin, "ttl", 42)
    assert report.state == "foreign-lease"
    assert "a lookup is reading" not in render_ttl(report, json_output=False)
    assert "no lookup of the demo wrote" in render_ttl(report, json_output=False)
    sync_client.set("user-42", LEASE_PREFIX + b'0123456789abcdef"}', px=5000)  # a lookup's own
    assert (await call(twin, "ttl", 42)).state == "lease"


# --- a lookup whose database read fails leaves no lease behind ---


async def test_a_lookup_whose_database_read_fails_gives_its_lease_back(twin: Twin, sync_client: redis.Redis) -> None:
    with sqlite3.connect("users.db") as connection:  # the test's own copy
        connection.execute("UPDATE users SET version = 'abc' WHERE id = 42")
    for _ in range(2):  # the second is refused at once too: no lease of the first is left to wait for
        with pytest.raises(DatabaseError, match="user 42's row is not a valid user"):
            await twin.lookup(42)
        assert sync_client.get("user-42") is None
