"""The async twin: cache-aside with a non-blocking `redis.asyncio.Redis`, at a prompt.

A thin shell that mirrors `main.py` function for function. The difference is the point:
input keeps being read while lookups are in flight, each answer prints when it
completes (a hit typed after a miss prints first), and seeding runs as a task while the
prompt is live. The asyncio client is created inside the running loop and closed with
`aclose()` on every way out.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, BinaryIO, TextIO, assert_never

from cli.answers import (
    render_answer,
    render_cleared,
    render_deleted,
    render_error,
    render_stampede,
    render_trace_switch,
    render_ttl,
    render_updated,
    render_warning,
    reply_to,
    warning_of,
)
from cli.commands import (
    CacheCommand,
    Clear,
    Command,
    Delete,
    Load,
    Lookup,
    Quit,
    RunLab,
    RunMemoryLab,
    SetTrace,
    Show,
    ShowCache,
    ShowStats,
    ShowTtl,
    Stampede,
    Update,
    needs_cache,
    order_of,
    parse_command,
)
from cli.console import OUTPUT_FAILED_EXIT, Console
from cli.labs import render_lab_report, render_lab_started
from cli.memory import render_memory_report, render_memory_started
from cli.messages import StartupError, database_unavailable, describe_database, describe_failure
from cli.reading import aread_lines, is_interactive, standard_input
from cli.seed_and_database import (
    render_banner,
    render_database,
    render_namespace_moved,
    render_reset_cache,
    render_seed_outcome,
    render_seed_started,
)
from cli.signals import Terminated, until_terminated
from cli.startup import aconnect, load_settings
from cli.summaries import render_inventory, render_load_progress, render_load_report, render_load_started, render_stats
from config.database import DatabaseError, aopen_connector
from config.redis import AsyncClient, RedisClients
from config.settings import ConfigError, Settings
from labs._async.memory import run_memory_lab
from labs._async.runner import LabUnavailable, run_lab
from labs.bench import LabBench
from labs.catalog import LABS, LabReport
from labs.memory import MemoryPlan, MemoryReport
from labs.memory_chart import draw_memory_chart, plot_problem
from simulator._async.database import AsyncDatabase
from simulator._async.inventory import take_inventory
from simulator._async.load import run_load
from simulator._async.namespace import claim_namespace
from simulator.load import LoadPlan, LoadRun
from simulator.policy import CachePolicy
from simulator.records import vocabulary
from simulator.seeding import SeedProgress
from simulator.simulate_cache_db_flow import (
    AsyncBackgroundSeed,
    AsyncCacheAside,
    AsyncSeeder,
    set_redis_with_mock_data_async_aioredis,
)
from simulator.trace import Trace, TraceSwitch, tracing

MAX_LOOKUPS_IN_FLIGHT = 1000  # a stampede of n counts n; past this, reading input waits, so memory stays bounded


def main(
    argv: list[str] | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the demo: 0 on q or end of input, 1 if Redis or the database is unusable, 2 on a bad setting,
    3 if the answers could not be written, 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP."""
    console = Console(stdout, stderr)
    try:
        settings = load_settings(argv, "async")
    except SystemExit as exit:  # argparse: --help (0) or a bad flag (2)
        return int(exit.code or 0)
    except ConfigError as error:
        console.note(f"Configuration error: {error}")
        return 2
    try:
        code = asyncio.run(until_terminated(run(settings, console, stdin or standard_input())))
    except KeyboardInterrupt:
        console.note("Interrupted.")
        return 130
    except Terminated as signalled:
        console.note(signalled.message)
        return signalled.exit_code
    if console.output_failure is not None:  # the last line, after the stats
        console.note(console.output_failure)
        return OUTPUT_FAILED_EXIT
    return code


async def run(settings: Settings, console: Console, stdin: BinaryIO) -> int:
    """Connect to Redis and the database, serve, and always close both."""
    try:
        clients, connected = await aconnect(settings)
    except StartupError as error:
        console.note(str(error))
        return 1
    console.note(connected)
    try:
        database = await open_database(settings, console)
    except DatabaseError as error:
        console.note(database_unavailable(settings, error))
        await clients.aclose()
        return 1
    except BaseException:  # Ctrl-C or a signal while the database is created: close Redis too
        await clients.aclose()
        raise
    try:
        return await serve(clients, database, console, stdin)
    finally:
        await database.aclose()
        await clients.aclose()


async def open_database(settings: Settings, console: Console) -> AsyncDatabase:
    """Connect; on first use (or --reset-db) create users 1..DB_SIZE, with a progress bar."""
    database = AsyncDatabase(await aopen_connector(settings), settings.db_latency_seconds)
    try:
        started = time.perf_counter()
        if settings.reset_database:
            await database.drop()
        filled_to = await database.filled_to()
        if filled_to >= settings.db_size:
            console.note(render_database(describe_database(settings), filled_to, None, reset=False))
            return database
        drawing = time.perf_counter()
        vocabulary()  # the fill needs the Faker words (~0.1 s; a hit never does): drawn now, off its clock
        started += time.perf_counter() - drawing
        with console.progress_bar(settings.db_size - filled_to, "Creating users") as advance:
            users = await database.fill(filled_to, settings.db_size, advance)
    except BaseException:
        await database.aclose()
        raise
    took = time.perf_counter() - started
    added, inserted = users - filled_to, database.inserted  # another process started at once may insert them
    console.note(render_database(describe_database(settings), users, took, settings.reset_database, added, inserted))
    return database


async def serve(clients: RedisClients, database: AsyncDatabase, console: Console, stdin: BinaryIO) -> int:
    """Seed, then answer each line until q or end of input; lookups run concurrently."""
    settings = clients.settings
    policy = await tied_policy(settings, clients.async_client(), database, console)
    cache = AsyncCacheAside(
        clients.async_client(), database, policy, notify=lambda event: console.cache_event(event, settings)
    )
    seeder = AsyncSeeder(clients.async_bulk_client(), database, policy, settings.seed_batch_size)
    console.note(render_banner(replace(settings, key_prefix=policy.key_prefix)))
    if settings.reset_database:
        console.note(render_reset_cache(await cache.clear()))
    background = start_seed(seeder, settings, console)
    tracing = TraceSwitch(settings.trace)
    lookups = InFlight(MAX_LOOKUPS_IN_FLIGHT)
    try:
        async for line in aread_lines(stdin, is_interactive(stdin, console.out), console):
            command = parse_command(line)
            if isinstance(command, Quit) or console.output_closed:
                break
            await respond(command, cache, clients, console, settings.json_output, lookups, tracing)
        await lookups.wait()  # q or end of input: answers in flight still print
    finally:
        await lookups.cancel()  # only a Ctrl-C or an error leaves any
        await stop_seed(background, console)
        await cache.aclose()
        console.note(render_stats(cache.stats.snapshot(), json_output=False))
    return 0


async def tied_policy(
    settings: Settings, client: AsyncClient, database: AsyncDatabase, console: Console
) -> CachePolicy:
    """The policy, its keys tied to this database (simulator/namespace.py): moved, and said so, if another has them."""
    policy = CachePolicy.from_settings(settings)
    identity, where = await database.identity(), describe_database(settings)
    namespace = await claim_namespace(client, policy, identity, where, take_over=settings.reset_database)
    if namespace.other is not None:
        console.note(render_namespace_moved(policy.key_prefix, namespace.policy.key_prefix, namespace.other))
    return namespace.policy


async def respond(
    command: Command,
    cache: AsyncCacheAside,
    clients: RedisClients,
    console: Console,
    json_output: bool,
    lookups: InFlight,
    tracing: TraceSwitch,
) -> None:
    """Answer one command: at once if it needs no cache, else in its own task, after the commands it must follow."""
    if isinstance(command, SetTrace):
        console.answer(render_trace_switch(tracing.set(command.on), command.on is None, json_output))
        return
    if not needs_cache(command):
        reply = reply_to(command, json_output)
        if reply is not None:
            console.answer(reply)
        return
    user_id, weight = order_of(command)
    traced = tracing.on  # as it was when the command was typed, not when its turn comes
    busy = console.busy(command)  # in the live status from now: while it waits for the commands before it, too
    await lookups.start(
        user_id, weight, lambda: busy.around(perform(command, cache, clients, console, json_output, traced))
    )


async def perform(
    command: CacheCommand,
    cache: AsyncCacheAside,
    clients: RedisClients,
    console: Console,
    json_output: bool,
    traced: bool = False,
) -> None:
    """Run one command through the cache and print its answer (a lookup's steps too, if traced); errors are one line."""
    try:
        match command:
            case Lookup(user_id) | Show(user_id):
                with tracing(Trace() if traced else None) as trace:
                    result = await cache.lookup(user_id)
                if (warning := warning_of(result)) is not None:
                    console.note(render_warning(result.key, warning))
                text = render_answer(result, json_output, trace, None if isinstance(command, Show) else console.width)
            case Stampede(user_id, count):
                text = render_stampede(await cache.stampede(user_id, count), json_output)
            case ShowTtl(user_id):
                text = render_ttl(await cache.ttl(user_id), json_output)
            case Delete(user_id):
                text = render_deleted(cache.policy.key(user_id), await cache.delete(user_id), json_output)
            case Update(user_id):
                text = render_updated(await cache.update(user_id), json_output)
            case Clear():
                text = render_cleared(await cache.clear(), json_output)
            case Load(plan):
                text = await drive_load(plan, cache, console, json_output)
            case ShowCache():
                text = render_inventory(await take_inventory(cache.client, cache.policy), json_output)
            case RunLab(name, as_json):
                text = await drive_lab(name, cache, clients, console, json_output or as_json)
            case RunMemoryLab(plan):
                text = await drive_memory_lab(plan, cache.policy.key_prefix, console, json_output or plan.json)
            case ShowStats():
                text = render_stats(cache.stats.snapshot(), json_output)
            case _:
                assert_never(command)
    except Exception as error:  # Redis, the database, or a bug: one line instead of a traceback, and the prompt goes on
        text = render_error(describe_failure(error), json_output)
    console.answer(text)


async def drive_load(plan: LoadPlan, cache: AsyncCacheAside, console: Console, json_output: bool) -> str:
    """Run `load` in workers: a progress note every second, then the summary, printed even when interrupted."""
    users = await cache.database.filled_to()  # the database's ids are 1..users
    run = LoadRun(plan, users)
    try:
        console.note(render_load_started(plan, users))
        report = await run_load(cache, run, lambda progress: console.note(render_load_progress(progress)))
    except BaseException:  # Ctrl-C or a signal: say what ran, then stop as they always do
        console.answer(render_load_report(run.report(run.now()), json_output))
        raise
    return render_load_report(report, json_output)


async def drive_lab(
    name: str, cache: AsyncCacheAside, clients: RedisClients, console: Console, json_output: bool
) -> str:
    """Run `lab NAME` in a folder of its own: what it runs, then its runs side by side, printed even if interrupted."""
    report = LabReport(LABS[name])
    console.note(render_lab_started(report))
    with tempfile.TemporaryDirectory(prefix="cache-aside-lab-") as directory:
        try:
            await run_lab(name, LabBench(clients, directory, cache.policy.key_prefix), report)
        except LabUnavailable as error:
            return render_error(str(error), json_output)
        except BaseException:  # Ctrl-C or a signal: say what was measured, then stop as they always do
            console.answer(render_lab_report(report, json_output))
            raise
    return render_lab_report(report, json_output)


async def drive_memory_lab(plan: MemoryPlan, key_prefix: str, console: Console, json_output: bool) -> str:
    """Run `lab memory` on a server of its own, in a folder of its own; its chart (--plot) once it has measured."""
    if plan.plot is not None and (problem := plot_problem(plan.plot)) is not None:
        return render_error(problem, json_output)  # said before a minute of measuring, not after
    report = MemoryReport(plan)
    console.note(render_memory_started(plan))
    with tempfile.TemporaryDirectory(prefix="cache-aside-lab-") as directory:
        try:
            await run_memory_lab(report, directory, key_prefix, console.note)
        except LabUnavailable as error:
            return render_error(str(error), json_output)
        except BaseException:  # Ctrl-C or a signal: say what was measured, then stop as they always do
            console.answer(render_memory_report(report, json_output))
            raise
    if plan.plot is not None:
        try:
            draw_memory_chart(report, plan.plot)
            report.chart = plan.plot
        except (OSError, ValueError) as error:
            console.note(f"The chart was not drawn: {error}")
    return render_memory_report(report, json_output)


class InFlight:
    """The commands running now, in the user's order where it matters, and at most `limit` lookups at once.

    A command waits for the earlier commands on its user id (`update 42` then `42` reads the
    new record); a command spanning every key (`clear`, `stats`) waits for everything typed
    before it, and what comes after waits for it. Commands on different ids overlap.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._latest: dict[int, asyncio.Task[None]] = {}  # per user id, its latest command
        self._spanning: asyncio.Task[None] | None = None  # the latest command on every key

    async def start(self, user_id: int | None, lookups: int, command: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `command()` in a task once the commands before it that it depends on have ended.

        Waits here (reading no further input) while `limit` lookups are already in flight, so
        memory and the connection pool stay bounded however many stampedes are typed.
        """
        lookups = min(lookups, self.limit)
        for _ in range(lookups):
            await self._slots.acquire()
        if user_id is None:
            before = list(self._tasks)
        else:
            before = [task for task in (self._latest.get(user_id) or self._spanning,) if task is not None]
        task = asyncio.create_task(self._after(before, command))  # made after the wait, so none is left un-awaited
        self._tasks.add(task)
        if user_id is None:
            self._spanning = task
            self._latest.clear()  # every later command waits for this one, which waited for them all
        else:
            self._latest[user_id] = task
        task.add_done_callback(lambda done: self._finished(done, user_id, lookups))

    @staticmethod
    async def _after(before: list[asyncio.Task[None]], command: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if before:
            await asyncio.wait(before)  # their outcomes are theirs to print; only their end matters here
        await command()

    def _finished(self, task: asyncio.Task[None], user_id: int | None, lookups: int) -> None:
        self._tasks.discard(task)
        if user_id is not None and self._latest.get(user_id) is task:
            del self._latest[user_id]
        if self._spanning is task:
            self._spanning = None
        for _ in range(lookups):
            self._slots.release()

    async def wait(self) -> None:
        """Wait until every command has printed its answer."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def cancel(self) -> None:
        """Cancel the commands still running or waiting, and wait until they have ended (a load says what ran)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def start_seed(seeder: AsyncSeeder, settings: Settings, console: Console) -> AsyncBackgroundSeed | None:
    """Seed as SEED_MODE asks, as a task while the prompt is live (the flow diagram's async path)."""
    mode, count = settings.seed_mode, settings.seed_count
    if mode == "none" or count == 0:
        return None
    console.note(render_seed_started(mode, count, seeder.batch_size))
    progress = SeedProgress(mode, count, time.perf_counter())
    console.follow_seed(progress)
    return set_redis_with_mock_data_async_aioredis(seeder, progress, console.seed_ended)


async def stop_seed(background: AsyncBackgroundSeed | None, console: Console) -> None:
    """Stop a background seed that is still running, and say how far it got."""
    report = await background.stop() if background is not None else None
    if report is not None:  # None: the seed ended and said so already
        console.note(render_seed_outcome(report))


if __name__ == "__main__":
    raise SystemExit(main())
