"""The async client's pool recovers: each place a failed, timed-out or cancelled lookup took comes back once.

`config.speedups.WaitingConnectionPool` lets a caller wait for a free connection instead of
failing with "Too many connections", counting the free ones with a semaphore. A place given
back twice (redis-py's pool already releases a connection that failed to connect) lets more
callers through than the pool has connections: once Redis is back, a burst of lookups then
fails with "Too many connections", and the demo reports the cache unavailable for good.

Each test runs the demo's real asyncio client (`RedisClients.async_client()`, built inside the
test's loop) against a private redis-server it kills and restarts, or freezes and thaws, fails
more lookups than the pool has connections, then asks for many more lookups at once than it
has: every one must be answered. Nothing is timed: the tests wait for events (a server that
answers, connection attempts and awaited replies counted), never for a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import redis
import redis.asyncio.connection

from config.redis import MAX_CONNECTIONS, AsyncClient, RedisClients
from config.settings import Settings
from tests.servers import RedisServer
from tests.twins import EVENT_WAIT_SECONDS, await_until, watch_redis

pytestmark = pytest.mark.integration

KEY, VALUE = "user-1", b"cached"
TIMEOUT = 0.5  # the client's socket and connect timeouts: a frozen server fails a lookup in half a second
FAILURES = 2 * MAX_CONNECTIONS + 5  # more failed lookups than the pool has connections
BURST = 200  # lookups at once, once Redis is back: many more than the pool has connections


@pytest.fixture
def server(start_redis: Callable[..., RedisServer]) -> RedisServer:
    return start_redis()


@contextlib.asynccontextmanager
async def demo_client(server: RedisServer, timeout_seconds: float = TIMEOUT) -> AsyncIterator[AsyncClient]:
    """The demo's asyncio client for `server`, built in the running loop, closed at the end."""
    settings = Settings(redis_url=server.url, redis_configured=True, redis_timeout_seconds=timeout_seconds)
    clients = RedisClients(settings)
    try:
        yield clients.async_client()
    finally:
        await clients.aclose()


def answering(server: RedisServer) -> None:
    """Wait until the server answers (it is running: a thawed process, or one restarted until it listens)."""
    with server.admin(socket_timeout=EVENT_WAIT_SECONDS) as admin:
        assert admin.ping()
        admin.set(KEY, VALUE)  # a restarted server is empty


def summary(results: Sequence[object]) -> dict[str, int]:
    """The failures among `results`, counted by type and message (what a failed assertion shows)."""
    counts: dict[str, int] = {}
    for result in results:
        if isinstance(result, BaseException):
            said = f"{type(result).__name__}: {result}"
            counts[said] = counts.get(said, 0) + 1
    return counts


async def assert_a_burst_is_answered(client: AsyncClient) -> None:
    """BURST lookups at once all answer: the pool hands out its connections in turn, never "Too many connections"."""
    results = await asyncio.gather(*(client.get(KEY) for _ in range(BURST)), return_exceptions=True)
    failures = summary(results)
    assert not failures, f"{sum(failures.values())} of {BURST} lookups failed: {failures}"
    assert results == [VALUE] * BURST


def assert_unavailable(results: Sequence[object]) -> None:
    """Every lookup failed as a dead or frozen Redis fails one, and none because the pool ran out."""
    unexpected = [result for result in results if not isinstance(result, redis.ConnectionError | redis.TimeoutError)]
    assert unexpected == []
    assert not any(isinstance(result, redis.exceptions.MaxConnectionsError) for result in results), summary(results)


async def test_the_pool_recovers_after_more_refused_connections_than_it_holds(server: RedisServer) -> None:
    async with demo_client(server) as client:
        await client.set(KEY, VALUE)
        server.kill()  # refused: every lookup fails while connecting
        failures = []
        for _ in range(FAILURES):
            with pytest.raises(redis.ConnectionError) as refused:
                await client.get(KEY)
            failures.append(refused.value)
        assert_unavailable(failures)
        server.restart()  # the same port
        answering(server)
        await assert_a_burst_is_answered(client)


async def test_the_pool_recovers_after_more_timed_out_connections_than_it_holds(server: RedisServer) -> None:
    async with demo_client(server) as client:
        server.freeze()  # connections open, but nothing answers: every lookup times out while connecting
        failures = await asyncio.gather(*(client.get(KEY) for _ in range(FAILURES)), return_exceptions=True)
        assert_unavailable(failures)
        server.thaw()
        answering(server)
        await assert_a_burst_is_answered(client)


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """From now on, one item for each reply an asyncio connection starts waiting for."""
    started: list[None] = []
    read_response = redis.asyncio.connection.AbstractConnection.read_response

    async def counted(connection: redis.asyncio.connection.AbstractConnection, *args: Any, **options: Any) -> Any:
        started.append(None)
        return await read_response(connection, *args, **options)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "read_response", counted)
    return started


async def test_the_pool_recovers_after_lookups_cancelled_while_connecting_or_waiting(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long timeout: the lookups end because they are cancelled, not because Redis timed out first.
    async with demo_client(server, timeout_seconds=EVENT_WAIT_SECONDS) as client:
        server.freeze()
        traffic = watch_redis(monkeypatch)
        replies = count_reads(monkeypatch)
        lookups = [asyncio.create_task(client.get(KEY)) for _ in range(FAILURES)]
        # Every connection of the pool has sent its handshake to the frozen server and waits for the reply; the
        # other lookups wait for a connection. (Not earlier: Python 3.11's asyncio.wait_for, around each of
        # redis-py's writes, loses a cancellation that comes as the write completes.)
        await await_until(lambda: len(replies) >= MAX_CONNECTIONS, "the pool's connections to wait for Redis")
        assert (len(traffic.connects), len(replies)) == (MAX_CONNECTIONS, MAX_CONNECTIONS)  # the others wait
        assert not any(lookup.done() for lookup in lookups)
        for lookup in lookups:
            lookup.cancel()
        results = await asyncio.gather(*lookups, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results), summary(results)
        server.thaw()
        answering(server)
        await assert_a_burst_is_answered(client)
