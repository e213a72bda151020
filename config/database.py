"""Configuration layer, I/O side: connections to the database, the source of truth.

DATABASE_URL picks the database: a SQLite file (the default; `sqlite3` for the sync twin,
`aiosqlite` for the async one, so a read never blocks the event loop) or PostgreSQL
through psycopg 3, whose `ConnectionPool` and `AsyncConnectionPool` mirror redis-py's
twins. A `Session` runs statements on one connection; a connector hands out sessions and
transactions. Importing this module connects to nothing (psycopg and aiosqlite are
imported on first use). A failure becomes a DatabaseError whose message is a short reason,
and `database_failure_kind` says which kind it is; the sentences a user reads about it,
with the hint for each kind, are in cli/messages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from config.settings import Settings

MAX_POOL_CONNECTIONS = 16  # per PostgreSQL pool; more lookups wait for a free connection, up to the timeout
STATEMENT_TIMEOUT_SECONDS = 30.0


class DatabaseError(Exception):
    """A database call failed; the message is a few words a newcomer can act on, never a password."""

    kind: DatabaseFailureKind | None = None  # set by a subclass that knows its kind; else read from the reason


Dialect = Literal["sqlite", "postgresql"]


def for_dialect(statement: str, dialect: Dialect) -> str:
    """The statement with the dialect's placeholders (`?` for sqlite3, `%s` for psycopg)."""
    return statement if dialect == "sqlite" else statement.replace("?", "%s")


@contextlib.contextmanager
def reported(driver_errors: type[BaseException] | tuple[type[BaseException], ...]) -> Iterator[None]:
    """Turn the driver's errors into one DatabaseError with a one-line reason."""
    try:
        yield
    except driver_errors as error:
        raise DatabaseError(database_failure_reason(error)) from error


def _psycopg_error() -> type[BaseException]:
    import psycopg

    return psycopg.Error


DatabaseFailureKind = Literal[
    "authentication",
    "no-database",
    "refused",
    "timeout",
    "unknown-host",
    "no-route",
    "tls",
    "locked",
    "damaged",
    "not-a-database",
    "not-writable",
    "inconsistent",
]
# What a driver's message says (a pattern, lower-cased) -> what kind of failure it is, and the
# few words a newcomer reads for it (cli/messages.py adds what to do about each kind).
_REASONS: tuple[tuple[str, DatabaseFailureKind, str], ...] = (
    (
        r"password authentication failed|no password supplied|role .* does not exist",
        "authentication",
        "authentication failed (wrong password or unknown user)",
    ),
    (r"database .* does not exist", "no-database", "no such database on the server"),
    (r"connection refused", "refused", "connection refused (nothing is listening there)"),
    (r"timeout|timed out", "timeout", "timed out (is the server down, overloaded or behind a firewall?)"),
    (
        r"could not translate host name|name or service not known|failed to resolve host",
        "unknown-host",
        "unknown host",
    ),
    (r"network is unreachable|no route to host|cannot assign requested address", "no-route", "no route to the server"),
    (r"certificate|does not support ssl|sslmode|ssl error: (?!syscall)", "tls", "TLS failed"),
    (r"database is locked", "locked", "the SQLite file is locked by another process (it waited DB_TIMEOUT_SECONDS)"),
    # SQLITE_CORRUPT ("database disk image is malformed"): a SQLite file cut short or overwritten in part;
    # SQLITE_NOTADB ("file is not a database"): no SQLite header at all, a file of something else.
    (
        r"disk image is malformed|malformed database schema",
        "damaged",
        "the SQLite file is damaged (truncated or corrupt)",
    ),
    (r"file is not a database", "not-a-database", "the file is not a SQLite database"),
    (r"unable to open database file|readonly", "not-writable", "the SQLite file cannot be opened for writing"),
)


def database_failure_reason(error: BaseException) -> str:
    """Why the database could not be used, in a few words a newcomer can act on."""
    text = str(error)
    for pattern, _, reason in _REASONS:
        if re.search(pattern, text.lower()):
            return reason
    # Anything else: the driver's first line, without what it quotes ("..." or '...'): libpq
    # quotes the part of a URL it could not read, which may be a password.
    first = re.sub(r"\"[^\"]*\"|'[^']*'", '"..."', text.splitlines()[0][:200]) if text else ""
    return first.rstrip(". ") or type(error).__name__


def database_failure_kind(error: DatabaseError) -> DatabaseFailureKind | None:
    """Which kind of failure a DatabaseError's reason names; None for the driver's own words."""
    if error.kind is not None:  # a kind the error names itself (the simulator's InconsistentDatabase)
        return error.kind
    reason = str(error)
    return next((kind for _, kind, known in _REASONS if known == reason), None)


# --- sessions: one connection, statements in `?` style ---


class Session:
    """Statements on one connection (sqlite3's, or psycopg's), blocking."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self.dialect = dialect

    def query(self, statement: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows a SELECT (or a statement with RETURNING) gives."""
        rows: list[tuple[Any, ...]] = self._connection.execute(
            for_dialect(statement, self.dialect), parameters
        ).fetchall()
        return rows

    def execute(self, statement: str, parameters: Sequence[object] = ()) -> None:
        """Run a statement that returns no rows."""
        self._connection.execute(for_dialect(statement, self.dialect), parameters)

    def execute_many(self, statement: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement once per row, in one round trip where the driver can."""
        self._connection.cursor().executemany(for_dialect(statement, self.dialect), rows)


class AsyncSession:
    """Statements on one connection (aiosqlite's, or psycopg's async one), non-blocking."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self.dialect = dialect

    async def query(self, statement: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows a SELECT (or a statement with RETURNING) gives."""
        if self.dialect == "sqlite":  # aiosqlite: executed and fetched in one turn of its thread
            rows: list[tuple[Any, ...]] = list(await self._connection.execute_fetchall(statement, parameters))
            return rows
        cursor = await self._connection.execute(for_dialect(statement, self.dialect), parameters)
        return list(await cursor.fetchall())

    async def execute(self, statement: str, parameters: Sequence[object] = ()) -> None:
        """Run a statement that returns no rows."""
        await self._connection.execute(for_dialect(statement, self.dialect), parameters)

    async def execute_many(self, statement: str, rows: Sequence[Sequence[object]]) -> None:
        """Run a statement once per row, in one round trip where the driver can."""
        if self.dialect == "sqlite":  # aiosqlite's connection has executemany; psycopg's has it on a cursor
            await self._connection.executemany(statement, rows)
        else:
            await self._connection.cursor().executemany(for_dialect(statement, self.dialect), rows)


# --- connectors: where sessions come from ---


class SqliteConnector:
    """One sqlite3 connection shared by the threads, one at a time; WAL lets other processes read meanwhile."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: str, timeout_seconds: float) -> None:
        connection = sqlite3.connect(path, timeout=timeout_seconds, isolation_level=None, check_same_thread=False)
        self._session = Session(connection, "sqlite")
        self._connection = connection
        self._lock = threading.Lock()
        with self.session() as session:
            session.query("PRAGMA journal_mode=WAL")  # readers never wait for a writer, across processes
            session.execute(
                "PRAGMA synchronous=NORMAL"
            )  # WAL-safe: a power cut may lose the last commit, never corrupt

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """The connection, for statements that each commit on their own."""
        with self._lock, reported(sqlite3.Error):
            yield self._session

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """The connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        with self.session() as session:
            session.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            try:
                yield session
            except BaseException:
                session.execute("ROLLBACK")
                raise
            session.execute("COMMIT")

    def close(self) -> None:
        """Close the connection, once no thread is in a statement (closing under one crashes the process)."""
        with self._lock:
            self._connection.close()


class AsyncSqliteConnector:
    """Two aiosqlite connections: one for reads, used by every task at once, and one for
    transactions, one at a time. WAL lets other processes read meanwhile.

    Reads do not take turns: aiosqlite runs the statements it is handed one after another on
    its own thread, so a hundred concurrent misses cost a hundred reads back to back there,
    not a hundred turns of a busy event loop (measured: 100 concurrent reads beside 900 busy
    tasks took 49 ms on one connection taken in turns, 32 ms this way). In WAL mode a read
    never sees a transaction half done.
    Both connect on first use, inside the running event loop (aiosqlite's threads belong to it).
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: str, timeout_seconds: float) -> None:
        self._path = path
        self._timeout_seconds = timeout_seconds
        self._reader: Any = None
        self._writer: Any = None
        self._opening = asyncio.Lock()  # the first tasks to arrive open each connection once
        self._lock = asyncio.Lock()  # one transaction at a time

    async def connect(self) -> None:
        """Open the file (created if missing) in WAL mode, once."""
        async with self.session():
            pass

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The read connection, for reads that each see the latest commit."""
        with reported(sqlite3.Error):
            if self._reader is None:
                async with self._opening:
                    if self._reader is None:
                        self._reader = await self._open(query_only=True)
            yield AsyncSession(self._reader, "sqlite")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The write connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error)."""
        async with self._lock:
            with reported(sqlite3.Error):
                if self._writer is None:
                    self._writer = await self._open(query_only=False)
                session = AsyncSession(self._writer, "sqlite")
                await session.execute("BEGIN IMMEDIATE")
                try:
                    yield session
                except BaseException:
                    await session.execute("ROLLBACK")
                    raise
                await session.execute("COMMIT")

    async def _open(self, *, query_only: bool) -> Any:
        import aiosqlite  # imported here: the sync twin never needs it

        connection = aiosqlite.connect(self._path, timeout=self._timeout_seconds, isolation_level=None)
        # aiosqlite's worker thread is not a daemon: a Ctrl-C that cuts aclose() short would
        # leave the process waiting for it at exit. Committed rows are on disk either way.
        connection._thread.daemon = True
        await connection
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            await connection.execute("PRAGMA synchronous=NORMAL")
            if query_only:
                await connection.execute("PRAGMA query_only=ON")
        except BaseException:
            await connection.close()
            raise
        return connection

    async def aclose(self) -> None:
        """Close the connections (and aiosqlite's threads)."""
        connections = (self._reader, self._writer)
        self._reader = self._writer = None
        for connection in connections:
            if connection is not None:
                await connection.close()


def _postgres_options(settings: Settings) -> dict[str, Any]:
    """Explicit timeouts: connecting (libpq counts whole seconds, at least 2) and every statement.

    A statement may take longer than a connection may (filling a batch of rows, waiting
    for another writer's row lock), so its bound is at least STATEMENT_TIMEOUT_SECONDS.
    """
    statement_seconds = max(STATEMENT_TIMEOUT_SECONDS, settings.db_timeout_seconds)
    return {
        "connect_timeout": max(2, math.ceil(settings.db_timeout_seconds)),
        "options": f"-c statement_timeout={round(statement_seconds * 1000)}",
        "application_name": "cache-aside-demo",
    }


# psycopg's loggers, and psycopg_pool's (`psycopg.pool`, a child of `psycopg`, and `psycopg_pool.sched`).
DRIVER_LOGGERS = ("psycopg", "psycopg_pool")


def quiet_driver_logs() -> None:
    """Keep the drivers' log records off stderr: nothing of psycopg's or psycopg_pool's is printed.

    With no handler configured, Python prints a warning record on stderr itself (logging.lastResort): the
    pool's `error connecting in 'pool-1': connection failed: ...`, several lines long, when the server goes
    away mid-run. The demo says what failed in its own one-line answers, so these loggers end in a handler
    that drops their records and pass nothing on (the root logger is left as it is).
    """
    for name in DRIVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())


def _pool_options(settings: Settings) -> dict[str, Any]:
    """Both twins' pools: bounded, waiting at most DB_TIMEOUT_SECONDS for a free connection, autocommit."""
    return {
        "min_size": 1,
        "max_size": MAX_POOL_CONNECTIONS,
        "timeout": settings.db_timeout_seconds,
        "kwargs": {**_postgres_options(settings), "autocommit": True},
        "open": False,
    }


class PostgresConnector:
    """A bounded psycopg `ConnectionPool`: a session is a pooled connection in autocommit mode."""

    dialect: Dialect = "postgresql"

    def __init__(self, settings: Settings) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        quiet_driver_logs()
        psycopg.connect(settings.database_url, **_postgres_options(settings)).close()  # one clear error, now
        self._pool: Any = ConnectionPool(settings.database_url, **_pool_options(settings))
        try:
            self._pool.open(wait=True, timeout=settings.db_timeout_seconds + 2)
        except BaseException:
            self._pool.close()  # else its workers keep reconnecting in the background
            raise

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A pooled connection; each statement commits on its own."""
        with reported(_psycopg_error()), self._pool.connection() as connection:
            yield Session(connection, "postgresql")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A pooled connection inside one transaction (rolled back on any error)."""
        with reported(_psycopg_error()), self._pool.connection() as connection, connection.transaction():
            yield Session(connection, "postgresql")

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()


class AsyncPostgresConnector:
    """A bounded psycopg `AsyncConnectionPool`: a session is a pooled connection in autocommit mode."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, settings: Settings) -> AsyncPostgresConnector:
        """Connect once for a clear error, then open the pool."""
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        quiet_driver_logs()
        await (await psycopg.AsyncConnection.connect(settings.database_url, **_postgres_options(settings))).close()
        pool = AsyncConnectionPool(settings.database_url, **_pool_options(settings))
        try:
            await pool.open(wait=True, timeout=settings.db_timeout_seconds + 2)
        except BaseException:
            await pool.close()  # else its workers keep reconnecting in the background
            raise
        return cls(pool)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A pooled connection; each statement commits on its own."""
        with reported(_psycopg_error()):
            async with self._pool.connection() as connection:
                yield AsyncSession(connection, "postgresql")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A pooled connection inside one transaction (rolled back on any error)."""
        with reported(_psycopg_error()):
            async with self._pool.connection() as connection, connection.transaction():
                yield AsyncSession(connection, "postgresql")

    async def aclose(self) -> None:
        """Close the pool's connections."""
        await self._pool.close()


Connector = SqliteConnector | PostgresConnector
AsyncConnector = AsyncSqliteConnector | AsyncPostgresConnector


def open_connector(settings: Settings) -> Connector:
    """Connect to DATABASE_URL; raises DatabaseError with one line."""
    path = settings.sqlite_path
    if path is not None:
        with reported(sqlite3.Error):
            return SqliteConnector(path, settings.db_timeout_seconds)
    with reported(_psycopg_error()):
        return PostgresConnector(settings)


async def aopen_connector(settings: Settings) -> AsyncConnector:
    """Connect to DATABASE_URL from the event loop; raises DatabaseError with one line."""
    path = settings.sqlite_path
    if path is not None:
        connector = AsyncSqliteConnector(path, settings.db_timeout_seconds)
        await connector.connect()
        return connector
    with reported(_psycopg_error()):
        return await AsyncPostgresConnector.open(settings)
