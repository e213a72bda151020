"""What the user types and reads: a bad .env, zero-padded ids, singular counts, articles, answers that fit a
narrow terminal, a damaged SQLite file, and no driver log lines on stderr."""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from cli.answers import render_answer
from cli.commands import Invalid, Lookup, Update, parse_command, parse_user_id
from cli.messages import PRIVATE_CACHE
from cli.text import text_columns
from config.settings import MAX_USER_ID
from simulator.records import encode_record, user_record
from simulator.results import LookupResult, Source
from tests.conftest import PROJECT_ROOT
from tests.postgres import LocalPostgres
from tests.test_cli import run_main
from tests.test_e2e import EXPECT_SECONDS, assert_clean, run_script, start_script, stderr_lines
from tests.twins import wait_until

SCRIPTS = ["main.py", "main_async.py"]
MEMORY = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- 1. a ./.env that is not a readable regular file ---


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_dotenv_that_is_not_a_regular_file_is_a_configuration_error(script: str, kind: str, tmp_path: Path) -> None:
    if kind == "directory":
        (tmp_path / ".env").mkdir()
    else:
        os.mkfifo(tmp_path / ".env")  # never opened: reading it would wait for a writer
    done = run_script(script, [], b"42\n", tmp_path, REDIS_URL="memory://", SEED_MODE="none", DB_LATENCY_SECONDS="0")
    assert done.returncode == 2
    assert done.stdout == b""
    what = "a directory" if kind == "directory" else "not a regular file"
    assert stderr_lines(done.stderr) == [
        f"Configuration error: .env is not valid: expected a readable .env file (it is {what})"
    ]


def test_a_missing_dotenv_is_still_no_error(twin: str) -> None:
    assert not os.path.lexists(".env")
    code, out, _ = run_main(twin, MEMORY, b"42\n")
    assert code == 0
    assert out[0].startswith("Stored: user-42 = ")


# --- 2. a .env line python-dotenv cannot parse ---


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("SEED_MODE=none\nFOO BAR\n", 2),
        ("# settings\nSEED_MODE=none\nREDIS_PASSWORD='unterminated\nDB_LATENCY_SECONDS=0\n", 3),
        ("=nameless\n", 1),
        ('SEED_MODE="none" trailing words\n', 1),
    ],
)
def test_a_dotenv_line_that_cannot_be_read_is_one_line_of_ours(
    script: str, text: str, line: int, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(text)
    done = run_script(script, [], b"42\n", tmp_path, REDIS_URL="memory://", DB_LATENCY_SECONDS="0")
    assert done.returncode == 2
    assert done.stdout == b""
    assert stderr_lines(done.stderr) == [
        f"Configuration error: .env line {line} cannot be read: expected NAME=value"
    ]  # and nothing of python-dotenv's own ("python-dotenv could not parse statement ...")


def test_the_settings_page_shows_the_line_a_bad_dotenv_gets(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SEED_MODE=none\nFOO BAR\n")
    _, _, err = run_main("sync", MEMORY, b"")
    assert f"`{err[0]}`" in (PROJECT_ROOT / "docs" / "settings.md").read_text()


def test_a_chosen_env_file_with_a_bad_line_is_named_as_given(twin: str, tmp_path: Path) -> None:
    (tmp_path / "demo.env").write_text("SEED_MODE=none\n\nnot a setting\n")
    code, out, err = run_main(twin, [*MEMORY, "--env-file", "demo.env"], b"42\n")
    assert code == 2
    assert out == []
    assert err == ["Configuration error: --env-file='demo.env' line 3 cannot be read: expected NAME=value"]


def test_a_good_dotenv_is_still_read(twin: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# a comment\nexport SEED_MODE=none\nREDIS_URL='memory://'\nDB_LATENCY_SECONDS=0\n")
    code, out, err = run_main(twin, [], b"42\n")
    assert code == 0
    assert err[0] == "Using the embedded in-memory Redis (fakeredis), as REDIS_URL=memory:// asks: " + PRIVATE_CACHE
    assert out[0].startswith("Stored: user-42 = ")


# --- 3. zero-padded ids ---

PADDED_42 = "0" * 21 + "42"  # 23 digits


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (PADDED_42, Lookup(42)),
        ("042", Lookup(42)),
        (f"user-{PADDED_42}", Lookup(42)),
        (f"update {PADDED_42}", Update(42)),
        ("0" * 10_000 + "42", Lookup(42)),
        ("0" * 30 + str(MAX_USER_ID), Lookup(MAX_USER_ID)),
    ],
)
def test_leading_zeros_never_change_an_id(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    "text",
    [
        "0" * 23,
        "0" * 20 + str(MAX_USER_ID + 1),
        "0" * 5 + "1" + "0" * 30,
        "9" * 10_000,  # beyond int()'s 4,300-digit limit: refused, never a ValueError
        "1" + "0" * 1_000_000,  # refused by its length, not by converting a million digits
    ],
)
def test_an_id_too_large_after_its_zeros_is_refused(text: str) -> None:
    assert parse_user_id(text) is None
    command = parse_command(text)
    assert isinstance(command, Invalid)
    assert command.message.startswith("User id out of range: ")


def test_a_zero_padded_id_is_that_user_in_both_twins(twin: str) -> None:
    code, out, _ = run_main(twin, [*MEMORY, "--json"], f"{PADDED_42}\n".encode())
    assert code == 0
    [answer] = out
    assert json.loads(answer)["key"] == "user-42"


# --- 4. wording ---


def test_a_count_of_one_is_singular(twin: str) -> None:
    code, out, _ = run_main(twin, MEMORY, b"clear\n42\nclear\n42\n43\nclear\n")
    assert code == 0
    assert [line for line in out if line.startswith("Cleared ")] == [
        "Cleared 0 demo keys (user-<id>: records, tombstones, leases); no other key was touched.",
        "Cleared 1 demo key (user-<id>: records, tombstones, leases); no other key was touched.",
        "Cleared 2 demo keys (user-<id>: records, tombstones, leases); no other key was touched.",
    ]


@pytest.mark.parametrize(
    ("line", "start"),
    [
        ("update", 'Not an update command: "update". Type update <id>'),
        ("update abc", 'Not an update command: "update abc". Type update <id>'),
        ("ttl", 'Not a ttl command: "ttl". Type ttl <id>'),
        ("stampede x", 'Not a stampede command: "stampede x".'),
    ],
)
def test_a_verb_starting_with_a_vowel_takes_an(line: str, start: str) -> None:
    command = parse_command(line)
    assert isinstance(command, Invalid)
    assert command.message.startswith(start)


def test_the_prompt_says_not_an_update_command(twin: str) -> None:
    code, out, _ = run_main(twin, MEMORY, b"update 0\n")
    assert code == 0
    assert out == ['Not an update command: "update 0". Type update <id> (ids 1 to 1,000,000,000).']


# --- 5. answers that fit any width from 20 columns ---

ASCII_RECORD = user_record(42)
WIDE_RECORD = replace(user_record(42), name="山田太郎" * 6, city="東京都千代田区", job="ソフトウェア開発者")


def answers(value: str) -> list[tuple[LookupResult, str]]:
    """Each kind of answer that carries a record, with what it starts with."""
    record = WIDE_RECORD if "山田" in value else ASCII_RECORD
    hit = LookupResult(42, "user-42", Source.CACHE, record, value, 0.0005)
    stored = replace(hit, source=Source.DATABASE, stored=True, elapsed_seconds=2.007)
    shared = replace(stored, shared=True)
    read = replace(hit, source=Source.DATABASE)
    degraded = replace(hit, source=Source.DATABASE, degraded=True)
    return [
        (hit, "Found in cache: user-42"),
        (stored, "Stored: user-42"),
        (shared, "Stored: user-42"),
        (read, "Read from the database (not cached): user-42"),
        (degraded, "From the database, cache unavailable: user-42"),
    ]


@pytest.mark.parametrize("value", [encode_record(ASCII_RECORD), encode_record(WIDE_RECORD)], ids=["ascii", "wide"])
def test_an_answer_fits_every_width_from_20_and_starts_with_its_source_and_key(value: str) -> None:
    for answer, start in answers(value):
        whole = render_answer(answer, json_output=False)
        took = whole[whole.rindex(" (") :]
        for width in range(20, 201):
            line = render_answer(answer, json_output=False, width=width)
            assert text_columns(line) <= width, (width, line)
            assert line.startswith(start[:width]), (width, line)
            if text_columns(f"{start} = ...{took}") <= width:  # room for the source, a cut record and the timing
                assert line.endswith(took), (width, line)
            if text_columns(whole) <= width:
                assert line == whole


def test_at_20_columns_a_hit_is_its_source_and_as_much_of_its_key_as_fits() -> None:
    hit, _ = answers(encode_record(ASCII_RECORD))[0]
    assert render_answer(hit, json_output=False, width=20) == "Found in cache: user"
    assert render_answer(hit, json_output=False, width=23) == "Found in cache: user-42"
    assert render_answer(hit, json_output=False, width=30) == "Found in cache: user-42 = {..."
    using = (PROJECT_ROOT / "docs" / "using.md").read_text()
    assert "`Found in cache: user-42 = {...` on\n  30 columns, `Found in cache: user` on 20." in using


# --- 6. a damaged SQLite file is not "not a SQLite database" ---


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_truncated_sqlite_file_is_called_damaged_with_a_hint(script: str, tmp_path: Path) -> None:
    database = tmp_path / "users.db"
    os.truncate(database, database.stat().st_size // 2)
    done = run_script(script, [], b"42\n", tmp_path, REDIS_URL="memory://", SEED_MODE="none", DB_LATENCY_SECONDS="0")
    assert done.returncode == 1
    assert done.stdout == b""
    assert stderr_lines(done.stderr)[-1] == (
        f"Cannot use the database, SQLite file {database}: the SQLite file is damaged (truncated or corrupt). "
        "Hint: restore it from a copy, or delete it and the next run creates it again."
    )
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_random_bytes_are_still_not_a_sqlite_database(script: str, tmp_path: Path) -> None:
    database = tmp_path / "users.db"
    database.write_bytes(random.Random(6).randbytes(64 * 1024))
    done = run_script(script, [], b"42\n", tmp_path, REDIS_URL="memory://", SEED_MODE="none", DB_LATENCY_SECONDS="0")
    assert done.returncode == 1
    assert stderr_lines(done.stderr)[-1] == (
        f"Cannot use the database, SQLite file {database}: the file is not a SQLite database."
    )


# --- 7. PostgreSQL going away mid-run: the demo's lines, none of psycopg's ---


def connections_to(admin: psycopg.Connection[tuple[int]], name: str) -> int:
    """How many sessions the server holds on database `name`."""
    row = admin.execute(b"SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
    return row[0] if row else 0


# Every line the demo itself writes on stderr in this run, by how it starts.
DEMO_NOTES = re.compile(
    r"Using the embedded in-memory Redis |Database: PostgreSQL at |Keys user-<id>|Stats: |  hit |  miss "
)


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.parametrize("script", SCRIPTS)
def test_postgres_going_away_mid_run_prints_no_driver_log_line(
    script: str, postgres_server: LocalPostgres, postgres_url: str, tmp_path: Path
) -> None:
    name = urlsplit(postgres_url).path.lstrip("/")
    argv = [
        *MEMORY, "--database-url", postgres_url, "--db-size", "500", "--count", "100", "--db-timeout", "1",
    ]  # fmt: skip
    demo = start_script(script, *argv, cwd=tmp_path)
    assert demo.stdin is not None
    assert demo.stdout is not None
    try:
        demo.stdin.write(b"42\n")
        demo.stdin.flush()
        assert demo.stdout.readline().startswith(b"Stored: user-42 = ")
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            # The server stays up for the other tests: only this test's database goes away.
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false".encode())
            admin.execute(b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            wait_until(lambda: not connections_to(admin, name), "the demo's connections to end")
        out, err = demo.communicate(b"43\n44\n45\nq\n", timeout=EXPECT_SECONDS)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true".encode())
    assert demo.returncode == 0
    answers = out.decode().splitlines()
    assert len(answers) == 3
    assert all(answer.startswith("Database error: ") for answer in answers), answers
    lines = stderr_lines(err)
    assert [line for line in lines if not DEMO_NOTES.match(line)] == [], lines
    assert_clean(err)
