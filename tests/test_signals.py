"""SIGTERM and SIGHUP end the real scripts cleanly: every `finally` runs, what they changed is restored.

Their default action kills the process where it stands: the async twin then leaves the
stdin pipe it shares with others non-blocking (the next reader of that pipe loses input),
and prompt_toolkit leaves the terminal in raw mode. Each test holds the resource the
script shares (a pipe, a terminal), sends the signal, and looks at the resource after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import termios
from pathlib import Path

import pexpect
import pytest

from tests.conftest import PROJECT_ROOT
from tests.test_e2e import EXPECT_SECONDS, SCRIPTS, assert_clean, ctrl_c_as_at_a_terminal, script_env, stderr_lines

pytestmark = pytest.mark.e2e
DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]
SIGNALS = [
    pytest.param(signal.SIGTERM, 143, "Terminated by SIGTERM.", id="SIGTERM"),
    pytest.param(signal.SIGHUP, 129, "Terminated by SIGHUP.", id="SIGHUP"),
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(("number", "code", "last_line"), SIGNALS)
def test_a_signal_leaves_a_shared_stdin_pipe_blocking_and_exits_128_plus_its_number(
    script: str, number: signal.Signals, code: int, last_line: str, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    kept = os.dup(read_end)  # the pipe's other holder, as the next command of a shell script would be
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / script), *DEMO],
        stdin=read_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=script_env(),
        preexec_fn=ctrl_c_as_at_a_terminal,  # only resets two signals before exec
    )
    assert process.stdout is not None
    try:
        os.close(read_end)
        os.write(write_end, b"42\n")  # the write end stays open: the script waits for more input
        assert process.stdout.readline().startswith(b"Stored: user-42 = ")  # it is reading the pipe now
        if script == "main_async.py":
            assert not os.get_blocking(kept)  # the event loop reads it non-blocking: shared by every holder
        process.send_signal(number)
        _, err = process.communicate(timeout=30)
        lines = stderr_lines(err)
        assert process.returncode == code
        assert os.get_blocking(kept)
        assert lines[-1] == last_line
        assert any(line.startswith("Stats: ") for line in lines)  # the summary: serve's `finally` ran
        assert_clean(err)  # under PYTHONDEVMODE: no unclosed client, socket or database
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        os.close(write_end)
        os.close(kept)


RAW_MODE_CLEARS = termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN  # prompt_toolkit clears these


def spawn_at_a_terminal(script: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), *DEMO],
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    child.expect("user id>")  # prompt_toolkit enters raw mode before it draws the prompt
    return child


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(("number", "code", "last_line"), SIGNALS)
def test_a_signal_at_a_terminal_restores_its_mode(
    script: str, number: signal.Signals, code: int, last_line: str
) -> None:
    child = spawn_at_a_terminal(script)
    try:
        assert termios.tcgetattr(child.child_fd)[3] & RAW_MODE_CLEARS == 0  # raw mode, at the prompt
        child.kill(number)
        child.expect(pexpect.EOF)
        local_flags = termios.tcgetattr(child.child_fd)[3]  # the terminal's, as the script left it
        assert local_flags & RAW_MODE_CLEARS == RAW_MODE_CLEARS
        assert last_line in (child.before or "")
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)
    assert child.exitstatus == code


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_terminal_that_hangs_up_ends_the_script_by_an_exit_not_a_kill(script: str) -> None:
    child = spawn_at_a_terminal(script)
    child.ptyproc.fileobj.close()  # the terminal window closes: the kernel sends SIGHUP
    child.wait()
    # 129 when SIGHUP is handled first; 0 if the end of input the hang-up also causes wins. Either way the
    # script exited by itself, through its `finally` blocks, instead of being killed by the signal.
    assert child.signalstatus is None
    assert child.exitstatus in (0, 129)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_sighup_ignored_as_nohup_ignores_it_stays_ignored(script: str, tmp_path: Path) -> None:
    command = f'trap "" HUP; exec {sys.executable} {PROJECT_ROOT / script} {" ".join(DEMO)}'
    process = subprocess.Popen(
        ["bash", "-c", command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=script_env(),
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(b"42\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith(b"Stored: user-42 = ")  # running, past any set-up
        process.send_signal(signal.SIGHUP)  # an ignored signal is dropped as it is sent: nothing to wait for
        out, err = process.communicate(b"42\n", timeout=30)
        assert process.returncode == 0
        assert out.startswith(b"Found in cache: user-42 = ")  # it went on answering after the SIGHUP
        assert "Terminated" not in err.decode()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
