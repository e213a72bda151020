"""Prompt layer, I/O: the console, where both twins write.

`Console` writes answers to stdout and everything else to stderr, one flushed line at a
time, from any thread. A stdout that fails stops the demo and is reported once, at the
end (`output_failure`); a stderr that fails only loses notes. At a terminal, and only
there, answers are cut to its width and coloured (unless NO_COLOR is set), and while a
command holds the sync twin's prompt back, the live status is drawn as a line of its own;
a pipe gets none of it. It never reads input (cli/reading.py does) and never words a line
itself: every line comes from the pure modules beside it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import BinaryIO, TextIO

from cli.answers import render_cache_event
from cli.colour import colour_enabled, paint
from cli.commands import CacheCommand
from cli.live_status import LiveStatus, describe_command
from cli.messages import describe_in_use
from cli.seed_and_database import render_seed_outcome
from config.database import DatabaseError
from config.redis_failures import failure_reason
from config.settings import Settings
from simulator.breaker import CacheEvent
from simulator.seeding import SeedProgress, SeedReport

OUTPUT_FAILED_EXIT = 3  # 1 means Redis or the database, 2 a bad setting: this one means answers were lost
ERASE_LINE = "\r\x1b[K"  # to column 0, then erase to the end of the line (ECMA-48 EL)


class Console:
    """Where the demo writes; injected streams in tests, the real ones otherwise.

    When stdout is a terminal, answers are cut to its width and coloured (unless NO_COLOR is
    set); notes are coloured when stderr is one. `live` is what runs now, which the prompt shows.
    """

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._lock = threading.Lock()
        self.output_closed = False  # stdout takes no more answers: the shells stop reading input
        self.output_failure: str | None = None  # why, when it was a failure rather than a reader that left
        self._notes_lost = False
        self.live = LiveStatus()
        self._answers_to_terminal = is_terminal(self.out)
        self._colour_answers = colour_enabled(os.environ, self._answers_to_terminal)
        self._colour_notes = colour_enabled(os.environ, is_terminal(self.err))
        self.status_line = False  # the sync twin's prompt: while a command holds it back, the status is a line
        self._status_drawn = False
        self._status_answered = False  # the command has printed its answer: its status line stays away

    @property
    def width(self) -> int | None:
        """The terminal's columns when answers go to one; None for a pipe or a file, which get whole lines."""
        if not self._answers_to_terminal:
            return None
        try:
            return os.get_terminal_size(self.out.fileno()).columns or None
        except (AttributeError, OSError, ValueError):
            return None

    @property
    def out(self) -> TextIO:
        """stdout, looked up at each write so prompt_toolkit's patch_stdout can take it over."""
        return self._stdout or sys.stdout or _discard()

    @property
    def err(self) -> TextIO:
        """stderr, likewise."""
        return self._stderr or sys.stderr or _discard()

    def answer(self, line: str) -> None:
        """An answer, on stdout; once stdout has failed, answers are dropped and the shells stop reading."""
        with self._lock:
            if self.output_closed:
                return
            stream = self._stdout or sys.stdout
            if stream is None:  # started with stdout closed: `python main.py >&-`
                self._stop_answering(None, "it is closed")
                return
            try:
                _write_line(stream, self._erased_status() + (paint(line) if self._colour_answers else line))
                self._status_answered = True
            except BrokenPipeError:  # `python main.py | head -3`: the reader has all it wants; stop quietly
                self._stop_answering(stream, None)
            except OSError as error:  # a full disk (ENOSPC), a device gone (EIO), a closed descriptor (EBADF)
                self._stop_answering(stream, error.strerror or str(error))

    def _stop_answering(self, stream: TextIO | None, failure: str | None) -> None:
        self.output_closed = True
        if failure is not None:
            self.output_failure = f"Could not write the answers to stdout: {failure}."
        if stream is not None:
            _discard_further_output(stream)

    def note(self, line: str) -> None:
        """A banner, progress report or warning, on stderr; if stderr fails, notes are lost and the demo goes on."""
        with self._lock:
            if self._notes_lost:
                return
            try:
                _write_line(self.err, self._erased_status() + (paint(line) if self._colour_notes else line))
            except OSError:  # nowhere is left to say so
                self._notes_lost = True
                _discard_further_output(self.err)

    def follow_seed(self, progress: SeedProgress) -> None:
        """Show a background seed's progress in the live status (at a terminal), until `seed_ended`."""
        self.live.follow_seed(progress)

    def seed_ended(self, report: SeedReport, error: Exception | None) -> None:
        """Say how a seed ended: its numbers, or why Redis or the database cut it short."""
        self.live.follow_seed(None)
        if error is None:
            self.note(render_seed_outcome(report))
        elif isinstance(error, DatabaseError):
            self.note(render_seed_outcome(report, f"database error: {error}"))
        else:
            self.note(render_seed_outcome(report, failure_reason(error)))

    def cache_event(self, event: CacheEvent, settings: Settings) -> None:
        """Say, once, that Redis stopped or started being usable."""
        self.note(render_cache_event(event, describe_in_use(settings)))

    def progress_bar(self, total: int, description: str) -> contextlib.AbstractContextManager[Callable[[int], object]]:
        """A tqdm bar on stderr when it is a terminal; its `update` counts records."""
        return _progress_bar(self.err, total, description)

    def busy(self, command: CacheCommand) -> Busy:
        """`command` is in flight from now: counted in the live status, which a terminal shows, until it ends."""
        token = self.live.begin(describe_command(command))
        with self._lock:
            self._status_answered = False
        return Busy(self, token)

    def command_ended(self, token: int) -> None:
        """A command of `busy` has ended: out of the live status (and the sync twin's status line erased)."""
        with self._lock:
            self.live.end(token)
            if self._status_drawn and not self.live.in_flight:
                with contextlib.suppress(OSError, ValueError):
                    _write(self.out, self._erased_status())

    def draw_status_line(self) -> None:
        """The sync twin's live status while a command holds the prompt back: one line, redrawn in place.

        It goes through the same stream as the answers (patch_stdout's proxy, one queue), so it can
        never overtake one; an answer or a note erases it first, and once the answer is out it stays away.
        """
        with self._lock:
            if not self.status_line or self._status_answered or self.output_closed or not self.live.in_flight:
                return
            text = self.live.text((self.width or 80) - 1)  # the last column would wrap on some terminals
            if text or self._status_drawn:
                with contextlib.suppress(OSError, ValueError):
                    _write(self.out, f"{ERASE_LINE}{text}" if text else ERASE_LINE)
                    self._status_drawn = bool(text)

    def _erased_status(self) -> str:
        """What erases the status line, if one is drawn; the caller writes it (holding the lock)."""
        drawn, self._status_drawn = self._status_drawn, False
        return ERASE_LINE if drawn else ""


class Busy:
    """A command in flight, as `Console.busy` counts it: until its `with` block ends (the sync twin), or
    the work `around` awaits (the async twin's task, which may first wait for the commands before it)."""

    def __init__(self, console: Console, token: int) -> None:
        self._console = console
        self._token = token

    def __enter__(self) -> Busy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._console.command_ended(self._token)

    async def around(self, work: Awaitable[None]) -> None:
        """Await `work`, then end."""
        try:
            await work
        finally:
            self._console.command_ended(self._token)


class _Discard(io.StringIO):
    """Where output goes when Python started with that stream closed: nowhere, holding no descriptor."""

    def write(self, text: str) -> int:
        return len(text)


@functools.cache
def _discard() -> TextIO:
    return _Discard()


def _write_line(stream: TextIO, line: str) -> None:
    stream.write(line + "\n")
    stream.flush()


def _write(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _discard_further_output(stream: TextIO) -> None:
    """Point the stream's descriptor at /dev/null, so the interpreter's flush at exit has nothing to fail on."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _progress_bar(stream: TextIO, total: int, description: str) -> Iterator[Callable[[int], object]]:
    from tqdm import tqdm  # imported here: only a blocking seed needs it

    with tqdm(
        total=total,
        desc=description,
        unit="rec",
        unit_scale=True,
        file=stream,
        disable=not is_terminal(stream),
        leave=False,
    ) as bar:
        yield bar.update


def is_terminal(stream: TextIO | BinaryIO) -> bool:
    """True when `stream` is a terminal; False for a pipe, a file, or a stream without a descriptor."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
