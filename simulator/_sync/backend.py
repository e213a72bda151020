"""Simulator layer, the threads backend: everything the twins do differently, for the twin that blocks.

The same names as simulator/_async/backend.py, with threads: the shells in simulator/_sync/,
which scripts/unasync.py writes from simulator/_async/, call these. Hand-written, like its twin:
the differences are the point of each.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
CANCELS = False  # a thread cannot be cancelled: stopping work in flight waits for it to end by itself


def sleep(seconds: float) -> None:
    """Block this thread for `seconds`."""
    time.sleep(seconds)


def to_thread(function: Callable[..., T], *arguments: Any) -> T:
    """Run a blocking function: in this twin, on the calling thread."""
    return function(*arguments)


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Nothing to add: the blocking client's socket timeout already bounds each reply of a step."""
    yield


def gather(calls: Iterable[Callable[[], T]]) -> list[T | BaseException]:
    """Run the calls at once, each on a thread; each one's result or exception, in order, once all have ended.

    Daemon threads, not a pool: Ctrl-C must not wait for their database reads.
    """
    workers = [Worker(call, "concurrent") for call in calls]
    for worker in workers:
        worker.wait()
    return [worker._outcome() for worker in workers]


class Worker(Generic[T]):
    """One call running in the background: a daemon thread."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._call = call
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._call()
        except BaseException as error:  # kept for `result`, as a task keeps its exception
            self._error = error

    def done(self) -> bool:
        """True once the call has ended."""
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Nothing to do: a thread cannot be stopped from outside; the call ends at its own next check."""

    def wait(self, seconds: float | None = None) -> bool:
        """Wait up to `seconds` (None: for good) for the call to end; True if it has."""
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def _outcome(self) -> T | BaseException:
        """The call's result, or its exception (not raised), once it has ended."""
        return self._error if self._error is not None else cast(T, self._result)

    def result(self) -> T:
        """The call's result, once it has ended (its exception, raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(T, self._result)  # set by _run: the call returned


def start(call: Callable[[], T], name: str) -> Worker[T]:
    """Start `call` in the background (a daemon thread) and return at once."""
    return Worker(call, name)


def wait_any(workers: Sequence[Worker[Any]], seconds: float) -> list[Worker[Any]]:
    """Wait up to `seconds` for the first worker still running to end; the ones still running."""
    running = [worker for worker in workers if not worker.done()]
    if running:
        running[0].wait(seconds)
    return [worker for worker in running if not worker.done()]


def stop_all(workers: Iterable[Worker[Any]], grace_seconds: float | None) -> None:
    """End background workers: a thread cannot be cancelled, so each gets `grace_seconds` (None: all it takes)."""
    for worker in list(workers):
        worker.wait(grace_seconds)


def stop_if_cancelled() -> None:
    """Nothing to do: a thread is never cancelled (Ctrl-C reaches the main thread as KeyboardInterrupt)."""


class Event:
    """A flag one side sets and the other waits for (a threading.Event)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Let every waiter go on."""
        self._event.set()

    def is_set(self) -> bool:
        """True once set."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for it to be set; True if it was."""
        return self._event.wait(seconds)


class Flight(Generic[T]):
    """One id's flight in a `SingleFlight`: its leader runs the call, the others wait for its outcome."""

    def __init__(
        self, flights: SingleFlight[T], key: int, leader: bool, future: concurrent.futures.Future[T] | None
    ) -> None:
        self.leader = leader
        self._flights, self._key, self._future = flights, key, future

    def outcome(self) -> T:
        """(A follower) the leader's outcome, or its exception raised here too."""
        assert self._future is not None, "only a follower waits"
        return self._future.result()

    def land(self, outcome: T) -> None:
        """(The leader) the flight is over: every follower gets `outcome`."""
        if (waiting := self._flights._end(self._key)) is not None:
            waiting.set_result(outcome)

    def fail(self, error: BaseException) -> None:
        """(The leader) the flight failed: every follower gets `error`."""
        if (waiting := self._flights._end(self._key)) is not None:
            waiting.set_exception(error)


class SingleFlight(Generic[T]):
    """Concurrent calls for one id share the first one's outcome (threads wait on a per-id future).

    The future is made by the first thread that has to wait, not by every call: most calls
    have no company, and a `concurrent.futures.Future` costs as much as the rest of a hit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[int, concurrent.futures.Future[T] | None] = {}  # None: nobody waits yet

    def in_flight(self, key: int) -> bool:
        """True while a call for this id runs."""
        return key in self._flights

    def join(self, key: int) -> Flight[T]:
        """The id's flight: as its leader if none runs, else as a follower of the one that does."""
        with self._lock:
            if key not in self._flights:
                self._flights[key] = None
                return Flight(self, key, True, None)
            future = self._flights[key] or concurrent.futures.Future()
            self._flights[key] = future
        return Flight(self, key, False, future)

    def run(self, key: int, call: Callable[[], T]) -> tuple[T, bool]:
        """The outcome of `call`, run once for all concurrent callers; True when it was another's."""
        flight = self.join(key)
        if not flight.leader:
            return flight.outcome(), True
        try:
            outcome = call()
        except BaseException as error:
            flight.fail(error)
            raise
        flight.land(outcome)
        return outcome, False

    def _end(self, key: int) -> concurrent.futures.Future[T] | None:
        """End the id's flight; the future its followers hold, if any followed."""
        with self._lock:
            return self._flights.pop(key, None)
