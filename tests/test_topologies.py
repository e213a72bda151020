"""Redis Cluster and Sentinel, in both twins: every behaviour, a node killed, a whole cluster down, a failover.

Fixtures start a local 3-master cluster (`redis-server --cluster-enabled yes` on free ports,
joined with `redis-cli --cluster create`) and a master + replica + Sentinel, in temp dirs,
stopped after each test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.redis import get_redis
from config.settings import Settings
from simulator.breaker import CacheEvent
from simulator.records import encode_record, user_record
from simulator.results import ClearReport, Source
from simulator.seeding import SeedProgress
from tests.conftest import PROJECT_ROOT
from tests.servers import RedisServer
from tests.test_e2e import assert_clean, script_env, stderr_lines
from tests.twins import EVENT_WAIT_SECONDS, Twin, app_twin, assert_ttl_given

pytestmark = pytest.mark.integration
COOLDOWN = 1.0


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def events() -> list[CacheEvent]:
    return []


async def _twin(name: str, settings: Settings, events: list[CacheEvent]) -> AsyncIterator[Twin]:
    twin = app_twin(name, settings, events)
    if name == "async":
        await twin.cache.client.ping()  # as the demo's start-up does: the cluster client learns its nodes
    yield twin
    get_redis(settings).close()
    await get_redis(settings).aclose()


@pytest.fixture
async def on_cluster(name: str, cluster: list[RedisServer], events: list[CacheEvent]) -> AsyncIterator[Twin]:
    settings = Settings(
        redis_url=cluster[0].url,
        redis_configured=True,
        redis_cluster=True,
        db_latency_seconds=0.05,
        cache_cooldown_seconds=COOLDOWN,
        seed_batch_size=500,
    )
    async for twin in _twin(name, settings, events):
        yield twin


@pytest.fixture
async def on_sentinel(
    name: str, sentinel_group: tuple[RedisServer, RedisServer, RedisServer], events: list[CacheEvent]
) -> AsyncIterator[Twin]:
    settings = Settings(
        redis_configured=True,
        sentinels=(("127.0.0.1", sentinel_group[2].port),),
        db_latency_seconds=0.05,
        cache_cooldown_seconds=COOLDOWN,
    )
    async for twin in _twin(name, settings, events):
        yield twin


def node_of(cluster: list[RedisServer], key: str) -> RedisServer:
    for node in cluster:
        with node.admin() as client:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            owner = client.execute_command("CLUSTER", "SLOTS")
        for start, end, (_host, port, *_), *_ in owner:
            if start <= slot <= end:
                return next(candidate for candidate in cluster if candidate.port == port)
    raise AssertionError(f"no node holds {key}")


def keys_on(node: RedisServer) -> set[bytes]:
    with node.admin() as client:
        return set(client.scan_iter(count=1000))


async def call(twin: Twin, method: str, *arguments: object) -> object:
    outcome = getattr(twin.cache, method)(*arguments)
    return await outcome if asyncio.iscoroutine(outcome) else outcome


# --- Redis Cluster ---


async def test_seeding_a_cluster_spreads_every_record_over_the_masters(
    on_cluster: Twin, cluster: list[RedisServer]
) -> None:
    started = time.time()
    report = await on_cluster.seed("pipelined", 3000)
    ended = time.time()
    assert (report.written, report.stopped) == (3000, False)
    per_node = [keys_on(node) for node in cluster]
    assert sum(len(keys) for keys in per_node) == 3000
    assert all(len(keys) > 500 for keys in per_node)
    with cluster[0].admin() as client:
        node = node_of(cluster, "user-2999")
    with node.admin() as client:
        assert client.get("user-2999") == encode_record(user_record(2999)).encode()
        assert_ttl_given(client, "user-2999", started, ended, 3240, 3960)


async def test_lookups_stampedes_and_not_found_work_on_a_cluster(on_cluster: Twin) -> None:
    assert (await on_cluster.lookup(4321)).source is Source.DATABASE
    assert (await on_cluster.lookup(4321)).source is Source.CACHE
    assert (await on_cluster.lookup(7_000_000)).source is Source.NOT_FOUND
    assert (await on_cluster.lookup(7_000_000)).source is Source.NEGATIVE_CACHE
    report = await call(on_cluster, "stampede", 8888, 100)  # past the 32 a single server's pool holds
    assert report.database_reads == 1
    assert report.sources == {"database": 100} or "cache" in report.sources
    ttl = await call(on_cluster, "ttl", 4321)
    assert ttl.state == "record"


async def test_clear_scans_every_master_and_leaves_other_keys(on_cluster: Twin, cluster: list[RedisServer]) -> None:
    await on_cluster.seed("pipelined", 2000)
    for number, node in enumerate(cluster):
        with node.admin() as client:
            key = next(f"keep-{n}" for n in range(10_000) if node_of(cluster, f"keep-{n}") is node)
            client.set(key, "mine")
            client.set(f"{{{key}}}:user-{number}", "also mine")  # looks like ours, is not
    report = await call(on_cluster, "clear")
    assert report == ClearReport(2000)
    assert all(all(not key.startswith(b"user-") for key in keys_on(node)) for node in cluster)
    assert sum(len(keys_on(node)) for node in cluster) == 6


async def test_a_killed_node_degrades_only_its_own_keys(
    on_cluster: Twin, cluster: list[RedisServer], events: list[CacheEvent]
) -> None:
    await on_cluster.seed("pipelined", 300)
    victim = node_of(cluster, "user-1")
    survivor_ids = [user_id for user_id in range(2, 300) if node_of(cluster, f"user-{user_id}") is not victim][:5]
    victim.kill()
    dead = await on_cluster.lookup(1)
    assert dead.degraded
    assert dead.record == user_record(1)
    for user_id in survivor_ids:
        result = await on_cluster.lookup(user_id)
        assert (result.source, result.degraded) == (Source.CACHE, False)
    assert [(event.available, event.node) for event in events] == [(False, victim.address)]


async def test_a_whole_cluster_down_degrades_everything_and_recovers_by_itself(
    on_cluster: Twin, cluster: list[RedisServer], events: list[CacheEvent]
) -> None:
    await on_cluster.lookup(5)
    for node in cluster:
        node.kill()
    for user_id in range(5, 25):
        assert (await on_cluster.lookup(user_id)).degraded
    for node in cluster:
        node.restart()  # same ports and cluster config: the cluster comes back, empty
    deadline = time.monotonic() + EVENT_WAIT_SECONDS  # only bounds a hang: re-forming is slow on a loaded machine
    while (await on_cluster.lookup(5)).degraded:
        assert time.monotonic() < deadline, "the cache was not used again"
        await asyncio.sleep(0.1)  # a user's pace while the cluster re-forms
    assert (await on_cluster.lookup(5)).source is Source.CACHE
    assert any(event.available for event in events)


# --- Sentinel ---


async def test_the_master_is_found_through_sentinel(
    on_sentinel: Twin, sentinel_group: tuple[RedisServer, RedisServer, RedisServer]
) -> None:
    master, _, _ = sentinel_group
    await on_sentinel.seed("pipelined", 500)
    assert (await on_sentinel.lookup(42)).source is Source.CACHE
    assert (await on_sentinel.lookup(4242)).source is Source.DATABASE
    with master.admin() as client:
        assert client.dbsize() == 501


async def test_a_failover_is_survived(
    on_sentinel: Twin, sentinel_group: tuple[RedisServer, RedisServer, RedisServer], events: list[CacheEvent]
) -> None:
    master, replica, _ = sentinel_group
    await on_sentinel.lookup(77)
    replica.freeze()  # nothing to promote yet: the failover cannot be over before the lookup below
    master.kill()
    assert (await on_sentinel.lookup(77)).degraded  # during the switch, answers come from the database
    replica.thaw()
    deadline = time.monotonic() + EVENT_WAIT_SECONDS  # only bounds a hang: Sentinel needs seconds to fail over
    while (result := await on_sentinel.lookup(77)).degraded or result.source is not Source.CACHE:
        assert time.monotonic() < deadline, "the new master was never used"
        await asyncio.sleep(0.1)  # a user's pace during the failover
    assert (await on_sentinel.lookup(78)).source is Source.DATABASE
    with replica.admin() as client:  # the replica, now master, holds what was written after
        assert client.info("replication")["role"] == "master"
        assert client.exists("user-78")
    assert [event.available for event in events] == [False, True]


# --- the scripts, started as a user starts them ---


@pytest.mark.parametrize(
    ("script", "topology"),
    [("main.py", "cluster"), ("main_async.py", "cluster"), ("main.py", "sentinel"), ("main_async.py", "sentinel")],
)
def test_the_scripts_say_which_topology_they_are_on(
    script: str, topology: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if topology == "cluster":
        nodes: list[RedisServer] = request.getfixturevalue("cluster")
        arguments, expected = ["--cluster", "--redis-url", nodes[0].url], "Connected to Redis Cluster (3 masters)"
    else:
        master, _, sentinel = request.getfixturevalue("sentinel_group")
        arguments = ["--sentinel", sentinel.address]
        expected = (
            f"Connected to Redis master 'mymaster' at {master.address}, found through Sentinel {sentinel.address}"
        )
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *arguments, "--count", "100", "--db-latency", "0.01"],
        input=b"7\n700000\nclear\n",
        capture_output=True,
        cwd=tmp_path,
        env=script_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done.stderr)[0].startswith(expected)
    assert b"Cleared " in done.stdout
    assert_clean(done.stderr)


def test_cluster_and_sentinel_settings_are_checked(tmp_path: Path) -> None:
    from config.settings import ConfigError

    for environ, fragment in (
        ({"REDIS_CLUSTER": "1", "REDIS_SENTINELS": "h:1"}, "choose Redis Cluster or Sentinel"),
        ({"REDIS_CLUSTER": "1", "REDIS_URL": "memory://"}, "needs a redis:// URL"),
        ({"REDIS_CLUSTER": "1", "REDIS_URL": "redis://h:1/3"}, "Redis Cluster has only database 0"),
        ({"REDIS_SENTINELS": "h"}, "REDIS_SENTINELS='h' is not valid: expected host:port"),
        ({"REDIS_SENTINELS": "h:1", "REDIS_SENTINEL_MASTER": "a b"}, "REDIS_SENTINEL_MASTER='a b' is not valid"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            Settings.from_env(environ, "sync")
    assert Settings.from_env({"REDIS_SENTINELS": "h:1, [::1]:26380"}, "sync").sentinels == (("h", 1), ("::1", 26380))
    assert Settings.from_env({"REDIS_SENTINELS": "h:1"}, "sync").redis_configured


async def test_a_seed_cut_short_on_a_cluster_reports_it(on_cluster: Twin, cluster: list[RedisServer]) -> None:
    from config.redis import REDIS_ERRORS

    def node_down_once_3000_are_written(records: int) -> None:
        if progress.written >= 3000:  # the seed is well under way (its own thread or task calls this)
            cluster[1].kill()

    progress = SeedProgress("pipelined", 200_000, time.perf_counter(), on_advance=node_down_once_3000_are_written)
    method = on_cluster.seeder.seed_pipelined

    async def seed() -> object:
        return await asyncio.to_thread(method, progress) if on_cluster.name == "sync" else await method(progress)

    with pytest.raises(REDIS_ERRORS):
        await asyncio.wait_for(seed(), timeout=EVENT_WAIT_SECONDS)
    assert 3000 <= progress.written < 200_000
