"""Simulator layer, I/O shells: the database, the source of truth, twice.

`Database` (blocking) and `AsyncDatabase` (non-blocking) run the same SQL from
`simulator.sql` on a SQLite file or a PostgreSQL server, and add DB_LATENCY_SECONDS of
simulated delay to every read and write, so the cost a cache saves stays visible. Every
lookup that misses is a real query; `update` is a real transaction; seeding reads ranges
of real rows. The twins mirror each other method for method.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable

from config.database import AsyncConnector, Connector
from simulator import sql
from simulator.records import UserRecord, user_record, vocabulary


class ReadCounter:
    """Counts database reads; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def increment(self) -> None:
        """Count one read."""
        with self._lock:
            self.value += 1


def new_identity() -> int:
    """A database identity: 62 random bits (a positive BIGINT in PostgreSQL and SQLite)."""
    return secrets.randbits(62) or 1


def new_email(user_id: int, version: int) -> str:
    """The email `update` gives a user at `version` (deterministic, so tests and people can check it)."""
    return user_record(user_id, version).email


class Database:
    """The users table through a blocking connection; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: Connector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()

    def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            time.sleep(self.latency_seconds)
        with self.connector.session() as session:
            rows = session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return sql.record_from_row(rows[0]) if rows else None

    def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        self._words_ready()
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self.connector.transaction() as session:
            bumped = session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return None
            session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            rows = session.query(sql.SELECT_USER, (user_id,))
        return sql.record_from_row(rows[0])

    def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s)."""
        vocabulary()

    def read_range(self, ids: range) -> list[UserRecord]:
        """The users with ids in `ids`, in one range read (no simulated delay: a bulk export)."""
        with self.connector.session() as session:
            rows = session.query(sql.SELECT_RANGE, (ids.start, ids.stop - 1))
        return [sql.record_from_row(row) for row in rows]

    def filled_to(self) -> int:
        """Create the tables if missing; how many users (1..N) the first run has inserted so far."""
        with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                session.query(take_turns)
            session.execute(sql.CREATE_USERS)
            session.execute(sql.CREATE_META)
            rows = session.query(sql.SELECT_FILLED)
        return int(rows[0][0]) if rows else 0

    def fill(self, filled_to: int, size: int, on_progress: Callable[[int], object] = lambda rows: None) -> int:
        """Insert users filled_to+1..size, a committed batch at a time (idempotent); the users there are now."""
        for ids in sql.fill_batches(filled_to, size):
            rows = sql.initial_rows(ids, sql.now())
            with self.connector.transaction() as session:
                session.execute_many(sql.INSERT_USER, rows)
                session.execute(sql.SET_FILLED, (ids.stop - 1,))
            on_progress(len(ids))
        return max(filled_to, size)

    def identity(self) -> int:
        """This database's identity (drawn once, kept in demo_meta): the cache's namespace is tied to it."""
        with self.connector.transaction() as session:
            session.execute(sql.ADD_IDENTITY, (new_identity(),))
            rows = session.query(sql.SELECT_IDENTITY)
        return int(rows[0][0])

    def drop(self) -> None:
        """Remove the tables: the next `filled_to` starts a fresh database."""
        with self.connector.transaction() as session:
            for statement in sql.DROP_TABLES:
                session.execute(statement)

    def close(self) -> None:
        """Close the connections."""
        self.connector.close()


class AsyncDatabase:
    """The users table through a non-blocking connection; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: AsyncConnector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()

    async def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            await asyncio.sleep(self.latency_seconds)
        async with self.connector.session() as session:
            rows = await session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return sql.record_from_row(rows[0]) if rows else None

    async def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        await self._words_ready()
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        async with self.connector.transaction() as session:
            bumped = await session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return None
            await session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            rows = await session.query(sql.SELECT_USER, (user_id,))
        return sql.record_from_row(rows[0])

    async def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s), off the loop."""
        await asyncio.to_thread(vocabulary)

    async def read_range(self, ids: range) -> list[UserRecord]:
        """The users with ids in `ids`, in one range read (no simulated delay: a bulk export)."""
        async with self.connector.session() as session:
            rows = await session.query(sql.SELECT_RANGE, (ids.start, ids.stop - 1))
        return [sql.record_from_row(row) for row in rows]

    async def filled_to(self) -> int:
        """Create the tables if missing; how many users (1..N) the first run has inserted so far."""
        async with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                await session.query(take_turns)
            await session.execute(sql.CREATE_USERS)
            await session.execute(sql.CREATE_META)
            rows = await session.query(sql.SELECT_FILLED)
        return int(rows[0][0]) if rows else 0

    async def fill(self, filled_to: int, size: int, on_progress: Callable[[int], object] = lambda rows: None) -> int:
        """Insert users filled_to+1..size, a committed batch at a time (idempotent); the users there are now."""
        for ids in sql.fill_batches(filled_to, size):
            rows = sql.initial_rows(ids, sql.now())
            async with self.connector.transaction() as session:
                await session.execute_many(sql.INSERT_USER, rows)
                await session.execute(sql.SET_FILLED, (ids.stop - 1,))
            on_progress(len(ids))
        return max(filled_to, size)

    async def identity(self) -> int:
        """This database's identity (drawn once, kept in demo_meta): the cache's namespace is tied to it."""
        async with self.connector.transaction() as session:
            await session.execute(sql.ADD_IDENTITY, (new_identity(),))
            rows = await session.query(sql.SELECT_IDENTITY)
        return int(rows[0][0])

    async def drop(self) -> None:
        """Remove the tables: the next `filled_to` starts a fresh database."""
        async with self.connector.transaction() as session:
            for statement in sql.DROP_TABLES:
                await session.execute(statement)

    async def aclose(self) -> None:
        """Close the connections."""
        await self.connector.aclose()
