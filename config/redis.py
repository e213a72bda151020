"""Configuration layer, I/O side: the Redis singleton and the start-up check.

`get_redis(settings)` returns the one `RedisClients` for those settings: a sync
`redis.Redis`, and, inside a running event loop, a `redis.asyncio.Redis` (redis-py's
successor to the dead `aioredis`), both built from the same URL, timeouts, retry policy
and pool bound. `memory://` gives fakeredis clients sharing one in-process `FakeServer`.
Importing this module connects to nothing and clients connect on their first command;
`connect` / `aconnect` ping once at start-up. Nothing here prints, and no message it
builds contains a password.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.connection import HiredisRespSerializer, parse_url
from redis.retry import Retry
from redis.utils import HIREDIS_AVAILABLE

from config.settings import EMBEDDED_REDIS_URL, Settings

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
POOL_WAIT_SECONDS = 5.0
CLIENT_NAME = "cache-aside-demo"
DOCKER_HINT = "start one with `docker compose up -d redis`, or set REDIS_URL=memory:// for the embedded one"


# The sync and asyncio clients of each topology: a server (or a Sentinel-found master), or a cluster.
SyncClient = redis.Redis | RedisCluster
AsyncClient = redis.asyncio.Redis | AsyncRedisCluster
# "Any Redis failure": redis-py's cluster client raises some that are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)


@functools.cache
def _is_cluster(kind: type) -> bool:
    # Cached per class: isinstance against the cluster classes costs ~0.7 us, on every hit.
    return issubclass(kind, RedisCluster | AsyncRedisCluster)


def is_cluster(client: SyncClient | AsyncClient) -> bool:
    """True for a Redis Cluster client (sync or asyncio)."""
    return _is_cluster(type(client))


def routed(client: SyncClient | AsyncClient, key: str) -> dict[str, Any]:
    """Options that send a pipelined command straight to the node holding `key` (a sync cluster only).

    redis-py 8.1's sync ClusterPipeline asks the server (COMMAND GETKEYS, a round trip) where
    the keys of every EVALSHA are: seeding a cluster ran at 2,100 records/s. Naming the node
    (redis-py computes it locally from the key's hash slot) skips that: {} anywhere else.
    """
    if isinstance(client, RedisCluster):
        return {"target_nodes": client.get_node_from_key(key)}  # type: ignore[no-untyped-call]
    return {}


def shard_of(client: SyncClient | AsyncClient, key: str) -> str:
    """The cluster node holding `key` ("" outside a cluster): each node gets its own circuit breaker."""
    if not _is_cluster(type(client)):
        return ""
    try:
        node = client.get_node_from_key(key)  # type: ignore[union-attr]
    except REDIS_ERRORS:
        return "?"
    return str(node.name) if node is not None else "?"


class StartupError(Exception):
    """Redis cannot be used; the message is one printable line with the password masked."""


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

    def _fake(self) -> FakeServer:
        if self._fake_server is None:
            import fakeredis  # imported here: only the embedded mode pays for it

            self._fake_server = fakeredis.FakeServer()
        return self._fake_server

    def _build_sync(self) -> SyncClient:
        settings = self.settings
        if self.embedded:
            import fakeredis

            return fakeredis.FakeRedis(server=self._fake())
        options = _connection_options(settings, settings.redis_timeout_seconds)
        retry = Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
        if settings.redis_cluster:  # finds every node from the one named, and splits pipelines by slot
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            return RedisCluster.from_url(settings.redis_url, retry=retry, require_full_coverage=False, **options)
        if settings.sentinels:  # asks the Sentinels where the master is, again after every failover
            sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
                list(settings.sentinels), sentinel_kwargs=_sentinel_options(settings)
            )
            self._sentinel_clients.extend(sentinel.sentinels)
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
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

            return fakeredis.FakeAsyncRedis(server=self._fake())
        options = _connection_options(settings, socket_timeout)
        retry = AsyncRetry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,))
        if settings.redis_cluster:
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            return AsyncRedisCluster.from_url(settings.redis_url, retry=retry, require_full_coverage=False, **options)
        if settings.sentinels:
            async_sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
                list(settings.sentinels), sentinel_kwargs=_sentinel_options(settings)
            )
            self._async_sentinel_clients.extend(async_sentinel.sentinels)
            options["max_connections"] = MAX_CLUSTER_CONNECTIONS
            async_master: redis.asyncio.Redis = async_sentinel.master_for(
                settings.sentinel_master, retry=retry, **options, **_master_options(settings)
            )
            return async_master
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.redis_url,
            retry=retry,
            timeout=POOL_WAIT_SECONDS,
            connection_class=HiredisPackedConnection if HIREDIS_AVAILABLE else redis.asyncio.Connection,
            **options,
        )
        return redis.asyncio.Redis.from_pool(pool)


class HiredisPackedConnection(redis.asyncio.Connection):
    """redis.asyncio's connection, but packing commands in C with hiredis, as the sync client does.

    redis.asyncio packs every command in pure Python: in a 1000-command seeding pipeline
    that is a sixth of the whole seed. (rediss:// URLs keep redis-py's TLS connection.)
    """

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        """The command in the Redis protocol, packed by hiredis."""
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


def _connection_options(settings: Settings, socket_timeout: float | None) -> dict[str, Any]:
    # One retry, only on a dropped connection (a server's idle timeout closes it): a
    # timeout is not retried, so a frozen server costs one socket timeout, not eleven.
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "max_connections": MAX_CONNECTIONS,
        "client_name": CLIENT_NAME,
    }
    if settings.redis_url.lower().startswith("rediss://"):
        # Verification is redis-py's default (CERT_REQUIRED, host names checked); say so
        # here so no setting can turn it off. Only the CA bundle is configurable.
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True, ssl_ca_certs=settings.tls_ca_file)
    return options


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    timeout = settings.redis_timeout_seconds
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def _master_options(settings: Settings) -> dict[str, Any]:
    """Credentials, database and TLS for the master, from REDIS_URL (its host is Sentinel's to say)."""
    parsed: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    options = {name: parsed[name] for name in ("username", "password", "db") if parsed.get(name) is not None}
    if settings.redis_url.lower().startswith("rediss://"):
        options["ssl"] = True
    return options


_singleton_lock = threading.Lock()


@functools.cache
def _clients_for(settings: Settings) -> RedisClients:
    return RedisClients(settings)


def get_redis(settings: Settings) -> RedisClients:
    """The one RedisClients for `settings` (thread-safe; creating it connects nothing)."""
    with _singleton_lock:
        return _clients_for(settings)


get_redis.cache_clear = _clients_for.cache_clear  # type: ignore[attr-defined]


# --- the start-up check ---


def failure_reason(error: BaseException) -> str:
    """Why Redis could not be used, in a few words a newcomer can act on."""
    text = str(error)
    if isinstance(error, redis.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        return "authentication failed (wrong password or unknown user)"
    if isinstance(error, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        return f"permission denied by the server's ACL ({_first_line(text)})"
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return "Redis is out of memory (maxmemory reached with a noeviction policy)"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "TLS verification failed (check the CA file and the host name)"
    if "SSL" in text or "TLS" in text or "wrong version number" in text:
        return "TLS handshake failed (is the server speaking TLS? use rediss:// only for TLS ports)"
    if isinstance(error, redis.TimeoutError):
        return "timed out (is the server frozen, overloaded or behind a firewall?)"
    if is_refused(error):
        return "connection refused (nothing is listening there)"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    if "Connection closed by server" in text or "Connection reset" in text:
        return "the server closed the connection (restarting? a TLS port needs rediss://)"
    return _first_line(text) or type(error).__name__


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else ""


def is_refused(error: BaseException) -> bool:
    """True when nothing listens at the address (redis-py words this differently in each client)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return True
        cause = cause.__cause__ or cause.__context__
    return f"Error {errno.ECONNREFUSED} " in str(error)


def startup_failure(settings: Settings, error: BaseException) -> StartupError:
    """The one-line error for a server that cannot be used."""
    if settings.sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in settings.sentinels)
        target = f"the Redis master '{settings.sentinel_master}' through Sentinel {sentinels}"
        hint = "check REDIS_SENTINELS and REDIS_SENTINEL_MASTER (`docker compose --profile sentinel up -d` starts some)"
    else:
        target = f"{'Redis Cluster' if settings.redis_cluster else 'Redis'} at {settings.redis_url_for_display}"
        hint = DOCKER_HINT
    return StartupError(f"Cannot use {target}: {failure_reason(error)}. Hint: {hint}.")


def may_fall_back(settings: Settings, error: BaseException) -> bool:
    """Nothing configured and nothing listening: the embedded Redis stands in."""
    return (
        not settings.redis_configured
        and isinstance(error, redis.ConnectionError)
        and not isinstance(error, redis.AuthenticationError)
        and is_refused(error)
    )


def embedded_settings(settings: Settings) -> Settings:
    """The same settings on the embedded in-memory Redis."""
    return replace(settings, redis_url=EMBEDDED_REDIS_URL)


def describe_connection(clients: RedisClients, fell_back: bool, where: str = "") -> str:
    """The start-up line saying which Redis the demo uses, and on which topology."""
    if not clients.embedded:
        return f"Connected to {where or 'Redis at ' + clients.settings.redis_url_for_display}"
    if fell_back:
        return (
            "No Redis is configured and nothing listens on localhost:6379: using the embedded "
            "in-memory Redis (fakeredis). Set REDIS_URL to use a server."
        )
    return "Using the embedded in-memory Redis (fakeredis), as REDIS_URL=memory:// asks"


def _where(settings: Settings, masters: int, master: tuple[str, int]) -> str:
    if settings.redis_cluster:
        return f"Redis Cluster ({masters} masters) through {settings.redis_url_for_display}"
    if settings.sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in settings.sentinels)
        return (
            f"Redis master '{settings.sentinel_master}' at {master[0]}:{master[1]}, found through Sentinel {sentinels}"
        )
    return f"Redis at {settings.redis_url_for_display}"


def _topology(client: SyncClient, settings: Settings) -> str:
    masters = len(client.get_primaries()) if isinstance(client, RedisCluster) else 0  # type: ignore[no-untyped-call]
    pool = client.connection_pool if settings.sentinels and isinstance(client, redis.Redis) else None
    master = pool.get_master_address() if pool is not None else ("", 0)  # type: ignore[attr-defined]
    return _where(settings, masters, master)


async def _atopology(client: AsyncClient, settings: Settings) -> str:
    masters = len(client.get_primaries()) if isinstance(client, AsyncRedisCluster) else 0
    pool = client.connection_pool if settings.sentinels and isinstance(client, redis.asyncio.Redis) else None
    master = await pool.get_master_address() if pool is not None else ("", 0)  # type: ignore[attr-defined]
    return _where(settings, masters, master)


def connect(settings: Settings) -> tuple[RedisClients, str]:
    """Ping once; returns the clients and the start-up line, or raises StartupError."""
    clients = get_redis(settings)
    try:
        client = clients.sync_client()
        client.ping()
        topology = _topology(client, settings)
    except (*REDIS_ERRORS, OSError, ValueError) as error:
        clients.close()
        if not may_fall_back(settings, error):
            raise startup_failure(settings, error) from None
        clients = get_redis(embedded_settings(settings))
        return clients, describe_connection(clients, fell_back=True)
    except BaseException:  # Ctrl-C while connecting: leave nothing open
        clients.close()
        raise
    return clients, describe_connection(clients, fell_back=False, where=topology)


async def aconnect(settings: Settings) -> tuple[RedisClients, str]:
    """Ping once; returns the clients and the start-up line, or raises StartupError."""
    clients = get_redis(settings)
    try:
        client = clients.async_client()
        await client.ping()
        topology = await _atopology(client, settings)
    except (*REDIS_ERRORS, OSError, ValueError) as error:
        await clients.aclose()
        if not may_fall_back(settings, error):
            raise startup_failure(settings, error) from None
        clients = get_redis(embedded_settings(settings))
        return clients, describe_connection(clients, fell_back=True)
    except BaseException:  # Ctrl-C while connecting: leave nothing open
        await clients.aclose()
        raise
    return clients, describe_connection(clients, fell_back=False, where=topology)
