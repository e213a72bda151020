"""The real scripts, run as a user runs them: piped stdin, a pseudo-terminal, bad settings, no server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import redis

from cli.messages import PRIVATE_CACHE
from config.settings import setting_names
from simulator.entries import LEASE_PREFIX
from simulator.records import encode_record, user_record
from tests.conftest import PROJECT_ROOT
from tests.twins import TEST_DB_SIZE, wait_until

pytestmark = pytest.mark.e2e
SCRIPTS = ["main.py", "main_async.py"]
# Only bounds a hang: a loaded 2-core machine may take seconds to start Python and import the demo.
EXPECT_SECONDS = 30
# A database latency no lookup can outlive during a test (the most --db-latency accepts): a test that
# needs a lookup still in flight uses it, instead of hoping a shorter one has not ended yet.
SLOW_DATABASE = "600"


def script_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any demo setting, plus `extra`; DB_SIZE is the test database's."""
    env = {name: value for name, value in os.environ.items() if name not in setting_names()}
    env.update(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", PYTHONDEVMODE="1", DB_SIZE=str(TEST_DB_SIZE))
    env.update(extra)
    return env


def run_script(
    script: str, args: list[str], typed: bytes, cwd: Path, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        input=typed,
        capture_output=True,
        cwd=cwd,
        env=script_env(**env),
        timeout=timeout,
        check=False,
    )


def start_script(script: str, *args: str, cwd: Path) -> subprocess.Popen[bytes]:
    """A script running with pipes on stdin, stdout and stderr, for a test to talk to."""
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=script_env(),
    )


def stderr_lines(stderr: bytes) -> list[str]:
    """What a script wrote on stderr, less asyncio's debug-mode reports of a slow step.

    The scripts run under PYTHONDEVMODE=1, where asyncio logs `Executing <Task ...> took
    0.2 seconds` for any step over 0.1 s: on a loaded machine a TLS handshake is one. That
    line is dev mode's, not the demo's.
    """
    return [
        line for line in stderr.decode().splitlines() if not re.match(r"Executing <.*> took [0-9.]+ seconds$", line)
    ]


def assert_clean(stderr: bytes) -> None:
    """No traceback and no unclosed-resource warning (the scripts run under PYTHONDEVMODE=1)."""
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text
    assert "ResourceWarning" not in text
    assert "unclosed" not in text.lower()


@pytest.fixture
def seeded(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url)
    client.set("user-42", encode_record(user_record(42)), ex=60)
    client.close()
    return redis_url


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_piped_session(script: str, seeded: str, tmp_path: Path) -> None:
    typed = b"42\n 5000 \n\xff\n\x1b[2J\nq\n"
    done = run_script(script, ["--seed-mode", "none"], typed, tmp_path, REDIS_URL=seeded, DB_LATENCY_SECONDS="0.02")
    out = done.stdout.decode().splitlines()
    assert done.returncode == 0
    assert sorted(line.split(":")[0] for line in out) == [
        "Found in cache",
        "Not a user id or command",
        "Not valid UTF-8",
        "Stored",
    ]
    assert 'Not valid UTF-8: "\\xff".' in " ".join(out)
    assert '"\\x1b[2J"' in " ".join(out)
    assert "user id>" not in done.stdout.decode()
    assert_clean(done.stderr)


@pytest.mark.integration
def test_the_async_script_prints_a_hit_before_an_earlier_miss(seeded: str, tmp_path: Path) -> None:
    # The miss waits SLOW_DATABASE for its database: it cannot end while this test runs, so the
    # hit typed after it comes first by construction, not by a margin the scheduler might eat.
    arguments = ["--redis-url", seeded, "--seed-mode", "none", "--db-latency", SLOW_DATABASE]
    process = start_script("main_async.py", *arguments, cwd=tmp_path)
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(b"5000\n42\n")
        process.stdin.flush()
        first_line = process.stdout.readline()
        assert first_line.startswith(b"Found in cache: user-42")
        with redis.Redis.from_url(seeded) as client:
            assert (client.get("user-5000") or b"").startswith(LEASE_PREFIX)  # the miss is still in flight
        process.terminate()  # quit at once, without waiting for it (SIGTERM: exit 143, every `finally` run)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 143
        assert_clean(err)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_answers_reach_a_pipe_as_they_are_printed(script: str, seeded: str, tmp_path: Path) -> None:
    process = start_script(script, "--redis-url", seeded, "--seed-mode", "none", cwd=tmp_path)
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(b"42\n")
        process.stdin.flush()
        first_line = process.stdout.readline()  # stdin is still open: only a flushed answer arrives
        assert first_line.startswith(b"Found in cache: user-42")
        process.stdin.write(b"q\n")
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        if process.stderr:
            process.stderr.close()


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_closed_output_pipe_ends_quietly(script: str, tmp_path: Path) -> None:
    pipeline = (
        f"printf '1\\n2\\n3\\n4\\n5\\n' | {sys.executable} {PROJECT_ROOT / script} --redis-url memory:// "
        f"--seed-mode none --db-latency 0 | head -n 1"
    )
    done = subprocess.run(
        ["bash", "-c", f"{pipeline}; exit ${{PIPESTATUS[1]}}"],
        capture_output=True,
        cwd=tmp_path,
        env=script_env(),
        timeout=30,
        check=False,
    )
    assert done.stdout.decode().startswith("Stored: user-")  # the async twin prints answers as they complete
    assert done.returncode == 0  # the reader has every line it wanted: under `set -o pipefail` too
    assert_clean(done.stderr)


# --- a stdout that fails ---

DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]


def demo_command(script: str) -> str:
    """The shell command that runs `script` on the embedded Redis, for tests that need a shell's redirections."""
    return " ".join([sys.executable, str(PROJECT_ROOT / script), *DEMO])


def dev_full() -> Path:
    path = Path("/dev/full")
    if not path.is_char_device():
        pytest.skip("no /dev/full on this system")
    return path


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_full_stdout_ends_with_one_line_and_exit_code_3(script: str, tmp_path: Path) -> None:
    with dev_full().open("wb") as full:
        done = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / script), *DEMO],
            input=b"42\n43\n",
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=script_env(),
            timeout=30,
            check=False,
        )
    lines = stderr_lines(done.stderr)
    assert done.returncode == 3
    assert lines[-1] == "Could not write the answers to stdout: No space left on device."
    assert any(line.startswith("Stats: ") for line in lines)
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_closed_stdout_ends_with_one_line_and_exit_code_3(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", f"printf '42\\n' | {demo_command(script)} >&-"],
        capture_output=True,
        cwd=tmp_path,
        env=script_env(),
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    assert stderr_lines(done.stderr)[-1] == "Could not write the answers to stdout: it is closed."
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_full_stderr_never_crashes_the_demo(script: str, tmp_path: Path) -> None:
    full = dev_full()
    answers = subprocess.run(
        ["bash", "-c", f"printf '42\\n' | {demo_command(script)} 2>{full}"],
        capture_output=True,
        cwd=tmp_path,
        env=script_env(),
        timeout=30,
        check=False,
    )
    both = subprocess.run(
        ["bash", "-c", f"printf '42\\n' | {demo_command(script)} >{full} 2>{full}"],
        capture_output=True,
        cwd=tmp_path,
        env=script_env(),
        timeout=30,
        check=False,
    )
    assert answers.returncode == 0  # the answers all reached stdout; only the notes and the summary were lost
    assert answers.stdout.startswith(b"Stored: user-42 = ")
    assert both.returncode == 3  # not 1 (a traceback) nor 120 (a failed flush at exit)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_reader_that_left_before_the_first_answer_is_no_failure(script: str, tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first answer meets EPIPE, every time
    try:
        done = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / script), *DEMO],
            input=b"1\n2\n3\n",
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=script_env(),
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_end)
    lines = stderr_lines(done.stderr)
    assert done.returncode == 0
    assert lines[-1].startswith("  miss latency: ")  # the summary is the last thing said: no failure line
    assert not [line for line in lines if "Could not write" in line]
    assert_clean(done.stderr)


# --- a person at a terminal ---


def ctrl_c_as_at_a_terminal() -> None:
    """In the child, before exec: Ctrl-C and a hang-up act as at a terminal, whatever pytest inherited.

    A background job of a script (`pytest &`, a CI step) starts with SIGINT ignored, and one
    under `nohup` with SIGHUP ignored; the script would inherit that, and (rightly) leave an
    ignored signal ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def spawn(script: str, redis_url: str, *args: str, latency: str = "0.02") -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), "--redis-url", redis_url, "--db-latency", latency, *args],
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    child.expect("user id>")
    return child


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before or ""


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_at_a_terminal_a_second_lookup_is_a_hit_and_ctrl_d_quits_with_0(script: str, redis_url: str) -> None:
    child = spawn(script, redis_url, "--seed-mode", "none")
    child.sendline("777")
    child.expect("Stored: user-777")
    child.expect("user id>")
    child.sendline("user-777")
    child.expect(r"Found in cache: user-777 = .* \(\d+\.\d ms\)")
    child.expect("user id>")
    child.sendcontrol("d")
    status, rest = finish(child)
    assert status == 0
    assert "Traceback" not in rest


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_at_a_terminal_ctrl_c_exits_130_without_a_traceback(script: str, redis_url: str) -> None:
    child = spawn(script, redis_url, "--seed-mode", "none")
    child.sendcontrol("c")
    status, rest = finish(child)
    assert status == 130
    assert "Traceback" not in rest
    assert "Interrupted." in rest


def wait_for_a_lease(redis_url: str, key: str) -> None:
    """Until a lookup of `key` holds its lease: it is reading the (slow) database now."""
    with redis.Redis.from_url(redis_url) as client:
        wait_until(lambda: (client.get(key) or b"").startswith(LEASE_PREFIX), f"a lookup of {key} to read the database")


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_ctrl_c_during_a_slow_database_read_exits_130_cleanly(script: str, redis_url: str) -> None:
    child = spawn(script, redis_url, "--seed-mode", "none", latency=SLOW_DATABASE)
    child.sendline("31337")
    wait_for_a_lease(redis_url, "user-31337")  # the moment under test: the lookup is in the slow database
    child.sendcontrol("c")
    status, rest = finish(child)
    assert status == 130
    assert "Traceback" not in rest
    assert "unclosed" not in rest.lower()


# --- start-up failures and the embedded fallback ---


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_setting_exits_2_with_one_line_naming_it(script: str, tmp_path: Path) -> None:
    done = run_script(script, [], b"", tmp_path, REDIS_PORT="abc")
    assert done.returncode == 2
    assert stderr_lines(done.stderr) == [
        "Configuration error: REDIS_PORT='abc' is not valid: expected a whole number from 1 to 65,535"
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_dotenv_value_is_reported_like_an_environment_one(script: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SEED_MODE=turbo\n")
    done = run_script(script, [], b"", tmp_path)
    assert done.returncode == 2
    assert "SEED_MODE='turbo' is not valid: expected one of" in done.stderr.decode()


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unreachable_server_exits_1_with_one_masked_line(script: str, tmp_path: Path, free_port: int) -> None:
    # How quickly is counted, not timed, in test_cli.py and test_integration.py (connection attempts).
    done = run_script(script, [], b"42\n", tmp_path, REDIS_URL=f"redis://:topsecret@127.0.0.1:{free_port}/0")
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line.startswith(f"Cannot use Redis at redis://:****@127.0.0.1:{free_port}/0: connection refused")
    assert "topsecret" not in line
    assert done.stdout == b""


def _isolated_network() -> list[str]:
    """A command prefix that runs in a network namespace of its own, where nothing listens on 6379."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not available")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("this user cannot create a network namespace")
    return [unshare, "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_with_nothing_configured_and_no_server_the_embedded_redis_runs_the_demo(script: str, tmp_path: Path) -> None:
    command = [*_isolated_network(), sys.executable, str(PROJECT_ROOT / script), "--db-latency", "0", "--count", "50"]
    done = subprocess.run(
        command, input=b"42\n4242\n", capture_output=True, cwd=tmp_path, env=script_env(), timeout=30, check=False
    )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert err.splitlines()[0] == (
        "No Redis is configured and nothing listens on localhost:6379: using the embedded in-memory Redis "
        f"(fakeredis), {PRIVATE_CACHE}. Set REDIS_URL to use a server."
    )
    assert b"Stored: user-4242" in done.stdout
    assert_clean(done.stderr)


@pytest.mark.integration
def test_a_blocking_seed_shows_a_progress_bar_at_a_terminal(redis_url: str) -> None:
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / "main.py"), "--redis-url", redis_url, "--seed-mode", "sequential", "--count", "3000"],
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
    )
    child.expect(r"Seeding sequential: +\d+%\|")  # tqdm's bar, drawn on the terminal's stderr
    child.expect("Seeded 3,000 users in")
    child.expect("user id>")
    child.sendline("q")
    status, _ = finish(child)
    assert status == 0


def _database_reads(stderr: str) -> int:
    """The `N database reads` of the summary a script prints on exit."""
    [summary] = [line for line in stderr.splitlines() if line.startswith("Stats: ")]
    return int(summary.split(" database reads")[0].rsplit(" ", 1)[1].replace(",", ""))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("first", "second"), [("main.py", "main.py"), ("main_async.py", "main_async.py"), ("main.py", "main_async.py")]
)
def test_two_processes_started_together_on_one_missing_id_make_1_database_read(
    first: str, second: str, redis_url: str, tmp_path: Path
) -> None:
    arguments = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.5", "--json"]
    processes = [start_script(script, *arguments, cwd=tmp_path) for script in (first, second)]
    outputs = [process.communicate(b"4242\n", timeout=30) for process in processes]
    answers = [json.loads(out) for out, _ in outputs]
    reads = [_database_reads(err.decode()) for _, err in outputs]
    assert [process.returncode for process in processes] == [0, 0]
    assert sum(reads) == 1, (answers, reads)
    assert sorted(answer["source"] for answer in answers) == ["cache", "database"]
    assert all(answer["value"]["id"] == 4242 for answer in answers)


@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_ctrl_c_during_a_stampede_exits_at_once(script: str, redis_url: str) -> None:
    child = spawn(script, redis_url, "--seed-mode", "none", latency=SLOW_DATABASE)
    child.sendline("stampede 5 40")
    wait_for_a_lease(redis_url, "user-5")  # the stampede is waiting on the slow database: the moment under test
    child.sendcontrol("c")
    status, rest = finish(child)  # "at once": the database reads it leaves behind could not end during the test
    assert status == 130
    assert "Traceback" not in rest


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_closed_stdin_is_an_empty_input(script: str, tmp_path: Path) -> None:
    command = f"{sys.executable} {PROJECT_ROOT / script} --redis-url memory:// --seed-mode none <&-"
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, cwd=tmp_path, env=script_env(), timeout=30, check=False
    )
    assert done.returncode == 0
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_typing_at_a_terminal_with_answers_piped_elsewhere(script: str) -> None:
    command = f"{sys.executable} {PROJECT_ROOT / script} --redis-url memory:// --seed-mode none --db-latency 0.05 | cat"
    child = pexpect.spawn("bash", ["-c", command], env=script_env(), timeout=EXPECT_SECONDS, encoding="utf-8")
    child.expect("Type a user id")
    child.sendline("42")
    child.expect("Stored: user-42")
    child.sendline("42")
    child.expect("Found in cache: user-42")
    child.sendcontrol("d")
    status, rest = finish(child)
    assert status == 0
    assert "Traceback" not in rest


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unreachable_sentinel_is_named_in_the_error(script: str, tmp_path: Path, free_port: int) -> None:
    done = run_script(script, [], b"", tmp_path, REDIS_SENTINELS=f"127.0.0.1:{free_port}")
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line.startswith(f"Cannot use the Redis master 'mymaster' through Sentinel 127.0.0.1:{free_port}: ")
