"""Both entry points driven in-process through `main(argv, stdin=..., stdout=..., stderr=...)`."""

from __future__ import annotations

import errno
import io
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import main
import main_async
from cli.console import Console
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.policy import demo_key
from simulator.records import UserRecord, encode_record, user_record
from simulator.seeding import SeedProgress
from tests.twins import EVENT_WAIT_SECONDS, assert_ttl_given, await_until, watch_redis

TWINS = {"sync": main, "async": main_async}


def run_main(twin: str, argv: list[str], typed: bytes) -> tuple[int, list[str], list[str]]:
    """Run one twin with `typed` as stdin; returns the exit code and the stdout and stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def value_of(user_id: int) -> str:
    return encode_record(user_record(user_id))


@pytest.mark.integration
def test_a_session_of_hits_misses_bad_input_and_q(twin: str, redis_url: str, server: redis.Redis) -> None:
    server.set("user-42", value_of(42), ex=60)
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.01"]
    started = time.time()
    code, out, err = run_main(twin, argv, b"42\n\n5000\nabc\nq\n42\n")
    ended = time.time()
    assert code == 0
    # The sync twin answers in order; the async twin as each lookup completes.
    expected = [
        f"Found in cache: user-42 = {value_of(42)} (",
        f"Stored: user-5000 = {value_of(5000)} (",
        'Not a user id or command: "abc". Type a user id from 1 to 1,000,000,000 (42 or user-42), help, or q.',
    ]
    assert len(out) == 3  # nothing after q, and no prompt text when stdin is not a terminal
    for line in expected:
        assert sum(answer.startswith(line) for answer in out) == 1
    if twin == "sync":
        assert [answer.startswith(line) for answer, line in zip(out, expected, strict=True)] == [True] * 3
    assert err[0] == f"Connected to Redis at {redis_url}"
    assert_ttl_given(server, "user-5000", started, ended, 3240, 3960)  # 3600 s, jittered by up to 10% either way


@pytest.mark.integration
def test_typing_the_same_id_again_is_a_hit(redis_url: str) -> None:
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.01"]
    _, out, _ = run_main("sync", argv, b"user-5000\n5000\n")
    assert [line.split(":")[0] for line in out] == ["Stored", "Found in cache"]


@pytest.mark.integration
def test_end_of_input_quits_with_code_zero(twin: str, redis_url: str) -> None:
    code, out, _ = run_main(twin, ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0"], b"7")
    assert code == 0
    assert out[0].startswith("Stored: user-7 = ")


@pytest.mark.integration
def test_json_mode_prints_one_object_per_answer(twin: str, redis_url: str) -> None:
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0", "--json"]
    code, out, _ = run_main(twin, argv, b"8\nnope\n")
    answers = sorted((json.loads(line) for line in out), key=lambda answer: "error" in answer)
    assert code == 0
    assert len(answers) == 2
    assert answers[0] == {
        "id": 8,
        "key": "user-8",
        "source": "database",
        "value": json.loads(value_of(8)),
        "elapsed_ms": answers[0]["elapsed_ms"],
        "shared": False,
        "degraded": False,
    }
    assert isinstance(answers[0]["elapsed_ms"], float)
    assert answers[1]["error"].startswith('Not a user id or command: "nope"')


class WatchedOutput(io.StringIO):
    """An stdout that says (`seen`, an event) once a line starting with `watched` has been written."""

    def __init__(self, watched: str) -> None:
        super().__init__()
        self.watched = watched
        self.seen = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if f"\n{self.watched}" in f"\n{self.getvalue()}":
            self.seen.set()
        return written


@pytest.mark.integration
def test_the_async_twin_answers_a_hit_typed_after_a_miss_first(
    redis_url: str, server: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("user-42", value_of(42), ex=60)
    out = WatchedOutput("Found in cache: user-42")
    read = AsyncDatabase.fetch

    async def fetch_once_the_hit_is_printed(database: AsyncDatabase, user_id: int) -> UserRecord | None:
        if user_id == 5000:  # the miss's database read is held until the hit typed after it is out:
            await await_until(out.seen.is_set, "the hit to be printed")  # it cannot come first by luck
        return await read(database, user_id)

    monkeypatch.setattr(AsyncDatabase, "fetch", fetch_once_the_hit_is_printed)
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.3"]
    started = time.perf_counter()
    code = main_async.main(argv, stdin=io.BytesIO(b"5000\n42\nq\n"), stdout=out, stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    assert code == 0
    assert lines[0].startswith("Found in cache: user-42")  # answered while the miss was still in flight
    assert lines[1].startswith("Stored: user-5000")  # q waited for the lookup in flight
    assert len(lines) == 2
    assert time.perf_counter() - started >= 0.3  # the miss took the database latency: a lower bound


@pytest.mark.integration
def test_the_sync_twin_answers_in_order(redis_url: str, server: redis.Redis) -> None:
    server.set("user-42", value_of(42), ex=60)
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.05"]
    _, out, _ = run_main("sync", argv, b"5000\n42\nq\n")
    assert [line.split(":")[0] for line in out] == ["Stored", "Found in cache"]


@pytest.mark.integration
def demo_keys(server: redis.Redis) -> int:
    """The keys a seed writes (user-<id>), without the marker that ties the namespace to its database."""
    return sum(1 for key in server.scan_iter(count=1000) if demo_key(key))


@pytest.mark.parametrize(
    ("twin_name", "mode"),
    [
        ("sync", "sequential"),
        ("sync", "pipelined"),
        ("sync", "threaded"),
        ("async", "pipelined"),
        ("async", "sequential"),
    ],
)
def test_every_seed_mode_seeds_and_reports_measured_numbers(
    twin_name: str, mode: str, redis_url: str, server: redis.Redis
) -> None:
    argv = ["--redis-url", redis_url, "--seed-mode", mode, "--count", "300", "--batch-size", "50"]
    code, _, err = run_main(twin_name, argv, b"")
    report = [line for line in err if line.startswith(("Seeded", "Seeding stopped"))]
    assert code == 0
    assert len(report) == 1
    if report[0].startswith("Seeded"):
        assert report[0].startswith("Seeded 300 users in ")
        assert report[0].endswith(f"records/s, {mode}).")
        assert demo_keys(server) == 300
    else:  # end of input came first and stopped the background seed: what was written stays
        written = int(report[0].split()[2].replace(",", ""))
        assert demo_keys(server) == written


@pytest.mark.integration
def test_quitting_stops_a_background_seed_and_says_how_far_it_got(
    twin: str, redis_url: str, server: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    mode = "threaded" if twin == "sync" else "pipelined"
    # 10,000 batches of one record (the whole test database), and every batch after the
    # first holds its database read until q has asked the seed to stop: still running when
    # q arrives, whatever the scheduler does.
    stop_asked = threading.Event()
    request_stop = SeedProgress.request_stop
    read_range, async_read_range = Database.read_range, AsyncDatabase.read_range

    def request_stop_and_tell(progress: SeedProgress) -> None:
        request_stop(progress)
        stop_asked.set()

    def read_once_stop_is_asked(database: Database, ids: range) -> list[UserRecord]:
        if ids.start > 1:
            assert stop_asked.wait(EVENT_WAIT_SECONDS), "q never stopped the seed"
        return read_range(database, ids)

    async def async_read_once_stop_is_asked(database: AsyncDatabase, ids: range) -> list[UserRecord]:
        if ids.start > 1:
            await await_until(stop_asked.is_set, "q to stop the seed")
        return await async_read_range(database, ids)

    monkeypatch.setattr(SeedProgress, "request_stop", request_stop_and_tell)
    monkeypatch.setattr(Database, "read_range", read_once_stop_is_asked)
    monkeypatch.setattr(AsyncDatabase, "read_range", async_read_once_stop_is_asked)
    argv = ["--redis-url", redis_url, "--seed-mode", mode, "--count", "10000", "--batch-size", "1"]
    code, _, err = run_main(twin, argv, b"q\n")
    [report] = [line for line in err if line.startswith("Seeding stopped")]
    written = int(report.split()[2].replace(",", ""))
    assert code == 0
    assert written < 10_000  # none at all when q came before the first batch: also a stopped seed
    assert demo_keys(server) == written  # stopped between batches: nothing half-written, nothing lost
    assert report.endswith("they stay in the cache.")


@pytest.mark.parametrize(
    ("argv", "environ", "fragment"),
    [
        (["--count", "abc"], {}, "--count='abc' is not valid: expected a whole number"),
        ([], {"REDIS_PORT": "abc"}, "REDIS_PORT='abc' is not valid"),
        ([], {"DB_LATENCY_SECONDS": "-1"}, "DB_LATENCY_SECONDS='-1' is not valid"),
        (["--seed-mode", "warp"], {}, "--seed-mode='warp' is not valid: expected one of"),
        (["--redis-url", "redis://u:p@ss@h/0"], {}, "--redis-url='redis://u:****@h/0' is not valid: percent-encode"),
        (["--nope"], {}, "error: unrecognized arguments: --nope"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line(
    twin: str,
    argv: list[str],
    environ: dict[str, str],
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_main(twin, argv, b"")
    argparse_err = capsys.readouterr().err.splitlines()
    lines = err + argparse_err
    assert code == 2
    assert out == []
    assert len(lines) == 1
    assert fragment in lines[0]
    assert "p@ss" not in lines[0]


def test_help_exits_0(twin: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run_main(twin, ["--help"], b"")
    assert code == 0
    help_text = capsys.readouterr().out
    assert "--redis-url" in help_text
    assert "--seed-mode" in help_text


@pytest.mark.integration
def test_an_unreachable_configured_server_exits_1_quickly_with_the_password_masked(
    twin: str, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = watch_redis(monkeypatch)
    code, out, err = run_main(twin, ["--redis-url", f"redis://app:hunter2@127.0.0.1:{free_port}/0"], b"42\n")
    assert code == 1
    assert out == []
    assert len(err) == 1
    assert "redis://app:****@127.0.0.1" in err[0]
    assert "hunter2" not in err[0]
    # Quickly, counted rather than timed: a refusal costs no time, retries with backoff do.
    assert traffic.connects in ([f"127.0.0.1:{free_port}"], [f"127.0.0.1:{free_port}"] * 2)


def test_the_embedded_redis_runs_the_whole_demo(twin: str) -> None:
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]
    code, out, err = run_main(twin, argv, b"3\n3\n")
    assert code == 0
    assert out[0].startswith("Stored: user-3")
    # the async twin may run the second lookup while the first is still in flight: it shares that read
    assert out[1].startswith("Found in cache: user-3") or out[1].endswith("shared another lookup's database read)")
    assert "embedded in-memory Redis" in err[0]


def test_a_corrupt_entry_is_one_warning_and_the_answer_still_comes(twin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import fakeredis

    server = fakeredis.FakeServer()
    fakeredis.FakeRedis(server=server).set("user-3", b"\xff garbage")
    monkeypatch.setattr(fakeredis, "FakeServer", lambda: server)
    code, out, err = run_main(twin, ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"], b"3\n")
    assert code == 0
    assert out[0].startswith("Stored: user-3")
    assert "Warning: user-3: ignored a corrupt cache entry (its bytes are not UTF-8); repaired it" in err


@pytest.mark.integration
def test_a_flood_of_concurrent_lookups_never_exhausts_the_connection_pool(redis_url: str) -> None:
    typed = "".join(f"{user_id}\n" for user_id in range(1, 1501)).encode()
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.05"]
    code, out, err = run_main("async", argv, typed)
    assert code == 0
    assert len(out) == 1500
    assert all(line.startswith("Stored: user-") for line in out), [
        line for line in out if not line.startswith("Stored")
    ][:3]
    assert not [line for line in err if "error" in line.lower()]


@pytest.mark.integration
def test_the_cache_commands_in_order_in_the_sync_twin(redis_url: str, server: redis.Redis) -> None:
    server.set("not-ours", "keep")
    typed = (
        b"stampede 4242 20\nttl 4242\ndel 4242\ndel 4242\nttl 4242\nupdate 4242\n4242\n2000000\n2000000\nclear\nstats\n"
    )
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.05"]
    code, out, err = run_main("sync", argv, typed)
    assert code == 0
    stampede = re.fullmatch(
        r"Stampede on user-4242: database reads: 1 of 20 \((\d+) shared a read; answers: (?:(\d+) cache, )?"
        r"(\d+) database\) in \d+ ms",
        out[0],
    )
    assert stampede is not None, out[0]
    shared, hits = int(stampede[1]), int(stampede[2] or 0)  # threads that came after the read hit the cache
    assert shared + hits == 19
    assert out[1].startswith("user-4242: a record, expires in ")
    assert out[2] == "Deleted user-4242: the next lookup reads the database."
    assert out[3] == "user-4242 was not in the cache."
    assert out[4] == "user-4242: not in the cache"
    assert out[5].startswith("Updated user-4242 in the database (email now ")
    assert "+v1@" in out[5]
    assert out[6].startswith("Stored: user-4242 = ")
    assert "+v1@" in out[6]
    assert out[7].startswith("Not found: user-2000000 is not in the database; cached as not found (")
    assert out[8].startswith("Not found (cached): user-2000000 is not in the database (")
    assert out[9] == "Cleared 2 demo keys (user-<id>: records, tombstones, leases); no other key was touched."
    assert out[10] == (
        f"Stats: 23 lookups: {1 + hits} hits, {22 - hits} misses (hit ratio {(1 + hits) / 23:.1%}), 2 not found; "
        f"3 database reads; {shared} lookups saved by stampede protection; 0 answered without the cache"
    )
    assert server.get("not-ours") == b"keep"
    assert [line for line in err if line.startswith("Stats: ")] == [out[10]]  # the same summary on exit


@pytest.mark.integration
@pytest.mark.parametrize("typed", [b"stampede 9000 30\n", b"stampede user-9000 30\n"])
def test_a_stampede_in_the_async_twin_takes_one_database_read(typed: bytes, redis_url: str) -> None:
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.1"]
    code, out, _ = run_main("async", argv, typed)
    assert code == 0
    assert out == [out[0]]
    stampede = re.fullmatch(
        r"Stampede on user-9000: database reads: 1 of 30 \((\d+) shared a read; answers: (?:(\d+) cache, )?"
        r"(\d+) database\) in \d+ ms",
        out[0],
    )
    assert stampede is not None, out[0]
    # Every other task shared the one read, or (its GET queued behind the pool's new connections on a
    # loaded machine) came after it and hit the cache: how many of each is the scheduler's, the sum is not.
    shared, hits = int(stampede[1]), int(stampede[2] or 0)
    assert shared + hits == 29
    assert int(stampede[3]) == 30 - hits


@pytest.mark.integration
def test_json_answers_say_which_source_answered(twin: str, redis_url: str, server: redis.Redis) -> None:
    server.set("user-1", value_of(1), ex=60)
    server.set("user-3000000", '{"id":3000000,"not_found":true}', ex=60)
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0", "--json"]
    _, out, _ = run_main(twin, argv, b"1\n2\n3000000\n4000000\n")
    sources = sorted(json.loads(line)["source"] for line in out)
    assert sources == ["cache", "database", "negative-cache", "not-found"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--count", "2000", "--db-size", "1000"], "--count=2,000 is more than --db-size=1,000"),
        (["--ttl-jitter", "0.9"], "--ttl-jitter='0.9' is not valid: expected a number from 0 to 0.5"),
        (["--negative-ttl", "0"], "--negative-ttl='0' is not valid"),
    ],
)
def test_bad_cache_settings_exit_2(twin: str, argv: list[str], fragment: str) -> None:
    code, _, err = run_main(twin, argv, b"")
    assert code == 2
    assert len(err) == 1
    assert fragment in err[0]


def test_an_unexpected_error_is_one_line_and_the_prompt_goes_on(twin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import simulate_cache_db_flow as shells

    def broken(*arguments: object) -> None:
        raise RuntimeError("a bug in a lookup")

    async def broken_async(*arguments: object) -> None:
        raise RuntimeError("a bug in a lookup")

    monkeypatch.setattr(shells.CacheAside, "lookup", broken)
    monkeypatch.setattr(shells.AsyncCacheAside, "lookup", broken_async)
    code, out, _ = run_main(twin, ["--redis-url", "memory://", "--seed-mode", "none"], b"5\nhelp\n")
    assert code == 0
    assert "Unexpected error: RuntimeError: a bug in a lookup" in out
    assert "Commands:" in out


@pytest.mark.parametrize(
    "argv", [["--redis=redis://:hunter2@h/0"], ["--redis-ulr", "redis://u:hunter2@h/0"], ["x", "redis://:hunter2@h"]]
)
def test_a_mistyped_flag_never_echoes_a_password(
    twin: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(twin, argv, b"")
    printed = capsys.readouterr()
    assert code == 2
    assert "hunter2" not in printed.out + printed.err + "".join(out + err)
    assert ":****@" in printed.err


def test_settings_never_show_the_password_in_their_repr() -> None:
    from cli.arguments import parse_command_line
    from config.settings import Settings

    assert "hunter2" not in repr(Settings(redis_url="redis://:hunter2@h/0"))
    assert "hunter2" not in repr(parse_command_line(["--redis-url", "redis://:hunter2@h/0"], "sync"))


def test_the_sync_seed_mode_in_the_async_twin_says_what_to_use_instead() -> None:
    code, _, err = run_main("async", ["--seed-mode", "threaded"], b"")
    assert code == 2
    assert err == [
        "Configuration error: --seed-mode='threaded' is not valid: expected one of pipelined, sequential, none "
        "(threaded is main.py's; main_async.py seeds in the background with pipelined)"
    ]


# --- the database ---


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///no/such/dir/users.db", "does not exist"),
        ("sqlite:///.", "names a directory"),
        ("mysql://localhost/db", "expected sqlite:///file.db"),
        ("sqlite://", "expected a file: sqlite:///users.db"),
    ],
)
def test_a_database_url_the_demo_cannot_use_is_one_line_and_exit_2(twin: str, url: str, problem: str) -> None:
    code, out, err = run_main(twin, ["--redis-url", "memory://", "--database-url", url], b"42\n")
    assert code == 2
    assert out == []
    assert len(err) == 1
    assert err[0].startswith("Configuration error: --database-url")
    assert problem in err[0]


def test_a_file_that_is_not_a_database_is_one_line_and_exit_1(twin: str, tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_bytes(b"these are not the rows you are looking for" * 100)
    code, out, err = run_main(twin, ["--redis-url", "memory://", "--database-url", "sqlite:///notes.db"], b"42\n")
    assert code == 1
    assert out == []
    assert err[-1].startswith("Cannot use the database, SQLite file ")
    assert err[-1].endswith("the file is not a SQLite database.")
    assert (tmp_path / "notes.db").read_bytes().startswith(b"these are not")  # nothing clobbered


def test_the_start_up_says_where_the_database_is_and_a_reset_restores_it(twin: str, tmp_path: Path) -> None:
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0", "--json"]
    code, out, err = run_main(twin, argv, b"update 42\n")
    assert code == 0
    assert f"Database: SQLite file {tmp_path / 'users.db'}, users 1..10,000." in err
    assert json.loads(out[0])["value"]["version"] == 1
    code, out, err = run_main(twin, [*argv, "--reset-db"], b"42\n")
    assert code == 0
    assert any(line.startswith("Database: SQLite file ") and "reset to its first-run content" in line for line in err)
    assert "Removed 0 cached keys, so the cache cannot contradict the reset database." in err
    assert json.loads(out[0])["value"] == json.loads(encode_record(user_record(42)))  # version 0 again


def test_a_new_database_is_created_with_db_size_users_and_a_second_run_reuses_it(twin: str, tmp_path: Path) -> None:
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--database-url", "sqlite:///fresh.db"]
    code, _, err = run_main(twin, [*argv, "--db-size", "1200"], b"")
    assert code == 0
    [created] = [line for line in err if line.startswith("Database: ")]
    assert created.startswith(f"Database: SQLite file {tmp_path / 'fresh.db'}, users 1..1,200 (created in ")
    code, _, err = run_main(twin, [*argv, "--db-size", "1200"], b"")
    assert f"Database: SQLite file {tmp_path / 'fresh.db'}, users 1..1,200." in err  # nothing to create again


# --- what the user typed, and where the answers go ---


def test_a_control_character_inside_a_command_is_no_separator(twin: str) -> None:
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]
    code, out, _ = run_main(twin, argv, b"update\x1f42\n\x1f42\n\xc2\x8542\nupdate\x0b42\n")
    assert code == 0
    assert sorted(out) == sorted(
        f'Not a user id or command: "{echo}". Type a user id from 1 to 1,000,000,000 (42 or user-42), help, or q.'
        for echo in ("update\\x1f42", "\\x1f42", "\\x8542", "update\\x0b42")
    )  # neither an update nor a lookup of user 42


class FailingStream(io.StringIO):
    """A stream whose writes fail as a full disk or a closed pipe makes them fail."""

    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


def run_with_streams(twin: str, typed: bytes, stdout: io.StringIO, stderr: io.StringIO) -> int:
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]
    return TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=stdout, stderr=stderr)


def test_a_failed_stdout_ends_with_one_line_and_exit_code_3(twin: str) -> None:
    err = io.StringIO()
    code = run_with_streams(twin, b"1\n2\n", FailingStream(OSError(errno.ENOSPC, "No space left on device")), err)
    lines = err.getvalue().splitlines()
    assert code == 3
    assert lines[-1] == "Could not write the answers to stdout: No space left on device."
    assert any(line.startswith("Stats: ") for line in lines[:-1])  # the summary still comes, before it


def test_a_reader_that_left_is_no_failure(twin: str) -> None:
    err = io.StringIO()
    code = run_with_streams(twin, b"1\n2\n", FailingStream(BrokenPipeError(errno.EPIPE, "Broken pipe")), err)
    assert code == 0
    assert "Could not write" not in err.getvalue()


def test_a_failed_stderr_loses_notes_but_not_answers(twin: str) -> None:
    out = io.StringIO()
    code = run_with_streams(twin, b"7\n", out, FailingStream(OSError(errno.ENOSPC, "No space left on device")))
    assert code == 0
    assert out.getvalue().startswith("Stored: user-7 = ")


def test_a_failed_stdout_and_stderr_still_end_with_exit_code_3(twin: str) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    assert run_with_streams(twin, b"7\n", FailingStream(full), FailingStream(full)) == 3


def test_the_console_says_a_closed_stdout_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # how Python starts when stdout is closed: `python main.py >&-`
    console = Console(stderr=io.StringIO())
    console.answer("Stored: user-1")
    assert console.output_closed
    assert console.output_failure == "Could not write the answers to stdout: it is closed."


def test_the_console_drops_answers_after_stdout_failed() -> None:
    stdout = FailingStream(OSError(errno.EIO, "Input/output error"))
    console = Console(stdout, io.StringIO())
    console.answer("first")
    stdout.error = OSError(errno.ENOSPC, "No space left on device")
    console.answer("second")  # not tried: the first failure is the one reported
    assert console.output_failure == "Could not write the answers to stdout: Input/output error."


def test_main_leaves_the_signal_handlers_as_it_found_them(twin: str) -> None:
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    code, _, _ = run_main(twin, ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"], b"1\n")
    assert code == 0
    assert {number: signal.getsignal(number) for number in before} == before
