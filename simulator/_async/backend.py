"""Simulator layer, the asyncio backend: everything the twins do differently, for the twin that runs tasks.

The shells in simulator/_async/ are written once, against this module's names; scripts/unasync.py
writes simulator/_sync/ from them, where simulator/_sync/backend.py gives the same names with
threads. So a sleep, a task started or waited for, a future and a lock are here and nowhere
else in the shells. Hand-written, like its twin: the differences are the point of each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import redis

T = TypeVar("T")
CANCELS = True  # a task can be cancelled: stopping work in flight ends it at once


async def sleep(seconds: float) -> None:
    """Wait `seconds` without blocking the event loop."""
    await asyncio.sleep(seconds)


async def to_thread(function: Callable[..., T], *arguments: Any) -> T:
    """Run a blocking function on a thread of its own, so the event loop goes on."""
    return await asyncio.to_thread(function, *arguments)


@contextlib.asynccontextmanager
async def deadline(seconds: float, what: str) -> AsyncIterator[None]:
    """Bound a whole step (a pipeline on the bulk client, which has no timeout per reply): TimeoutError past it."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise redis.TimeoutError(f"{what} took over {seconds:g} s") from None


async def gather(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
    """Run the calls at once, as tasks; each one's result or exception, in order, once all have ended."""
    return await asyncio.gather(*(call() for call in calls), return_exceptions=True)


class Worker(Generic[T]):
    """One call running in the background: a task."""

    def __init__(self, call: Callable[[], Awaitable[T]], name: str) -> None:
        self._task: asyncio.Task[T] = asyncio.create_task(_awaited(call), name=name)

    def done(self) -> bool:
        """True once the call has ended."""
        return self._task.done()

    def cancel(self) -> None:
        """Ask the call to stop now (a task ends at its next await)."""
        self._task.cancel()

    async def wait(self, seconds: float | None = None) -> bool:
        """Wait up to `seconds` (None: for good) for the call to end; True if it has."""
        done, _ = await asyncio.wait({self._task}, timeout=seconds)
        return bool(done)

    async def result(self) -> T:
        """The call's result, once it has ended (its exception, raised)."""
        return await self._task


async def _awaited(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def start(call: Callable[[], Awaitable[T]], name: str) -> Worker[T]:
    """Start `call` in the background (a task) and return at once."""
    return Worker(call, name)


async def wait_any(workers: Sequence[Worker[Any]], seconds: float) -> list[Worker[Any]]:
    """Wait up to `seconds` for one of the workers to end; the ones still running."""
    running = [worker for worker in workers if not worker.done()]
    if running:
        await asyncio.wait({worker._task for worker in running}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    return [worker for worker in running if not worker.done()]


async def stop_all(workers: Iterable[Worker[Any]], grace_seconds: float | None) -> None:
    """End background workers: cancelled at once (a task can be), and waited for; `grace_seconds` is the threads'."""
    tasks = [worker._task for worker in workers]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop and the request was lost on the way.

    redis.asyncio can swallow a cancellation that lands just as a command completes (measured
    here: 1 in 400 GETs, a known redis-py behaviour): the call returns as if nothing happened. The task
    still counts the request (Task.cancelling), so a loop that calls this still stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Event:
    """A flag one side sets and the other waits for (an asyncio.Event, with a bound on the wait)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Let every waiter go on."""
        self._event.set()

    def is_set(self) -> bool:
        """True once set."""
        return self._event.is_set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for it to be set; True if it was."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class Flight(Generic[T]):
    """One id's flight in a `SingleFlight`: its leader runs the call, the others wait for its outcome."""

    def __init__(self, flights: SingleFlight[T], key: int, leader: bool, future: asyncio.Future[T]) -> None:
        self.leader = leader
        self._flights, self._key, self._future = flights, key, future

    async def outcome(self) -> T:
        """(A follower) the leader's outcome, or its exception raised here too."""
        return await asyncio.shield(self._future)

    def land(self, outcome: T) -> None:
        """(The leader) the flight is over: every follower gets `outcome`."""
        self._flights._end(self._key)
        self._future.set_result(outcome)

    def fail(self, error: BaseException) -> None:
        """(The leader) the flight failed: every follower gets `error` (cancelled, if the leader was)."""
        self._flights._end(self._key)
        if isinstance(error, asyncio.CancelledError):
            self._future.cancel()  # Ctrl-C: the followers are cancelled with it
            return
        self._future.set_exception(error)
        self._future.exception()  # retrieved here, so a flight nobody followed logs nothing


class SingleFlight(Generic[T]):
    """Concurrent calls for one id share the first one's outcome (tasks await a per-id future)."""

    def __init__(self) -> None:
        self._flights: dict[int, asyncio.Future[T]] = {}

    def in_flight(self, key: int) -> bool:
        """True while a call for this id runs."""
        return key in self._flights

    def join(self, key: int) -> Flight[T]:
        """The id's flight: as its leader if none runs, else as a follower of the one that does."""
        future = self._flights.get(key)
        if future is not None:
            return Flight(self, key, False, future)
        future = self._flights[key] = asyncio.get_running_loop().create_future()
        return Flight(self, key, True, future)

    async def run(self, key: int, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The outcome of `call`, run once for all concurrent callers; True when it was another's."""
        flight = self.join(key)
        if not flight.leader:
            return await flight.outcome(), True
        try:
            outcome = await call()
        except BaseException as error:
            flight.fail(error)
            raise
        flight.land(outcome)
        return outcome, False

    def _end(self, key: int) -> None:
        self._flights.pop(key, None)
