"""Benchmark I/O: what every measurement runs in: the run's own SQLite database, an empty namespace, an event loop.

The source of truth is a real database: a SQLite file in a temp dir that the run fills
itself, once, with as many users as it needs (a million for the full run), before any seed
is timed (`bench_database`), and removes after. All keys live under the `bench:` prefix and
are removed (SCAN + UNLINK, `cleanup`) between runs: seeding leaves a key that already holds
a value as it is, so every seed starts from none. Each async measurement runs in an event
loop of its own (`run_async`). It times nothing but the filling of its own database, and
never removes a key the benchmark did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.measurements import Measurements
from benchmarks.plan import PREFIX
from config.database import AsyncSqliteConnector, SqliteConnector
from config.redis import RedisClients, SyncClient
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database

DB_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


@dataclass
class BenchDatabase:
    """The run's SQLite file, filled with users 1..`users`, and one blocking connection to it."""

    path: Path
    users: int
    connector: SqliteConnector

    @property
    def url(self) -> str:
        """The DATABASE_URL the scripts get (sqlite:////absolute/path)."""
        return f"sqlite:///{self.path}"

    def sync(self, latency_seconds: float = 0.0) -> Database:
        """A blocking database on the shared connection, with `latency_seconds` of simulated delay."""
        return Database(self.connector, latency_seconds)

    @contextlib.asynccontextmanager
    async def open_async(self, latency_seconds: float = 0.0) -> AsyncIterator[AsyncDatabase]:
        """A non-blocking database on a connection of the running loop, connected before anything is timed."""
        connector = AsyncSqliteConnector(str(self.path), DB_TIMEOUT_SECONDS)
        await connector.connect()
        database = AsyncDatabase(connector, latency_seconds)
        try:
            yield database
        finally:
            await database.aclose()


@contextlib.contextmanager
def bench_database(users: int, measurements: Measurements) -> Iterator[BenchDatabase]:
    """A SQLite file of our own in a temp dir, filled with users 1..`users` once (timed); removed after."""
    with tempfile.TemporaryDirectory(prefix="benchmark-db-") as directory:
        path = Path(directory) / "users.db"
        connector = SqliteConnector(str(path), DB_TIMEOUT_SECONDS)
        try:
            database = Database(connector, 0)
            started = time.perf_counter()
            database.fill(database.filled_to(), users)
            seconds = time.perf_counter() - started
            with connector.session() as session:  # fold the WAL into the file, so its size is the data's
                session.query("PRAGMA wal_checkpoint(TRUNCATE)")
            measurements.fill["sqlite"] = {"users": users, "seconds": seconds, "bytes": _file_bytes(path)}
            yield BenchDatabase(path, users, connector)
        finally:
            connector.close()


def _file_bytes(path: Path) -> int:
    """The SQLite file's size, with its write-ahead log if one is left."""
    sizes = [candidate.stat().st_size for candidate in (path, Path(f"{path}-wal")) if candidate.exists()]
    return sum(sizes)


def cleanup(client: SyncClient, prefix: str = PREFIX) -> None:
    """Remove every key of the benchmark's namespace (or of `prefix`, one under it), and only those."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def run_async(clients: RedisClients, work: Callable[[], Awaitable[T]]) -> T:
    """Run one async measurement in a fresh event loop and close its clients after."""

    async def measured() -> T:
        try:
            return await work()
        finally:
            await clients.aclose()

    return asyncio.run(measured())
