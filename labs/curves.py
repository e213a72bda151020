"""Labs, pure: the hit ratio a cache of each size would have on a trace, for exact LRU and for the optimum.

Both count capacity in records and do no I/O. `lru_hit_ratios` finds every size's hit ratio
in one pass, from each lookup's stack distance (Mattson et al., 1970): the number of distinct
ids asked for since the id's previous lookup, plus one; an LRU cache of C records hits exactly
the lookups whose distance is at most C. `optimal_hit_ratios` runs Belady's MIN (1966) once per
size: on a miss with the cache full, evict the record whose next lookup is farthest away; no
policy can hit more often. Only lookups after the first `warmup` count, but every lookup
changes what the cache holds.

A library, libCacheSim, computes these curves too, but its Python wheels cover only Linux on
x86-64 (glibc 2.34 or newer) and macOS on Apple silicon, and the demo runs on more than that;
these are the textbook algorithms in under a hundred lines, tested against hand-worked traces.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

NEVER = 1 << 62  # the next-use position of an id never asked for again


class _Marks:
    """A Fenwick tree over positions 0..size-1 holding 0 or 1 at each: prefix counts in O(log n)."""

    def __init__(self, size: int) -> None:
        self._tree = [0] * (size + 1)

    def add(self, position: int, delta: int) -> None:
        index = position + 1
        while index < len(self._tree):
            self._tree[index] += delta
            index += index & -index

    def count_before(self, position: int) -> int:
        """The marks at positions 0..position-1."""
        total, index = 0, position
        while index > 0:
            total += self._tree[index]
            index -= index & -index
        return total


def stack_distances(trace: Sequence[int]) -> list[int | None]:
    """Each lookup's LRU stack distance (1: the same id as the lookup before); None for an id's first lookup."""
    marks = _Marks(len(trace))  # a mark at the position of each id's latest lookup so far
    latest: dict[int, int] = {}
    distances: list[int | None] = []
    for position, user_id in enumerate(trace):
        before = latest.get(user_id)
        if before is None:
            distances.append(None)
        else:
            # the distinct ids asked for since: ids whose latest lookup lies strictly between the two
            distances.append(marks.count_before(position) - marks.count_before(before + 1) + 1)
            marks.add(before, -1)
        marks.add(position, 1)
        latest[user_id] = position
    return distances


def lru_hit_ratios(trace: Sequence[int], capacities: Sequence[int], warmup: int = 0) -> list[float]:
    """The hit ratio of an exact LRU cache of each capacity (in records) on `trace`, after `warmup` lookups."""
    counted = stack_distances(trace)[warmup:]
    if not counted:
        return [0.0 for _ in capacities]
    return [
        sum(1 for distance in counted if distance is not None and distance <= size) / len(counted)
        for size in capacities
    ]


def next_uses(trace: Sequence[int]) -> list[int]:
    """For each lookup, the position of the same id's next lookup (NEVER if there is none)."""
    following: dict[int, int] = {}
    uses = [NEVER] * len(trace)
    for position in range(len(trace) - 1, -1, -1):
        uses[position] = following.get(trace[position], NEVER)
        following[trace[position]] = position
    return uses


def optimal_hits(trace: Sequence[int], capacity: int, warmup: int = 0, uses: Sequence[int] | None = None) -> int:
    """The hits of Belady's MIN with room for `capacity` records, counting lookups after `warmup`."""
    if capacity <= 0:
        return 0
    uses = next_uses(trace) if uses is None else uses
    cached: dict[int, int] = {}  # id -> the position of its next lookup
    farthest: list[tuple[int, int]] = []  # (-next use, id): the eviction candidate on top; stale entries skipped
    hits = 0
    for position, user_id in enumerate(trace):
        if user_id in cached:
            hits += position >= warmup
        elif len(cached) >= capacity:
            while True:
                negative_next, victim = heapq.heappop(farthest)
                if cached.get(victim) == -negative_next:  # an entry still current for that id
                    del cached[victim]
                    break
        cached[user_id] = uses[position]
        heapq.heappush(farthest, (-uses[position], user_id))
    return hits


def optimal_hit_ratios(trace: Sequence[int], capacities: Sequence[int], warmup: int = 0) -> list[float]:
    """The hit ratio of Belady's MIN at each capacity (in records) on `trace`, after `warmup` lookups."""
    counted = len(trace) - warmup
    if counted <= 0:
        return [0.0 for _ in capacities]
    uses = next_uses(trace)
    return [optimal_hits(trace, size, warmup, uses) / counted for size in capacities]
