"""PostgreSQL as the source of truth: both database twins, and both entry points, on a private server.

Every test gets a fresh database of its own (`postgres_url`) on the session's private
PostgreSQL server (see tests/postgres.py); none ever touches a shared one. Every test here
is marked `postgres`: a run that selects one without PostgreSQL's server binaries stops
before the first test with one line (it never skips).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

import main
import main_async
from cli.messages import PRIVATE_CACHE
from config.database import AsyncPostgresConnector, PostgresConnector
from config.settings import Settings
from simulator import sql
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.records import encode_record, user_record
from tests.postgres import LocalPostgres

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

TWINS = {"sync": main, "async": main_async}
USERS = 300


# --- the database twins, side by side on one database ---


class Twins:
    """A sync `Database` and an `AsyncDatabase` on the same PostgreSQL database, each with its own pool."""

    def __init__(self, sync: Database, async_: AsyncDatabase) -> None:
        self.databases: dict[str, Database | AsyncDatabase] = {"sync": sync, "async": async_}

    async def call(self, twin: str, method: str, *arguments: Any) -> Any:
        """`twin`'s `method(*arguments)`, awaited when the twin is async (the sync one just blocks)."""
        result = getattr(self.databases[twin], method)(*arguments)
        return await result if inspect.isawaitable(result) else result


def other(twin: str) -> str:
    return "async" if twin == "sync" else "sync"


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def twins(postgres_url: str) -> AsyncIterator[Twins]:
    settings = Settings(database_url=postgres_url)
    sync = Database(PostgresConnector(settings), latency_seconds=0)
    try:
        async_ = AsyncDatabase(await AsyncPostgresConnector.open(settings), latency_seconds=0)
    except BaseException:
        sync.close()
        raise
    try:
        yield Twins(sync, async_)
    finally:
        sync.close()
        await async_.aclose()


@pytest.fixture
async def filled(twins: Twins) -> Twins:
    """The twins on a database holding users 1..USERS, filled by the sync twin."""
    assert await twins.call("sync", "filled_to") == 0
    assert await twins.call("sync", "fill", 0, USERS) == USERS
    return twins


async def test_a_fresh_database_is_filled_once(twins: Twins, twin: str) -> None:
    progress: list[int] = []
    assert await twins.call(twin, "filled_to") == 0  # creates the tables
    assert await twins.call(twin, "filled_to") == 0  # and again: IF NOT EXISTS
    assert await twins.call(twin, "fill", 0, USERS, progress.append) == USERS
    assert sum(progress) == USERS
    for name in (twin, other(twin)):
        assert await twins.call(name, "filled_to") == USERS
        assert await twins.call(name, "filled_to") == USERS  # asking again changes nothing
    progress.clear()
    assert await twins.call(twin, "fill", USERS, USERS, progress.append) == USERS  # nothing left to insert
    assert progress == []
    assert len(await twins.call(twin, "read_range", range(1, 10 * USERS))) == USERS


async def test_filling_again_from_the_start_is_idempotent(filled: Twins, twin: str) -> None:
    await filled.call(twin, "update", 7)
    assert await filled.call(twin, "fill", 0, USERS) == USERS  # a run cut short resumes: ON CONFLICT DO NOTHING
    assert await filled.call(twin, "filled_to") == USERS
    assert len(await filled.call(twin, "read_range", range(1, 10 * USERS))) == USERS
    assert (await filled.call(twin, "fetch", 7)).version == 1  # the update survived the refill


async def test_a_larger_size_adds_only_the_missing_users(filled: Twins, twin: str) -> None:
    assert await filled.call(twin, "fill", USERS, USERS + 50) == USERS + 50
    assert await filled.call(other(twin), "filled_to") == USERS + 50
    assert await filled.call(twin, "fetch", USERS + 50) == user_record(USERS + 50)


async def test_fetch_returns_the_deterministic_record(filled: Twins, twin: str) -> None:
    assert await filled.call(twin, "fetch", 42) == user_record(42)
    assert await filled.call(twin, "fetch", 1) == user_record(1)
    assert await filled.call(twin, "fetch", USERS) == user_record(USERS)
    assert filled.databases[twin].reads.value == 3


@pytest.mark.parametrize("user_id", [0, -1, USERS + 1, 1_000_000_000])
async def test_ids_outside_the_table_are_not_found(filled: Twins, twin: str, user_id: int) -> None:
    assert await filled.call(twin, "fetch", user_id) is None
    assert await filled.call(twin, "update", user_id) is None
    assert await filled.call(twin, "filled_to") == USERS  # a failed update inserted nothing


async def test_update_bumps_the_version_and_the_email_for_both_twins(filled: Twins, twin: str) -> None:
    updated = await filled.call(twin, "update", 42)
    assert updated == user_record(42, 1)
    assert updated.version == 1
    assert updated.email != user_record(42).email
    assert "+v1@" in updated.email
    assert await filled.call(other(twin), "fetch", 42) == updated  # committed: the other pool sees it
    assert await filled.call(other(twin), "update", 42) == user_record(42, 2)
    assert await filled.call(twin, "fetch", 42) == user_record(42, 2)
    assert await filled.call(twin, "fetch", 43) == user_record(43)  # nobody else changed


async def test_concurrent_updates_of_one_user_each_get_their_own_version(filled: Twins) -> None:
    sync_database = filled.databases["sync"]
    async_database = filled.databases["async"]
    assert isinstance(sync_database, Database)
    assert isinstance(async_database, AsyncDatabase)
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = [pool.submit(sync_database.update, 9) for _ in range(8)]
        awaited = await asyncio.gather(*(async_database.update(9) for _ in range(8)))
        records = [future.result() for future in threaded] + awaited
    versions = [record.version for record in records if record is not None]
    assert sorted(versions) == list(range(1, 17))  # the row lock serialises them: no update is lost
    assert await filled.call("sync", "fetch", 9) == user_record(9, 16)


async def test_read_range_returns_the_rows_in_order(filled: Twins, twin: str) -> None:
    await filled.call(other(twin), "update", 12)
    assert await filled.call(twin, "read_range", range(10, 20)) == [
        user_record(user_id, 1 if user_id == 12 else 0) for user_id in range(10, 20)
    ]
    assert await filled.call(twin, "read_range", range(USERS - 2, USERS + 5)) == [
        user_record(user_id) for user_id in range(USERS - 2, USERS + 1)
    ]
    assert await filled.call(twin, "read_range", range(USERS + 1, USERS + 10)) == []


async def test_drop_empties_the_database(filled: Twins, twin: str) -> None:
    await filled.call(twin, "drop")
    assert await filled.call(other(twin), "filled_to") == 0  # the tables are back, empty
    assert await filled.call(twin, "fetch", 42) is None
    assert await filled.call(twin, "read_range", range(1, USERS + 1)) == []
    await filled.call(twin, "drop")
    await filled.call(twin, "drop")  # dropping what is not there is no error


async def test_two_runs_starting_together_on_a_fresh_database_both_start(
    twins: Twins, twin: str, postgres_url: str
) -> None:
    with (
        psycopg.connect(postgres_url) as other_run,  # another demo process, halfway through its filled_to
        psycopg.connect(postgres_url, autocommit=True) as probe,
    ):
        other_run.execute((sql.SERIALIZE_CREATION["postgresql"] or "").encode())  # as filled_to does
        other_run.execute(sql.CREATE_USERS.encode())
        other_run.execute(sql.CREATE_META.encode())
        database = twins.databases[twin]
        asking = asyncio.ensure_future(
            database.filled_to() if isinstance(database, AsyncDatabase) else asyncio.to_thread(database.filled_to)
        )
        deadline = time.monotonic() + 10
        while not asking.done() and not blocked_by(probe, other_run.info.backend_pid):
            assert time.monotonic() < deadline, "filled_to never waited for the other run's CREATE TABLE"
            await asyncio.sleep(0.01)  # polling the server until filled_to waits for the other run's lock
        other_run.commit()
        assert await asking == 0


def blocked_by(probe: Any, backend: int) -> bool:
    """True when some session waits for a lock that `backend` holds."""
    row = probe.execute(
        b"SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (backend,)
    ).fetchone()
    return bool(row and row[0])


# --- the entry points ---


def run_main(twin: str, argv: list[str], typed: bytes) -> tuple[int, list[str], list[str]]:
    """Run one twin with `typed` as stdin; returns the exit code and the stdout and stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def demo_argv(database_url: str, *extra: str) -> list[str]:
    return [
        "--redis-url", "memory://", "--database-url", database_url, "--db-size", "500", "--count", "100",
        "--db-latency", "0.001", "--seed-mode", "none", *extra,
    ]  # fmt: skip


def stored(user_id: int, version: int = 0) -> str:
    return f"Stored: user-{user_id} = {encode_record(user_record(user_id, version))} ("


def masked(postgres_url: str) -> str:
    return postgres_url.replace(":demo-secret@", ":****@")


def test_a_lookup_is_answered_from_postgres(twin: str, postgres_url: str) -> None:
    code, out, err = run_main(twin, demo_argv(postgres_url), b"42\n501\nq\n")
    assert code == 0
    assert sum(line.startswith(stored(42)) for line in out) == 1
    assert sum(line.startswith("Not found: user-501 is not in the database") for line in out) == 1
    assert f"Database: PostgreSQL at {masked(postgres_url)}, users 1..500 (created in " in "\n".join(err)
    assert "demo-secret" not in "\n".join(out + err)


def test_the_second_run_finds_the_users_the_first_created(twin: str, postgres_url: str) -> None:
    assert run_main(other(twin), demo_argv(postgres_url), b"")[0] == 0
    code, out, err = run_main(twin, demo_argv(postgres_url), b"500\n")
    assert code == 0
    assert out[0].startswith(stored(500))
    assert f"Database: PostgreSQL at {masked(postgres_url)}, users 1..500." in err


@pytest.mark.parametrize(("writer", "reader"), [("sync", "async"), ("async", "sync")])
def test_an_update_is_kept_across_runs_and_twins(writer: str, reader: str, postgres_url: str) -> None:
    code, out, _ = run_main(writer, demo_argv(postgres_url), b"update 42\n")
    assert code == 0
    assert out[0].startswith(f"Updated user-42 in the database (email now {user_record(42, 1).email})")
    code, out, _ = run_main(reader, demo_argv(postgres_url), b"del 42\n42\n")
    assert code == 0
    assert sum(line.startswith(stored(42, 1)) for line in out) == 1
    assert "+v1@" in user_record(42, 1).email
    code, out, _ = run_main(writer, demo_argv(postgres_url), b"update 42\n")
    assert out[0].startswith(f"Updated user-42 in the database (email now {user_record(42, 2).email})")


def test_reset_db_puts_the_first_run_content_back(twin: str, postgres_url: str) -> None:
    assert run_main(other(twin), demo_argv(postgres_url), b"update 42\n")[0] == 0
    code, out, err = run_main(twin, demo_argv(postgres_url, "--reset-db"), b"42\n")
    assert code == 0
    assert out[0].startswith(stored(42))
    assert any(line.startswith(f"Database: PostgreSQL at {masked(postgres_url)}") for line in err)


def assert_one_database_error(code: int, out: list[str], err: list[str]) -> str:
    """Exit 1, nothing on stdout, and exactly one line saying why; returns that line.

    (How fast is DB_TIMEOUT_SECONDS' to keep, not a wall-clock margin to assert on a loaded machine.)"""
    assert code == 1
    assert out == []
    reported = [line for line in err if line.startswith("Cannot use the database")]
    assert len(reported) == 1
    assert [line for line in err if line not in reported] == [
        "Using the embedded in-memory Redis (fakeredis), as REDIS_URL=memory:// asks: " + PRIVATE_CACHE
    ]
    return reported[0]


def test_a_wrong_password_exits_1_quickly_without_showing_it(twin: str, postgres_server: LocalPostgres) -> None:
    wrong = postgres_server.url.replace(":demo-secret@", ":Wr0ng-pa55word@")
    code, out, err = run_main(twin, demo_argv(wrong), b"42\n")
    line = assert_one_database_error(code, out, err)
    shown = masked(postgres_server.url)
    assert line.startswith(f"Cannot use the database, PostgreSQL at {shown}: authentication failed")
    for secret in ("Wr0ng-pa55word", "demo-secret"):
        assert secret not in "\n".join(out + err)


def test_an_unreachable_port_exits_1_quickly(twin: str, free_port: int) -> None:
    url = f"postgresql://postgres:s3cret-word@127.0.0.1:{free_port}/postgres"
    code, out, err = run_main(twin, demo_argv(url), b"42\n")
    line = assert_one_database_error(code, out, err)
    assert line.startswith(f"Cannot use the database, PostgreSQL at postgresql://postgres:****@127.0.0.1:{free_port}/")
    assert "connection refused" in line
    assert "s3cret-word" not in "\n".join(out + err)


def test_a_missing_database_exits_1_naming_the_problem(twin: str, postgres_server: LocalPostgres) -> None:
    url = postgres_server.url_for("no_such_database")
    code, out, err = run_main(twin, demo_argv(url), b"42\n")
    line = assert_one_database_error(code, out, err)
    assert "no such database on the server" in line
    assert "demo-secret" not in "\n".join(out + err)


BAD_URLS = [
    "mysql://x",
    "postgresql://u:secretpw@host:notaport/db",
    "postgresql://u:secretpw@host:0/db",
    "postgresql://u:secretpw@host:5432",
    "postgresql://u:secret@pw@host:5432/db",
    "postgresql://u:secretpw@ho st:5432/db",
]


@pytest.mark.parametrize(
    ("url", "source"), [(url, "--database-url") for url in BAD_URLS] + [(url, "DATABASE_URL") for url in BAD_URLS[:2]]
)
def test_a_bad_database_url_is_a_configuration_error(
    twin: str, url: str, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "DATABASE_URL":
        monkeypatch.setenv("DATABASE_URL", url)
        argv = ["--redis-url", "memory://", "--seed-mode", "none"]
    else:
        argv = demo_argv(url)
    code, out, err = run_main(twin, argv, b"42\n")
    assert code == 2
    assert out == []
    assert len(err) == 1
    assert err[0].startswith(f"Configuration error: {source}")
    assert "secretpw" not in err[0]
    assert "secret@pw" not in err[0]


@pytest.mark.parametrize(
    "url", ["postgresql://u:pw@host:5432/db?password=secretpw", "postgresql://host:5432/db?password=secretpw"]
)
def test_a_password_in_the_query_string_is_never_shown(twin: str, url: str) -> None:
    code, out, err = run_main(twin, demo_argv(url), b"42\n")
    assert code == 2
    assert out == []
    assert len(err) == 1
    assert err[0].startswith("Configuration error: --database-url")
    assert "secretpw" not in err[0]


@pytest.mark.parametrize("password", ["se%zzcretpw", "secret%00pw"])
def test_a_password_libpq_cannot_decode_is_never_shown(twin: str, password: str, free_port: int) -> None:
    code, out, err = run_main(twin, demo_argv(f"postgresql://u:{password}@127.0.0.1:{free_port}/db"), b"42\n")
    assert code in (1, 2)
    assert len([line for line in err if line.startswith(("Cannot use the database", "Configuration error"))]) == 1
    assert "cretpw" not in "\n".join(out + err)
    assert "secret" not in "\n".join(out + err)
