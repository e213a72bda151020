# Written by scripts/unasync.py from main_async.py, but for HAND_WRITTEN's main.py parts.
"""The sync twin: cache-aside with a blocking `redis.Redis`, at a prompt.

A thin shell. It reads the settings, connects, seeds, then answers what the user types
until `q` or end of input. Decisions live in the pure core (`simulator.policy` and its neighbours,
`cli.commands`, `cli.answers` and its neighbours); Redis calls live in `simulator.simulate_cache_db_flow`.
`main_async.py` mirrors this file function for function.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from typing import BinaryIO, TextIO, assert_never

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
    parse_command,
)
from cli.console import OUTPUT_FAILED_EXIT, Console
from cli.labs import render_lab_report, render_lab_started
from cli.memory import render_memory_report, render_memory_started
from cli.messages import StartupError, database_unavailable, describe_database, describe_failure
from cli.reading import is_interactive, read_lines, standard_input
from cli.seed_and_database import (
    render_banner,
    render_database,
    render_namespace_moved,
    render_reset_cache,
    render_seed_outcome,
    render_seed_started,
)
from cli.signals import Terminated, terminate_on_signals
from cli.startup import connect, load_settings
from cli.summaries import render_inventory, render_load_progress, render_load_report, render_load_started, render_stats
from config.database import DatabaseError, open_connector
from config.redis import RedisClients, SyncClient
from config.redis_failures import REDIS_ERRORS
from config.settings import ConfigError, Settings
from labs._sync.memory import run_memory_lab
from labs._sync.runner import LabUnavailable, run_lab
from labs.bench import LabBench
from labs.catalog import LABS, LabReport
from labs.memory import MemoryPlan, MemoryReport
from labs.memory_chart import draw_memory_chart, plot_problem
from simulator._sync.database import Database
from simulator._sync.inventory import take_inventory
from simulator._sync.load import run_load
from simulator._sync.namespace import claim_namespace
from simulator.load import LoadPlan, LoadRun
from simulator.policy import CachePolicy
from simulator.records import vocabulary
from simulator.seeding import SeedProgress
from simulator.simulate_cache_db_flow import (
    BackgroundSeed,
    CacheAside,
    Seeder,
    set_redis_with_mock_data,
    set_redis_with_mock_data_async,
)
from simulator.trace import Trace, TraceSwitch, tracing


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
        settings = load_settings(argv, "sync")
    except SystemExit as exit:  # argparse: --help (0) or a bad flag (2)
        return int(exit.code or 0)
    except ConfigError as error:
        console.note(f"Configuration error: {error}")
        return 2
    try:
        with terminate_on_signals():
            code = run(settings, console, stdin or standard_input())
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


def run(settings: Settings, console: Console, stdin: BinaryIO) -> int:
    """Connect to Redis and the database, serve, and always close both."""
    try:
        clients, connected = connect(settings)
    except StartupError as error:
        console.note(str(error))
        return 1
    console.note(connected)
    try:
        database = open_database(settings, console)
    except DatabaseError as error:
        console.note(database_unavailable(settings, error))
        clients.close()
        return 1
    except BaseException:  # Ctrl-C or a signal while the database is created: close Redis too
        clients.close()
        raise
    try:
        return serve(clients, database, console, stdin)
    finally:
        database.close()
        clients.close()


def open_database(settings: Settings, console: Console) -> Database:
    """Connect; on first use (or --reset-db) create users 1..DB_SIZE, with a progress bar."""
    database = Database(open_connector(settings), settings.db_latency_seconds)
    try:
        started = time.perf_counter()
        if settings.reset_database:
            database.drop()
        filled_to = database.filled_to()
        if filled_to >= settings.db_size:
            console.note(render_database(describe_database(settings), filled_to, None, reset=False))
            return database
        drawing = time.perf_counter()
        vocabulary()  # the fill needs the Faker words (~0.1 s; a hit never does): drawn now, off its clock
        started += time.perf_counter() - drawing
        with console.progress_bar(settings.db_size - filled_to, "Creating users") as advance:
            users = database.fill(filled_to, settings.db_size, advance)
    except BaseException:
        database.close()
        raise
    took = time.perf_counter() - started
    added, inserted = users - filled_to, database.inserted  # another process started at once may insert them
    console.note(render_database(describe_database(settings), users, took, settings.reset_database, added, inserted))
    return database


def serve(clients: RedisClients, database: Database, console: Console, stdin: BinaryIO) -> int:
    """Seed, then answer each line until q or end of input."""
    settings = clients.settings
    policy = tied_policy(settings, clients.sync_client(), database, console)
    cache = CacheAside(
        clients.sync_client(), database, policy, notify=lambda event: console.cache_event(event, settings)
    )
    seeder = Seeder(clients.sync_client(), database, policy, settings.seed_batch_size)
    console.note(render_banner(replace(settings, key_prefix=policy.key_prefix)))
    if settings.reset_database:
        console.note(render_reset_cache(cache.clear()))
    background = start_seed(seeder, settings, console)
    tracing = TraceSwitch(settings.trace)
    try:
        for line in read_lines(stdin, is_interactive(stdin, console.out), console):
            command = parse_command(line)
            if isinstance(command, Quit) or console.output_closed:
                break
            respond(command, cache, clients, console, settings.json_output, tracing)
    finally:
        stop_seed(background, console)
        cache.close()
        console.note(render_stats(cache.stats.snapshot(), json_output=False))
    return 0


def tied_policy(settings: Settings, client: SyncClient, database: Database, console: Console) -> CachePolicy:
    """The policy, its keys tied to this database (simulator/namespace.py): moved, and said so, if another has them."""
    policy = CachePolicy.from_settings(settings)
    identity, where = database.identity(), describe_database(settings)
    namespace = claim_namespace(client, policy, identity, where, take_over=settings.reset_database)
    if namespace.other is not None:
        console.note(render_namespace_moved(policy.key_prefix, namespace.policy.key_prefix, namespace.other))
    return namespace.policy


def respond(
    command: Command,
    cache: CacheAside,
    clients: RedisClients,
    console: Console,
    json_output: bool,
    tracing: TraceSwitch,
) -> None:
    """Answer one command: at once if it needs no cache, else through the cache."""
    if isinstance(command, SetTrace):
        console.answer(render_trace_switch(tracing.set(command.on), command.on is None, json_output))
        return
    if not needs_cache(command):
        reply = reply_to(command, json_output)
        if reply is not None:
            console.answer(reply)
        return
    with console.busy(command):
        perform(command, cache, clients, console, json_output, tracing.on)


def perform(
    command: CacheCommand,
    cache: CacheAside,
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
                    result = cache.lookup(user_id)
                if (warning := warning_of(result)) is not None:
                    console.note(render_warning(result.key, warning))
                text = render_answer(result, json_output, trace, None if isinstance(command, Show) else console.width)
            case Stampede(user_id, count):
                text = render_stampede(cache.stampede(user_id, count), json_output)
            case ShowTtl(user_id):
                text = render_ttl(cache.ttl(user_id), json_output)
            case Delete(user_id):
                text = render_deleted(cache.policy.key(user_id), cache.delete(user_id), json_output)
            case Update(user_id):
                text = render_updated(cache.update(user_id), json_output)
            case Clear():
                text = render_cleared(cache.clear(), json_output)
            case Load(plan):
                text = drive_load(plan, cache, console, json_output)
            case ShowCache():
                text = render_inventory(take_inventory(cache.client, cache.policy), json_output)
            case RunLab(name, as_json):
                text = drive_lab(name, cache, clients, console, json_output or as_json)
            case RunMemoryLab(plan):
                text = drive_memory_lab(plan, cache.policy.key_prefix, console, json_output or plan.json)
            case ShowStats():
                text = render_stats(cache.stats.snapshot(), json_output)
            case _:
                assert_never(command)
    except Exception as error:  # Redis, the database, or a bug: one line instead of a traceback, and the prompt goes on
        text = render_error(describe_failure(error), json_output)
    console.answer(text)


def drive_load(plan: LoadPlan, cache: CacheAside, console: Console, json_output: bool) -> str:
    """Run `load` in workers: a progress note every second, then the summary, printed even when interrupted."""
    users = cache.database.filled_to()  # the database's ids are 1..users
    run = LoadRun(plan, users)
    try:
        console.note(render_load_started(plan, users))
        report = run_load(cache, run, lambda progress: console.note(render_load_progress(progress)))
    except BaseException:  # Ctrl-C or a signal: say what ran, then stop as they always do
        console.answer(render_load_report(run.report(run.now()), json_output))
        raise
    return render_load_report(report, json_output)


def drive_lab(name: str, cache: CacheAside, clients: RedisClients, console: Console, json_output: bool) -> str:
    """Run `lab NAME` in a folder of its own: what it runs, then its runs side by side, printed even if interrupted."""
    report = LabReport(LABS[name])
    console.note(render_lab_started(report))
    with tempfile.TemporaryDirectory(prefix="cache-aside-lab-") as directory:
        try:
            run_lab(name, LabBench(clients, directory, cache.policy.key_prefix), report)
        except LabUnavailable as error:
            return render_error(str(error), json_output)
        except BaseException:  # Ctrl-C or a signal: say what was measured, then stop as they always do
            console.answer(render_lab_report(report, json_output))
            raise
    return render_lab_report(report, json_output)


def drive_memory_lab(plan: MemoryPlan, key_prefix: str, console: Console, json_output: bool) -> str:
    """Run `lab memory` on a server of its own, in a folder of its own; its chart (--plot) once it has measured."""
    if plan.plot is not None and (problem := plot_problem(plan.plot)) is not None:
        return render_error(problem, json_output)  # said before a minute of measuring, not after
    report = MemoryReport(plan)
    console.note(render_memory_started(plan))
    with tempfile.TemporaryDirectory(prefix="cache-aside-lab-") as directory:
        try:
            run_memory_lab(report, directory, key_prefix, console.note)
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


def start_seed(seeder: Seeder, settings: Settings, console: Console) -> BackgroundSeed | None:
    """Seed as SEED_MODE asks: in a background thread (the flow diagram's threaded path), or blocking with a
    progress bar (its sync path)."""
    mode, count = settings.seed_mode, settings.seed_count
    if mode == "none" or count == 0:
        return None
    if mode == "threaded":
        console.note(render_seed_started(mode, count, seeder.batch_size))
        progress = SeedProgress(mode, count, time.perf_counter())
        console.follow_seed(progress)
        return set_redis_with_mock_data_async(seeder, progress, console.seed_ended)
    with console.progress_bar(count, f"Seeding {mode}") as advance:
        progress = SeedProgress(mode, count, time.perf_counter(), on_advance=advance)
        try:
            report = set_redis_with_mock_data(seeder, progress)
        except (*REDIS_ERRORS, DatabaseError) as error:
            console.seed_ended(progress.report(time.perf_counter(), stopped=True), error)
            return None
    console.seed_ended(report, None)
    return None


def stop_seed(background: BackgroundSeed | None, console: Console) -> None:
    """Stop a background seed that is still running, and say how far it got."""
    report = background.stop() if background is not None else None
    if report is not None:  # None: the seed ended and said so already
        console.note(render_seed_outcome(report))


if __name__ == "__main__":
    raise SystemExit(main())
