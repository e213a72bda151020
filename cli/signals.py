"""Prompt layer, I/O: SIGTERM and SIGHUP, turned into an unwinding `Terminated`.

Their default action kills the process at once, so no `finally` would run. Inside the sync
twin's `terminate_on_signals` they raise `Terminated` in the main thread; the async twin's
`until_terminated` cancels its task instead. Either way every `finally` runs (clients
closed, stdin's blocking flag and the terminal's mode restored), then the process exits
128 + the signal's number. It never takes over a signal someone else ignores (`nohup`) or
handles, nor handles one outside the main thread; a second signal acts as it would have
without the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any

TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


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
