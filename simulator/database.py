"""Simulator layer, I/O shells: the database, the source of truth, twice.

`Database` (blocking) and `AsyncDatabase` (non-blocking) run the same SQL from
`simulator.sql` on a SQLite file or a PostgreSQL server, and add DB_LATENCY_SECONDS of
simulated delay to every read and write, so the cost a cache saves stays visible. Every
lookup that misses is a real query; `update` is a real transaction; seeding reads ranges
of real rows. The twins mirror each other method for method.

The table is trusted only as far as it agrees with itself: `filled_to` checks it against
demo_meta (one aggregate query) and never recreates a table that held users; a user of
1..filled_to with no row, or a row that is not a valid user, is a `BadRow` (a DatabaseError
naming it), never "not found" or a crash.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from config.database import AsyncConnector, Connector, DatabaseError
from simulator import sql
from simulator.records import UserRecord, user_record, vocabulary


class InconsistentDatabase(DatabaseError):
    """The users table disagrees with demo_meta (missing, emptied, rows deleted or added): it is not recreated."""

    kind = "inconsistent"


class BadRow(DatabaseError):
    """A user the users table should give but cannot: its row is missing, or is not a valid user."""

    def __init__(self, problem: sql.RowProblem) -> None:
        super().__init__(problem.text)
        self.problem = problem


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


def user_of(rows: list[tuple[Any, ...]], user_id: int, filled_to: int) -> UserRecord | None:
    """The record a lookup's rows hold; None: no such user. BadRow: the row is not a valid user, or is
    missing though the table should hold users 1..filled_to."""
    found = sql.user_in(rows, user_id, filled_to)
    if isinstance(found, sql.RowProblem):
        raise BadRow(found)
    return found


def checked_filled_to(present: list[tuple[Any, ...]], shape: list[tuple[Any, ...]]) -> int:
    """How many users demo_meta says were created, once the tables agree with it; else InconsistentDatabase.

    `present`: TABLES_PRESENT's row; `shape`: SELECT_SHAPE's (demo_meta's count, then the users' count, min and max id).
    """
    users_table = bool(present[0][0])
    filled_to, rows, lowest, highest = shape[0] if shape else (None, 0, None, None)
    filled_to = int(filled_to or 0)
    problem = sql.inconsistency(users_table, filled_to, int(rows), lowest, highest)
    if problem is not None:
        raise InconsistentDatabase(problem)
    return filled_to


def new_email(user_id: int, version: int) -> str:
    """The email `update` gives a user at `version` (deterministic, so tests and people can check it)."""
    return user_record(user_id, version).email


class Database:
    """The users table through a blocking connection; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: Connector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()
        self.filled = 0  # users 1..filled are in the table, as filled_to or fill last learned
        self.inserted = 0  # of the users the last fill added, those this process inserted (others: another process)

    def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            time.sleep(self.latency_seconds)
        with self.connector.session() as session:
            rows = session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return user_of(rows, user_id, self.filled)

    def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        self._words_ready()
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self.connector.transaction() as session:
            bumped = session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return user_of(bumped, user_id, self.filled)
            session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            return user_of(session.query(sql.SELECT_USER, (user_id,)), user_id, self.filled)  # a bad row: rolled back

    def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s)."""
        vocabulary()

    def read_range(self, ids: range) -> sql.UserRows:
        """The users with ids in `ids`, in one range read (no simulated delay: a bulk export), and the
        rows among them that are missing or not valid users (`problems`)."""
        with self.connector.session() as session:
            rows = session.query(sql.SELECT_RANGE, (ids.start, ids.stop - 1))
        return sql.range_rows(rows, ids, self.filled)

    def filled_to(self) -> int:
        """How many users (1..N) the first run has inserted so far, once the users table agrees with
        demo_meta (InconsistentDatabase if not); a new database gets its tables, a damaged one never."""
        with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                session.query(take_turns)
            present = session.query(sql.TABLES_PRESENT[session.dialect])
            shape = session.query(query) if (query := sql.shape_query(*present[0])) else []
            self.filled = checked_filled_to(present, shape)
            session.execute(sql.CREATE_USERS)  # each is made only when nothing says it held users
            session.execute(sql.CREATE_META)
        return self.filled

    def fill(self, filled_to: int, size: int, on_progress: Callable[[int], object] = lambda rows: None) -> int:
        """Insert users filled_to+1..size, a committed batch at a time (idempotent); the users there are now.

        Another process filling the same database at once is waited for, not raced (sql.FillTurns):
        `inserted` says how many of the users this process inserted itself.
        """
        turns = sql.FillTurns(filled_to, size)
        while not turns.finished:
            if turns.waiting(time.monotonic()):
                time.sleep(sql.FILL_POLL_SECONDS)
                with self.connector.session() as session:
                    state = sql.fill_state(session.query(sql.SELECT_FILL_STATE))
            else:
                state = self._fill_batch(turns)
            if advanced := turns.saw(state, time.monotonic()):
                on_progress(advanced)
        self.filled, self.inserted = max(self.filled, turns.done), turns.inserted
        return max(filled_to, size)

    def _fill_batch(self, turns: sql.FillTurns) -> sql.FillState:
        """Under the write lock: insert the next batch if it is this process's turn; what demo_meta says then."""
        with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                session.query(take_turns)
            state = sql.fill_state(session.query(sql.SELECT_FILL_STATE))
            ids = turns.to_insert(state, sql.epoch_ms())
            if ids is None:
                return state
            session.execute_many(sql.INSERT_USER, sql.initial_rows(ids, sql.now()))
            session.execute(sql.SET_FILLED, (ids.stop - 1,))
            beat = turns.beat(state, ids, sql.epoch_ms())
            session.execute(sql.CLEAR_FILL_BEAT if beat is None else sql.SET_FILL_BEAT, () if beat is None else (beat,))
        return sql.FillState(ids.stop - 1, beat, len(ids))

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
        self.filled = 0

    def close(self) -> None:
        """Close the connections."""
        self.connector.close()


class AsyncDatabase:
    """The users table through a non-blocking connection; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: AsyncConnector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()
        self.filled = 0  # users 1..filled are in the table, as filled_to or fill last learned
        self.inserted = 0  # of the users the last fill added, those this process inserted (others: another process)

    async def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            await asyncio.sleep(self.latency_seconds)
        async with self.connector.session() as session:
            rows = await session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return user_of(rows, user_id, self.filled)

    async def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        await self._words_ready()
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        async with self.connector.transaction() as session:
            bumped = await session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return user_of(bumped, user_id, self.filled)
            await session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            return user_of(
                await session.query(sql.SELECT_USER, (user_id,)), user_id, self.filled
            )  # a bad row: rolled back

    async def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s), off the loop."""
        await asyncio.to_thread(vocabulary)

    async def read_range(self, ids: range) -> sql.UserRows:
        """The users with ids in `ids`, in one range read (no simulated delay: a bulk export), and the
        rows among them that are missing or not valid users (`problems`)."""
        async with self.connector.session() as session:
            rows = await session.query(sql.SELECT_RANGE, (ids.start, ids.stop - 1))
        return sql.range_rows(rows, ids, self.filled)

    async def filled_to(self) -> int:
        """How many users (1..N) the first run has inserted so far, once the users table agrees with
        demo_meta (InconsistentDatabase if not); a new database gets its tables, a damaged one never."""
        async with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                await session.query(take_turns)
            present = await session.query(sql.TABLES_PRESENT[session.dialect])
            shape = await session.query(query) if (query := sql.shape_query(*present[0])) else []
            self.filled = checked_filled_to(present, shape)
            await session.execute(sql.CREATE_USERS)  # each is made only when nothing says it held users
            await session.execute(sql.CREATE_META)
        return self.filled

    async def fill(self, filled_to: int, size: int, on_progress: Callable[[int], object] = lambda rows: None) -> int:
        """Insert users filled_to+1..size, a committed batch at a time (idempotent); the users there are now.

        Another process filling the same database at once is waited for, not raced (sql.FillTurns):
        `inserted` says how many of the users this process inserted itself.
        """
        turns = sql.FillTurns(filled_to, size)
        while not turns.finished:
            if turns.waiting(time.monotonic()):
                await asyncio.sleep(sql.FILL_POLL_SECONDS)
                async with self.connector.session() as session:
                    state = sql.fill_state(await session.query(sql.SELECT_FILL_STATE))
            else:
                state = await self._fill_batch(turns)
            if advanced := turns.saw(state, time.monotonic()):
                on_progress(advanced)
        self.filled, self.inserted = max(self.filled, turns.done), turns.inserted
        return max(filled_to, size)

    async def _fill_batch(self, turns: sql.FillTurns) -> sql.FillState:
        """Under the write lock: insert the next batch if it is this process's turn; what demo_meta says then."""
        async with self.connector.transaction() as session:
            if take_turns := sql.SERIALIZE_CREATION[session.dialect]:
                await session.query(take_turns)
            state = sql.fill_state(await session.query(sql.SELECT_FILL_STATE))
            ids = turns.to_insert(state, sql.epoch_ms())
            if ids is None:
                return state
            await session.execute_many(sql.INSERT_USER, sql.initial_rows(ids, sql.now()))
            await session.execute(sql.SET_FILLED, (ids.stop - 1,))
            beat = turns.beat(state, ids, sql.epoch_ms())
            await session.execute(
                sql.CLEAR_FILL_BEAT if beat is None else sql.SET_FILL_BEAT, () if beat is None else (beat,)
            )
        return sql.FillState(ids.stop - 1, beat, len(ids))

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
        self.filled = 0

    async def aclose(self) -> None:
        """Close the connections."""
        await self.connector.aclose()
