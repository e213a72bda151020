"""Simulator layer, I/O shell: cache-aside over Redis and the database, written once for both twins.

`lookup` is the lesson: the textbook's steps, in the order of the user's flow diagram, each a
call whose name says what it does. Each defence sits behind one of those calls, with its
switch in `CachePolicy` (simulator/policy.py): read coalescing and the expiry audit in
`check_cache`; single flight and the lease in `take_lease`; negative caching and TTL jitter in
`store_with_ttl`; early refresh after a hit; the circuit breaker around every Redis call.
Every decision is made in simulator/cache_aside_base.py and the pure modules beside it; this
file only calls Redis and the database, and waits (through its backend). scripts/unasync.py
writes the blocking twin, simulator/_sync/cache_aside.py, from this file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import redis

from config.database import DatabaseError
from config.redis import AsyncClient, node_of, on_node_of, scan_targets
from config.redis_failures import CACHE_ERRORS, REDIS_ERRORS, UNAVAILABLE_ERRORS
from simulator._async import backend
from simulator._async.database import AsyncDatabase
from simulator.breaker import CacheEvent
from simulator.cache_aside_base import BaseCacheAside, LeaseHold
from simulator.entries import MISS, STALE, UNAVAILABLE, CachedEntry, new_lease, read_cached
from simulator.policy import CachePolicy, demo_key
from simulator.results import (
    BREAKER_OPEN,
    LEASE_HELD,
    NOT_CACHING_NOT_FOUND,
    ClearReport,
    Filled,
    LookupResult,
    StampedeReport,
    StoreProblem,
    TtlReport,
    UpdateReport,
)
from simulator.scripts import CLAIM_SCRIPT, READ_WITH_TTL_SCRIPT, RELEASE_SCRIPT, STORE_SCRIPT, Claim, claim_arguments
from simulator.trace import (
    CHECK_THE_CACHE,
    READ_THE_DATABASE,
    REFRESH_EARLY,
    SKIP_THE_CACHE,
    STORE_WITH_TTL,
    claim_step,
    fetch_command,
    note,
    note_claimed,
    note_found,
    read_command,
    script_command,
    set_command,
    tracing,
)

CLEAR_BATCH = 500
BACKGROUND_ERRORS = (*REDIS_ERRORS, DatabaseError)  # what an early refresh may meet and survive
REFRESH_JOIN_SECONDS = 0.5  # how long closing waits for an early refresh (a thread cannot be cancelled)


class AsyncCacheAside(BaseCacheAside):
    """Cache-aside: GET; on a miss, take the key's lease, read the database, store with a TTL while the lease holds.

    If Redis fails, lookups are answered from the database (marked degraded) and a circuit
    breaker keeps them off Redis for a cool-down; `notify` hears each change of state once.
    """

    def __init__(
        self,
        client: AsyncClient,
        database: AsyncDatabase,
        policy: CachePolicy,
        notify: Callable[[CacheEvent], object] = lambda event: None,
    ) -> None:
        super().__init__(policy, notify, database.latency_seconds)
        self.client = client
        self.database = database
        self._read_with_ttl_script: Any = client.register_script(READ_WITH_TTL_SCRIPT)
        self._claim_script: Any = client.register_script(CLAIM_SCRIPT)
        self._store_script: Any = client.register_script(STORE_SCRIPT)
        self._release_script: Any = client.register_script(RELEASE_SCRIPT)
        self.reads: backend.SingleFlight[CachedEntry] = backend.SingleFlight()  # read coalescing
        self.fills: backend.SingleFlight[Filled] = backend.SingleFlight()  # single flight
        self.refills: backend.SingleFlight[Filled] = backend.SingleFlight()  # early refreshes: one an id
        self.refreshes: set[backend.Worker[None]] = set()

    async def lookup(self, user_id: int) -> LookupResult:
        """The user's record (or "not found"): from the cache if it is there, else from the database.

        The textbook's steps, in the order of the flow diagram; README's "How a lookup works" says
        where each defence enters.
        """
        started, key = time.perf_counter(), self.policy.key(user_id)
        cached = await self.check_cache(key, user_id)  # one GET
        if cached.in_cache:  # a hit: answer it
            self.refresh_early_if_due(user_id, cached)
            return self._answer(user_id, key, Filled.from_cache(user_id, cached), started)
        async with self.take_lease(key, user_id, cached) as lease:  # a miss: claim the key first
            if lease.filled is None:  # nobody answered it for us: the answer is ours to find
                filled = await self.read_database(user_id)  # the source of truth
                lease.filled = await self.store_with_ttl(lease, filled)  # only while the lease is still ours
        return self._answer(user_id, key, lease.filled, started, lease)

    # --- the steps ---

    async def check_cache(self, key: str, user_id: int) -> CachedEntry:
        """What the cache holds for the id: one GET, shared by the lookups of it running here at once."""
        if self.policy.single_flight and self.fills.in_flight(user_id):
            note(SKIP_THE_CACHE)  # this process is filling the key: a GET could only find its lease
            return MISS
        if not self.policy.read_coalescing:
            cached, joined = await self.read(key, user_id), False
        else:
            cached, joined = await self.reads.run(user_id, lambda: self.read(key, user_id))
        note_found(cached, joined)
        return cached

    def take_lease(self, key: str, user_id: int, seen: CachedEntry) -> LeaseTaking:
        """Hold the key while its answer is found: `async with` it (see `LeaseTaking`)."""
        return LeaseTaking(self, LeaseHold(key, user_id, seen))

    async def read_database(self, user_id: int) -> Filled:
        """Read the user from the database, the source of truth (slowly: the cost the cache exists to avoid)."""
        started = time.perf_counter()
        record = await self.database.fetch(user_id)
        self.last_fetch_seconds = time.perf_counter() - started
        note(READ_THE_DATABASE, lambda: fetch_command(user_id))
        self.stats.database_read()
        return Filled.from_database(user_id, record)

    async def store_with_ttl(self, lease: LeaseHold, filled: Filled) -> Filled:
        """Store the answer with its TTL: only while the key still holds our lease, which storing releases."""
        if lease.problem is not None:  # the cache cannot take it, or must not
            return filled.stored(lease.problem)
        if filled.record is None and not self.policy.negative_caching:
            await self.give_back(lease)
            return filled.stored(NOT_CACHING_NOT_FOUND)
        ttl = self.policy.ttl_of(filled.record)
        if lease.lease is None:  # the lease is switched off: SET, whatever the key holds by now
            reply = await self._set(lease.key, filled.value, ttl)
        else:
            arguments = [lease.lease, filled.value, ttl]
            reply = await self._run_script(self._store_script, lease.key, arguments, STORE_WITH_TTL)
            lease.lease = None  # stored, or lost: either way no longer ours
        return filled.stored(self._stored(lease.key, reply))

    def refresh_early_if_due(self, user_id: int, cached: CachedEntry) -> None:
        """Early refresh (XFetch): now and then, as expiry nears, a hit re-reads the database in the background."""
        if self._refresh_due(cached, self.refills.in_flight(user_id) or self.fills.in_flight(user_id)):
            note(REFRESH_EARLY)
            self.refreshes = {worker for worker in self.refreshes if not worker.done()}
            self.refreshes.add(backend.start(lambda: self._refresh(user_id, cached), "early-refresh"))

    # --- the other commands ---

    async def stampede(self, user_id: int, lookups: int) -> StampedeReport:
        """Fire `lookups` concurrent lookups of one id and count the database reads."""
        started = time.perf_counter()
        outcomes = await backend.gather([lambda: self.lookup(user_id)] * lookups)
        results = first_error_or(outcomes)
        return StampedeReport.of(user_id, self.policy.key(user_id), results, time.perf_counter() - started)

    async def ttl(self, user_id: int) -> TtlReport:
        """What the cache holds for the user, and for how long."""
        key = self.policy.key(user_id)
        try:
            raw, remaining_ms = await self._get_with_ttl(key)
        except CACHE_ERRORS as error:
            raise self._named(node_of(self.client, key), key, error) from error
        return self._ttl_report(key, user_id, raw, remaining_ms)

    async def delete(self, user_id: int) -> bool:
        """Invalidate the user's key; True if there was one."""
        key = self.policy.key(user_id)
        try:
            deleted = bool(await self.client.delete(key))
        except CACHE_ERRORS as error:
            raise self._named(node_of(self.client, key), key, error) from error
        self.invalidations.deleted(user_id)
        return deleted

    async def update(self, user_id: int) -> UpdateReport:
        """The write path: commit the change in the database, then delete the cached copy (and any lease)."""
        started, key = time.perf_counter(), self.policy.key(user_id)
        record = await self.database.update(user_id)
        problem = await self._delete_old_copy(user_id, key) if record is not None else None
        return self._updated(user_id, record, problem, started)

    async def clear(self) -> ClearReport:
        """Remove the demo's own keys (SCAN its namespace, UNLINK in batches; never FLUSHDB or KEYS).

        On a cluster, master by master: one that cannot be reached is named, the others are cleared.
        """
        removed, unreachable = 0, []
        for node, target in scan_targets(self.client):
            try:
                removed += await self._clear_part(target)
            except UNAVAILABLE_ERRORS as error:
                unreachable.append(self._part_failed(node, error))
        return ClearReport(removed, tuple(unreachable))

    async def aclose(self) -> None:
        """Start no more background refreshes, and end the ones running."""
        self._closed = True
        await backend.stop_all(self.refreshes, REFRESH_JOIN_SECONDS)

    # --- Redis, one call at a time, behind the breaker ---

    async def read(self, key: str, user_id: int) -> CachedEntry:
        """GET (with PTTL, one script, for early refresh or an expiry check); UNAVAILABLE if Redis is down."""
        node = node_of(self.client, key)
        if not self._allowed(node):
            return UNAVAILABLE
        if self.invalidations.holds(user_id) and await self._delete_old_copy(user_id, key) is not None:
            return STALE
        with_ttl = self._with_ttl(key)
        try:
            if with_ttl:
                raw, remaining_ms = await run_script(self.client, self._read_with_ttl_script, key)
                cached = self._audited(key, read_cached(raw, user_id, remaining_ms))
            else:
                cached = read_cached(await self.client.get(key), user_id)
        except CACHE_ERRORS as error:
            return self._read_failed(node, error)
        finally:
            note(CHECK_THE_CACHE, lambda: read_command(key, with_ttl))
        self._cache_worked(node)
        return cached

    async def claim(self, lease: LeaseHold) -> None:
        """Take the key's lease; while another process holds it, wait for its record (a lease's life at most)."""
        if lease.without_the_cache() or not self.policy.lease:
            return
        seen = lease.seen
        for pause in self.policy.claim_schedule():
            if pause:
                await backend.sleep(pause)
            claim = await self._claim(lease.key, lease.user_id, seen)
            if claim.problem is not None:  # the cache is unavailable, full or refuses writes: no lease
                lease.problem = claim.problem
                return
            if claim.lease is not None:
                lease.lease = claim.lease
                return
            if claim.found.in_cache:  # another process stored it meanwhile
                lease.filled = Filled.from_cache(lease.user_id, claim.found)
                return
            seen = claim.found  # another's lease: wait for its record (or a new corrupt value to replace)
        lease.problem = LEASE_HELD

    async def give_back(self, lease: LeaseHold) -> None:
        """Delete the key if it still holds our lease (best effort: if Redis cannot, the lease expires)."""
        if lease.lease is not None:
            with contextlib.suppress(*CACHE_ERRORS):
                await run_script(self.client, self._release_script, lease.key, [lease.lease])
            lease.lease = None

    async def _claim(self, key: str, user_id: int, seen: CachedEntry) -> Claim:
        """One round trip: the key's value if it has one, else a lease on it for us."""
        lease = new_lease()
        arguments = claim_arguments(lease, self.policy, seen)
        reply = await self._run_script(self._claim_script, key, arguments, claim_step(seen))
        claim = Claim(None, problem=reply) if isinstance(reply, StoreProblem) else Claim.of(reply, user_id, lease)
        note_claimed(seen, claim)
        return claim

    async def _run_script(self, script: Any, key: str, arguments: list[object], step: str) -> Any:
        """Run a one-key script; a StoreProblem instead when the cache is unavailable (its breaker open, too),
        full or refusing writes."""
        node = node_of(self.client, key)
        if not self._allowed(node):
            return BREAKER_OPEN
        try:
            reply = await run_script(self.client, script, key, arguments)
        except CACHE_ERRORS as error:
            return self._script_failed(node, error)
        finally:
            note(step, lambda: script_command(script.script, key, arguments))
        self._cache_worked(node)
        return reply

    async def _set(self, key: str, value: str, ttl: int) -> Any:
        """SET with a TTL, whatever the key holds (the lease switched off); a StoreProblem if Redis cannot."""
        node = node_of(self.client, key)
        if not self._allowed(node):
            return BREAKER_OPEN
        try:
            await self.client.set(key, value, ex=ttl)
        except CACHE_ERRORS as error:
            return self._script_failed(node, error)
        finally:
            note(STORE_WITH_TTL, lambda: set_command(key, value, ttl))
        self._cache_worked(node)
        return 1

    async def _get_with_ttl(self, key: str) -> tuple[Any, Any]:
        """GET and PTTL in one round trip; an error Redis answers either with is its reply."""
        pipeline = self.client.pipeline(transaction=False)
        pipeline.get(key)
        pipeline.pttl(key)
        raw, remaining_ms = await pipeline.execute(raise_on_error=False)
        return raw, remaining_ms

    async def _delete_old_copy(self, user_id: int, key: str) -> str | None:
        """DEL the key after an update; if Redis cannot, why (and the id stays off the cache until it can)."""
        node = node_of(self.client, key)
        try:
            await self.client.delete(key)
        except CACHE_ERRORS as error:
            return self._delete_failed(node, error)
        self._deleted(user_id, node)
        return None

    async def _refresh(self, user_id: int, cached: CachedEntry) -> None:
        """Early refresh, in the background: read the database, store if the key still holds what we saw."""
        with tracing(None), contextlib.suppress(*BACKGROUND_ERRORS):  # a failed refresh leaves the old value
            await self.refills.run(user_id, lambda: self._refill(user_id, cached))

    async def _refill(self, user_id: int, cached: CachedEntry) -> Filled:
        key = self.policy.key(user_id)
        filled = await self.read_database(user_id)
        ttl = self.policy.ttl_of(filled.record)
        reply = await self._run_script(self._store_script, key, [cached.raw, filled.value, ttl], STORE_WITH_TTL)
        return filled.stored(self._stored(key, reply))

    async def _clear_part(self, target: dict[str, Any]) -> int:
        removed, batch = 0, []
        async for key in self.client.scan_iter(match=self.policy.scan_pattern, count=1000, **target):
            if demo_key(key, self.policy.key_prefix):
                batch.append(key)
            if len(batch) >= CLEAR_BATCH:
                removed, batch = removed + await self._unlink(batch), []
        return removed + await self._unlink(batch)

    async def _unlink(self, keys: list[bytes]) -> int:
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.execute_command("UNLINK", key)  # one key a command: a cluster splits them by slot
        return sum(await pipeline.execute())


class LeaseTaking:
    """`async with cache.take_lease(...) as lease`: one miss's hold on its key, from the claim to the answer.

    Entering: a lookup of the same id already filling it in this process answers for this one
    (single flight), or else the claim script takes the key's lease, or finds another process's
    record stored meanwhile, or waits while another process holds the lease. Leaving: the
    lookups that waited here get this one's answer (or its error), and a lease this one could
    not fill (its database read failed) is given back, so no lookup waits for it.
    """

    def __init__(self, cache: AsyncCacheAside, lease: LeaseHold) -> None:
        self._cache, self._lease = cache, lease
        self._flight: backend.Flight[Filled] | None = None

    async def __aenter__(self) -> LeaseHold:
        cache, lease = self._cache, self._lease
        if cache.policy.single_flight:
            self._flight = cache.fills.join(lease.user_id)
            if not self._flight.leader:  # another lookup here is filling this id: wait for its answer
                lease.filled, lease.shared = await self._flight.outcome(), True
                return lease
        await cache.claim(lease)
        return lease

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if error is not None:
            await self._cache.give_back(self._lease)
        if self._flight is not None and self._flight.leader:
            if error is not None:
                self._flight.fail(error)
            elif self._lease.filled is not None:
                self._flight.land(self._lease.filled)


async def run_script(client: AsyncClient, script: Any, key: str, arguments: Sequence[object] = ()) -> Any:
    """Run a registered one-key script by its SHA1; where the key's server lacks it, load it there first.

    Only there: redis-py's Script object would SCRIPT LOAD it on every master of a Redis
    Cluster, so with one master down a lookup whose own node is fine would fail. (Not EVAL:
    the ACL docs/security.md gives the demo allows EVALSHA and SCRIPT LOAD only.)
    """
    redis_client: Any = client  # redis-py types each argument narrower than a script's
    try:
        return await redis_client.evalsha(script.sha, 1, key, *arguments)
    except redis.exceptions.NoScriptError:
        await redis_client.execute_command("SCRIPT", "LOAD", script.script, **on_node_of(client, key))
        return await redis_client.evalsha(script.sha, 1, key, *arguments)


def first_error_or(outcomes: Sequence[LookupResult | BaseException]) -> list[LookupResult]:
    """The results of concurrent lookups, once all have ended; the first failure, if any, is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, LookupResult)]
