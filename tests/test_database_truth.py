"""The database is the source of truth, and says so when it cannot be one.

A users table that is missing, emptied or at odds with its metadata stops the demo at
start-up with one line (never recreated empty); a row it should hold but lacks, or a row
that is not a valid user, is a one-line database error for a lookup and a row a seed skips
(leaving no lease behind); a seed cut short by the database fails cleanly, its leases given
back; several processes creating one database say which one created it; and a seed counts
the keys an update took from it apart from those already cached. Both twins, every time.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

import main
import main_async
from cli.console import Console
from cli.seed_and_database import render_seed_report
from config.database import AsyncPostgresConnector, DatabaseError, PostgresConnector
from config.settings import Settings
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.entries import LEASE_PREFIX
from simulator.policy import CachePolicy
from simulator.records import MAX_RECORD_BYTES, CorruptEntry, Problem, decode_record, encode_record, user_record
from simulator.seeding import SeedProgress
from simulator.simulate_cache_db_flow import AsyncCacheAside, AsyncSeeder, CacheAside, Seeder
from tests.conftest import PROJECT_ROOT, AsyncGatedDatabase, GatedDatabase
from tests.test_e2e import script_env
from tests.twins import TEST_DB_SIZE, async_sqlite_database, make_twin, sqlite_database

TWINS = {"sync": main, "async": main_async}
POLICY = CachePolicy(lease_seconds=30, wait_poll_seconds=0.01)  # no lease expires during a test
GATE_SECONDS = 30.0  # a safety net: an event that never comes fails the test instead of hanging it
USERS = f"users 1..{TEST_DB_SIZE:,}"


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_main(twin: str, argv: list[str], typed: bytes) -> tuple[int, list[str], list[str]]:
    """Run one twin in-process with `typed` as stdin; the exit code and the stdout and stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def demo_argv(*extra: str) -> list[str]:
    return ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0", *extra]


def on_the_file(*statements: str, path: str = "users.db") -> None:
    """Run SQL on the test's SQLite file as another program would (a person with the sqlite3 shell)."""
    with closing(sqlite3.connect(path)) as connection:
        for statement in statements:
            connection.execute(statement)
        connection.commit()


def tables(path: str = "users.db") -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def settled(result: Any) -> Any:
    """A twin's answer: awaited when the twin is async (the sync one has already run)."""
    return await result if inspect.isawaitable(result) else result


def database_of(twin: str) -> Database | AsyncDatabase:
    return sqlite_database(0) if twin == "sync" else async_sqlite_database(0)


def is_lease(value: bytes | None) -> bool:
    return value is not None and value.startswith(LEASE_PREFIX)


def leases_in(client: redis.Redis) -> list[bytes]:
    """Every key of the server that holds a lease."""
    return [key for key in client.scan_iter(count=1000) if is_lease(client.get(key))]


# --- A: a users table at odds with its metadata stops the start-up, with one line ---

HINT = "Hint: `--reset-db` (DB_RESET=1) starts over, with users 1..DB_SIZE at version 0."
INSERT_10001 = (
    "INSERT INTO users (id, name, email, city, job, created_at, version, updated_at)"
    " VALUES (10001, 'A', 'a@example.com', 'C', 'J', '2020-01-01T00:00:00Z', 0, '2020-01-01T00:00:00Z')"
)
DAMAGE = {
    "the users table dropped": (
        ["DROP TABLE users"],
        f"the users table is missing, though demo_meta says it holds {USERS}",
    ),
    "the users table emptied": (
        ["DELETE FROM users"],
        f"the users table is empty, though demo_meta says it holds {USERS}",
    ),
    "two rows deleted": (
        ["DELETE FROM users WHERE id IN (42, 4242)"],
        f"the users table holds 9,998 rows (ids 1..10,000), though demo_meta says it holds {USERS}",
    ),
    "the last rows deleted": (
        ["DELETE FROM users WHERE id > 9000"],
        f"the users table holds 9,000 rows (ids 1..9,000), though demo_meta says it holds {USERS}",
    ),
    "a row past the metadata": (
        [INSERT_10001],
        f"the users table holds 10,001 rows (ids 1..10,001), though demo_meta says it holds {USERS}",
    ),
    "the metadata dropped": (
        ["DROP TABLE demo_meta"],
        "the users table holds 10,000 rows (ids 1..10,000), though demo_meta says no users were created",
    ),
    "the metadata's count deleted": (
        ["DELETE FROM demo_meta WHERE name = 'filled_to'"],
        "the users table holds 10,000 rows (ids 1..10,000), though demo_meta says no users were created",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_users_table_at_odds_with_its_metadata_stops_the_start_up_with_one_line(twin: str, damage: str) -> None:
    statements, reason = DAMAGE[damage]
    on_the_file(*statements)
    before = tables()
    code, out, err = run_main(twin, demo_argv(), b"42\n")
    assert (code, out) == (1, [])
    reported = [line for line in err if line.startswith("Cannot use the database")]
    assert reported == [f"Cannot use the database, SQLite file {Path('users.db').resolve()}: {reason}. {HINT}"]
    assert not any("Traceback" in line for line in err)
    assert tables() == before  # nothing was recreated, empty or otherwise


@pytest.mark.parametrize("damage", ["the users table dropped", "two rows deleted", "the metadata dropped"])
def test_reset_db_still_starts_a_damaged_database_over(twin: str, damage: str) -> None:
    on_the_file(*DAMAGE[damage][0])
    code, out, err = run_main(twin, demo_argv("--reset-db"), b"42\n")
    assert code == 0
    assert any(f"{USERS} (reset to its first-run content in " in line for line in err), err
    assert out[0].startswith(f"Stored: user-42 = {encode_record(user_record(42))} (")
    code, _, err = run_main(twin, demo_argv(), b"")
    assert code == 0
    assert any(line.endswith(f"{USERS}.") for line in err), err


async def test_the_check_finds_a_fresh_and_a_complete_database_consistent(twin: str, tmp_path: Path) -> None:
    fresh = str(tmp_path / "fresh.db")
    database = sqlite_database(0, fresh) if twin == "sync" else async_sqlite_database(0, fresh)
    assert await settled(database.filled_to()) == 0  # nothing there: the tables are made
    assert await settled(database.filled_to()) == 0
    assert await settled(database.fill(0, 300)) == 300
    assert await settled(database.filled_to()) == 300
    assert tables(fresh) >= {"users", "demo_meta"}


# --- A, mid-run: a row the table should hold but lacks is a database error, not "not found" ---


async def test_a_lookup_of_a_row_the_table_should_hold_but_lacks_is_a_database_error(twin: str) -> None:
    database = database_of(twin)
    assert await settled(database.filled_to()) == TEST_DB_SIZE
    on_the_file("DELETE FROM users WHERE id = 42")
    with pytest.raises(DatabaseError) as raised:
        await settled(database.fetch(42))
    assert str(raised.value) == f"user 42 is missing from the users table, which should hold {USERS}"
    assert await settled(database.fetch(TEST_DB_SIZE + 1)) is None  # past the table: not found, as ever
    assert await settled(database.fetch(41)) == user_record(41)


async def test_the_database_learns_its_users_from_fill_too(twin: str, tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.db")
    database = sqlite_database(0, path) if twin == "sync" else async_sqlite_database(0, path)
    await settled(database.fill(await settled(database.filled_to()), 50))
    on_the_file("DELETE FROM users WHERE id = 7", path=path)
    with pytest.raises(
        DatabaseError, match=r"^user 7 is missing from the users table, which should hold users 1\.\.50$"
    ):
        await settled(database.fetch(7))


def rows_vanish_at_the_second_look(monkeypatch: pytest.MonkeyPatch, statement: str, *, before: bool) -> None:
    """Another program runs `statement` just before (or just after) the demo's second `filled_to`, the one
    `load` makes: the first, at start-up, found the table whole."""
    looks = 0
    sync_filled_to, async_filled_to = Database.filled_to, AsyncDatabase.filled_to

    def at(moment_is_before: bool) -> None:
        nonlocal looks
        looks += moment_is_before
        if looks == 2 and moment_is_before is before:
            on_the_file(statement)

    def sync_look(database: Database) -> int:
        at(True)
        users = sync_filled_to(database)
        at(False)
        return users

    async def async_look(database: AsyncDatabase) -> int:
        at(True)
        users = await async_filled_to(database)
        at(False)
        return users

    monkeypatch.setattr(Database, "filled_to", sync_look)
    monkeypatch.setattr(AsyncDatabase, "filled_to", async_look)


def test_load_counts_rows_deleted_mid_run_as_errors_and_a_lookup_prints_one_line(
    twin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_vanish_at_the_second_look(monkeypatch, "DELETE FROM users", before=False)
    typed = b"load 3 --concurrency 3 --seed 1\n42\n"
    code, out, err = run_main(twin, demo_argv("--json"), typed)
    assert code == 0
    load = json.loads(out[0])["load"]
    assert (load["errors"], load["lookups"]) == (3, 0), load
    assert load["first_error"].startswith("Database error: user ")
    assert load["first_error"].endswith(f" is missing from the users table, which should hold {USERS}")
    assert json.loads(out[1]) == {
        "error": f"Database error: user 42 is missing from the users table, which should hold {USERS}"
    }
    assert len(out) == 2
    assert not any("Traceback" in line for line in err)


def test_load_on_a_table_emptied_before_it_says_so_in_one_line(twin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows_vanish_at_the_second_look(monkeypatch, "DELETE FROM users", before=True)
    code, out, _ = run_main(twin, demo_argv(), b"load 5\n")
    assert code == 0
    assert out == [f"Database error: the users table is empty, though demo_meta says it holds {USERS}"]


# --- B: one test of what a user record may be, for rows and cached values alike ---

BAD_ROWS = {
    "a version that is text": (
        "UPDATE users SET version = 'abc' WHERE id = 42",
        "version is the text 'abc', not a whole number",
    ),
    "a name that is a BLOB": ("UPDATE users SET name = x'00ff10' WHERE id = 42", "name is a BLOB of 3 bytes, not text"),
    "a negative version": ("UPDATE users SET version = -1 WHERE id = 42", "version is -1, below 0"),
    "a 64 KiB name": (
        "UPDATE users SET name = replace(hex(zeroblob(32768)), '0', 'x') WHERE id = 42",
        "as a record it takes 65,699 bytes, over the 65,536 a record may)",
    ),
    "a name of 6,000 emoji": (
        "UPDATE users SET name = replace(hex(zeroblob(3000)), '0', '\U0001f600') WHERE id = 42",
        "as a record it takes 72,",  # 24 KB of UTF-8, 72 KB once escaped as the cache stores it
    ),
    "a version that is not whole": (
        "UPDATE users SET version = 1.5 WHERE id = 42",
        "version is 1.5, not a whole number",
    ),
}


@pytest.mark.parametrize("bad", BAD_ROWS)
async def test_a_row_that_is_not_a_valid_user_is_a_database_error_naming_it(twin: str, bad: str) -> None:
    statement, why = BAD_ROWS[bad]
    on_the_file(statement)
    database = database_of(twin)
    with pytest.raises(DatabaseError) as raised:
        await settled(database.fetch(42))
    assert str(raised.value).startswith(f"user 42's row is not a valid user ({why}")
    assert "\n" not in str(raised.value)
    assert len(str(raised.value)) < 200
    assert await settled(database.fetch(43)) == user_record(43)


@pytest.mark.integration
def test_a_lookup_of_a_bad_row_prints_one_line_and_caches_nothing(twin: str, redis_url: str) -> None:
    on_the_file("UPDATE users SET version = 'abc' WHERE id = 42")
    code, out, err = run_main(twin, ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0"], b"42\n43\n")
    assert code == 0
    first_error, answered = sorted(out)  # the async twin prints each answer when it is ready: any order
    assert first_error == (
        "Database error: user 42's row is not a valid user (version is the text 'abc', not a whole number)"
    )
    assert answered.startswith("Stored: user-43 = ")
    assert not any("Traceback" in line for line in err)
    client = redis.Redis.from_url(redis_url)
    value = client.get("user-42")
    client.close()
    assert value is None or is_lease(value)  # neither a record nor a "not found": nothing was cached


@pytest.mark.parametrize(
    ("name", "version", "problem"),
    [
        ("\U0001f600" * 6000, 0, Problem.TOO_LARGE),  # 24 KB of UTF-8; 72 KB as the demo encodes it
        ("Jack Navarro", -1, Problem.WRONG_FIELDS),
    ],
)
def test_a_cached_value_no_row_may_hold_is_corrupt_too(name: str, version: int, problem: Problem) -> None:
    """Rows and cached values pass one test: what a lookup refuses to read from a row it never accepts from Redis."""
    fields = {"id": 42, "name": name, "email": "a@example.com", "city": "C", "job": "J", "created_at": "2020"}
    raw = json.dumps({**fields, "version": version}, ensure_ascii=False).encode()
    assert len(raw) <= MAX_RECORD_BYTES
    with pytest.raises(CorruptEntry) as raised:
        decode_record(raw, 42)
    assert raised.value.problem is problem


def test_every_record_the_generator_makes_passes_both_ways() -> None:
    for user_id in (1, 42, 99_999, 10**9):
        for version in (0, 1, 7):
            record = user_record(user_id, version)
            assert decode_record(encode_record(record).encode(), user_id) == record


# --- B: a seed goes on past bad rows, stores nothing for them, and leaves no lease ---


@pytest.fixture(params=["server", "cluster"])
async def topology(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Any]]:
    """A sync and an async client on a private redis-server, or on a private Redis Cluster."""
    if request.param == "server":
        url = request.getfixturevalue("redis_url")
        sync_client: Any = redis.Redis.from_url(url)
        async_client: Any = redis.asyncio.Redis.from_url(url)
    else:
        url = request.getfixturevalue("cluster")[0].url
        sync_client = RedisCluster.from_url(url)
        async_client = AsyncRedisCluster.from_url(url)
        await async_client.initialize()
    yield sync_client, async_client
    sync_client.close()
    await async_client.aclose()


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["sequential", "pipelined"])
async def test_a_seed_skips_missing_and_invalid_rows_stores_nothing_for_them_and_leaves_no_lease(
    twin: str, mode: str, topology: tuple[Any, Any]
) -> None:
    sync_client, async_client = topology
    seeded = make_twin(twin, sync_client, async_client, POLICY, latency_seconds=0, batch_size=100)
    await settled(seeded.database.filled_to())
    on_the_file(
        "DELETE FROM users WHERE id IN (42, 43)",
        "UPDATE users SET version = 'abc' WHERE id = 44",
        "UPDATE users SET version = -3 WHERE id = 150",
    )
    report = await seeded.seed(mode, 300)
    assert (report.written, report.stopped) == (296, False)
    assert report.invalid == 4
    assert report.invalid_rows == (
        f"user 42 is missing from the users table, which should hold {USERS}",
        f"user 43 is missing from the users table, which should hold {USERS}",
        "user 44's row is not a valid user (version is the text 'abc', not a whole number)",
        "user 150's row is not a valid user (version is -3, below 0)",
    )
    for user_id in (42, 43, 44, 150):
        assert sync_client.get(f"user-{user_id}") is None  # no record, no "not found", and no lease
    assert sync_client.get("user-41") == encode_record(user_record(41)).encode()
    text = render_seed_report(report)
    assert "296 written, 4 skipped (their rows are missing or not valid users: nothing cached for them)" in text
    assert text.splitlines()[1:] == [f"  {row}" for row in report.invalid_rows]


async def test_a_seed_report_names_the_first_five_skipped_rows_and_counts_the_rest(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    seeded = make_twin(twin, sync_client, async_client, POLICY, latency_seconds=0, batch_size=100)
    on_the_file("UPDATE users SET version = -1 WHERE id BETWEEN 10 AND 21")
    report = await seeded.seed("pipelined", 200)
    lines = render_seed_report(report).splitlines()
    assert "188 written, 12 skipped (their rows are missing or not valid users: nothing cached for them)" in lines[0]
    assert lines[1:] == [
        *(f"  user {user_id}'s row is not a valid user (version is -1, below 0)" for user_id in range(10, 15)),
        "  and 7 more",
    ]
    assert sync_client.dbsize() == 188


BAD_SEED_ROWS = (
    "UPDATE users SET version = 'abc' WHERE id = 42",
    "UPDATE users SET name = x'00ff' WHERE id = 43",
    "UPDATE users SET version = -1 WHERE id = 44",
    "UPDATE users SET name = replace(hex(zeroblob(32768)), '0', 'x') WHERE id = 45",
)


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.parametrize(
    ("script", "mode"),
    [
        ("main.py", "threaded"),
        ("main.py", "pipelined"),
        ("main.py", "sequential"),
        ("main_async.py", "pipelined"),
        ("main_async.py", "sequential"),
    ],
)
def test_the_real_scripts_seed_past_bad_rows_without_a_traceback_or_a_lease(
    script: str, mode: str, redis_url: str, tmp_path: Path
) -> None:
    on_the_file(*BAD_SEED_ROWS)
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / script), "--redis-url", redis_url, "--seed-mode", mode, "--count", "1000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=script_env(DB_LATENCY_SECONDS="0"),
        bufsize=0,  # stderr read line by line here, then by communicate: nothing may wait in a buffer between
    )
    assert process.stderr is not None
    seen: list[str] = []
    while not any(line.startswith(("Seeded", "Seeding stopped", "Seeding failed")) for line in seen):
        line = process.stderr.readline().decode()
        assert line, f"the script ended without a seed report: {seen}"
        seen.append(line.rstrip("\n"))
    client = redis.Redis.from_url(redis_url)
    left = {user_id: client.get(f"user-{user_id}") for user_id in (42, 43, 44, 45)}
    client.close()
    out, rest = process.communicate(b"42\nq\n", timeout=30)
    err = "\n".join(seen) + "\n" + rest.decode()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert left == {42: None, 43: None, 44: None, 45: None}  # nothing cached for them, and no lease left behind
    [report] = [line for line in err.splitlines() if line.startswith(("Seeded", "Seeding stopped", "Seeding failed"))]
    assert report.startswith("Seeded 1,000 users in "), report
    assert "996 written, 4 skipped (their rows are missing or not valid users: nothing cached for them)" in report
    named = err.splitlines()[err.splitlines().index(report) + 1 :][:4]
    assert named[0] == "  user 42's row is not a valid user (version is the text 'abc', not a whole number)"
    assert named[1] == "  user 43's row is not a valid user (name is a BLOB of 2 bytes, not text)"
    assert named[2] == "  user 44's row is not a valid user (version is -1, below 0)"
    assert named[3].startswith("  user 45's row is not a valid user (as a record it takes 65,")
    assert out.decode().splitlines()[0] == (
        "Database error: user 42's row is not a valid user (version is the text 'abc', not a whole number)"
    )


# --- B: a seed the database fails fails cleanly, and gives its leases back ---


def run_until_the_seed_ends(twin: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    """Run a twin whose input ends only once the seed has said how it ended (a background seed is not stopped)."""
    read_end, write_end = os.pipe()
    said = Console.seed_ended

    def seed_ended(console: Console, report: Any, error: Exception | None) -> None:
        said(console, report, error)
        os.close(write_end)  # end of input: the twin quits, as after Ctrl-D

    monkeypatch.setattr(Console, "seed_ended", seed_ended)
    out, err = io.StringIO(), io.StringIO()
    with open(read_end, "rb", buffering=0) as stdin:
        code = TWINS[twin].main(argv, stdin=stdin, stdout=out, stderr=err)
    return code, err.getvalue().splitlines()


def database_down_after_the_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every range read after the first fails, as when the database goes away during a seed."""
    reads, lock = 0, threading.Lock()
    sync_read, async_read = Database.read_range, AsyncDatabase.read_range

    def down() -> bool:
        nonlocal reads
        with lock:
            reads += 1
            return reads > 1

    def read_range(database: Database, ids: range) -> Any:
        if down():
            raise DatabaseError("connection refused (nothing is listening there)")
        return sync_read(database, ids)

    async def async_read_range(database: AsyncDatabase, ids: range) -> Any:
        if down():
            await asyncio.sleep(0)  # the failure comes from the database's answer, after a turn of the loop
            raise DatabaseError("connection refused (nothing is listening there)")
        return await async_read(database, ids)

    monkeypatch.setattr(Database, "read_range", read_range)
    monkeypatch.setattr(AsyncDatabase, "read_range", async_read_range)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("twin_name", "mode"),
    [
        ("sync", "threaded"),
        ("sync", "pipelined"),
        ("sync", "sequential"),
        ("async", "pipelined"),
        ("async", "sequential"),
    ],
)
def test_a_seed_the_database_fails_says_failed_and_leaves_no_lease(
    twin_name: str, mode: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_down_after_the_first_batch(monkeypatch)
    argv = ["--redis-url", redis_url, "--seed-mode", mode, "--count", "1000", "--batch-size", "100"]
    code, err = run_until_the_seed_ends(twin_name, [*argv, "--db-latency", "0"], monkeypatch)
    assert code == 0
    assert not any("Traceback" in line or line.startswith("Seeding stopped") for line in err), err
    failed = [line for line in err if line.startswith("Seeding failed after ")]
    assert len(failed) == 1, err
    assert "database error: connection refused (nothing is listening there)" in failed[0]
    client = redis.Redis.from_url(redis_url)
    try:
        assert leases_in(client) == []
        # The batch whose read came first stays: ids 1-100, or 101-200 when two batches run at once and the
        # second reads first.
        cached = sorted(int(key[5:]) for key in client.scan_iter(match="user-*") if key[5:].isdigit())
        assert cached in (list(range(1, 101)), list(range(101, 201)))
        assert client.get(f"user-{cached[0]}") == encode_record(user_record(cached[0])).encode()
    finally:
        client.close()


# --- D: keys whose lease an update, del or clear removed are counted apart from those already cached ---


async def test_keys_an_update_or_del_took_from_a_seed_are_reported_apart_from_those_already_cached(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    sync_client.set("user-7", encode_record(user_record(7)), ex=600)  # already cached: the seed leaves it
    progress = SeedProgress("pipelined", 100, time.perf_counter())
    if twin == "sync":
        gated = GatedDatabase("users.db")
        writer: Any = CacheAside(sync_client, sqlite_database(0), POLICY)
        seeding = asyncio.ensure_future(
            asyncio.to_thread(Seeder(sync_client, gated, POLICY, batch_size=100).seed_pipelined, progress)
        )
        assert await asyncio.to_thread(gated.read_done.wait, GATE_SECONDS)
        writer.update(42)
        writer.delete(43)
        gated.gate.set()
    else:
        async_gated = AsyncGatedDatabase("users.db")
        writer = AsyncCacheAside(async_client, async_sqlite_database(0), POLICY)
        seeding = asyncio.ensure_future(
            AsyncSeeder(async_client, async_gated, POLICY, batch_size=100).seed_pipelined(progress)
        )
        await asyncio.wait_for(async_gated.read_done.wait(), GATE_SECONDS)
        await writer.update(42)
        await writer.delete(43)
        async_gated.gate.set()
    report = await seeding
    text = render_seed_report(report)
    assert text.startswith("Seeded 100 users in "), text
    assert text.endswith(
        ": 97 written, 1 already cached, 2 changed while seeding (an update, del or clear removed their lease): "
        "left for the next lookup."
    ), text
    assert (report.written, report.cached, report.changed) == (97, 1, 2)
    assert sync_client.get("user-42") is None  # left for the next lookup, which reads the new version
    if twin == "sync":
        gated.close()
    else:
        await async_gated.aclose()


# --- C: several processes creating one database: one says it created it ---


@pytest.mark.e2e
def test_processes_started_together_on_a_new_database_say_which_one_created_it(tmp_path: Path) -> None:
    scripts = ["main.py", "main_async.py", "main.py", "main_async.py"]
    env = script_env(DB_SIZE="100000")
    processes = [
        subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / script), "--redis-url", "memory://", "--seed-mode", "none"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        for script in scripts
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * len(scripts), outputs
    lines = [next(line for line in err.decode().splitlines() if line.startswith("Database: ")) for _, err in outputs]
    prefix = f"Database: SQLite file {tmp_path / 'users.db'}, users 1..100,000"
    assert all(line.startswith(prefix) for line in lines), lines
    created = [line for line in lines if "(created in " in line]
    assert len(created) == 1, lines
    for line in lines:
        if line not in created:
            assert line == f"{prefix}." or line.startswith(f"{prefix} (created by another process"), lines


# --- PostgreSQL: the same checks on a server ---


@pytest.fixture
async def postgres_twins(postgres_url: str) -> AsyncIterator[dict[str, Any]]:
    settings = Settings(database_url=postgres_url)
    sync = Database(PostgresConnector(settings), latency_seconds=0)
    async_ = AsyncDatabase(await AsyncPostgresConnector.open(settings), latency_seconds=0)
    try:
        yield {"sync": sync, "async": async_, "url": postgres_url}
    finally:
        sync.close()
        await async_.aclose()


@pytest.mark.integration
@pytest.mark.postgres
async def test_on_postgres_deleted_rows_are_errors_mid_run_and_stop_the_next_start(
    twin: str, postgres_twins: dict[str, Any]
) -> None:
    database = postgres_twins[twin]
    assert await settled(database.filled_to()) == 0
    assert await settled(database.fill(0, 300)) == 300
    with psycopg.connect(postgres_twins["url"], autocommit=True) as other:
        other.execute(b"DELETE FROM users WHERE id BETWEEN 100 AND 300")
        other.execute(b"UPDATE users SET version = -1 WHERE id = 7")
    with pytest.raises(
        DatabaseError, match=r"^user 200 is missing from the users table, which should hold users 1\.\.300$"
    ):
        await settled(database.fetch(200))
    with pytest.raises(DatabaseError, match=r"^user 7's row is not a valid user \(version is -1, below 0\)$"):
        await settled(database.fetch(7))
    rows = await settled(database.read_range(range(1, 120)))
    assert [record.id for record in rows] == [*range(1, 7), *range(8, 100)]
    assert [problem.user_id for problem in rows.problems] == [7, *range(100, 120)]
    with pytest.raises(
        DatabaseError, match=r"holds 99 rows \(ids 1\.\.99\), though demo_meta says it holds users 1\.\.300$"
    ):
        await settled(database.filled_to())


@pytest.mark.integration
@pytest.mark.postgres
def test_on_postgres_a_dropped_users_table_stops_the_start_up_and_is_not_recreated(
    twin: str, postgres_url: str
) -> None:
    argv = ["--redis-url", "memory://", "--database-url", postgres_url, "--db-size", "300", "--count", "100"]
    argv += ["--seed-mode", "none", "--db-latency", "0"]
    assert run_main(twin, argv, b"")[0] == 0
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute(b"DROP TABLE users")
    code, out, err = run_main(twin, argv, b"42\n")
    assert (code, out) == (1, [])
    [line] = [line for line in err if line.startswith("Cannot use the database")]
    assert line.endswith(f": the users table is missing, though demo_meta says it holds users 1..300. {HINT}")
    with psycopg.connect(postgres_url, autocommit=True) as other:
        assert other.execute(b"SELECT to_regclass('users')").fetchone() == (None,)
    code, out, _ = run_main(twin, [*argv, "--reset-db"], b"42\n")
    assert code == 0
    assert out[0].startswith(f"Stored: user-42 = {encode_record(user_record(42))} (")
