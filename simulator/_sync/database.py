# Written by scripts/unasync.py from simulator/_async/database.py: edit that file, then run the script.
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

from config.database import Connector
from simulator import sql
from simulator._sync import backend
from simulator.database import ReadCounter, checked_filled_to, new_email, new_identity, user_of
from simulator.records import UserRecord, vocabulary


class Database:
    """The users table through a connection of this twin; each read and write also sleeps `latency_seconds`."""

    def __init__(self, connector: Connector, latency_seconds: float) -> None:
        self.connector = connector
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()
        self.filled = 0  # users 1..filled are in the table, as filled_to or fill last learned
        self.inserted = 0  # of the users the last fill added, those this process inserted (others: another process)

    def fetch(self, user_id: int) -> UserRecord | None:
        """Read one user, slowly: the cost the cache exists to avoid. None: no such user."""
        if self.latency_seconds:  # time.sleep(0) itself costs ~0.1 ms on some machines
            backend.sleep(self.latency_seconds)
        with self.connector.session() as session:
            rows = session.query(sql.SELECT_USER, (user_id,))
        self.reads.increment()
        return user_of(rows, user_id, self.filled)

    def update(self, user_id: int) -> UserRecord | None:
        """Give the user a new email and version + 1, in one transaction, slowly. None: no such user."""
        self._words_ready()
        if self.latency_seconds:
            backend.sleep(self.latency_seconds)
        with self.connector.transaction() as session:
            bumped = session.query(sql.BUMP_VERSION, (sql.now(), user_id))
            if not bumped:
                return user_of(bumped, user_id, self.filled)
            session.execute(sql.SET_EMAIL, (new_email(user_id, int(bumped[0][0])), user_id))
            rows = session.query(sql.SELECT_USER, (user_id,))
            return user_of(rows, user_id, self.filled)  # a bad row: rolled back

    def _words_ready(self) -> None:
        """The words of a new email, drawn before the write lock is taken (the first time, ~0.1 s), off the loop."""
        backend.to_thread(vocabulary)

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
                backend.sleep(sql.FILL_POLL_SECONDS)
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
            session.execute(*sql.beat_statement(beat))
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
