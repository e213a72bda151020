"""Simulator layer, pure: the `users` table, in the SQL that SQLite and PostgreSQL both speak.

The statements, how a row becomes a record (or says why it is none), whether the table
agrees with its metadata, and how the first run fills it (and whose turn it is when several
processes fill at once). The database shells in `simulator.database` send these; nothing
here connects or runs SQL. Statements use `?` placeholders; config.database's `for_dialect`
turns them into psycopg's `%s` when it sends them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.records import InvalidRecord, UserRecord, checked_record, user_record

CREATE_USERS = """
CREATE TABLE IF NOT EXISTS users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    city TEXT NOT NULL,
    job TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
)"""
# How far the first run got filling the table, so a run cut short resumes where it stopped.
CREATE_META = "CREATE TABLE IF NOT EXISTS demo_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)"
DROP_TABLES = ("DROP TABLE IF EXISTS users", "DROP TABLE IF EXISTS demo_meta")
# PostgreSQL's CREATE TABLE IF NOT EXISTS fails when another session creates the same table
# at that moment: runs starting together take turns (SQLite's BEGIN IMMEDIATE already does).
SERIALIZE_CREATION = {"sqlite": None, "postgresql": "SELECT pg_advisory_xact_lock(2024060142)"}

SELECT_USER = "SELECT id, name, email, city, job, created_at, version FROM users WHERE id = ?"
SELECT_RANGE = "SELECT id, name, email, city, job, created_at, version FROM users WHERE id BETWEEN ? AND ? ORDER BY id"
# The write path: version + 1 and the new email, in one transaction (see Database.update).
BUMP_VERSION = "UPDATE users SET version = version + 1, updated_at = ? WHERE id = ? RETURNING version"
SET_EMAIL = "UPDATE users SET email = ? WHERE id = ?"
INSERT_USER = (
    "INSERT INTO users (id, name, email, city, job, created_at, version, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
SELECT_FILLED = "SELECT value FROM demo_meta WHERE name = 'filled_to'"
SET_FILLED = (
    "INSERT INTO demo_meta (name, value) VALUES ('filled_to', ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE demo_meta.value < excluded.value"
)
# Which of the two tables exist, without creating either: a users table dropped while demo_meta
# remembers its users must be reported, never made again empty.
TABLES_PRESENT = {
    "sqlite": "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'),"
    " EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'demo_meta')",
    "postgresql": "SELECT to_regclass('users') IS NOT NULL, to_regclass('demo_meta') IS NOT NULL",
}
# The start-up check, one aggregate query: what demo_meta says, and how many rows there are between
# which ids (the primary key's index answers all three: 5 ms on 100,000 users, in SQLite and PostgreSQL).
SELECT_SHAPE = "SELECT (SELECT value FROM demo_meta WHERE name = 'filled_to'), count(*), min(id), max(id) FROM users"

# Who fills: each batch also writes the time it committed (ms since the epoch), and the last one
# removes it, so a process that finds a recent one knows another is filling and waits for it.
SELECT_FILL_STATE = (
    "SELECT (SELECT value FROM demo_meta WHERE name = 'filled_to'),"
    " (SELECT value FROM demo_meta WHERE name = 'fill_beat')"
)
SET_FILL_BEAT = (
    "INSERT INTO demo_meta (name, value) VALUES ('fill_beat', ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
CLEAR_FILL_BEAT = "DELETE FROM demo_meta WHERE name = 'fill_beat'"

# The database's identity: a random number drawn once, when its demo_meta is first made (again after
# --reset-db drops it). The cache's namespace is tied to it, so no database answers another's records.
ADD_IDENTITY = "INSERT INTO demo_meta (name, value) VALUES ('database_id', ?) ON CONFLICT (name) DO NOTHING"
SELECT_IDENTITY = "SELECT value FROM demo_meta WHERE name = 'database_id'"

FILL_BATCH = 5000  # rows a transaction when the table is first filled
FILL_POLL_SECONDS = 0.05  # while another process fills: how often to look at how far it got
# Another process's fill that has committed no batch for this long was cut short: take over where it
# stopped (a batch of 5000 takes 0.1 to 0.3 s; a loaded machine, a few times that).
FILL_STALL_SECONDS = 5.0


def now() -> str:
    """The time a row changes, as ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms() -> int:
    """The time now, in whole milliseconds since the epoch (a fill's beat)."""
    return time.time_ns() // 1_000_000


def record_from_row(row: Sequence[Any]) -> UserRecord:
    """A `SELECT id, name, email, city, job, created_at, version` row as a record; InvalidRecord if it is none."""
    return checked_record(*row)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A user the table should give but cannot: its row is missing, or is not a valid user. `text` says which.

    `user_id` is None for a row whose id is not a whole number (SQLite keeps what it is given).
    """

    user_id: int | None
    text: str

    def __str__(self) -> str:
        return self.text


def missing_user(user_id: int, filled_to: int) -> RowProblem:
    """User `user_id` of 1..filled_to has no row."""
    return RowProblem(
        user_id, f"user {user_id} is missing from the users table, which should hold users 1..{filled_to:,}"
    )


def checked_row(row: Sequence[Any]) -> UserRecord | RowProblem:
    """The row's record, or why it is not a valid user."""
    try:
        return record_from_row(row)
    except InvalidRecord as invalid:
        user_id = row[0] if type(row[0]) is int else None
        named = row[0] if user_id is not None else repr(row[0])[:24]
        return RowProblem(user_id, f"user {named}'s row is not a valid user ({invalid})")


def user_in(rows: Sequence[Sequence[Any]], user_id: int, filled_to: int) -> UserRecord | RowProblem | None:
    """What a lookup's rows say of `user_id`: its record, None (no such user), or a RowProblem when the
    row is not a valid user, or is missing though the table should hold users 1..filled_to."""
    if rows:
        return checked_row(rows[0])
    return missing_user(user_id, filled_to) if 1 <= user_id <= filled_to else None


class UserRows(list[UserRecord]):
    """A range read: the valid records, in id order (a list, so callers that want only them need nothing
    else), and `problems`: the rows in the range that are not valid users and the ids of 1..filled_to
    that have no row, in id order."""

    def __init__(self, records: Iterable[UserRecord] = (), problems: Iterable[RowProblem] = ()) -> None:
        super().__init__(records)
        self.problems = tuple(problems)


def range_rows(rows: Sequence[Sequence[Any]], ids: range, filled_to: int) -> UserRows:
    """A range read's rows as records, and what is wrong with the rest (see UserRows)."""
    records: list[UserRecord] = []
    problems: list[RowProblem] = []
    for row in rows:
        found = checked_row(row)
        if isinstance(found, UserRecord):
            records.append(found)
        else:
            problems.append(found)
    should_hold = range(ids.start, min(ids.stop, filled_to + 1))
    present = {row[0] for row in rows}
    if any(user_id not in present for user_id in should_hold):
        problems += [missing_user(user_id, filled_to) for user_id in should_hold if user_id not in present]
        problems.sort(key=lambda problem: -1 if problem.user_id is None else problem.user_id)
    return UserRows(records, problems)


def shape_query(users_table: bool, meta_table: bool) -> str | None:
    """SELECT_SHAPE for the tables there are (None: neither, a new database)."""
    if users_table:
        return SELECT_SHAPE if meta_table else "SELECT NULL, count(*), min(id), max(id) FROM users"
    return "SELECT (SELECT value FROM demo_meta WHERE name = 'filled_to'), 0, NULL, NULL" if meta_table else None


def inconsistency(
    users_table: bool, filled_to: int, rows: int, lowest: object = None, highest: object = None
) -> str | None:
    """Why the users table and demo_meta (`filled_to`: users 1..N were created) disagree; None when they agree.

    They agree when the table holds exactly ids 1..filled_to (the id is the primary key, so `rows`
    of them from 1 to filled_to are those), or is missing or empty with nothing created yet.
    """
    said = f"demo_meta says it holds users 1..{filled_to:,}"
    if not users_table:
        return f"the users table is missing, though {said}" if filled_to else None
    if rows == 0:
        return f"the users table is empty, though {said}" if filled_to else None
    held = f"the users table holds {rows:,} rows (ids {_id(lowest)}..{_id(highest)})"
    if filled_to == 0:
        return f"{held}, though demo_meta says no users were created"
    if rows != filled_to or lowest != 1 or highest != filled_to:
        return f"{held}, though {said}"
    return None


def _id(value: object) -> str:
    return f"{value:,}" if type(value) is int else repr(value)[:24]


def initial_rows(ids: range, created: str) -> list[tuple[object, ...]]:
    """The rows of a fresh database for `ids`: the deterministic users, at version 0."""
    rows: list[tuple[object, ...]] = []
    for user_id in ids:
        record = user_record(user_id)
        rows.append((user_id, record.name, record.email, record.city, record.job, record.created_at, 0, created))
    return rows


def fill_batches(filled_to: int, size: int, batch_size: int = FILL_BATCH) -> Iterator[range]:
    """The ids still to insert to grow a table filled up to `filled_to` to `size` users."""
    for start in range(filled_to + 1, size + 1, batch_size):
        yield range(start, min(start + batch_size, size + 1))


@dataclass(frozen=True, slots=True)
class FillState:
    """What demo_meta says of the first run's fill: users 1..filled are in; `beat`: when a fill last committed
    a batch (ms since the epoch; None when none is under way); `inserted`: rows this process just inserted."""

    filled: int
    beat: int | None
    inserted: int = 0


def fill_state(rows: Sequence[Sequence[Any]]) -> FillState:
    """SELECT_FILL_STATE's row as a FillState."""
    filled, beat = rows[0] if rows else (None, None)
    return FillState(int(filled or 0), None if beat is None else int(beat))


class FillTurns:
    """Whose turn it is to insert, when several processes fill one new database at once (no I/O here).

    Each batch is inserted under the write lock by whoever holds it, and stamps the time (a
    beat). A process that finds another's recent beat does not compete: it waits, watching the
    count grow, so one process creates the users and the others say they waited for it. If the
    other stops making progress for FILL_STALL_SECONDS (it was cut short), this one takes over
    where it stopped; a run cut short alone leaves a beat that is soon old, and is resumed.
    """

    def __init__(self, filled_to: int, size: int) -> None:
        self.size = size
        self.done = filled_to  # users 1..done are in, as far as this process has seen
        self.inserted = 0  # of them, the rows this process inserted
        self._own_beat: int | None = None  # the beat this process last wrote
        self._waiting_since: float | None = None  # while another fills: when it was last seen making progress

    @property
    def finished(self) -> bool:
        """The table holds users 1..size."""
        return self.done >= self.size

    def waiting(self, now: float) -> bool:
        """True while another process fills and has made progress lately: look again instead of inserting."""
        return self._waiting_since is not None and now - self._waiting_since < FILL_STALL_SECONDS

    def to_insert(self, state: FillState, now_ms: int) -> range | None:
        """Under the write lock: the ids to insert now, or None (nothing left, or another process is filling)."""
        if state.filled >= self.size:
            return None
        another = state.beat is not None and state.beat != self._own_beat
        if another and self._waiting_since is None and now_ms - (state.beat or 0) < FILL_STALL_SECONDS * 1000:
            return None
        return next(fill_batches(state.filled, self.size))

    def beat(self, state: FillState, ids: range, now_ms: int) -> int | None:
        """The beat to write with `ids`: later than any before it, so it is known as ours; None after the last batch."""
        if ids.stop - 1 >= self.size:
            self._own_beat = None
            return None
        self._own_beat = max(now_ms, (state.beat or 0) + 1)
        return self._own_beat

    def saw(self, state: FillState, now: float) -> int:
        """Take in what demo_meta says now (after an insert, or a look); how many more users are in since the last."""
        advanced = max(0, min(state.filled, self.size) - self.done)
        self.done = max(self.done, state.filled)
        self.inserted += state.inserted
        if state.inserted or state.beat is None:  # our turn goes on: we inserted, or nobody else is filling
            self._waiting_since = None
        elif advanced or self._waiting_since is None:  # another fills: wait for it, from now
            self._waiting_since = now
        return advanced


def beat_statement(beat: int | None) -> tuple[str, tuple[object, ...]]:
    """The statement that records a fill's beat (or clears it once the fill is done), with its parameters."""
    return (CLEAR_FILL_BEAT, ()) if beat is None else (SET_FILL_BEAT, (beat,))
