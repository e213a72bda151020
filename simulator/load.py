"""Simulator layer, pure: the traffic simulator behind `load N`.

Nothing here does I/O or starts anything: `LoadPlan` (what was asked, validated),
`ZipfSampler` (realistic key popularity: id 1 the most asked for, the same ids for the
same seed), `LoadRun` (hands the ids out, tallies every answer, knows when to stop and when
a progress line is due; thread-safe) and `LoadReport` (the summary, with the hit ratio of
each second). The shells, `run_load` in simulator/_async/load.py and its generated twin, only
run lookups through the demo's own `AsyncCacheAside` / `CacheAside` and wait. Nothing here prints.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from simulator.results import LookupResult
from simulator.stats import latency_percentiles_ms

MAX_LOAD_LOOKUPS = 1_000_000
DEFAULT_ZIPF = 1.1  # web caches measure 0.6-1.2 (Breslau et al., 1999); 1.1 makes a few ids very hot
MAX_ZIPF = 5.0
DEFAULT_LOAD_CONCURRENCY = 50
MAX_LOAD_CONCURRENCY = 1000  # the async twin's bound on lookups in flight
DEFAULT_LOAD_SECONDS = 60.0
MIN_LOAD_SECONDS = 0.1
MAX_LOAD_SECONDS = 3600.0
MAX_LOAD_SEED = 2**32 - 1
DEFAULT_LOAD_SEED = 1
PROGRESS_EVERY_SECONDS = 1.0
# Ids with an exact weight each in the sampler's table (800 KB). Past them, up to a billion users,
# an id's weight is the integral of x**-s around it, off by s(s+1)/24k**2 of it: under 2e-10.
ZIPF_TABLE_IDS = 100_000


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What `load` was asked to do: how many lookups, how skewed, how many at once, for how long at most."""

    lookups: int
    zipf: float = DEFAULT_ZIPF
    concurrency: int = DEFAULT_LOAD_CONCURRENCY
    seconds: float = DEFAULT_LOAD_SECONDS
    seed: int = DEFAULT_LOAD_SEED

    def __post_init__(self) -> None:
        bounds = (
            ("lookups", self.lookups, 1, MAX_LOAD_LOOKUPS),
            ("zipf", self.zipf, 0, MAX_ZIPF),
            ("concurrency", self.concurrency, 1, MAX_LOAD_CONCURRENCY),
            ("seconds", self.seconds, MIN_LOAD_SECONDS, MAX_LOAD_SECONDS),
            ("seed", self.seed, 0, MAX_LOAD_SEED),
        )
        for name, value, least, most in bounds:
            if not least <= value <= most:
                raise ValueError(f"{name}={value!r} is outside {least:g}..{most:g}")


# --- key popularity ---


class ZipfSampler:
    """Ids 1..population, id k drawn with a probability proportional to 1 / k**exponent (0: uniform).

    An inverse CDF: a uniform number is looked up (bisect) in the cumulative weights of the
    first ZIPF_TABLE_IDS ids, and past them inverted in closed form on the continuous tail,
    so memory stays bounded whatever DB_SIZE is. No numpy: a draw is a bisect or a power.
    """

    def __init__(self, population: int, exponent: float) -> None:
        if population < 1 or not 0 <= exponent <= MAX_ZIPF:
            raise ValueError(f"a Zipf sampler needs a population >= 1 and an exponent 0..{MAX_ZIPF:g}")
        self.population = population
        self.exponent = exponent
        self._head = min(population, ZIPF_TABLE_IDS)
        self._cumulative = array("d", itertools.accumulate(k**-exponent for k in range(1, self._head + 1)))
        self._head_weight = self._cumulative[-1]
        # The ids past the table, k = head+1..population, weigh the integral of x**-s over [k - 0.5, k + 0.5].
        self._tail_start = self._head + 0.5
        self._tail_weight = self._integral(population + 0.5) if population > self._head else 0.0
        self.total_weight = self._head_weight + self._tail_weight

    def draw(self, uniform: float) -> int:
        """The id at `uniform` (0 <= uniform < 1) of the cumulative distribution."""
        target = uniform * self.total_weight
        if target < self._head_weight:
            return bisect.bisect_right(self._cumulative, target) + 1
        edge = self._inverse_integral(target - self._head_weight)
        if not edge < self.population + 0.5:  # the very end (or past it, by rounding)
            return self.population
        return min(self.population, max(self._head + 1, math.floor(edge + 0.5)))

    def sample(self, source: random.Random) -> int:
        """One id, drawn with `source`'s next number."""
        return self.draw(source.random())

    def _integral(self, end: float) -> float:
        """The weight of the continuous tail from its start to `end`."""
        start, rise = self._tail_start, 1 - self.exponent
        if abs(rise) < 1e-12:
            return math.log(end / start)
        return float((end**rise - start**rise) / rise)

    def _inverse_integral(self, weight: float) -> float:
        """Where the tail's weight from its start reaches `weight`."""
        start, rise = self._tail_start, 1 - self.exponent
        if abs(rise) < 1e-12:
            return start * math.exp(weight)
        base = start**rise + weight * rise
        return float(base ** (1 / rise)) if base > 0 else math.inf  # <= 0: rounding at the tail's far end


# --- the running tally ---


class LoadEnd(StrEnum):
    """Why a load ended."""

    COMPLETED = "completed"
    TIME_LIMIT = "time limit"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class SecondTally:
    """The lookups answered in one second of a load, and how many of them the cache answered."""

    lookups: int
    hits: int

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups in that second; None when none ended in it."""
        return self.hits / self.lookups if self.lookups else None


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """A load so far: the line printed every second while it runs."""

    done: int
    requested: int
    hits: int
    errors: int
    elapsed_seconds: float
    in_flight: int = 0  # lookups handed out that have not ended yet
    ending: LoadEnd | None = None  # why no other lookup starts (the time limit, Ctrl-C): those in flight are ending

    @property
    def stopping(self) -> bool:
        """True once no other lookup starts: the lookups in flight are ending."""
        return self.ending is not None

    @property
    def hit_ratio(self) -> float | None:
        """Hits over the lookups answered so far."""
        return self.hits / self.done if self.done else None

    @property
    def rate(self) -> float:
        """Lookups answered per second so far."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The summary of a load: every count is of answers measured, every time one measured."""

    plan: LoadPlan
    population: int
    lookups: int  # answered (hits + misses); the lookups that failed are `errors`
    hits: int
    misses: int
    database_reads: int  # lookups that read the database themselves
    shared: int  # lookups answered by another lookup's database read: stampedes absorbed
    degraded: int  # answered from the database because the cache was unavailable
    errors: int
    first_error: Exception | None  # worded by the prompt
    elapsed_seconds: float
    ended: LoadEnd
    by_second: tuple[SecondTally, ...]
    hit_latency_ms: dict[str, float | None]
    miss_latency_ms: dict[str, float | None]

    @property
    def saved(self) -> int:
        """Lookups answered without reading the database: cache hits, and misses that shared another's read."""
        return self.lookups - self.database_reads

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups answered, or None before any."""
        return self.hits / self.lookups if self.lookups else None

    @property
    def rate(self) -> float:
        """Lookups answered per second, over the whole load."""
        return self.lookups / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def hit_ratio_by_second(self) -> list[float | None]:
        """The hit ratio of each second of the run, from its start (None: no lookup ended in that second)."""
        return [second.hit_ratio for second in self.by_second]


class LoadRun:
    """One load as it runs: the ids to look up, the answers so far, and when to stop. Thread-safe.

    Workers call `next_id` until it says None (all handed out, the time limit reached, or a
    stop requested), and `record` or `failed` for each answer. Ids come from one seeded
    stream, so a seed gives the same ids in the same order whatever the concurrency.
    """

    def __init__(
        self,
        plan: LoadPlan,
        population: int,
        started: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.plan = plan
        self.population = population
        self.started = clock() if started is None else started  # a reading of `clock`, as every time here is
        self._clock = clock
        self._sampler = ZipfSampler(population, plan.zipf)
        self._source = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._handed_out = 0
        self._ended: LoadEnd | None = None
        self._counts = {"hits": 0, "misses": 0, "database_reads": 0, "shared": 0, "degraded": 0, "errors": 0}
        self._first_error: Exception | None = None
        self._seconds: list[list[int]] = []  # [lookups, hits] per second since `started`
        self._hit_seconds = array("d")  # 8 bytes a sample: a million lookups keep 8 MB
        self._miss_seconds = array("d")
        self._next_progress = self.started + PROGRESS_EVERY_SECONDS

    @property
    def workers(self) -> int:
        """How many lookups run at once."""
        return self.plan.concurrency

    def now(self) -> float:
        """A reading of the run's clock: what its progress and its report are measured against."""
        return self._clock()

    def next_id(self) -> int | None:
        """The next id to look up, or None: the load is over for this worker."""
        with self._lock:
            if self._handed_out >= self.plan.lookups:
                return None
            if self._ended is None and self._clock() - self.started >= self.plan.seconds:
                self._ended = LoadEnd.TIME_LIMIT
            if self._ended is not None:
                return None
            self._handed_out += 1
            return self._sampler.sample(self._source)

    def request_stop(self, why: LoadEnd = LoadEnd.STOPPED) -> None:
        """Hand out no more ids; the lookups running end and are counted (the first reason given stays)."""
        with self._lock:
            self._ended = self._ended or why

    @property
    def stop_requested(self) -> bool:
        """True once the load hands out no more ids before all are done."""
        return self._ended is not None

    def record(self, result: LookupResult) -> None:
        """Count one answer, in the second it ended."""
        second = max(0, int(self._clock() - self.started))
        hit = result.source.from_cache
        with self._lock:
            self._counts["hits" if hit else "misses"] += 1
            self._counts["database_reads"] += result.read_the_database
            self._counts["shared"] += result.shared
            self._counts["degraded"] += result.degraded
            (self._hit_seconds if hit else self._miss_seconds).append(result.elapsed_seconds)
            while len(self._seconds) <= second:
                self._seconds.append([0, 0])
            self._seconds[second][0] += 1
            self._seconds[second][1] += hit

    def failed(self, error: Exception) -> None:
        """Count one lookup that raised `error` instead of answering (the first is kept for the summary)."""
        with self._lock:
            self._counts["errors"] += 1
            self._first_error = self._first_error or error

    def seconds_to_next_progress(self, now: float) -> float:
        """How long a shell may wait before the next progress line is due."""
        return max(0.0, self._next_progress - now)

    def progress_due(self, now: float) -> LoadProgress | None:
        """The progress line, once a second: None until one is due."""
        if now < self._next_progress:
            return None
        self._next_progress = now + PROGRESS_EVERY_SECONDS
        return self.progress(now)

    def progress(self, now: float) -> LoadProgress:
        """The load so far, as of `now`."""
        with self._lock:
            hits, misses, errors = self._counts["hits"], self._counts["misses"], self._counts["errors"]
            done, in_flight = hits + misses, max(0, self._handed_out - hits - misses - errors)
            return LoadProgress(done, self.plan.lookups, hits, errors, now - self.started, in_flight, self._ended)

    def report(self, now: float) -> LoadReport:
        """The summary as of `now` (a reading of the run's clock)."""
        with self._lock:
            counts = dict(self._counts)
            hit_seconds, miss_seconds = sorted(self._hit_seconds), sorted(self._miss_seconds)
            by_second = tuple(SecondTally(lookups, hits) for lookups, hits in self._seconds)
            ended = self._ended or LoadEnd.COMPLETED
            first_error = self._first_error
        return LoadReport(
            plan=self.plan,
            population=self.population,
            lookups=counts["hits"] + counts["misses"],
            hits=counts["hits"],
            misses=counts["misses"],
            database_reads=counts["database_reads"],
            shared=counts["shared"],
            degraded=counts["degraded"],
            errors=counts["errors"],
            first_error=first_error,
            elapsed_seconds=now - self.started,
            ended=ended,
            by_second=by_second,
            hit_latency_ms=latency_percentiles_ms(hit_seconds),
            miss_latency_ms=latency_percentiles_ms(miss_seconds),
        )


def _no_progress(progress: LoadProgress) -> None:
    """The default listener: progress goes nowhere."""
