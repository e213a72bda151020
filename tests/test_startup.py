"""Start-up imports only what the first answer needs: a cache hit never loads Faker, the prompt or a driver.

Not timed (a loaded machine would make any bound flaky): each test runs the real script
under `python -X importtime`, which reports every module the process imports on stderr,
and reads the answer to what was typed. A hit on a real server must not import Faker (the
record vocabulary), prompt_toolkit (stdin is a pipe), tqdm (no progress bar), psycopg
(SQLite), fakeredis (a server is configured), python-dotenv (no .env), nor aiosqlite in
the sync twin. Creating users and `update` still draw the vocabulary, lazily, and give
the records they always gave.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from simulator.records import encode_record, user_record
from tests.conftest import PROJECT_ROOT

SCRIPTS = ["main.py", "main_async.py"]
# Only bounds a hang: a loaded 2-core machine may take seconds to start Python and import the demo.
RUN_SECONDS = 45
# Packages a cache hit never needs, whichever twin answers it.
NEVER_FOR_A_HIT = {"faker", "prompt_toolkit", "tqdm", "psycopg", "psycopg_pool", "fakeredis", "dotenv"}
NEVER_IN_THE_SYNC_TWIN = {"aiosqlite"}
# An end-to-end test runs once per script, each run an integration and e2e test (the private server, a real script).
ON_EACH_SCRIPT = pytest.mark.parametrize(
    "script", [pytest.param(script, marks=[pytest.mark.integration, pytest.mark.e2e]) for script in SCRIPTS]
)
# `import time:  self [us] | cumulative | imported package`, one line per module, nested ones indented.
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \| *(?P<module>[\w.]+)$")


def imported_packages(stderr: str) -> set[str]:
    """The top-level packages of every module the process imported, from its -X importtime report."""
    return {match["module"].partition(".")[0] for line in stderr.splitlines() if (match := IMPORT_LINE.match(line))}


def run_with_importtime(script: str, typed: str, cwd: Path, *args: str, **env: str) -> tuple[list[str], set[str]]:
    """Run the script with piped stdin; its answers (stdout lines) and the packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(PROJECT_ROOT / script), "--seed-mode", "none", *args],
        input=typed,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},  # clean_environ removed every demo setting and set DB_SIZE to ./users.db's
        timeout=RUN_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines(), imported_packages(done.stderr)


@pytest.fixture
def cached_42(redis_url: str) -> str:
    """The private server, holding user 42's record as the demo stores it."""
    with redis.Redis.from_url(redis_url) as client:
        client.set("user-42", encode_record(user_record(42)), ex=3600)
    return redis_url


def test_the_import_report_is_parsed() -> None:
    report = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       580 |      91743 |     redis\n"
        "import time:       229 |      49984 | faker.config\n"
        "Connected to Redis at redis://localhost:6379/0\n"
    )
    assert imported_packages(report) == {"redis", "faker"}


@ON_EACH_SCRIPT
def test_a_hit_needs_no_vocabulary_prompt_progress_bar_or_other_driver(
    script: str, cached_42: str, tmp_path: Path
) -> None:
    answers, imported = run_with_importtime(script, "42\nq\n", tmp_path, REDIS_URL=cached_42)
    assert len(answers) == 1
    assert answers[0].startswith(f"Found in cache: user-42 = {encode_record(user_record(42))} (")
    assert {"redis", "simulator", "cli", "config"} <= imported  # the report is there: an empty one proves nothing
    unwanted = NEVER_FOR_A_HIT | (NEVER_IN_THE_SYNC_TWIN if script == "main.py" else set())
    assert imported & unwanted == set()


@ON_EACH_SCRIPT
def test_an_update_draws_the_vocabulary_when_it_needs_it(script: str, cached_42: str, tmp_path: Path) -> None:
    answers, imported = run_with_importtime(
        script, "42\nupdate 42\nq\n", tmp_path, "--db-latency", "0", REDIS_URL=cached_42
    )
    assert answers[0].startswith("Found in cache: user-42 = ")
    assert user_record(42, 1).email in answers[1]  # the same new email as ever: the words did not change
    assert "faker" in imported


@ON_EACH_SCRIPT
def test_creating_users_draws_the_vocabulary_and_gives_the_same_records(
    script: str, redis_url: str, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh.db"
    answers, imported = run_with_importtime(
        script,
        "7\nq\n",
        tmp_path,
        "--db-latency",
        "0",
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{fresh}",
        DB_SIZE="20",
        SEED_COUNT="0",
    )
    assert answers[0].startswith(f"Stored: user-7 = {encode_record(user_record(7))} (")
    assert "faker" in imported
    with sqlite3.connect(fresh) as connection:
        rows = connection.execute("SELECT id, name, email, city, job, created_at FROM users ORDER BY id").fetchall()
    connection.close()
    expected = [user_record(user_id) for user_id in range(1, 21)]
    assert rows == [(r.id, r.name, r.email, r.city, r.job, r.created_at) for r in expected]
