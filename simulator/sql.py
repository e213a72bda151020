"""Simulator layer, pure: the `users` table, in the SQL that SQLite and PostgreSQL both speak.

The statements, how a row becomes a record, and how the first run fills the table. The
database shells in `simulator.database` send these; nothing here connects or runs SQL.
Statements use `?` placeholders; `for_dialect` turns them into psycopg's `%s`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from simulator.records import UserRecord, user_record

Dialect = Literal["sqlite", "postgresql"]

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

# The database's identity: a random number drawn once, when its demo_meta is first made (again after
# --reset-db drops it). The cache's namespace is tied to it, so no database answers another's records.
ADD_IDENTITY = "INSERT INTO demo_meta (name, value) VALUES ('database_id', ?) ON CONFLICT (name) DO NOTHING"
SELECT_IDENTITY = "SELECT value FROM demo_meta WHERE name = 'database_id'"

FILL_BATCH = 5000  # rows a transaction when the table is first filled


def for_dialect(statement: str, dialect: Dialect) -> str:
    """The statement with the dialect's placeholders (`?` for sqlite3, `%s` for psycopg)."""
    return statement if dialect == "sqlite" else statement.replace("?", "%s")


def now() -> str:
    """The time a row changes, as ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_from_row(row: Sequence[Any]) -> UserRecord:
    """A `SELECT id, name, email, city, job, created_at, version` row as a record."""
    user_id, name, email, city, job, created_at, version = row
    return UserRecord(int(user_id), name, email, city, job, created_at, int(version))


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
