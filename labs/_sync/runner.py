# Written by scripts/unasync.py from labs/_async/runner.py: edit that file, then run the script.
"""Labs, I/O shell: each lab's scenario, run through the demo's own AsyncCacheAside, written once for both twins.

A lab runs its scenario once per run of its spec (labs/catalog.py), each time with a fresh
database of its own, a namespace of its own (removed when the run ends) and the one switch the
run changes; it measures what happened and hands labs/catalog.py the figures. Concurrency goes
through the backend (tasks here, threads in the generated twin), so "five processes" are five
caches with clients of their own and no shared state. scripts/unasync.py writes the blocking twin.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from config.database import SqliteConnector
from config.redis import SyncClient
from labs.bench import (
    GATE_SECONDS,
    LAB_SEED,
    LAB_USERS,
    Expiry,
    LabBench,
    Outage,
    lab_prefix,
    milliseconds,
    most_within,
    per_step,
    proxied_url,
    remove_database_files,
    unavailable,
    upstream_of,
)
from labs.catalog import LabReport, LabRun, RunSpec
from labs.proxy import CuttableProxy, EmbeddedOnAPort
from simulator._sync import backend
from simulator._sync.cache_aside import CacheAside
from simulator._sync.database import Database
from simulator._sync.seeding import Seeder
from simulator.entries import read_cached
from simulator.policy import CachePolicy
from simulator.records import UserRecord
from simulator.results import LookupResult, Source
from simulator.seeding import SeedProgress

T = TypeVar("T")


class LabUnavailable(Exception):
    """This lab cannot run on this Redis; the message says why, in one line."""


def run_lab(name: str, bench: LabBench, report: LabReport) -> LabReport:
    """Run every run of the lab into `report` (so Ctrl-C leaves what was measured), removing its keys each time."""
    if (why := unavailable(name, bench.clients.settings)) is not None:
        raise LabUnavailable(why)
    started = time.perf_counter()
    try:
        for index, run in enumerate(report.spec.runs):
            backend.stop_if_cancelled()
            prefix = lab_prefix(bench.key_prefix, name, index)
            try:
                report.runs.append(RUNS[name](bench, run, prefix))
            finally:
                remove_keys(bench.clients.sync_client(), prefix)
    except BaseException:
        report.interrupted = True
        raise
    finally:
        report.seconds = time.perf_counter() - started
    return report


# --- what the labs share ---


class MeteredDatabase(Database):
    """A lab's own database: each read is counted, timed and, when the lab asks, held at a gate."""

    def __init__(self, path: str, latency_seconds: float) -> None:
        super().__init__(SqliteConnector(path, 5.0), latency_seconds)
        self.path = path
        self.reading, self.most = 0, 0  # reads under way now, and the most at once
        self.read_at: list[float] = []  # when each read started (perf_counter)
        self.held = backend.Event()  # set when a read reaches the gate
        self.release = backend.Event()  # the gate
        self._hold_next = False
        self._lock = threading.Lock()

    def hold_next_read(self) -> None:
        """The next read, once done, waits at the gate until `release` is set."""
        self._hold_next = True

    def fetch(self, user_id: int) -> UserRecord | None:
        with self._lock:
            self.reading += 1
            self.most = max(self.most, self.reading)
            self.read_at.append(time.perf_counter())
        try:
            record = super().fetch(user_id)
        finally:
            with self._lock:
                self.reading -= 1
        if self._hold_next:
            self._hold_next = False
            self.held.set()
            self.release.wait(GATE_SECONDS)
        return record


def lab_database(bench: LabBench, latency: float) -> MeteredDatabase:
    """A fresh database of LAB_USERS users in the bench's folder, each read `latency` seconds slow."""
    database = MeteredDatabase(os.path.join(bench.directory, f"lab-{uuid.uuid4().hex}.db"), latency)
    database.fill(database.filled_to(), LAB_USERS)
    return database


def dispose(database: MeteredDatabase) -> None:
    """Close a lab's database and remove its file."""
    database.close()
    backend.to_thread(remove_database_files, database.path)


def lab_policy(prefix: str, run: RunSpec, **settings: Any) -> CachePolicy:
    """The demo's default policy in the lab's namespace, with the run's switch and the scenario's settings."""
    return dataclasses.replace(CachePolicy(key_prefix=prefix, **settings), **run.switches)


def timed(call: Callable[[], LookupResult]) -> tuple[float, LookupResult]:
    """A lookup and how long it took, in seconds."""
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def together(calls: Sequence[Callable[[], T]], stop: backend.Event) -> list[T | Exception]:
    """Run the calls at once: each one's result, or the exception it ended with. On every way out (Ctrl-C too)
    `stop` is set and every call has ended before this returns, so none writes a key after the lab removed them."""
    workers = [backend.start(call, "lab") for call in calls]
    outcomes: list[T | Exception] = []
    try:
        for worker in workers:
            try:
                outcomes.append(worker.result())
            except Exception as error:  # a lab counts a failed lookup; it does not end the lab
                outcomes.append(error)
        backend.stop_if_cancelled()
    finally:
        stop.set()
        backend.stop_all(workers, None)
    return outcomes


def succeeded(outcomes: list[T | Exception]) -> list[T]:
    """The results of calls that must not fail (a lab's traffic: a lookup answers even without Redis), or the
    first exception, raised: a bug, said at once rather than measured as nothing."""
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return cast(list[T], outcomes)


def remove_keys(client: SyncClient, prefix: str) -> None:
    """Delete every key of a lab's namespace (SCAN its prefix, checked exactly; nothing else is touched)."""
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        if (key.decode() if isinstance(key, bytes) else key).startswith(prefix):
            client.delete(key)  # SCAN still returns every key there all along


# --- the labs ---


def stampede(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """Many lookups of one cold id at once, from several "processes": caches with clients of their own."""
    size = bench.scenarios.stampede
    database = lab_database(bench, size.latency)
    processes = [bench.clients.sibling() for _ in range(size.processes)]
    try:
        policy = lab_policy(prefix, run)
        caches = [CacheAside(process.sync_client(), database, policy) for process in processes]
        calls = [
            functools.partial(timed, functools.partial(cache.lookup, size.user_id))
            for cache in caches
            for _ in range(size.lookups_each)
        ]
        outcomes = together(calls, backend.Event())
        latencies = [outcome[0] for outcome in outcomes if isinstance(outcome, tuple)]
        figures = {
            "lookups": len(calls),
            "database reads": database.reads.value,
            "most reads at once": database.most,
            "latency p50 (ms)": milliseconds(latencies, 0.5),
            "latency p99 (ms)": milliseconds(latencies, 0.99),
            "errors": len(calls) - len(latencies),
        }
    finally:
        for process in processes:
            process.close()
        dispose(database)
    return LabRun(run.label, run.switches, figures)


def race(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """The stale-set race, step by step: a reader's read held while a writer commits and deletes, then released."""
    size = bench.scenarios.race
    database = lab_database(bench, 0.0)
    client = bench.clients.sync_client()
    try:
        cache = CacheAside(client, database, lab_policy(prefix, run, ttl_seconds=size.ttl))
        user_id, key = size.user_id, cache.policy.key(size.user_id)
        database.hold_next_read()
        reader = backend.start(functools.partial(cache.lookup, user_id), "lab-reader")  # reads version 0...
        try:
            if not database.held.wait(GATE_SECONDS):
                raise LabUnavailable("the lab's reader never reached the database")
            updated = cache.update(user_id)  # ...the writer commits version 1 and deletes the key...
        except BaseException:  # Ctrl-C: the reader ends before the lab's keys are removed
            database.release.set()
            backend.stop_all([reader], None)
            raise
        database.release.set()
        reader.result()  # ...and the reader stores what it read, if its store is let through
        left = read_cached(client.get(key), user_id)
        remaining_ms = client.pttl(key)
        answered = cache.lookup(user_id)
        committed = updated.record.version if updated.record is not None else None
        stale = left.record is not None and committed is not None and left.record.version < committed
        figures = {
            "version in the database": committed,
            "version left in the cache": left.record.version if left.record is not None else None,
            "version the next lookup answers": answered.record.version if answered.record is not None else None,
            "stale for (s)": round(remaining_ms / 1000) if stale and remaining_ms > 0 else 0,
        }
    finally:
        dispose(database)
    return LabRun(run.label, run.switches, figures)


def expiry(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """Keys written at once with one TTL, then steady traffic over them: when do the misses reach the database?"""
    size = bench.scenarios.expiry
    database = lab_database(bench, 0.0)
    client = bench.clients.sync_client()
    try:
        policy = lab_policy(prefix, run, ttl_seconds=size.ttl, random=random.Random(LAB_SEED).random)
        cache = CacheAside(client, database, policy)
        written = time.perf_counter()
        Seeder(client, database, policy, size.keys).seed_pipelined(SeedProgress("pipelined", size.keys, written))
        expiries = expiring_in(client, [policy.key(user_id) for user_id in range(1, size.keys + 1)])
        backend.stop_if_cancelled()
        end = written + size.seconds
        stop = backend.Event()
        calls = [
            functools.partial(traffic, cache, size, random.Random(LAB_SEED + each), end, stop)
            for each in range(size.workers)
        ]
        succeeded(together(calls, stop))
        series = per_step([moment - written for moment in database.read_at], size.step, size.seconds)
        figures = {
            "keys": size.keys,
            f"most keys expiring within {size.step:g} s": most_within(expiries, size.step),
            "database reads": len(database.read_at),
            f"peak reads in {size.step:g} s": max(count for _, count in series),
        }
    finally:
        dispose(database)
    return LabRun(run.label, run.switches, figures, series)


def expiring_in(client: SyncClient, keys: list[str]) -> list[float]:
    """The seconds each key has left, read in one pipeline (one moment for all)."""
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.pttl(key)
    return [left / 1000 for left in pipeline.execute() if left >= 0]


def traffic(cache: CacheAside, size: Expiry, source: random.Random, end: float, stop: backend.Event) -> None:
    """Steady lookups of the lab's keys, drawn from `source`, until `end` (perf_counter) or `stop`."""
    while time.perf_counter() < end and not stop.is_set():
        backend.stop_if_cancelled()
        cache.lookup(source.randint(1, size.keys))
        backend.sleep(0.005)  # a steady rate, not a flood: about 200 lookups a second a worker


def negative(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """An enumeration of ids that do not exist, several rounds over them."""
    size = bench.scenarios.negative
    database = lab_database(bench, size.latency)
    try:
        cache = CacheAside(bench.clients.sync_client(), database, lab_policy(prefix, run))
        missing = range(LAB_USERS + 1, LAB_USERS + size.ids + 1)
        results = [cache.lookup(user_id) for _ in range(size.rounds) for user_id in missing]
        figures = {
            "lookups": len(results),
            "database reads": database.reads.value,
            "answered from the cache": sum(result.source is Source.NEGATIVE_CACHE for result in results),
        }
    finally:
        dispose(database)
    return LabRun(run.label, run.switches, figures)


def refresh(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """A hot key with a short TTL under steady traffic, for a few of its lives."""
    size = bench.scenarios.refresh
    policy = lab_policy(
        prefix, run, ttl_seconds=size.ttl, early_refresh_beta=size.beta, random=random.Random(LAB_SEED).random
    )
    database = lab_database(bench, size.latency)
    cache = CacheAside(bench.clients.sync_client(), database, policy)
    try:
        cache.lookup(size.user_id)  # cached, and XFetch knows what a read costs
        reads_before, end = database.reads.value, time.perf_counter() + size.seconds
        stop = backend.Event()
        calls = [functools.partial(hot_traffic, cache, size.user_id, end, stop) for _ in range(size.workers)]
        outcomes = [sample for worker in succeeded(together(calls, stop)) for sample in worker]
        paid = [elapsed for elapsed, result in outcomes if not result.source.from_cache or result.shared]
        figures = {
            "lookups": len(outcomes),
            "lookups that paid a miss": len(paid),
            "latency p50 (ms)": milliseconds([elapsed for elapsed, _ in outcomes], 0.5),
            "latency p99 (ms)": milliseconds([elapsed for elapsed, _ in outcomes], 0.99),
            "slowest (ms)": milliseconds([elapsed for elapsed, _ in outcomes], 1.0),
            "database reads": database.reads.value - reads_before,
        }
    finally:
        cache.close()  # its early refreshes end before the lab's keys are removed
        dispose(database)
    return LabRun(run.label, run.switches, figures)


def hot_traffic(cache: CacheAside, user_id: int, end: float, stop: backend.Event) -> list[tuple[float, LookupResult]]:
    """Lookups of the hot key until `end` or `stop`, each with how long it took."""
    samples = []
    while time.perf_counter() < end and not stop.is_set():
        backend.stop_if_cancelled()
        samples.append(timed(functools.partial(cache.lookup, user_id)))
        backend.sleep(0.01)
    return samples


def outage(bench: LabBench, run: RunSpec, prefix: str) -> LabRun:
    """The lab's own road to Redis cut for a while (a proxy it controls), under steady lookups."""
    size = bench.scenarios.outage
    embedded = EmbeddedOnAPort(bench.clients.embedded_server()).start() if bench.clients.embedded else None
    upstream = embedded.address if embedded is not None else upstream_of(bench.clients.settings.redis_url)
    proxy = CuttableProxy(upstream).start()
    settings = dataclasses.replace(
        bench.clients.settings,
        redis_url=proxied_url(bench.clients.settings.redis_url if embedded is None else "redis://", proxy.port),
        redis_timeout_seconds=size.timeout,
    )
    road = bench.clients.sibling(settings)
    database = lab_database(bench, size.latency)
    try:
        policy = lab_policy(prefix, run, cooldown_seconds=size.cooldown)
        cache = CacheAside(road.sync_client(), database, policy)
        figures = outage_figures(size, outage_traffic(cache, size, proxy))
    finally:
        road.close()
        proxy.close()
        if embedded is not None:
            embedded.close()
        dispose(database)
    return LabRun(run.label, run.switches, figures)


def outage_traffic(cache: CacheAside, size: Outage, proxy: CuttableProxy) -> list[tuple[float, float, str]]:
    """One lookup after another before, during and after the cut: (when, how long, "cache"/"database"/"error")."""
    for user_id in range(1, size.ids + 1):
        cache.lookup(user_id)  # the lab's ids in the cache before the cut
    started = time.perf_counter()
    cut, restored = started + size.before, started + size.before + size.outage
    end, samples, user_id = restored + size.after, [], 0
    while (now := time.perf_counter()) < end:
        backend.stop_if_cancelled()
        if cut <= now < restored:
            proxy.cut()  # the server seems frozen: requests get no reply
        else:
            proxy.restore()
        user_id = user_id % size.ids + 1
        try:
            elapsed, result = timed(functools.partial(cache.lookup, user_id))
            answer = "cache" if result.source.from_cache and not result.degraded else "database"
        except Exception:  # a lookup that failed is counted, and the next one goes on
            elapsed, answer = time.perf_counter() - now, "error"
        samples.append((now - started, elapsed, answer))
        backend.sleep(0.01)
    return samples


def outage_figures(size: Outage, samples: list[tuple[float, float, str]]) -> dict[str, int | float | None]:
    """What the lookups during the outage cost, and how soon the cache was used again after it."""
    cut, restored = size.before, size.before + size.outage
    during = [(elapsed, answer) for moment, elapsed, answer in samples if cut <= moment < restored]
    back = next((moment - restored for moment, _, answer in samples if moment >= restored and answer == "cache"), None)
    return {
        "lookups during the outage": len(during),
        "p50 during the outage (ms)": milliseconds([elapsed for elapsed, _ in during], 0.5),
        "p99 during the outage (ms)": milliseconds([elapsed for elapsed, _ in during], 0.99),
        "answered": sum(answer != "error" for _, answer in during),
        "errors": sum(answer == "error" for _, answer in during),
        "back on the cache after (s)": None if back is None else round(back, 2),
    }


RUNS: dict[str, Callable[[LabBench, RunSpec, str], LabRun]] = {
    "stampede": stampede,
    "race": race,
    "expiry": expiry,
    "negative": negative,
    "refresh": refresh,
    "outage": outage,
}
