"""Configuration layer, I/O side: the Redis singleton and the start-up check.

`get_redis(settings)` returns the one `RedisClients` for those settings: a sync
`redis.Redis`, and, inside a running event loop, a `redis.asyncio.Redis` (redis-py's
successor to the dead `aioredis`), both built from the same URL, timeouts, retry policy
and pool bound. `memory://` gives fakeredis clients sharing one in-process `FakeServer`.
Importing this module connects to nothing and clients connect on their first command;
`open_redis` / `aopen_redis` ping once at start-up and say what they reached, or raise
`RedisUnavailable`, whose cause config/redis_failures.py classifies. Nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.connection import parse_url
from redis.retry import Retry

from config.redis_failures import (
    REDIS_ERRORS,
    NoSentinelAnswered,
    Probed,
    aprobe_other_protocol,
    failure_kind,
    failure_reason,
    is_tls,
    is_unreachable,
    probe_other_protocol,
    probe_target,
)
from config.settings import EMBEDDED_REDIS_URL, Settings
from config.speedups import POOL_WAIT_SECONDS, WaitingConnectionPool, pack_with_hiredis

if TYPE_CHECKING:
    from fakeredis import FakeServer

# Explicit knobs, not redis-py's defaults (5 s reads, up to 10 retries): a cache that is
# slow to fail is worse than no cache. The socket and connect timeouts are
# REDIS_TIMEOUT_SECONDS (1 s by default).
MAX_CONNECTIONS = 32  # per single-server client; its pool waits for a free connection instead of failing
# redis-py's Cluster and Sentinel pools cannot wait: they fail past their bound, so it is set
# above anything the demo runs at once (1000 lookups in flight, or a stampede of 1000).
MAX_CLUSTER_CONNECTIONS = 1100
BULK_BATCH_TIMEOUT_SECONDS = 10.0  # a whole seeding batch on the bulk client
CLIENT_NAME = "cache-aside-demo"


# The sync and asyncio clients of each topology: a server (or a Sentinel-found master), or a cluster.
SyncClient = redis.Redis | RedisCluster
AsyncClient = redis.asyncio.Redis | AsyncRedisCluster


@functools.cache
def _is_cluster(kind: type) -> bool:
    # Cached per class: isinstance against the cluster classes costs ~0.7 us, on every hit.
    return issubclass(kind, RedisCluster | AsyncRedisCluster)


def is_cluster(client: SyncClient | AsyncClient) -> bool:
    """True for a Redis Cluster client (sync or asyncio)."""
    return _is_cluster(type(client))


def on_node_of(client: SyncClient | AsyncClient, key: str) -> dict[str, Any]:
    """Options that send a command to the node holding `key` (either cluster client; {} elsewhere)."""
    if is_cluster(client):
        cluster: Any = client  # redis-py leaves the sync RedisCluster's get_node_from_key untyped
        return {"target_nodes": cluster.get_node_from_key(key)}
    return {}


def node_of(client: SyncClient | AsyncClient, key: str) -> str:
    """The name of the cluster node holding `key` ("" outside a cluster): each node gets its own circuit breaker."""
    if not _is_cluster(type(client)):
        return ""
    cluster: Any = client  # redis-py leaves the sync RedisCluster's get_node_from_key untyped
    try:
        node = cluster.get_node_from_key(key)
    except REDIS_ERRORS:
        return "?"
    return str(node.name) if node is not None else "?"


def scan_targets(client: SyncClient | AsyncClient) -> list[tuple[str, dict[str, Any]]]:
    """Where to SCAN a whole keyspace, one part at a time: each master of a cluster, named, with the options
    that send a command to it; or the one server ("", {}). A cluster's master down costs only its own keys."""
    if not is_cluster(client):
        return [("", {})]
    cluster: Any = client  # redis-py leaves the sync RedisCluster's get_primaries untyped
    return [(str(node.name), {"target_nodes": node}) for node in cluster.get_primaries()]


class NodeUnavailable(redis.ConnectionError):
    """A command for one key failed because the cluster node holding it is unavailable (the others still work)."""

    def __init__(self, node: str, key: str, error: BaseException) -> None:
        super().__init__(f"cache node {node}, which holds {key}, is unavailable ({failure_reason(error)})")
        self.node = node


class RedisClients:
    """The Redis singleton: a sync client and an asyncio client from the same settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._sync: SyncClient | None = None
        self._async: AsyncClient | None = None
        self._async_bulk: AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._fake_server: FakeServer | None = None
        self._sentinel_clients: list[redis.Redis] = []  # connections to the Sentinels themselves
        self._async_sentinel_clients: list[redis.asyncio.Redis] = []

    @property
    def embedded(self) -> bool:
        """True when these clients talk to the in-process fakeredis server."""
        return self.settings.embedded

    def sync_client(self) -> SyncClient:
        """The blocking client, created on first use."""
        with self._lock:
            if self._sync is None:
                self._sync = self._build_sync()
            return self._sync

    def async_client(self) -> AsyncClient:
        """The asyncio client of the running event loop, created inside it on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                self._async = self._build_async(self.settings.redis_timeout_seconds)
                self._async_bulk = None
                self._async_loop = loop
            return self._async

    def async_bulk_client(self) -> AsyncClient:
        """An asyncio client for pipelines of thousands of commands: no timeout per reply.

        redis.asyncio arms a timer for every reply it reads, which costs more than the SET
        itself in a 1000-command pipeline (9.5 us a record instead of 5.5 here). Seeding
        uses this client and bounds each whole batch with asyncio.timeout instead.
        """
        client = self.async_client()
        with self._lock:
            if self._async_bulk is None:
                self._async_bulk = client if self.embedded else self._build_async(None)
            return self._async_bulk

    def sentinel_clients(self) -> list[redis.Redis]:
        """The sync client's connections to the Sentinels themselves (none outside Sentinel mode)."""
        with self._lock:
            return list(self._sentinel_clients)

    def async_sentinel_clients(self) -> list[redis.asyncio.Redis]:
        """The asyncio client's connections to the Sentinels themselves."""
        with self._lock:
            return list(self._async_sentinel_clients)

    def master_address(self) -> tuple[str, int] | None:
        """Where the client in use sends commands, as Sentinel last told it (no I/O); None outside Sentinel mode.

        The client of the running event loop if it has one, else the sync client.
        """
        with self._lock:
            client: SyncClient | AsyncClient | None = self._sync
            with contextlib.suppress(RuntimeError):
                if self._async is not None and asyncio.get_running_loop() is self._async_loop:
                    client = self._async
        address = getattr(getattr(client, "connection_pool", None), "master_address", None)
        return (str(address[0]), int(address[1])) if address else None

    def close(self) -> None:
        """Close the sync client's connections (and those to the Sentinels)."""
        with self._lock:
            client, self._sync = self._sync, None
            sentinels, self._sentinel_clients = self._sentinel_clients, []
        for connection in [client, *sentinels]:
            if connection is not None:
                connection.close()

    async def aclose(self) -> None:
        """Close the asyncio clients' connections (always await this before the loop ends)."""
        with self._lock:
            client, self._async = self._async, None
            bulk, self._async_bulk = self._async_bulk, None
            sentinels, self._async_sentinel_clients = self._async_sentinel_clients, []
        for connection in [client, bulk if bulk is not client else None, *sentinels]:
            if connection is not None:
                await connection.aclose()

    def sibling(self, settings: Settings | None = None) -> RedisClients:
        """Other clients of the same Redis, with connections of their own, as a second process would have
        (the labs' "processes"); on the embedded Redis, the same in-process server. Close them after use.
        `settings` may change what does not choose the server (its timeouts, say)."""
        clients = RedisClients(settings or self.settings)
        if self.embedded:
            clients._fake_server = self._fake()
        return clients

    def embedded_server(self) -> FakeServer:
        """The in-process server of the embedded Redis (to serve it on a port of the labs' own)."""
        return self._fake()

    def _fake(self) -> FakeServer:
        if self._fake_server is None:
            import fakeredis  # imported here: only the embedded mode pays for it

            self._fake_server = fakeredis.FakeServer()
        return self._fake_server

    def _build_sync(self) -> SyncClient:
        settings = self.settings
        if self.embedded:
            import fakeredis

            embedded = fakeredis.FakeRedis(
                server=self._fake(), connection_pool_class=redis.BlockingConnectionPool, max_connections=MAX_CONNECTIONS
            )
            # The class asked for above; redis-py types the attribute as the ConnectionPool base.
            pool = cast(redis.BlockingConnectionPool, embedded.connection_pool)
            pool.timeout = POOL_WAIT_SECONDS  # waits: never "too many"
            return embedded
        options = _connection_options(settings, settings.redis_timeout_seconds)
        retry = Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
        if settings.redis_cluster:  # finds every node from the one named, and splits pipelines by slot
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            return RedisCluster.from_url(settings.redis_url, retry=retry, require_full_coverage=False, **options)
        if settings.sentinels:  # asks the Sentinels where the master is, again after every failover
            sentinel = _Sentinel(
                list(settings.sentinels), sentinel_kwargs={**_sentinel_options(settings), "retry": retry}
            )
            self._sentinel_clients.extend(sentinel.sentinels)
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            master: redis.Redis = sentinel.master_for(
                settings.sentinel_master, retry=retry, **options, **_master_options(settings)
            )
            return master
        pool = redis.BlockingConnectionPool.from_url(
            settings.redis_url, retry=retry, timeout=POOL_WAIT_SECONDS, **options
        )
        return redis.Redis.from_pool(pool)

    def _build_async(self, socket_timeout: float | None) -> AsyncClient:
        settings = self.settings
        if self.embedded:
            import fakeredis

            return fakeredis.FakeAsyncRedis(
                server=self._fake(), connection_pool_class=WaitingConnectionPool, max_connections=MAX_CONNECTIONS
            )
        options = _connection_options(settings, socket_timeout)
        retry = AsyncRetry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
        if settings.redis_cluster:
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            return AsyncRedisCluster.from_url(settings.redis_url, retry=retry, require_full_coverage=False, **options)
        if settings.sentinels:
            async_sentinel = _AsyncSentinel(
                list(settings.sentinels), sentinel_kwargs={**_sentinel_options(settings), "retry": retry}
            )
            self._async_sentinel_clients.extend(async_sentinel.sentinels)
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            async_master: redis.asyncio.Redis = async_sentinel.master_for(
                settings.sentinel_master, retry=retry, **options, **_master_options(settings)
            )
            return async_master
        pool = WaitingConnectionPool.from_url(settings.redis_url, retry=retry, timeout=POOL_WAIT_SECONDS, **options)
        pack_with_hiredis(pool)  # a speed-up only: the connection class the URL chose stays
        return redis.asyncio.Redis.from_pool(pool)


# Called through Any: redis-py leaves its Sentinel classes (constructor and master_for) and
# parse_url untyped. What they return is annotated where it is used.
_Sentinel: Any = redis.sentinel.Sentinel
_AsyncSentinel: Any = redis.asyncio.sentinel.Sentinel
_parse_url: Any = parse_url


def _connection_options(settings: Settings, socket_timeout: float | None) -> dict[str, Any]:
    # One retry, only on a dropped connection (a server's idle timeout closes it): a
    # timeout is not retried, so a frozen server costs one socket timeout, not eleven.
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "max_connections": MAX_CONNECTIONS,
        "client_name": CLIENT_NAME,
    }
    if is_tls(settings):
        # Verification is redis-py's default (CERT_REQUIRED, host names checked); say so
        # here so no setting can turn it off. Only the CA bundle is configurable.
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True, ssl_ca_certs=settings.tls_ca_file)
    return options


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    # With the same retry as the master (once, at once, on a dropped connection only): redis-py's
    # default backs off exponentially, and an unreachable Sentinel took 9 s to report.
    timeout = settings.redis_timeout_seconds
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def _master_options(settings: Settings) -> dict[str, Any]:
    """Credentials, database and TLS for the master, from REDIS_URL (its host is Sentinel's to say)."""
    parsed: dict[str, Any] = _parse_url(settings.redis_url)
    options = {name: parsed[name] for name in ("username", "password", "db") if parsed.get(name) is not None}
    if is_tls(settings):
        options["ssl"] = True
    return options


class _ClientsCache:
    """`get_redis`: one RedisClients per Settings, with `cache_clear` as on a `functools.cache` function.

    A lock, not `functools.cache` alone: two threads missing at once would each build one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[Settings, RedisClients] = {}

    def __call__(self, settings: Settings) -> RedisClients:
        """The one RedisClients for `settings` (thread-safe; creating it connects nothing)."""
        with self._lock:
            clients = self._clients.get(settings)
            if clients is None:
                clients = self._clients[settings] = RedisClients(settings)
            return clients

    def cache_clear(self) -> None:
        """Forget every RedisClients (tests start from none); closes nothing."""
        with self._lock:
            self._clients.clear()


get_redis = _ClientsCache()


def may_fall_back(settings: Settings, error: BaseException) -> bool:
    """Nothing configured and nothing reachable at localhost:6379: the embedded Redis stands in."""
    return (
        not settings.redis_configured
        and isinstance(error, redis.ConnectionError)
        and not isinstance(error, redis.AuthenticationError)
        and is_unreachable(error)
    )


def embedded_settings(settings: Settings) -> Settings:
    """The same settings on the embedded in-memory Redis."""
    return replace(settings, redis_url=EMBEDDED_REDIS_URL)


def _opened(clients: RedisClients, client: SyncClient) -> OpenedRedis:
    # Called through Any: redis-py leaves the sync RedisCluster's get_primaries and
    # SentinelConnectionPool.get_master_address untyped.
    cluster: Any = client if isinstance(client, RedisCluster) else None
    sentinels = clients.settings.sentinels
    pool: Any = client.connection_pool if sentinels and isinstance(client, redis.Redis) else None
    masters = len(cluster.get_primaries()) if cluster is not None else 0
    master = pool.get_master_address() if pool is not None else None
    return OpenedRedis(clients, masters, master)


async def _aopened(clients: RedisClients, client: AsyncClient) -> OpenedRedis:
    masters = len(client.get_primaries()) if isinstance(client, AsyncRedisCluster) else 0
    # Called through Any: redis-py leaves SentinelConnectionPool.get_master_address untyped.
    sentinels = clients.settings.sentinels
    pool: Any = client.connection_pool if sentinels and isinstance(client, redis.asyncio.Redis) else None
    master = await pool.get_master_address() if pool is not None else None
    return OpenedRedis(clients, masters, master)


def ask_sentinels(clients: RedisClients) -> None:
    """Ping the Sentinels until one answers; raises NoSentinelAnswered (from the first failure) if none does."""
    first: BaseException | None = None
    for sentinel in clients.sentinel_clients():
        try:
            sentinel.ping()
        except REDIS_ERRORS as error:
            first = first or error
            continue
        return
    if first is not None:
        raise NoSentinelAnswered("no Sentinel could be reached") from first


async def aask_sentinels(clients: RedisClients) -> None:
    """The async twin of `ask_sentinels`."""
    first: BaseException | None = None
    for sentinel in clients.async_sentinel_clients():
        try:
            await sentinel.ping()
        except REDIS_ERRORS as error:
            first = first or error
            continue
        return
    if first is not None:
        raise NoSentinelAnswered("no Sentinel could be reached") from first


# --- the start-up check ---


@dataclass(frozen=True, slots=True)
class OpenedRedis:
    """What the start-up check reached: the clients to use, and the topology behind them."""

    clients: RedisClients
    masters: int = 0  # a cluster's masters (0 outside a cluster)
    master: tuple[str, int] | None = None  # the master's address, as Sentinel gave it (None outside Sentinel mode)
    fallback_error: BaseException | None = None  # why localhost:6379 failed, when the embedded Redis stands in


class RedisUnavailable(Exception):
    """Redis cannot be used at start-up: `error` is why, `found` what a probe found at the port instead.

    The message is only the kind of failure; cli/messages.py words it for the user.
    """

    def __init__(self, error: BaseException, found: Probed | None = None) -> None:
        super().__init__(failure_kind(error, found))
        self.error = error
        self.found = found


def open_redis(settings: Settings) -> OpenedRedis:
    """Ping once; returns what was reached, or raises RedisUnavailable."""
    clients = get_redis(settings)
    try:
        client = clients.sync_client()
        ask_sentinels(clients)
        client.ping()
        opened = _opened(clients, client)
    except (*REDIS_ERRORS, OSError, ValueError) as error:
        target = probe_target(settings, error, clients.master_address())  # before close forgets the master
        clients.close()
        if may_fall_back(settings, error):
            return OpenedRedis(get_redis(embedded_settings(settings)), fallback_error=error)
        found = probe_other_protocol(settings, target) if target is not None else None
        raise RedisUnavailable(error, found) from None
    except BaseException:  # Ctrl-C while connecting: leave nothing open
        clients.close()
        raise
    return opened


async def aopen_redis(settings: Settings) -> OpenedRedis:
    """Ping once; returns what was reached, or raises RedisUnavailable."""
    clients = get_redis(settings)
    try:
        client = clients.async_client()
        await aask_sentinels(clients)
        await client.ping()
        opened = await _aopened(clients, client)
    except (*REDIS_ERRORS, OSError, ValueError) as error:
        target = probe_target(settings, error, clients.master_address())  # before aclose forgets the master
        await clients.aclose()
        if may_fall_back(settings, error):
            return OpenedRedis(get_redis(embedded_settings(settings)), fallback_error=error)
        found = await aprobe_other_protocol(settings, target) if target is not None else None
        raise RedisUnavailable(error, found) from None
    except BaseException:  # Ctrl-C while connecting: leave nothing open
        await clients.aclose()
        raise
    return opened
