"""Simulator layer, I/O shell: the traffic of `load N`, run through the demo's own lookup, written once for both twins.

`run_load` runs the load's lookups from `run.workers` workers (tasks here; threads in the
generated blocking twin) and tells `on_progress` every second; what to look up, the tally,
and when to stop are simulator/load.py's. scripts/unasync.py writes the blocking twin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from simulator._async import backend
from simulator._async.cache_aside import AsyncCacheAside
from simulator.load import LoadEnd, LoadProgress, LoadReport, LoadRun


def _no_progress(progress: LoadProgress) -> None:
    """The default listener: progress goes nowhere."""


async def run_load(
    cache: AsyncCacheAside, run: LoadRun, on_progress: Callable[[LoadProgress], object] = _no_progress
) -> LoadReport:
    """Run the load's lookups through `cache` from `run.workers` workers, telling `on_progress` every second."""
    workers = [backend.start(functools.partial(_work, cache, run), "load") for _ in range(run.workers)]
    try:
        pending = workers
        while pending:
            pending = await backend.wait_any(pending, run.seconds_to_next_progress(run.now()))
            if (progress := run.progress_due(run.now())) is not None:
                on_progress(progress)
    except BaseException:  # Ctrl-C or a signal: hand out no more ids, end the workers, and let the caller report
        run.request_stop(LoadEnd.INTERRUPTED)
        if not backend.CANCELS:  # threads end only when their lookups do: say what is being waited for
            on_progress(run.progress(run.now()))
        await backend.stop_all(workers, None)  # (a second Ctrl-C stops waiting)
        raise
    return run.report(run.now())


async def _work(cache: AsyncCacheAside, run: LoadRun) -> None:
    """One worker: look ids up until the run hands out no more."""
    while (user_id := run.next_id()) is not None:
        try:
            run.record(await cache.lookup(user_id))
        except Exception as error:  # one failed lookup is a count in the summary, and the load goes on
            run.failed(error)
