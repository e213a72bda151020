"""Prompt layer, I/O: reading what the user types, for both twins.

`read_lines` / `aread_lines` read through prompt_toolkit when stdin and stdout are a
terminal (line editing, the live status in the bottom toolbar, and background output that
never garbles the line being typed), else as plain lines with no prompt text, so piped runs
give clean output. The async reader never blocks the event loop, and never makes a terminal
non-blocking (it shares its file description with stdout and stderr). Nothing here parses
a line (cli/commands.py does) or prints an answer (the console does).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import BinaryIO, TextIO

from cli.commands import LineSplitter
from cli.console import Console, is_terminal
from cli.live_status import show_live_status

PROMPT = "user id> "
READ_CHUNK_BYTES = 65_536


def standard_input() -> BinaryIO:
    """The process's stdin as bytes; an empty input when it was closed (`python main.py <&-`)."""
    return sys.stdin.buffer if sys.stdin is not None else io.BytesIO()


def is_interactive(stdin: BinaryIO, stdout: TextIO) -> bool:
    """True when a person types at a terminal and reads the answers there."""
    return is_terminal(stdin) and is_terminal(stdout)


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
    console.status_line = True  # a command holds this prompt back: meanwhile the status is a line of its own
    try:
        with patch_stdout(raw=True), show_live_status(session, console.live, console.draw_status_line):
            while True:
                try:
                    yield session.prompt(PROMPT)
                except EOFError:
                    return
    finally:
        console.status_line = False


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
    with patch_stdout(raw=True), show_live_status(session, console.live, None):
        while True:
            try:
                yield await session.prompt_async(PROMPT)
            except EOFError:
                return
