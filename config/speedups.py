"""Configuration layer, I/O: measured speed-ups of the Redis clients, kept apart from the code a learner reads first.

Each is a workaround for a cost redis-py (measured on 8.1) adds on a path the demo takes
thousands of times, with what it saves as measured on the
benchmark's machine. None changes what is sent to Redis or what it answers, and none replaces
what redis-py chose from the user's input (a rediss:// URL's TLS connection stays TLS, with
no speed-up, rather than lose a feature); drop any of them and only the time changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

POOL_WAIT_SECONDS = 5.0  # how long a caller waits for a free connection before "No connection available"


class WaitingConnectionPool(redis.asyncio.ConnectionPool):
    """redis.asyncio's default pool, except that a caller who finds every connection in use waits
    for one (up to `timeout` seconds) instead of failing with "Too many connections".

    redis.asyncio's BlockingConnectionPool waits too, but takes an asyncio.Condition and arms a
    timer on every call, even with connections free: measured, 13 us of a 100 us GET, more than
    the whole lookup adds to it. A semaphore costs nothing until the pool runs out. (The sync
    client's BlockingConnectionPool measured no slower than the default pool: it stays.)

    Each caller that gets a place gives it back once, however its call ends: with the connection it
    was handed, in `release`; at once if it was handed none (its connection failed to connect, or it
    was cancelled while connecting). A caller cancelled or timed out while waiting took no place.
    redis-py's own `get_connection` gives back through `release` a connection that failed to
    connect: that gives back no place, as it was never handed out. A place given back twice would
    let more callers through than the pool has connections, the extra ones failing with "Too many
    connections" for good.
    """

    def __init__(self, *, timeout: float = POOL_WAIT_SECONDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._free = asyncio.Semaphore(self.max_connections)
        self._handed_out: set[AbstractConnection] = set()  # each holds a place until `release` gives it back

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        """A connection of the pool, after waiting for one to be released if all are in use."""
        if self._free.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise redis.ConnectionError("No connection available.") from None
        else:
            await self._free.acquire()  # returns at once: a connection is free
        # This caller holds a place from here on.
        try:
            get_connection: Any = super().get_connection  # redis-py leaves it unannotated
            connection: AbstractConnection = await get_connection(*args, **kwargs)
        except BaseException:
            self._free.release()  # no connection was handed out: its place is given back here, and only here
            raise
        self._handed_out.add(connection)  # no await since it was handed out: `release` gives the place back
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        """Give the connection back, and, if `get_connection` handed it out, its place to the next waiter."""
        handed_out = connection in self._handed_out
        if handed_out:  # forgotten before any await: handed out again before this returns, it holds a new place
            self._handed_out.remove(connection)
        try:
            await super().release(connection)
        finally:
            if handed_out:
                self._free.release()


_hiredis_serializer: Any = HiredisRespSerializer  # called through Any: redis-py 8.2 leaves its constructor untyped


class HiredisPackedConnection(redis.asyncio.Connection):
    """redis.asyncio's plain TCP connection, but packing commands in C with hiredis, as the sync client does.

    redis.asyncio packs every command in pure Python: in a 1000-command seeding pipeline
    that is a sixth of the whole seed. Only `pack_with_hiredis` puts it in a pool.
    """

    _serializer = _hiredis_serializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        """The command in the Redis protocol, packed by hiredis."""
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


def pack_with_hiredis(pool: redis.asyncio.ConnectionPool) -> None:
    """Let `pool` pack commands with hiredis, where that changes nothing but the time.

    Only where the URL chose redis.asyncio's plain TCP connection: a rediss:// URL chooses
    its TLS connection and a unix:// URL its socket connection, and the pool keeps those as
    they are (redis-py 8.2 lets a `connection_class` passed to `from_url` override the URL's
    choice, which sent TLS options to a plain connection). Without hiredis, nothing changes.
    """
    if HIREDIS_AVAILABLE and pool.connection_class is redis.asyncio.Connection:
        pool.connection_class = HiredisPackedConnection


def routed(client: object, key: str) -> dict[str, Any]:
    """Options that send a pipelined command straight to the node holding `key` (a sync cluster only).

    redis-py 8.1's sync ClusterPipeline asks the server (COMMAND GETKEYS, a round trip) where
    the keys of every EVALSHA are: seeding a cluster ran at 2,100 records/s. Naming the node
    (redis-py computes it locally from the key's hash slot) skips that: {} anywhere else.
    """
    if isinstance(client, RedisCluster):
        node_of: Callable[[str], ClusterNode] = client.get_node_from_key  # redis-py leaves it unannotated
        return {"target_nodes": node_of(key)}
    return {}
