"""Simulator layer, pure: what the database's answers mean, for both twins' database shells.

The shells (simulator/_async/database.py, and its generated twin) send simulator/sql.py's
statements; this module says what their rows mean. The table is trusted only as far as it
agrees with itself: `filled_to` checks it against
demo_meta (one aggregate query) and never recreates a table that held users; a user of
1..filled_to with no row, or a row that is not a valid user, is a `BadRow` (a DatabaseError
naming it), never "not found" or a crash.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from config.database import DatabaseError
from simulator import sql
from simulator.records import UserRecord, user_record


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
