"""Simulator layer, I/O shell: the database, the source of truth, written once for both twins.

`AsyncDatabase` runs the SQL of simulator/sql.py on a SQLite file or a PostgreSQL server,
through config/database.py's connector for this twin, and adds DB_LATENCY_SECONDS of
simulated delay to every read and write, so the cost a cache saves stays visible. Every
lookup that misses is a real query; `update` is a real transaction; seeding reads ranges of
real rows. What a row means, and whether the table agrees with itself, is decided in
simulator/database.py. scripts/unasync.py writes the blocking twin from this file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from config.database import AsyncConnector
from simulator import sql
from simulator._async import backend
from simulator.database import ReadCounter, checked_filled_to, new_email, new_identity, user_of
from simulator.records import UserRecord, vocabulary


class AsyncDatabase:
    """The users table through a connection of this twin; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: AsyncConnector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()
        self.filled = 0  # users 1..filled are in the table, as filled_to or fill last learned
        self.inserted = 0  # of the users the last fill added, those this process inserted (others: another process)

    async def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            await backend.sleep(self.latency_seconds)
        async with self.connector.session() as session:
            rows = await session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return user_of(rows, user_id, self.filled)

    async def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        await self._words_ready()
        if self.latency_seconds:
            await backend.sleep(self.latency_seconds)
        async with self.connector.transaction() as session:
            bumped = await session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return user_of(bumped, user_id, self.filled)
            await session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            rows = await session.query(sql.SELECT_USER, (user_id,))
            return user_of(rows, user_id, self.filled)  # a bad row: rolled back

    async def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s), off the loop."""
        await backend.to_thread(vocabulary)

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
                await backend.sleep(sql.FILL_POLL_SECONDS)
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
            await session.execute(*sql.beat_statement(beat))
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
