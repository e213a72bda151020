"""The private PostgreSQL server for the tests, with the suite's skip/fail policy.

The process comes from `benchmarks.local_postgres` (shared with the benchmark); this
module only decides what happens without PostgreSQL: skip locally, fail in CI, where the
integration tests must run. No test ever uses a shared server (such as localhost:5432).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from benchmarks.local_postgres import LocalPostgres, postgres_binaries, start_postgres

__all__ = ["LocalPostgres", "fresh_database", "private_postgres"]


def _missing(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI=true (integration tests must run in CI)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}: integration tests must run in CI")
    pytest.skip(reason)


def private_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of our own for the whole session; skips (fails in CI) without one."""
    if postgres_binaries() is None:
        _missing("PostgreSQL is not installed (apt-get install -y postgresql)")
    try:
        server = start_postgres()
    except RuntimeError as error:
        _missing(f"the private PostgreSQL server did not start: {error}")
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
