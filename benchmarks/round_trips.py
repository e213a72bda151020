"""Benchmark tooling, I/O: a proxy that counts Redis round trips, and the count for one miss and one hit.

`RoundTripProxy` sits on loopback in front of one Redis server and forwards bytes both ways
unchanged, counting each client connection's turns: the client's first bytes start one,
and so do bytes it sends after the server has spoken. A command is a turn, and so is a
whole pipeline or a script call: a turn is one wait for Redis. A turn is counted before
its bytes go on to the server, and a connection before its first bytes do, so once a
client has its reply the counts are final: nothing to wait for, no margin. A Redis Cluster
client learns its nodes' addresses from CLUSTER SLOTS, so a proxy in front of one node
would miss the others: `ClusterProxies` puts one in front of every node and gives
redis-py's `address_remap`, through which the client reaches each node only by its proxy.
The cluster client is built here with the options `config/redis.py` gives the demo's, plus
that remap (its builder takes no remap); the single-server one is the demo's own, on the
proxy's URL. A count is the difference around one lookup, on a client that was warmed up
first (connected, cluster map and scripts loaded), and reports the connections the lookup
opened: any set-up round trip then shows instead of being mistaken for the lookup's.
Never used by the demo; nothing starts at import, and a proxy's event loop runs in a
thread of its own from `start()` (or `with`) to `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from config.database import aopen_connector, open_connector
from config.redis import CLIENT_NAME, MAX_CLUSTER_CONNECTIONS, AsyncClient, RedisClients, SyncClient, node_of
from config.settings import Settings
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.policy import CachePolicy
from simulator.results import LookupResult, Source
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside

Topology = Literal["single", "cluster"]
LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 65536
STOP_SECONDS = 10.0  # a safety net: closing takes milliseconds, a hang fails loudly instead
POLICY = CachePolicy(key_prefix="round-trips:")  # keys of its own: a run never touches anyone else's
COUNTED_ID = 42


@dataclass(frozen=True, slots=True)
class Traffic:
    """What went through a proxy so far: round trips, and client connections opened."""

    round_trips: int = 0
    connections: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.round_trips + other.round_trips, self.connections + other.connections)

    def __sub__(self, earlier: Traffic) -> Traffic:
        return Traffic(self.round_trips - earlier.round_trips, self.connections - earlier.connections)


class TrafficCounter(Protocol):
    """A proxy, or a cluster's proxies: what went through so far."""

    def traffic(self) -> Traffic: ...


class _Link:
    """One client connection through the proxy: its turns, and who spoke last."""

    def __init__(self) -> None:
        self.round_trips = 0
        self.server_spoke_last = True  # so the client's first bytes start a turn

    def client_sent(self) -> None:
        if self.server_spoke_last:
            self.round_trips += 1
            self.server_spoke_last = False

    def server_sent(self) -> None:
        self.server_spoke_last = True


class RoundTripProxy:
    """A TCP proxy on 127.0.0.1 in front of one Redis server that counts round trips per client connection.

    `with RoundTripProxy(host, port) as proxy:` listens on `proxy.port` (`proxy.url()` for a
    client); `proxy.round_trips()` is the total so far over every connection, open or closed,
    and `proxy.traffic()` adds the connections opened. The counts are final as soon as a
    client has its reply (see the module's docstring). Leaving the `with` closes every
    connection and joins the proxy's thread.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0  # the port it listens on, once started
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stopping = asyncio.Event()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def url(self, like: str = "redis://localhost/0") -> str:
        """`like` (a redis:// URL: credentials, database) with the proxy's address instead of its own."""
        parts = urlsplit(like)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{LOOPBACK}:{self.port}"))

    @property
    def address(self) -> tuple[str, int]:
        return LOOPBACK, self.port

    def start(self) -> RoundTripProxy:
        """Listen on a free loopback port and forward, in a thread of the proxy's own (once)."""
        if self._thread is not None:
            raise RuntimeError("a proxy starts once")
        self._listener = listener = socket.create_server((LOOPBACK, 0))
        self.port = listener.getsockname()[1]
        self._loop = loop = asyncio.new_event_loop()
        name = f"round-trip-proxy-{self.port}"
        self._thread = threading.Thread(target=self._run, args=(loop, listener), name=name, daemon=True)
        self._thread.start()
        return self

    def round_trips(self) -> int:
        """Round trips so far, over every client connection."""
        return self.traffic().round_trips

    def traffic(self) -> Traffic:
        """Round trips and connections so far."""
        with self._lock:
            links = list(self._links)
        return Traffic(sum(link.round_trips for link in links), len(links))

    def close(self) -> None:
        """Close every connection and the listener, and join the thread (again: nothing)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(STOP_SECONDS)
            if self._thread.is_alive():
                raise RuntimeError(f"the proxy on port {self.port} did not stop in {STOP_SECONDS:g} s")
        if self._listener is not None:
            self._listener.close()  # the server closed it already, if it ran
        if self._loop is not None:
            self._loop.close()

    def __enter__(self) -> RoundTripProxy:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
        loop.run_until_complete(self._serve(listener))

    async def _serve(self, listener: socket.socket) -> None:
        server = await asyncio.start_server(self._handle, sock=listener, limit=CHUNK_BYTES)
        async with server:
            await self._stopping.wait()
        await asyncio.sleep(0)  # a connection accepted just now: its handler's first step registers it
        while self._handlers:
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        link = _Link()
        with self._lock:
            self._links.append(link)  # before the client's first bytes can have an answer
        try:
            # Cancelled: the proxy is closing. Python 3.11's start_server logs a handler that
            # ends cancelled as an error (it asks the task for its exception), so it ends quietly.
            with contextlib.suppress(asyncio.CancelledError):
                await self._forward(client_reader, client_writer, link)
        finally:
            self._handlers.discard(task)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        server_writer: asyncio.StreamWriter | None = None
        try:
            # The server unreachable, or either side resetting: the client sees its connection closed.
            with contextlib.suppress(OSError):
                server_reader, server_writer = await asyncio.open_connection(*self.target, limit=CHUNK_BYTES)
                # Either direction ending ends both: Redis has no use for half-closed connections.
                await _first_to_end(
                    _pump(client_reader, server_writer, link.client_sent),
                    _pump(server_reader, client_writer, link.server_sent),
                )
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(OSError, asyncio.CancelledError):
                        await writer.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, heard: Callable[[], None]) -> None:
    """Forward until end of file; `heard()` runs before each chunk is passed on."""
    while chunk := await reader.read(CHUNK_BYTES):
        heard()
        writer.write(chunk)
        await writer.drain()


async def _first_to_end(*coroutines: Any) -> None:
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # an OSError from either side, if that is how it ended


class ClusterProxies:
    """A `RoundTripProxy` in front of every node of a Redis Cluster, and the `address_remap` that uses them.

    `nodes` are the addresses as the cluster announces them (CLUSTER SLOTS; see
    `cluster_nodes`). A client built with `address_remap=proxies.remap` and `proxies.url()`
    as its start-up node reaches every node through its proxy; `traffic()` is the sum.
    """

    def __init__(self, nodes: Sequence[tuple[str, int]]) -> None:
        self._proxies = {(host, int(port)): RoundTripProxy(host, int(port)) for host, port in nodes}  # none started
        self._stack = contextlib.ExitStack()

    def remap(self, address: tuple[str, int]) -> tuple[str, int]:
        """The proxy's address for a node's (redis-py's `address_remap`); an unknown node is an error, not a bypass."""
        proxy = self._proxies.get((address[0], int(address[1])))
        if proxy is None:
            raise ValueError(f"no proxy for cluster node {address[0]}:{address[1]}")
        return proxy.address

    def url(self, like: str = "redis://localhost/0") -> str:
        """A start-up URL: the first node's proxy, with `like`'s credentials."""
        return next(iter(self._proxies.values())).url(like)

    def traffic(self) -> Traffic:
        """Round trips and connections so far, over every node."""
        return sum((proxy.traffic() for proxy in self._proxies.values()), Traffic())

    def round_trips(self) -> int:
        """Round trips so far, over every node."""
        return self.traffic().round_trips

    def __enter__(self) -> ClusterProxies:
        with self._stack as stack:
            for proxy in self._proxies.values():
                stack.enter_context(proxy)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """Every node serving slots (masters and replicas) as the cluster announces them, asked of the node at `url`."""
    with redis.Redis.from_url(url) as client:
        slots: Any = client.execute_command("CLUSTER SLOTS")
    found: dict[tuple[str, int], None] = {}
    for _, _, *servers in slots:
        for host, port, *_ in servers:
            name = host.decode() if isinstance(host, bytes) else str(host)
            found[(name or (urlsplit(url).hostname or LOOPBACK), int(port))] = None  # "": the node asked
    return list(found)


# --- clients through the proxies, as the demo builds its own ---


def _cluster_options(settings: Settings) -> dict[str, Any]:
    # What config/redis.py's RedisClients gives its cluster clients; tests/test_round_trips.py checks it still does.
    timeout = settings.redis_timeout_seconds
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_connections": MAX_CLUSTER_CONNECTIONS,
        "client_name": CLIENT_NAME,
        "require_full_coverage": False,
    }


def cluster_client(proxies: ClusterProxies, settings: Settings) -> RedisCluster:
    """A sync cluster client, built as the demo builds its own, that reaches every node through `proxies`."""
    retry = Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
    return RedisCluster.from_url(
        proxies.url(settings.redis_url), retry=retry, address_remap=proxies.remap, **_cluster_options(settings)
    )


def async_cluster_client(proxies: ClusterProxies, settings: Settings) -> AsyncRedisCluster:
    """The asyncio twin of `cluster_client` (create it inside the running event loop)."""
    retry = AsyncRetry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
    return AsyncRedisCluster.from_url(
        proxies.url(settings.redis_url), retry=retry, address_remap=proxies.remap, **_cluster_options(settings)
    )


class ClusterClients:
    """A cluster's clients through its proxies, used as RedisClients is: each twin's client made on first use."""

    def __init__(self, proxies: ClusterProxies, settings: Settings) -> None:
        self.proxies, self.settings = proxies, settings
        self._sync: RedisCluster | None = None
        self._async: AsyncRedisCluster | None = None

    def sync_client(self) -> RedisCluster:
        if self._sync is None:
            self._sync = cluster_client(self.proxies, self.settings)
        return self._sync

    def async_client(self) -> AsyncRedisCluster:
        if self._async is None:
            self._async = async_cluster_client(self.proxies, self.settings)
        return self._async

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()


# --- one lookup, counted ---


@dataclass(frozen=True, slots=True)
class CountedLookup:
    """A lookup's answer, the round trips it took and the connections it opened (0 on a warmed-up client)."""

    result: LookupResult
    round_trips: int
    connections: int


def neighbour(client: SyncClient | AsyncClient, policy: CachePolicy, user_id: int) -> int:
    """The next id whose key lives on the same node as `user_id`'s (any next id on a single server)."""
    node = node_of(client, policy.key(user_id))
    return next(other for other in itertools.count(user_id + 1) if node_of(client, policy.key(other)) == node)


def checked(miss: CountedLookup, hit: CountedLookup) -> tuple[CountedLookup, CountedLookup]:
    """The two lookups, if they were what they are counted as: else the count would mean something else."""
    if miss.result.source is not Source.DATABASE or not miss.result.stored:
        raise RuntimeError(f"the counted miss was not one that read the database and stored: {miss.result}")
    if hit.result.source is not Source.CACHE:
        raise RuntimeError(f"the counted hit was not a cache hit: {hit.result}")
    if miss.connections or hit.connections:
        raise RuntimeError("a counted lookup opened a connection: its set-up would be counted as the lookup's")
    return miss, hit


def count_lookup(cache: CacheAside, counter: TrafficCounter, user_id: int) -> CountedLookup:
    """Look `user_id` up, counting the round trips and connections it took."""
    before = counter.traffic()
    result = cache.lookup(user_id)
    spent = counter.traffic() - before
    return CountedLookup(result, spent.round_trips, spent.connections)


async def acount_lookup(cache: AsyncCacheAside, counter: TrafficCounter, user_id: int) -> CountedLookup:
    """Look `user_id` up, counting the round trips and connections it took."""
    before = counter.traffic()
    result = await cache.lookup(user_id)
    spent = counter.traffic() - before
    return CountedLookup(result, spent.round_trips, spent.connections)


def warm_up(cache: CacheAside, user_id: int) -> None:
    """Leave `user_id` uncached, with everything its lookup needs already paid for.

    Connected (and, on a cluster, its map known), and a miss and a hit of another id on the
    same node: that node's connection open and the scripts loaded on the server.
    """
    cache.client.ping()
    other = neighbour(cache.client, cache.policy, user_id)
    for key in (cache.policy.key(user_id), cache.policy.key(other)):
        cache.client.delete(key)  # one key a DEL: on a cluster they may live in different slots
    cache.lookup(other)
    cache.lookup(other)


async def awarm_up(cache: AsyncCacheAside, user_id: int) -> None:
    """Leave `user_id` uncached, with everything its lookup needs already paid for.

    Connected (and, on a cluster, its map known), and a miss and a hit of another id on the
    same node: that node's connection open and the scripts loaded on the server.
    """
    await cache.client.ping()
    other = neighbour(cache.client, cache.policy, user_id)
    for key in (cache.policy.key(user_id), cache.policy.key(other)):
        await cache.client.delete(key)  # one key a DEL: on a cluster they may live in different slots
    await cache.lookup(other)
    await cache.lookup(other)


def forget(client: SyncClient, policy: CachePolicy, user_id: int) -> None:
    """Remove what a count left: the counted id's key and its neighbour's."""
    for key in (policy.key(user_id), policy.key(neighbour(client, policy, user_id))):
        client.delete(key)


async def aforget(client: AsyncClient, policy: CachePolicy, user_id: int) -> None:
    """Remove what a count left: the counted id's key and its neighbour's."""
    for key in (policy.key(user_id), policy.key(neighbour(client, policy, user_id))):
        await client.delete(key)


def count_miss_and_hit(client: SyncClient, counter: TrafficCounter, database: Database, user_id: int) -> list[int]:
    """[miss, hit]: the round trips of a miss of `user_id`, then of a hit of it, on a warmed-up client."""
    cache = CacheAside(client, database, POLICY)
    try:
        warm_up(cache, user_id)
        miss = count_lookup(cache, counter, user_id)
        hit = count_lookup(cache, counter, user_id)
    finally:
        cache.close()
        forget(client, POLICY, user_id)
    return [counted.round_trips for counted in checked(miss, hit)]


async def acount_miss_and_hit(
    client: AsyncClient, counter: TrafficCounter, database: AsyncDatabase, user_id: int
) -> list[int]:
    """[miss, hit]: the round trips of a miss of `user_id`, then of a hit of it, on a warmed-up client."""
    cache = AsyncCacheAside(client, database, POLICY)
    try:
        await awarm_up(cache, user_id)
        miss = await acount_lookup(cache, counter, user_id)
        hit = await acount_lookup(cache, counter, user_id)
    finally:
        await cache.aclose()
        await aforget(client, POLICY, user_id)
    return [counted.round_trips for counted in checked(miss, hit)]


@contextlib.contextmanager
def proxied(settings: Settings, topology: Topology) -> Iterator[TrafficCounter]:
    """Proxies in front of the server, or of every node of the cluster, at `settings.redis_url`."""
    if topology == "cluster":
        with ClusterProxies(cluster_nodes(settings.redis_url)) as proxies:
            yield proxies
        return
    parts = urlsplit(settings.redis_url)
    with RoundTripProxy(parts.hostname or "localhost", parts.port or 6379) as proxy:
        yield proxy


def proxied_settings(settings: Settings, counter: TrafficCounter) -> Settings:
    """`settings` on a single server's proxy: the demo builds its own clients from them."""
    assert isinstance(counter, RoundTripProxy)
    return replace(settings, redis_url=counter.url(settings.redis_url))


def counted_clients(settings: Settings, counter: TrafficCounter) -> RedisClients | ClusterClients:
    """The clients a count uses: the demo's own on a single server's proxy, or the cluster's through its proxies."""
    if isinstance(counter, ClusterProxies):
        return ClusterClients(counter, settings)
    return RedisClients(proxied_settings(settings, counter))


def _count_sync(settings: Settings, topology: Topology, user_id: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        counter = stack.enter_context(proxied(settings, topology))
        database = Database(open_connector(settings), 0)
        stack.callback(database.close)
        clients = counted_clients(settings, counter)
        stack.callback(clients.close)
        return count_miss_and_hit(clients.sync_client(), counter, database, user_id)


async def _count_async(settings: Settings, topology: Topology, user_id: int) -> list[int]:
    async with contextlib.AsyncExitStack() as stack:
        counter = stack.enter_context(proxied(settings, topology))
        database = AsyncDatabase(await aopen_connector(settings), 0)
        stack.push_async_callback(database.aclose)
        clients = counted_clients(settings, counter)
        stack.push_async_callback(clients.aclose)
        return await acount_miss_and_hit(clients.async_client(), counter, database, user_id)


def count_round_trips(
    redis_url: str,
    database_url: str,
    *,
    twin: Literal["sync", "async"] = "sync",
    cluster_url: str | None = None,
    user_id: int = COUNTED_ID,
) -> dict[str, int]:
    """Round trips of one miss and one hit of `user_id` in one twin: {"hit-single", "miss-single"[, cluster's]}.

    `redis_url`: a single server; `cluster_url`: any node of a Redis Cluster (optional);
    `database_url`: a DATABASE_URL holding `user_id`. Keys live under `round-trips:` and
    are removed after. Call it outside an event loop (the async twin runs in its own).
    """
    counts: dict[str, int] = {}
    targets: list[tuple[Topology, str]] = [("single", redis_url)]
    if cluster_url is not None:
        targets.append(("cluster", cluster_url))
    for topology, url in targets:
        settings = Settings(
            redis_url=url, redis_configured=True, redis_cluster=topology == "cluster", database_url=database_url
        )
        if twin == "sync":
            miss, hit = _count_sync(settings, topology, user_id)
        else:
            miss, hit = asyncio.run(_count_async(settings, topology, user_id))
        counts[f"hit-{topology}"], counts[f"miss-{topology}"] = hit, miss
    return counts
