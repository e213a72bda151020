"""Prompt layer, I/O: the terminal, for both twins.

`Console` writes: answers to stdout, everything else to stderr, one flushed line at a
time, from any thread. A stdout that fails stops the demo and is reported once, at the
end (`output_failure`); a stderr that fails only loses notes. `read_lines` /
`aread_lines` read what the user types: through prompt_toolkit when stdin and stdout are
a terminal (line editing, and background output that never garbles the line being
typed), else as plain lines with no prompt text, so piped runs give clean output. The
async reader never blocks the event loop. `terminate_on_signals` / `until_terminated`
turn SIGTERM and SIGHUP into an unwinding `Terminated`, so every `finally` runs: clients
closed, stdin's blocking flag and the terminal's mode restored. At a terminal, and only
there, answers are cut to its width and coloured (unless NO_COLOR is set), and the prompt
shows a live status: how long the oldest command in flight has run, how many are in flight,
and a background seed's progress. A pipe gets none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import itertools
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from cli.commands import CacheCommand, LineSplitter
from cli.messages import describe_in_use
from cli.render import (
    colour_enabled,
    describe_command,
    paint,
    render_cache_event,
    render_live_status,
    render_seed_outcome,
)
from config.database import DatabaseError
from config.redis_failures import failure_reason
from config.settings import Settings
from simulator.core import CacheEvent, SeedProgress, SeedReport

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

PROMPT = "user id> "
READ_CHUNK_BYTES = 65_536
OUTPUT_FAILED_EXIT = 3  # 1 means Redis or the database, 2 a bad setting: this one means answers were lost
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STATUS_INTERVAL_SECONDS = 0.1  # the live status is redrawn about ten times a second, while anything runs
ERASE_LINE = "\r\x1b[K"  # to column 0, then erase to the end of the line (ECMA-48 EL)


class LiveStatus:
    """What runs now, for the live status at a terminal: the commands in flight and a background seed.

    The shells write it from any thread or task and the ticker thread reads it, so each access takes the lock.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock  # perf_counter, as SeedProgress.started is
        self._lock = threading.Lock()
        self._in_flight: dict[int, tuple[str, float]] = {}  # per token: what the command does, when it started
        self._tokens = itertools.count()
        self._seed: SeedProgress | None = None
        self.woken = threading.Event()  # set when something starts, so the ticker wakes up

    def begin(self, label: str) -> int:
        """Count a command in flight from now; returns the token `end` takes."""
        with self._lock:
            token = next(self._tokens)
            self._in_flight[token] = (label, self._clock())
        self.woken.set()
        return token

    def end(self, token: int) -> None:
        """The command is over."""
        with self._lock:
            self._in_flight.pop(token, None)

    def follow_seed(self, progress: SeedProgress | None) -> None:
        """Show this background seed's progress (None: no seed runs)."""
        with self._lock:
            self._seed = progress
        self.woken.set()

    @property
    def in_flight(self) -> int:
        """How many commands are in flight."""
        with self._lock:
            return len(self._in_flight)

    @property
    def idle(self) -> bool:
        """True when nothing runs, so there is nothing to redraw."""
        with self._lock:
            return not self._in_flight and self._seed is None

    def text(self, width: int) -> str:
        """The status now, in `width` columns; empty when there is nothing to show."""
        with self._lock:
            in_flight, seed = list(self._in_flight.values()), self._seed
        return render_live_status(in_flight, seed, self._clock(), width)


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
        self._answers_to_terminal = _isatty(self.out)
        self._colour_answers = colour_enabled(os.environ, self._answers_to_terminal)
        self._colour_notes = colour_enabled(os.environ, _isatty(self.err))
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


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived: unwind, running every `finally`, then exit 128 + its number (143, 129).

    A SystemExit, so no `except Exception` swallows it and an event loop lets it out; and
    should it ever escape `main()`, the process still exits quietly with that code.
    """

    def __init__(self, number: int) -> None:
        self.exit_code = 128 + number
        self.message = f"Terminated by {signal.Signals(number).name}."
        super().__init__(self.exit_code)


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise `Terminated` in the main thread (the sync twin).

    Their default action kills the process at once, so no `finally` runs: clients stay
    open and prompt_toolkit leaves the terminal in raw mode. A second signal, during the
    clean-up, acts as it would have without the demo.
    """
    received: list[int] = []

    def terminate(number: int, frame: FrameType | None) -> None:
        _restore_handlers(previous)
        received.append(number)
        try:  # prompt_toolkit's event loop runs while a line is read: raise between its steps, not in a task
            asyncio.get_running_loop().call_soon_threadsafe(_raise, Terminated(number))
        except RuntimeError:  # no loop
            raise Terminated(number) from None

    previous: dict[signal.Signals, Any] = {}
    for number in _default_terminating_signals():
        previous[number] = signal.signal(number, terminate)
    try:
        yield
    except Exception:
        if not received:
            raise
        raise Terminated(received[0]) from None  # the clean-up failed too (a hung-up terminal fails every write)
    finally:
        _restore_handlers(previous)


async def until_terminated(work: Coroutine[Any, Any, int]) -> int:
    """Await `work`; SIGTERM or SIGHUP cancels it, so every `finally` runs, then raises `Terminated`.

    The async twin's way, as asyncio.run's own for Ctrl-C: the signal is a loop callback
    that cancels this task, not an exception raised in whatever task happened to run.
    """
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    handled = _default_terminating_signals()
    received: list[int] = []

    def cancel(number: int) -> None:
        for each in handled:  # a second signal, during the clean-up, acts as it would have
            loop.remove_signal_handler(each)
        received.append(number)
        if task is not None:
            task.cancel()

    for number in handled:
        loop.add_signal_handler(number, cancel, number)
    try:
        code = await work
    except (asyncio.CancelledError, Exception):  # an Exception: the clean-up failed too (a hung-up terminal)
        if not received:
            raise
        raise Terminated(received[0]) from None
    finally:
        for number in handled:
            loop.remove_signal_handler(number)
    if received:  # the cancellation was caught on the way: the signal still ends the demo
        raise Terminated(received[0])
    return code


def _default_terminating_signals() -> list[signal.Signals]:
    """The terminating signals still at their default: one ignored (`nohup`) stays ignored."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may handle signals
        return []
    return [number for number in TERMINATING_SIGNALS if signal.getsignal(number) == signal.SIG_DFL]


def _restore_handlers(previous: dict[signal.Signals, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


def _raise(error: BaseException) -> None:
    raise error


def standard_input() -> BinaryIO:
    """The process's stdin as bytes; an empty input when it was closed (`python main.py <&-`)."""
    return sys.stdin.buffer if sys.stdin is not None else io.BytesIO()


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
        disable=not _isatty(stream),
        leave=False,
    ) as bar:
        yield bar.update


def _isatty(stream: TextIO | BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def is_interactive(stdin: BinaryIO, stdout: TextIO) -> bool:
    """True when a person types at a terminal and reads the answers there."""
    return _isatty(stdin) and _isatty(stdout)


# --- reading input, sync ---


def read_lines(stdin: BinaryIO, interactive: bool, console: Console) -> Iterator[str]:
    """The lines the user types, until end of input (Ctrl-D) or a closed pipe; a terminal's prompt shows
    `console`'s live status."""
    if interactive:
        yield from _prompt_lines(console)
        return
    splitter = LineSplitter()
    while chunk := _read_chunk(stdin):
        yield from splitter.feed(chunk)
    yield from splitter.finish()


def _read_chunk(stdin: BinaryIO) -> bytes:
    read1 = getattr(stdin, "read1", None)
    return bytes(read1(READ_CHUNK_BYTES) if read1 else stdin.read(READ_CHUNK_BYTES))


def _prompt_lines(console: Console) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession()
    with patch_stdout(raw=True), _live_status(session, console, commands_hold_the_prompt=True):
        while True:
            try:
                yield session.prompt(PROMPT)
            except EOFError:
                return


@contextlib.contextmanager
def _live_status(session: PromptSession[str], console: Console, *, commands_hold_the_prompt: bool) -> Iterator[None]:
    """Show `console`'s live status in the prompt's bottom toolbar, which is there only when it has
    something to say.

    A ticker thread asks prompt_toolkit for a redraw about ten times a second while anything
    runs, and sleeps while nothing does, so an idle prompt is never redrawn. In the sync twin a
    command holds the prompt back, so meanwhile the ticker draws the status as a line of its own.
    """
    app = session.app

    def refresh_toolbar(_: object) -> None:  # before each render of the prompt
        text = console.live.text(app.output.get_size().columns - 1)
        session.bottom_toolbar = f" {text}" if text else None

    def redraw() -> None:
        if app.is_running:
            app.invalidate()  # thread-safe
        elif commands_hold_the_prompt:
            console.draw_status_line()

    app.before_render += refresh_toolbar
    console.status_line = commands_hold_the_prompt
    try:
        with _Ticker(console.live, redraw):
            yield
    finally:
        console.status_line = False
        app.before_render -= refresh_toolbar


class _Ticker:
    """A daemon thread that calls `redraw` every STATUS_INTERVAL_SECONDS while anything is live, once more
    when it stops being, and otherwise sleeps until `LiveStatus.woken`."""

    def __init__(self, live: LiveStatus, redraw: Callable[[], object]) -> None:
        self._live = live
        self._redraw = redraw
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-status", daemon=True)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._live.woken.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._live.woken.clear()
            if self._live.idle:  # checked after the clear: whatever starts from now on sets it again
                self._live.woken.wait()
                continue
            while not self._live.idle and not self._stopped.wait(STATUS_INTERVAL_SECONDS):
                self._redraw_quietly()
            self._redraw_quietly()  # what ended leaves the status

    def _redraw_quietly(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, ValueError):  # the prompt's loop closing as the demo ends
            self._redraw()


# --- reading input, async ---


async def aread_lines(stdin: BinaryIO, interactive: bool, console: Console) -> AsyncIterator[str]:
    """The lines the user types, read without blocking the event loop; a terminal's prompt shows `console`'s
    live status."""
    if interactive:
        async for line in _aprompt_lines(console):
            yield line
        return
    splitter = LineSplitter()
    async with _chunk_reader(stdin) as read_chunk:
        while chunk := await read_chunk():
            for line in splitter.feed(chunk):
                yield line
    for line in splitter.finish():
        yield line


@contextlib.asynccontextmanager
async def _chunk_reader(stdin: BinaryIO) -> AsyncIterator[Callable[[], Awaitable[bytes]]]:
    """Pipes and sockets are read through the event loop; terminals by a thread; regular files directly.

    (epoll cannot watch a regular file or /dev/null, and reading one never blocks; a
    terminal shares its file description with stdout and stderr, so it must never be
    made non-blocking, as the event loop would make it.)
    """
    fileno = _fileno(stdin)
    if fileno is not None and os.isatty(fileno):
        yield _read_in_a_thread(fileno)
        return
    if fileno is None or not _pollable(fileno):

        async def read_directly() -> bytes:
            await asyncio.sleep(0)  # let lookups in flight run between chunks
            return _read_chunk(stdin)

        yield read_directly
        return
    reader = asyncio.StreamReader()
    was_blocking = os.get_blocking(fileno)
    pipe = os.fdopen(os.dup(fileno), "rb", buffering=0)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )

    async def read_from_loop() -> bytes:
        return await reader.read(READ_CHUNK_BYTES)

    try:
        yield read_from_loop
    finally:
        transport.close()
        os.set_blocking(fileno, was_blocking)


def _read_in_a_thread(fileno: int) -> Callable[[], Awaitable[bytes]]:
    """Blocking reads in a daemon thread (it never holds up the exit), handed to the loop."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def pump() -> None:
        chunk = b"x"
        while chunk:
            chunk = os.read(fileno, READ_CHUNK_BYTES)
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            except RuntimeError:  # the loop has closed: the demo is over
                return

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    return chunks.get


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _pollable(fileno: int) -> bool:
    mode = os.fstat(fileno).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _aprompt_lines(console: Console) -> AsyncIterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession()
    with patch_stdout(raw=True), _live_status(session, console, commands_hold_the_prompt=False):
        while True:
            try:
                yield await session.prompt_async(PROMPT)
            except EOFError:
                return
