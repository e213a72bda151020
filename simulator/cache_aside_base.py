"""Simulator layer, pure: what both lookups decide without I/O, as httpx's BaseClient does for its two clients.

`BaseCacheAside` holds the policy, the stats, the circuit breakers (and who hears of them),
what this process keeps watch on, and every decision a shell would otherwise make itself: what
a failed Redis call means for the lookup, what a claim or a store answered, when a hit is
refreshed early, and what `update` and `ttl` report. `LeaseHold` is one miss's state while it
holds its key. The shells in simulator/_async/ and simulator/_sync/ add only the Redis calls,
the database calls and the waiting; nothing here sends, sleeps or starts anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from config.redis import NodeUnavailable
from config.redis_failures import UNAVAILABLE_ERRORS, CacheFailure, cache_failure, failure_reason, is_wrong_type
from simulator.breaker import CacheEvent, CircuitBreakers
from simulator.entries import UNAVAILABLE, WRONG_TYPE, CachedEntry, read_cached
from simulator.policy import CachePolicy
from simulator.records import UserRecord
from simulator.results import BREAKER_OPEN, STALE_COPY, Filled, LookupResult, StoreProblem, TtlReport, UpdateReport
from simulator.scripts import stored_or_lost
from simulator.stats import Stats
from simulator.trace import note_answered, note_stored
from simulator.watch import ExpiryAudit, PendingInvalidations


class LeaseHold:
    """One miss's hold on its key, while it finds the answer.

    Before the database is read, the hold says whose the answer is: another lookup's, here
    (single flight) or in another process (its record stored meanwhile), in `filled`; or ours
    to find, with our `lease` on the key, or with a `problem` that keeps the answer out of the
    cache (Redis unavailable, full or refusing writes; an old copy an update could not delete;
    another lease held to the end).
    """

    def __init__(self, key: str, user_id: int, seen: CachedEntry) -> None:
        self.key, self.user_id, self.seen = key, user_id, seen
        self.filled: Filled | None = None  # the answer, once there is one
        self.lease: str | None = None  # our lease on the key, while we hold it
        self.problem: StoreProblem | None = None  # why the answer will not be stored
        self.shared = False  # answered by another lookup of this process (single flight)

    def without_the_cache(self) -> bool:
        """True when no claim can be made: Redis cannot be asked, or it may hold what an update replaced."""
        if self.seen.unavailable:
            self.problem = BREAKER_OPEN  # the answer comes from the database, marked degraded
        elif self.seen.stale:
            self.problem = STALE_COPY
        return self.problem is not None


class BaseCacheAside:
    """What both lookups share that does no I/O: the policy, the stats, the breakers and every decision."""

    def __init__(
        self,
        policy: CachePolicy,
        notify: Callable[[CacheEvent], object],
        latency_seconds: float,
    ) -> None:
        self.policy = policy
        self.stats = Stats()
        self.breakers = CircuitBreakers(policy.cooldown_seconds)
        self.audit = ExpiryAudit(policy.ttl_seconds)
        self.invalidations = PendingInvalidations(policy.longest_ttl_seconds)
        self.last_fetch_seconds = latency_seconds  # XFetch's delta until a read is measured
        self._notify = notify
        self._closed = False

    # --- the breaker, and what a failed call means ---

    def _allowed(self, node: str) -> bool:
        """May this call go to Redis? (Always, with the breaker switched off.)"""
        return not self.policy.breaker or self.breakers[node].allow()

    def _cache_failed(self, node: str, error: Exception) -> CacheFailure:
        """What a failed call to the cache means (config.redis_failures.cache_failure), told to the node's breaker."""
        failure = cache_failure(error)
        if failure == "unavailable":
            event = self.breakers.failed(node, failure_reason(error))
        else:
            event = self.breakers.succeeded(node)  # Redis answered, if only with an error
        if event:
            self._notify(event)
        return failure

    def _cache_worked(self, node: str) -> None:
        if event := self.breakers.succeeded(node):
            self._notify(event)

    def _read_failed(self, node: str, error: Exception) -> CachedEntry:
        """A failed read: the cache is unavailable, or the key holds another type; else `error` is raised."""
        match self._cache_failed(node, error):
            case "unavailable":
                return UNAVAILABLE
            case "wrong type":
                return WRONG_TYPE
            case "full" | "refused" | "rejected":  # refused (an ACL's NOPERM, say): the user must see it
                raise error

    def _script_failed(self, node: str, error: Exception) -> StoreProblem:
        """A failed claim or store: the cache is unavailable, full or refuses writes (a replica, an ACL), so
        the answer comes from the database and nothing is stored; else `error` is raised."""
        match self._cache_failed(node, error):
            case "unavailable" | "full" | "refused" as failure:
                return StoreProblem(failure_reason(error), failure)
            case "wrong type" | "rejected":
                raise error

    @staticmethod
    def _named(node: str, key: str, error: Exception) -> Exception:
        """On a cluster, an unavailable node's failure names the node (the others' keys still work)."""
        return NodeUnavailable(node, key, error) if node and isinstance(error, UNAVAILABLE_ERRORS) else error

    @staticmethod
    def _part_failed(node: str, error: Exception) -> str:
        """One master of a cluster could not be scanned: its name and why (a single server's failure is raised)."""
        if not node:
            raise error
        return f"{node} ({failure_reason(error)})"

    # --- reading and storing ---

    def _with_ttl(self, key: str) -> bool:
        """Read the key's expiry with it? For early refresh, and for the expiry audit's checks."""
        return self.policy.early_refresh or (self.policy.expiry_audit and self.audit.due(key))

    def _audited(self, key: str, cached: CachedEntry) -> CachedEntry:
        if cached.in_cache:  # read with its expiry, and it has one
            self.audit.checked(key)
        return cached

    def _refresh_due(self, cached: CachedEntry, refreshing: bool) -> bool:
        """Early refresh (XFetch) of a hit, unless closing or already refreshing this key."""
        if self._closed or refreshing:
            return False
        return self.policy.should_refresh_early(cached.remaining_ms, self.last_fetch_seconds)

    def _stored(self, key: str, reply: object) -> StoreProblem | None:
        """What a store's reply means; a key we stored has an expiry, so needs no check."""
        problem = reply if isinstance(reply, StoreProblem) else stored_or_lost(reply)
        if problem is None:
            self.audit.checked(key)
        note_stored(problem)
        return problem

    def _answer(
        self, user_id: int, key: str, filled: Filled, started: float, hold: LeaseHold | None = None
    ) -> LookupResult:
        """The lookup's answer, counted in the stats (and in the trace, if one is on)."""
        corrupt, shared = (hold.seen.problem, hold.shared) if hold is not None else (None, False)
        result = LookupResult.from_fill(user_id, key, filled, time.perf_counter() - started, corrupt, shared)
        self.stats.record(result)
        note_answered(result)
        return result

    # --- update, ttl ---

    def _delete_failed(self, node: str, error: Exception) -> str:
        """Why the DEL of an updated id's old copy failed (told to the node's breaker)."""
        self._cache_failed(node, error)
        return failure_reason(error)

    def _deleted(self, user_id: int, node: str) -> None:
        self._cache_worked(node)
        self.invalidations.deleted(user_id)

    def _updated(self, user_id: int, record: UserRecord | None, problem: str | None, started: float) -> UpdateReport:
        """What `update` did, and for how long another reader may still see the old version. A copy it
        could not delete is kept off the cache until a lookup's retry deletes it (or it must have expired)."""
        key = self.policy.key(user_id)
        if record is not None and problem is not None:
            self.invalidations.failed(user_id)
        stale = record is not None and (problem is not None or self.policy.private_cache)
        return UpdateReport(
            key,
            record,
            record is not None and problem is None,
            problem,
            time.perf_counter() - started,
            self.policy.longest_ttl_seconds if stale else 0,
            self.policy.private_cache,
        )

    def _ttl_report(self, key: str, user_id: int, raw: Any, remaining_ms: Any) -> TtlReport:
        """What `ttl` shows, from a GET and a PTTL that may each have failed."""
        for reply in (raw, remaining_ms):
            if isinstance(reply, Exception) and not is_wrong_type(reply):
                raise reply  # rejected (an ACL's NOPERM, say): reported, not mistaken for a corrupt value
        cached = WRONG_TYPE if is_wrong_type(raw) else read_cached(raw, user_id)
        return TtlReport.of(key, cached, remaining_ms)
