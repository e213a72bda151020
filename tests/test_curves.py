"""The exact LRU and optimal hit-ratio curves, against traces worked out by hand and against brute force."""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest

from labs.curves import lru_hit_ratios, next_uses, optimal_hit_ratios, optimal_hits, stack_distances


def brute_lru_hits(trace: list[int], capacity: int, warmup: int = 0) -> int:
    """An LRU cache simulated the obvious way."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for position, user_id in enumerate(trace):
        if user_id in cache:
            cache.move_to_end(user_id)
            hits += position >= warmup
        else:
            cache[user_id] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


def test_stack_distances_by_hand() -> None:
    #        a     b     a  c     b  a  a
    trace = [1, 2, 1, 3, 2, 1, 1]
    assert stack_distances(trace) == [None, None, 2, None, 3, 3, 1]


def test_exact_lru_by_hand() -> None:
    trace = [1, 2, 1, 3, 2, 1, 1]
    # capacity 1: only the last lookup (1 after 1) hits; 2: also 1 at position 2; 3: every repeat
    assert lru_hit_ratios(trace, [1, 2, 3, 10]) == [1 / 7, 2 / 7, 4 / 7, 4 / 7]
    assert lru_hit_ratios(trace, [3], warmup=3) == [3 / 4]  # positions 3..6: 3 is new, then 3 hits


def test_optimal_by_hand() -> None:
    # Belady, capacity 2, on a b c a b c a: LRU hits nothing; MIN keeps a, evicts b for c, etc.
    trace = [1, 2, 3, 1, 2, 3, 1]
    assert lru_hit_ratios(trace, [2]) == [0.0]
    # MIN: miss a, miss b, miss c (evict b: next used at 4, a at 3), hit a, miss b (evict a: next at 6,
    # c next at 5), hit c, miss a: 2 hits.
    assert optimal_hits(trace, 2) == 2
    assert next_uses(trace)[:3] == [3, 4, 5]


@pytest.mark.parametrize("seed", range(20))
def test_exact_lru_is_what_an_lru_cache_does_and_the_optimum_is_never_below_it(seed: int) -> None:
    source = random.Random(seed)
    trace = [min(40, int(source.paretovariate(1.2))) for _ in range(400)]
    sizes = [0, 1, 2, 3, 5, 8, 13, 21, 40]
    warmup = 50
    lru = lru_hit_ratios(trace, sizes, warmup)
    best = optimal_hit_ratios(trace, sizes, warmup)
    assert lru == [brute_lru_hits(trace, size, warmup) / (len(trace) - warmup) for size in sizes]
    assert all(optimal >= exact for optimal, exact in zip(best, lru, strict=True))
    assert lru == sorted(lru)  # LRU has no Belady anomaly: never fewer hits with more room
    assert best == sorted(best)
    assert best[-1] == lru[-1]  # room for every id: both miss only each id's first lookup
