"""Labs, pure: where a lab runs (the bench: the Redis in use, a folder for its own databases, its keys' prefix),
the size of each scenario, and what a run's measurements become as figures.

Every lab keeps its keys under `<KEY_PREFIX>user-lab-<name>-<run>:`, inside the ACL's `~user-*`
and outside the keys `clear` and `cache` know (`user-<id>`), and removes them when it ends; it
reads and writes a SQLite database of its own, never the user's. Nothing here does I/O.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from simulator.stats import percentile

if TYPE_CHECKING:
    from config.redis import RedisClients
    from config.settings import Settings

LAB_USERS = 1000  # the users of a lab's own database
LAB_SEED = 1  # every lab's randomness is drawn from this seed
GATE_SECONDS = 30.0  # the longest a lab waits for a step it set up (a safety net: a step never taken ends the lab)

# The scenarios' sizes, chosen so each lab ends in about 15 s or less and its effect is large enough to see.


@dataclass(frozen=True)
class Stampede:
    processes: int = 5
    lookups_each: int = 20
    latency: float = 0.5
    user_id: int = 42


@dataclass(frozen=True)
class Race:
    user_id: int = 7
    ttl: int = 3600


@dataclass(frozen=True)
class Expiry:
    keys: int = 300
    ttl: int = 3
    seconds: float = 5.0
    workers: int = 8
    step: float = 0.5


@dataclass(frozen=True)
class Negative:
    ids: int = 50
    rounds: int = 10
    latency: float = 0.002


@dataclass(frozen=True)
class Refresh:
    ttl: int = 2
    latency: float = 0.2
    seconds: float = 5.0
    workers: int = 4
    beta: float = 2.0
    user_id: int = 42


@dataclass(frozen=True)
class Outage:
    ids: int = 20
    before: float = 1.0
    outage: float = 3.0
    after: float = 2.5
    timeout: float = 0.25
    cooldown: float = 1.0
    latency: float = 0.01


@dataclass(frozen=True)
class Scenarios:
    """Every lab's sizes: these defaults at the prompt and in the benchmark; smaller ones in the tests."""

    stampede: Stampede = Stampede()
    race: Race = Race()
    expiry: Expiry = Expiry()
    negative: Negative = Negative()
    refresh: Refresh = Refresh()
    outage: Outage = Outage()


@dataclass(frozen=True)
class LabBench:
    """Where a lab runs: the clients of the Redis in use, a folder for its databases, the demo's KEY_PREFIX,
    and the scenarios' sizes."""

    clients: RedisClients
    directory: str
    key_prefix: str = ""
    scenarios: Scenarios = Scenarios()


def lab_prefix(key_prefix: str, name: str, run: int) -> str:
    """The keys of one run of a lab: under the demo's prefix, inside `user-*`, never a `user-<id>` of its own."""
    return f"{key_prefix}user-lab-{name}-{run}:"


def milliseconds(samples: Sequence[float], fraction: float) -> float | None:
    """A percentile of latencies in seconds, in milliseconds to a tenth (None without any)."""
    value = percentile(samples, fraction)
    return None if value is None else round(value * 1000, 1)


def most_within(moments: Sequence[float], window: float) -> int:
    """The most of `moments` (seconds) that fall within any `window` seconds of each other."""
    ordered, most, first = sorted(moments), 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def per_step(times: Sequence[float], step: float, seconds: float) -> tuple[tuple[float, int], ...]:
    """How many of `times` (seconds) fall in each `step` from 0 to `seconds`: (the step's start, count)."""
    counts = [0] * math.ceil(seconds / step)
    for moment in times:
        if 0 <= moment < seconds:
            counts[int(moment // step)] += 1
    return tuple((round(index * step, 3), count) for index, count in enumerate(counts))


def unavailable(name: str, settings: Settings) -> str | None:
    """Why this lab cannot run on this Redis, or None. Only `lab outage` asks anything: its proxy must stand
    between the lab and one server, on a plain connection."""
    if name != "outage":
        return None
    if settings.redis_cluster or settings.sentinels:
        return "lab outage needs one Redis server (or the embedded one): a Cluster or Sentinel client finds its own way"
    if settings.redis_url.lower().startswith("rediss://"):
        return "lab outage needs a plain connection: through its proxy a TLS certificate would not match the host"
    return None


def proxied_url(url: str, port: int) -> str:
    """`url`, its credentials and database kept, sent to the lab's proxy on 127.0.0.1:`port` instead."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    host = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(("redis", host, parts.path or "/0", "", ""))


def upstream_of(url: str) -> tuple[str, int]:
    """The host and port a redis:// URL names."""
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


def remove_database_files(path: str) -> None:
    """Remove a lab's SQLite file and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
