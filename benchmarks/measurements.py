"""Benchmark, pure: the raw record of one run (`Measurements`), filled by the measuring modules, read by `figures.py`.

In seconds unless a name says otherwise, every sample kept as it was taken, round by round;
`LoadOutcome` is what one contender's concurrent lookups cost. Nothing here measures, and
nothing here summarises: medians, percentiles and ratios are `figures.py`'s alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.contenders import Answer
from labs.catalog import LabReport
from labs.memory import MemoryReport


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """What one contender's concurrent lookups cost: wall time, failures, and database reads."""

    seconds: float
    errors: int = 0  # lookups that raised
    loader_calls: int = 0  # database reads (`fetch` calls) while the lookups ran
    degraded: int = 0  # answers given without the cache (only ours says so)
    wrong: int = 0  # answers that differ from the database's record
    logged: int = 0  # cache failures the library logged and answered past (as a miss) instead of raising

    @classmethod
    def of(
        cls,
        seconds: float,
        ids: Sequence[int],
        outcomes: Sequence[Answer | BaseException],
        expected: dict[int, str],
        loader_calls: int,
        logged: int = 0,
    ) -> LoadOutcome:
        """Count the failures and wrong answers among the outcomes of lookups of `ids`."""
        answers = [(user_id, outcome) for user_id, outcome in zip(ids, outcomes, strict=True)]
        found = [(user_id, outcome) for user_id, outcome in answers if not isinstance(outcome, BaseException)]
        return cls(
            seconds,
            errors=len(answers) - len(found),
            loader_calls=loader_calls,
            degraded=sum(answer.degraded for _, answer in found),
            wrong=sum(answer.value != expected.get(user_id) for user_id, answer in found),
            logged=logged,
        )


@dataclass
class Measurements:
    """Raw measurements of one run, in seconds unless named otherwise."""

    setup: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, list[float]] = field(default_factory=dict)
    redis_benchmark_get: dict[str, float] = field(default_factory=dict)
    misses: dict[str, list[float]] = field(default_factory=dict)
    scale: dict[str, list[float]] = field(default_factory=dict)
    hits_during_seed: dict[str, list[float]] = field(default_factory=dict)
    startup: dict[str, list[float]] = field(default_factory=dict)
    topologies: dict[str, list[float]] = field(default_factory=dict)
    record_bytes: int = 0
    # the run's own database: {"users", "seconds", "bytes"} of filling the SQLite file (and of PostgreSQL's)
    fill: dict[str, dict[str, float]] = field(default_factory=dict)
    # "hit-sync", "sqlite-async", ...: a hit against a read of a random user, no simulated delay
    reads: dict[str, list[float]] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)  # a database's rows left out, and why
    # the traffic simulator from an empty cache, per twin: the hit ratio of each second of the run; and its summary
    traffic: dict[str, list[float]] = field(default_factory=dict)
    traffic_summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    # round trips one lookup makes ("hit-single", "miss-single", "hit-cluster", "miss-cluster"), counted by a proxy
    round_trips: dict[str, int] = field(default_factory=dict)
    # per contender ("ours-async", "cashews", ...): 100 lookups of one missing id at once, and the mixed load
    stampede: dict[str, list[LoadOutcome]] = field(default_factory=dict)
    load: dict[str, list[LoadOutcome]] = field(default_factory=dict)
    # a peer's hit and, interleaved with it, a raw GET of the same key on a default client: "cashews", "cashews:raw"
    peer_hits: dict[str, list[float]] = field(default_factory=dict)
    peers: dict[str, str | None] = field(default_factory=dict)  # library: its version, None when not installed
    peer_failures: dict[str, str] = field(default_factory=dict)  # contender: why its rows are missing
    labs: dict[str, LabReport] = field(default_factory=dict)  # each lab's report, as the prompt's `lab` prints it
    memory: MemoryReport | None = None  # lab memory's curves, as the prompt's `lab memory` prints them
