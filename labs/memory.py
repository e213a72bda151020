"""Labs, pure: `lab memory`, how much memory buys how much hit ratio, on a redis-server of the lab's own.

One seeded Zipf trace of lookups is replayed through the demo's own lookup against a private
redis-server, once per eviction policy and memory size (`maxmemory`: a share of the working
set, the bytes Redis reports for every record cached). On the same trace labs/curves.py
computes what exact LRU and Belady's optimum would hit with room for as many records as
those bytes hold, at the measured bytes a record. The first quarter of the trace warms the
cache and is not counted. This module holds the plan (and reads it from the prompt's words),
the rows measured so far, and the one-line reading of them; the runner in
labs/_async/memory.py (and its generated twin) does the I/O.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from labs.curves import lru_hit_ratios, optimal_hit_ratios
from simulator.load import DEFAULT_ZIPF, MAX_LOAD_SEED, MAX_ZIPF, ZipfSampler

# The policies that evict (noeviction refuses writes instead). Every record the demo stores has a TTL,
# so the volatile-* ones choose among the same keys as their allkeys-* twins; volatile-ttl is shown
# because it is the one that ignores how often a key is read.
EVICTING = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-ttl",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
)
DEFAULT_POLICIES = EVICTING[:4]
DEFAULT_SIZES = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0)  # % of the working set
MAX_SIZES = 20
LOOKUPS = (1_000, 5_000, 1_000_000)  # least, default, most
USERS = (100, 5_000, 1_000_000)
SAMPLES = (1, 5, 64)  # maxmemory-samples: Redis's bounds and its default
MONOTONE_TOLERANCE = 0.02  # how far a sampled policy's hit ratio may dip when memory grows (run-to-run noise)
MEMORY_USAGE = (
    "lab memory [--zipf 0-5] [--lookups 1,000-1,000,000] [--users 100-1,000,000] [--seed n] "
    "[--policies allkeys-lru,allkeys-lfu,...] [--sizes 1,2,5,10,...] [--samples 1-64] [--plot FILE.svg] [--json]"
)
MEMORY_SUMMARY = (
    "how much memory buys how much hit ratio: Redis's eviction policies from 1% to 100% of the working set, "
    "next to exact LRU and the optimum, on a redis-server of its own (about a minute)"
)
_NUMBER = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """What `lab memory` replays: the trace (users, lookups, Zipf exponent, seed), the policies and the sizes."""

    zipf: float = DEFAULT_ZIPF
    lookups: int = LOOKUPS[1]
    users: int = USERS[1]
    seed: int = 1
    policies: tuple[str, ...] = DEFAULT_POLICIES
    sizes: tuple[float, ...] = DEFAULT_SIZES  # % of the working set, ascending
    samples: int = SAMPLES[1]
    plot: str | None = None  # an SVG file to draw the curves in
    json: bool = False

    def __post_init__(self) -> None:
        checks = (
            ("--zipf", 0 <= self.zipf <= MAX_ZIPF),
            ("--lookups", LOOKUPS[0] <= self.lookups <= LOOKUPS[2]),
            ("--users", USERS[0] <= self.users <= USERS[2]),
            ("--seed", 0 <= self.seed <= MAX_LOAD_SEED),
            ("--samples", SAMPLES[0] <= self.samples <= SAMPLES[2]),
            ("--policies", bool(self.policies) and all(policy in EVICTING for policy in self.policies)),
            ("--sizes", 0 < len(self.sizes) <= MAX_SIZES and all(0 < size <= 100 for size in self.sizes)),
        )
        for name, fine in checks:
            if not fine:
                raise ValueError(f"{name} is out of range")

    @property
    def warmup(self) -> int:
        """The lookups that only warm the cache: the first quarter of the trace."""
        return self.lookups // 4

    def trace(self) -> list[int]:
        """The lookups every run replays: ids 1..users drawn with Zipf popularity from `seed`."""
        sampler, source = ZipfSampler(self.users, self.zipf), random.Random(self.seed)
        return [sampler.sample(source) for _ in range(self.lookups)]


def parse_memory_plan(arguments: list[str]) -> MemoryPlan | str:
    """The plan in `lab memory`'s options (`--name value` or `--name=value`, once each), or what is wrong, one line."""
    options: dict[str, Any] = {}
    rest = list(arguments)
    while rest:
        name, equals, value = rest[0].partition("=")
        name = name.lower()
        if name == "--json" and not equals:
            options["json"], rest = True, rest[1:]
            continue
        key = name.removeprefix("--")
        if key not in _READERS or key in options:
            return f"{rest[0]} is not a lab memory option" + (" (it was given twice)" if key in options else "")
        if not equals:
            value, rest = (rest[1], rest[2:]) if len(rest) > 1 else ("", [])
        else:
            rest = rest[1:]
        read = _READERS[key](value)
        if read is None:
            return f"--{key} takes {_TAKES[key]}"
        options[key] = read
    try:
        return MemoryPlan(**options)
    except ValueError as error:
        return str(error)


def _whole(least: int, most: int) -> Any:
    def read(text: str) -> int | None:
        number = _number(text)
        return int(number) if number is not None and number.is_integer() and least <= number <= most else None

    return read


def _number(text: str) -> float | None:
    digits = text.replace(",", "")
    return float(digits) if _NUMBER.fullmatch(digits) else None


def _zipf(text: str) -> float | None:
    number = _number(text)
    return number if number is not None and number <= MAX_ZIPF else None


def _policies(text: str) -> tuple[str, ...] | None:
    names = tuple(dict.fromkeys(name.strip().lower() for name in text.split(",") if name.strip()))
    return names if names and all(name in EVICTING for name in names) else None


def _sizes(text: str) -> tuple[float, ...] | None:
    numbers = [_number(part.strip().removesuffix("%")) for part in text.split(",") if part.strip()]
    if not numbers or len(numbers) > MAX_SIZES or any(n is None or not 0 < n <= 100 for n in numbers):
        return None
    return tuple(sorted({float(n) for n in numbers if n is not None}))


def _plot(text: str) -> str | None:
    return text if text.lower().endswith(".svg") and len(text) > 4 else None


_READERS: dict[str, Any] = {
    "zipf": _zipf,
    "lookups": _whole(*LOOKUPS[::2]),
    "users": _whole(*USERS[::2]),
    "seed": _whole(0, MAX_LOAD_SEED),
    "policies": _policies,
    "sizes": _sizes,
    "samples": _whole(*SAMPLES[::2]),
    "plot": _plot,
}
_TAKES = {
    "zipf": f"a number from 0 to {MAX_ZIPF:g}",
    "lookups": f"a whole number from {LOOKUPS[0]:,} to {LOOKUPS[2]:,}",
    "users": f"a whole number from {USERS[0]:,} to {USERS[2]:,}",
    "seed": f"a whole number from 0 to {MAX_LOAD_SEED:,}",
    "policies": f"policies separated by commas, of {', '.join(EVICTING)}",
    "sizes": f"up to {MAX_SIZES} percentages of the working set, above 0 and at most 100, separated by commas",
    "samples": f"a whole number from {SAMPLES[0]} to {SAMPLES[2]}",
    "plot": "a file name ending in .svg",
}


# --- what it measured ---


@dataclass
class SizeRow:
    """One memory size: its bytes, the records they hold, and each curve's hit ratio there."""

    percent: float
    bytes: int
    records: int  # how many records the bytes hold, at the measured bytes a record: the exact curves' capacity
    exact_lru: float
    optimum: float
    hit_ratio: dict[str, float] = field(default_factory=dict)  # policy -> measured on Redis
    held: dict[str, int] = field(default_factory=dict)  # policy -> the records Redis held when the trace ended


@dataclass
class MemoryReport:
    """`lab memory` as it ran: the server, the working set it measured, and the rows measured so far."""

    plan: MemoryPlan
    server: str = ""  # the private server's version
    working_set_bytes: int = 0  # used_memory with every record cached, less used_memory with none
    rows: list[SizeRow] = field(default_factory=list)
    distinct: int = 0  # the ids the trace asks for: more room than they take cannot hit more
    ceiling: float = 0.0  # the hit ratio with room for every record: all but each id's first lookup
    unavailable: int = 0  # lookups that found Redis unavailable (each counted as the miss it was)
    seconds: float = 0.0
    interrupted: bool = False
    chart: str | None = None  # the SVG drawn, if any

    @property
    def bytes_per_record(self) -> float:
        return self.working_set_bytes / self.plan.users if self.plan.users else 0.0

    def size_rows(self, trace: list[int]) -> list[SizeRow]:
        """The rows for the plan's sizes, with exact LRU and the optimum on `trace` (Redis's columns to come)."""
        sizes = [round(self.working_set_bytes * percent / 100) for percent in self.plan.sizes]
        capacities = [int(size // self.bytes_per_record) if self.bytes_per_record else 0 for size in sizes]
        lru = lru_hit_ratios(trace, [*capacities, self.plan.users], self.plan.warmup)
        best = optimal_hit_ratios(trace, capacities, self.plan.warmup)
        self.distinct, self.ceiling = len(set(trace)), lru.pop()
        return [
            SizeRow(percent, size, capacity, exact, optimum)
            for percent, size, capacity, exact, optimum in zip(
                self.plan.sizes, sizes, capacities, lru, best, strict=True
            )
        ]

    @property
    def reading(self) -> str:
        """One line on what the curve says, from the first policy's measured hit ratios."""
        policy = self.plan.policies[0]
        measured = [row for row in self.rows if policy in row.hit_ratio]
        if not measured:
            return "Nothing was measured."
        near = min(measured, key=lambda row: abs(math.log(row.percent / 10)))
        said = (
            f"With Zipf {self.plan.zipf:g}, {near.percent:g}% of the memory ({human_bytes(near.bytes)}) answers "
            f"{near.hit_ratio[policy]:.1%} of lookups on {policy} (exact LRU {near.exact_lru:.1%}, "
            f"the optimum {near.optimum:.1%})"
        )
        bigger = [row for row in measured if row.percent > near.percent]
        if not bigger:
            return said + "."
        double = next((row for row in bigger if row.percent == 2 * near.percent), bigger[0])
        change = "doubling it" if double.percent == 2 * near.percent else f"going to {double.percent:g}%"
        points = (double.hit_ratio[policy] - near.hit_ratio[policy]) * 100
        return f"{said}; {change} {'adds' if points >= 0 else 'loses'} {abs(points):.1f} points."

    def as_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "lab": "memory",
            "plan": {
                "zipf": plan.zipf,
                "lookups": plan.lookups,
                "warmup": plan.warmup,
                "users": plan.users,
                "seed": plan.seed,
                "policies": list(plan.policies),
                "sizes_percent": list(plan.sizes),
                "maxmemory_samples": plan.samples,
            },
            "server": self.server,
            "working_set_bytes": self.working_set_bytes,
            "bytes_per_record": round(self.bytes_per_record, 1),
            "sizes": [
                {
                    "percent": row.percent,
                    "bytes": row.bytes,
                    "records": row.records,
                    "hit_ratio": {policy: round(ratio, 4) for policy, ratio in row.hit_ratio.items()},
                    "records_held": dict(row.held),
                    "exact_lru": round(row.exact_lru, 4),
                    "optimum": round(row.optimum, 4),
                }
                for row in self.rows
            ],
            "distinct_ids": self.distinct,
            "ceiling": round(self.ceiling, 4),
            "reading": self.reading,
            "lookups_without_redis": self.unavailable,
            "chart": self.chart,
            "seconds": round(self.seconds, 1),
            "interrupted": self.interrupted,
        }


def human_bytes(count: float) -> str:
    """1,234,567 as '1.2 MB' (powers of 1,000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,.0f} B"
