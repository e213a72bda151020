"""Round trips on the wire: a hit is one, a miss three, on a single server and on a Redis Cluster, in both twins.

A counting proxy (benchmarks/round_trips.py) sits in front of the private server, or of
every node of the private cluster, and counts the client's turns: a command, a pipeline
and a script call are one each. Every client is warmed up first (connected, the cluster's
map and the scripts loaded), so a count is the lookup's own, and each counted lookup must
open no connection, or its set-up would be counted as the lookup's. Counts are final
when the client has its reply: nothing here waits or sleeps.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from benchmarks.round_trips import (
    ClusterProxies,
    CountedLookup,
    RoundTripProxy,
    Topology,
    Traffic,
    acount_lookup,
    async_cluster_client,
    awarm_up,
    cluster_client,
    cluster_nodes,
    count_lookup,
    count_round_trips,
    proxied,
    proxied_settings,
    warm_up,
)
from config.redis import AsyncClient, SyncClient, get_redis
from config.settings import Settings, Twin
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.results import Source
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from tests.servers import RedisServer, redis_cli_binary, redis_server_binary, start_cluster
from tests.twins import EVENT_WAIT_SECONDS, async_sqlite_database, sqlite_database

pytestmark = pytest.mark.integration

USER_ID = 4321
KEY = f"user-{USER_ID}"
LATENCY = 0.001  # the database's; round trips are counted, not timed
MISS_ROUND_TRIPS = 3  # GET (with PTTL: the key's first read here), the claim script, the store script


def target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


def proxy_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("round-trip-proxy-")]


def receive(connection: socket.socket, expected: bytes) -> bytes:
    """Read until `expected`'s length has arrived (a reply may come in pieces)."""
    connection.settimeout(EVENT_WAIT_SECONDS)  # a safety net: a reply that never comes fails the test
    received = b""
    while len(received) < len(expected) and (chunk := connection.recv(len(expected) - len(received))):
        received += chunk
    return received


# --- the proxy itself ---


def test_a_pipeline_is_one_round_trip_and_three_commands_are_three(redis_url: str) -> None:
    with RoundTripProxy(*target(redis_url)) as proxy, redis.Redis.from_url(proxy.url(redis_url)) as client:
        client.ping()  # connects: the connection's set-up is counted too, before `connected`
        connected = proxy.traffic()
        client.pipeline(transaction=False).set("a", 1).get("a").incr("n").execute()
        pipelined = proxy.traffic()
        client.pipeline(transaction=True).get("a").incr("n").execute()  # MULTI ... EXEC, sent at once
        transaction = proxy.traffic()
        for _ in range(3):
            client.get("a")
        alone = proxy.traffic()
    assert connected.connections == 1
    assert pipelined - connected == Traffic(round_trips=1)
    assert transaction - pipelined == Traffic(round_trips=1)
    assert alone - transaction == Traffic(round_trips=3)


def test_a_script_is_one_round_trip_once_the_server_has_it(redis_url: str) -> None:
    with RoundTripProxy(*target(redis_url)) as proxy, redis.Redis.from_url(proxy.url(redis_url)) as client:
        script = client.register_script(f"return 1 -- {uuid.uuid4()}")  # a body the server has never seen
        client.ping()
        connected = proxy.traffic()
        script()  # EVALSHA, NOSCRIPT; SCRIPT LOAD; EVALSHA: why counts are taken on a warmed-up client
        first = proxy.traffic()
        script()
        second = proxy.traffic()
    assert first - connected == Traffic(round_trips=3)
    assert second - first == Traffic(round_trips=1)


def test_a_turn_is_what_the_client_sends_until_the_server_answers(redis_url: str) -> None:
    with RoundTripProxy(*target(redis_url)) as proxy, socket.create_connection(proxy.address) as raw:
        raw.sendall(b"*1\r\n$4\r\nPI")  # half a command: the server cannot answer yet
        raw.sendall(b"NG\r\n")
        assert receive(raw, b"+PONG\r\n") == b"+PONG\r\n"
        raw.sendall(b"PING\r\nPING\r\n")  # two commands in one write
        assert receive(raw, b"+PONG\r\n+PONG\r\n") == b"+PONG\r\n+PONG\r\n"
        assert proxy.traffic() == Traffic(round_trips=2, connections=1)


def test_each_connection_is_counted_and_the_counts_are_summed(redis_url: str) -> None:
    with RoundTripProxy(*target(redis_url)) as proxy:
        for _ in range(2):
            with socket.create_connection(proxy.address) as raw:
                raw.sendall(b"PING\r\n")
                assert receive(raw, b"+PONG\r\n") == b"+PONG\r\n"
        assert proxy.traffic() == Traffic(round_trips=2, connections=2)
        assert proxy.round_trips() == 2


def test_closing_the_proxy_closes_its_connections_and_ends_its_thread(redis_url: str) -> None:
    proxy = RoundTripProxy(*target(redis_url)).start()
    with socket.create_connection(proxy.address) as raw:
        raw.sendall(b"PING\r\n")
        assert receive(raw, b"+PONG\r\n") == b"+PONG\r\n"
        proxy.close()
        assert raw.recv(1) == b""  # the proxy closed the client's connection
    assert proxy_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address).close()


def test_a_server_that_cannot_be_reached_closes_the_clients_connection(free_port: int) -> None:
    with RoundTripProxy("127.0.0.1", free_port) as proxy:
        client = redis.Redis("127.0.0.1", proxy.port, retry=Retry(NoBackoff(), 0), socket_timeout=EVENT_WAIT_SECONDS)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        client.close()
    assert proxy_threads() == []


# --- the lookup's round trips, in both twins, on both topologies ---


@dataclass
class Counted:
    """One twin's client, whose every round trip a proxy counts, and a client straight to the server for checks."""

    client: SyncClient | AsyncClient
    counter: RoundTripProxy | ClusterProxies
    server: SyncClient  # never through the proxies: not counted
    caches: list[CacheAside | AsyncCacheAside] = field(default_factory=list)

    def cache(self, policy: CachePolicy | None = None) -> CacheAside | AsyncCacheAside:
        """A new lookup on the counted client (a fresh process's, as far as the lookup knows)."""
        policy = policy or CachePolicy()
        cache: CacheAside | AsyncCacheAside
        if isinstance(self.client, redis.Redis | RedisCluster):
            cache = CacheAside(self.client, sqlite_database(LATENCY), policy)
        else:
            cache = AsyncCacheAside(self.client, async_sqlite_database(LATENCY), policy)
        self.caches.append(cache)
        return cache

    async def warm_up(self, cache: CacheAside | AsyncCacheAside, user_id: int) -> None:
        if isinstance(cache, CacheAside):
            warm_up(cache, user_id)
        else:
            await awarm_up(cache, user_id)

    async def count(self, cache: CacheAside | AsyncCacheAside, user_id: int) -> CountedLookup:
        if isinstance(cache, CacheAside):
            return count_lookup(cache, self.counter, user_id)
        return await acount_lookup(cache, self.counter, user_id)

    async def cached_miss(self, user_id: int) -> CountedLookup:
        """A warmed-up lookup's miss of `user_id`, which stores it."""
        cache = self.cache()
        await self.warm_up(cache, user_id)
        return await self.count(cache, user_id)

    async def close(self) -> None:
        for cache in self.caches:
            if isinstance(cache, CacheAside):
                cache.close()
            else:
                await cache.aclose()
        if isinstance(self.client, redis.Redis | RedisCluster):
            self.client.close()
        else:
            await self.client.aclose()
        self.server.close()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """One private 3-master cluster for this module (starting one takes seconds); each test empties it after."""
    directory = tmp_path_factory.mktemp("cluster")
    nodes = start_cluster(directory, server_binary=redis_server_binary(), cli_binary=redis_cli_binary())
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def cluster_url(shared_cluster: list[RedisServer]) -> Iterator[str]:
    """The shared cluster's URL (any node's), emptied after the test."""
    yield shared_cluster[0].url
    with RedisCluster.from_url(shared_cluster[0].url) as client:
        client.flushall(target_nodes=RedisCluster.PRIMARIES)


def _settings(topology: Topology, request: pytest.FixtureRequest) -> Settings:
    if topology == "cluster":
        return Settings(redis_url=request.getfixturevalue("cluster_url"), redis_configured=True, redis_cluster=True)
    return Settings(redis_url=request.getfixturevalue("redis_url"), redis_configured=True)


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> Twin:
    return "sync" if request.param == "sync" else "async"


@pytest.fixture(params=["single", "cluster"])
def topology(request: pytest.FixtureRequest) -> Topology:
    return "cluster" if request.param == "cluster" else "single"


@pytest.fixture
async def counted(twin: Twin, topology: Topology, request: pytest.FixtureRequest) -> AsyncIterator[Counted]:
    """The twin's client through the proxies: the demo's own on a single server, built as the demo's on a cluster."""
    settings = _settings(topology, request)
    with proxied(settings, topology) as counter:
        assert isinstance(counter, RoundTripProxy | ClusterProxies)
        client: SyncClient | AsyncClient
        if isinstance(counter, ClusterProxies):
            client = cluster_client(counter, settings) if twin == "sync" else async_cluster_client(counter, settings)
            server: SyncClient = RedisCluster.from_url(settings.redis_url)
        else:
            clients = get_redis(proxied_settings(settings, counter))
            client = clients.sync_client() if twin == "sync" else clients.async_client()
            server = redis.Redis.from_url(settings.redis_url)
        counting = Counted(client, counter, server)
        try:
            yield counting
        finally:
            await counting.close()
    assert proxy_threads() == []


async def test_a_miss_is_three_round_trips_and_the_hit_after_it_one(counted: Counted) -> None:
    cache = counted.cache()
    await counted.warm_up(cache, USER_ID)
    miss = await counted.count(cache, USER_ID)
    assert (miss.result.source, miss.result.read_the_database, miss.result.stored) == (Source.DATABASE, True, True)
    assert counted.server.get(KEY) == encode_record(user_record(USER_ID)).encode()
    hit = await counted.count(cache, USER_ID)
    assert (hit.result.source, hit.result.record) == (Source.CACHE, user_record(USER_ID))
    assert (miss.connections, hit.connections) == (0, 0)  # no set-up counted as a lookup's
    assert hit.round_trips == 1
    assert miss.round_trips <= 3
    assert miss.round_trips == MISS_ROUND_TRIPS  # today's exact count: a regression (or a saving) shows


async def test_a_keys_first_hit_in_a_fresh_lookup_asks_its_expiry_in_the_same_round_trip(counted: Counted) -> None:
    await counted.cached_miss(USER_ID)
    fresh = counted.cache()
    assert fresh.audit.due(KEY)  # its first hit here reads GET and PTTL, pipelined
    first = await counted.count(fresh, USER_ID)
    assert (first.result.source, first.round_trips, first.connections) == (Source.CACHE, 1, 0)
    assert not fresh.audit.due(KEY)  # the expiry was read: only a read with PTTL marks it checked


async def test_a_hit_with_early_refresh_on_is_one_round_trip_when_no_refresh_is_due(counted: Counted) -> None:
    draws: list[float] = []

    def never_due() -> float:
        draws.append(1.0)
        return 1.0  # XFetch's -ln(u) is 0 at u = 1: no key with time left is refreshed

    await counted.cached_miss(USER_ID)
    refreshing = counted.cache(CachePolicy(early_refresh=True, random=never_due))
    hits = [await counted.count(refreshing, USER_ID) for _ in range(2)]  # the second: audited, PTTL read anyway
    assert [(hit.result.source, hit.round_trips, hit.connections) for hit in hits] == [(Source.CACHE, 1, 0)] * 2
    assert len(draws) == 2  # XFetch decided each hit, on the TTL read in the same round trip
    assert refreshing.stats.snapshot().database_reads == 0  # and refreshed nothing


def test_count_round_trips_gives_the_benchmark_a_miss_and_a_hit_per_topology(
    twin: Twin, redis_url: str, cluster_url: str
) -> None:
    counts = count_round_trips(redis_url, "sqlite:///users.db", twin=twin, cluster_url=cluster_url)
    assert counts == {
        "hit-single": 1,
        "miss-single": MISS_ROUND_TRIPS,
        "hit-cluster": 1,
        "miss-cluster": MISS_ROUND_TRIPS,
    }
    with redis.Redis.from_url(redis_url) as single, RedisCluster.from_url(cluster_url) as whole:
        assert single.dbsize() == 0  # its keys are removed after
        assert list(whole.scan_iter(target_nodes=RedisCluster.PRIMARIES)) == []
    assert proxy_threads() == []


def _shape(client: RedisCluster | AsyncRedisCluster) -> dict[str, object]:
    """A cluster client's options that are plain values (what differs otherwise is a bound method, a handler)."""
    manager: object = client.nodes_manager
    options = manager.connection_kwargs
    plain = {name: value for name, value in options.items() if isinstance(value, str | int | float | type | None)}
    coverage = getattr(manager, "require_full_coverage", getattr(manager, "_require_full_coverage", None))
    return {**plain, "retry": client.retry, "require_full_coverage": coverage}


async def test_the_counted_cluster_client_is_built_as_the_demo_builds_its_own(twin: Twin, cluster_url: str) -> None:
    settings = Settings(redis_url=cluster_url, redis_configured=True, redis_cluster=True)
    demo = get_redis(settings)
    with ClusterProxies(cluster_nodes(settings.redis_url)) as proxies:
        if twin == "sync":
            ours, sync_theirs = cluster_client(proxies, settings), demo.sync_client()
            assert isinstance(sync_theirs, RedisCluster)
            assert _shape(ours) == _shape(sync_theirs)
            ours.close()
            demo.close()
        else:
            async_ours = async_cluster_client(proxies, settings)
            theirs = demo.async_client()
            assert isinstance(theirs, AsyncRedisCluster)
            await async_ours.ping()
            await theirs.ping()
            assert _shape(async_ours) == _shape(theirs)
            await async_ours.aclose()
            await demo.aclose()
