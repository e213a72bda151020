"""Cross-process truth: real processes of either twin share one Redis and one database file.

After `update 42` in one process, the other's next lookup of 42 that misses shows the new
record, at once (the update deleted the key both read through); a process started later
reads it too: the update is kept across runs. Every pairing of the twins.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.records import user_record
from tests.test_e2e import assert_clean, start_script

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SCRIPTS = ("main.py", "main_async.py")
ARGUMENTS = ("--seed-mode", "none", "--db-latency", "0.01", "--json")


class Session:
    """One running demo: a line in, its JSON answer out (each answer is printed and flushed as it comes)."""

    def __init__(self, script: str, redis_url: str, cwd: Path) -> None:
        self.process = start_script(script, "--redis-url", redis_url, *ARGUMENTS, cwd=cwd)

    def ask(self, line: str) -> dict[str, object]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        answer: dict[str, object] = json.loads(self.process.stdout.readline())
        return answer

    def quit(self) -> None:
        _, err = self.process.communicate(b"q\n", timeout=30)
        assert self.process.returncode == 0, err
        assert_clean(err)


def email(answer: dict[str, object]) -> str:
    value = answer["value"]
    assert isinstance(value, dict)
    return str(value["email"])


@pytest.mark.parametrize(("writer", "reader"), [(a, b) for a in SCRIPTS for b in SCRIPTS])
def test_an_update_in_one_process_is_what_every_other_process_reads_next_and_after_a_restart(
    writer: str, reader: str, redis_url: str, tmp_path: Path
) -> None:
    first, second = Session(writer, redis_url, tmp_path), Session(reader, redis_url, tmp_path)
    try:
        assert second.ask("42")["source"] == "database"
        assert second.ask("42")["source"] == "cache"  # the reader now holds version 0 in Redis

        updated = first.ask("update 42")
        assert updated["invalidated"] is True

        after = second.ask("42")
        assert after["source"] == "database"  # the writer deleted the key both read through
        assert email(after) == user_record(42, 1).email
        assert first.ask("42")["source"] == "cache"  # and the new record is now what is cached
    finally:
        first.quit()
        second.quit()

    restarted = Session(reader, redis_url, tmp_path)
    try:
        assert restarted.ask("del 42")["existed"] is True
        again = restarted.ask("42")
        assert (again["source"], email(again)) == ("database", user_record(42, 1).email)  # kept in the database
    finally:
        restarted.quit()


def test_the_database_file_is_shared_and_kept_without_any_redis(tmp_path: Path) -> None:
    """Two runs on the embedded Redis (nothing shared in memory): only the database file carries the update."""
    writer = Session("main.py", "memory://", tmp_path)
    try:
        assert writer.ask("update 7")["invalidated"] is True
    finally:
        writer.quit()
    for twin in SCRIPTS:
        reader = Session(twin, "memory://", tmp_path)
        try:
            answer = reader.ask("7")
            assert (answer["source"], email(answer)) == ("database", user_record(7, 1).email)
        finally:
            reader.quit()
