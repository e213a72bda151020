"""Simulator layer, I/O shell: seeding the cache from the database, written once for both twins.

`AsyncSeeder` warms the cache batch by batch, without ever storing a stale record: each batch
claims its empty keys with one lease (SET NX PX), reads its rows in one range read, then
stores each record only while its key still holds that lease, and gives back the leases it
has nothing to store for. An `update` that commits meanwhile deletes the key, and so the
lease: the record read before it is never stored. Keys already cached are left as they are.
A range read per batch, after its leases, is what makes this safe: one cursor over the whole
table would read every row as of the moment it opened. `AsyncBackgroundSeed` runs a seed in
the background while the prompt is live. What each batch sends and what it did is decided in
simulator/seeding.py; scripts/unasync.py writes the blocking twin from this file.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from config.redis import BULK_BATCH_TIMEOUT_SECONDS, AsyncClient, is_cluster
from config.redis_failures import REDIS_ERRORS
from config.speedups import routed
from simulator._async import backend
from simulator._async.database import AsyncDatabase
from simulator.entries import new_lease
from simulator.policy import CachePolicy
from simulator.seeding import (
    SEED_SCRIPTS,
    BaseBackgroundSeed,
    SeedBatch,
    SeedProgress,
    SeedReport,
    SeedScripts,
    batches_in_flight,
    claim_commands,
    claimed_flags,
    id_batches,
    release_commands,
    seed_plan,
)

BATCH_GRACE_SECONDS = 5.0  # how long a stopped seed waits for a batch thread still writing (a task is cancelled)


class AsyncSeeder:
    """Warms the cache from the database, batch by batch, two batches at once when pipelined."""

    def __init__(
        self, client: AsyncClient, database: AsyncDatabase, policy: CachePolicy, batch_size: int = 1000
    ) -> None:
        self.client = client
        self.database = database
        self.policy = policy
        self.batch_size = batch_size

    async def seed_sequential(self, progress: SeedProgress) -> SeedReport:
        """One command per round trip: the slow way, to compare against."""
        return await self._seed(progress, pipelined=False)

    async def seed_pipelined(self, progress: SeedProgress) -> SeedReport:
        """One round trip per batch for the leases, one for the records: non-transactional pipelines."""
        return await self._seed(progress, pipelined=True)

    async def _seed(self, progress: SeedProgress, *, pipelined: bool) -> SeedReport:
        scripts = SeedScripts(*[await self.client.script_load(script) for script in SEED_SCRIPTS])
        per_key = not pipelined or is_cluster(self.client)  # a cluster's keys live in many slots
        in_flight: collections.deque[backend.Worker[SeedBatch]] = collections.deque()
        try:
            for batch in id_batches(progress.requested, self.batch_size):
                if len(in_flight) == batches_in_flight(pipelined):
                    progress.add(await in_flight.popleft().result())
                if progress.stop_requested:
                    break
                seed_batch = functools.partial(self._seed_batch, batch, scripts, per_key, pipelined)
                in_flight.append(backend.start(seed_batch, "seed-batch"))
            while in_flight:  # a stop still finishes the batches already claimed
                progress.add(await in_flight.popleft().result())
        except Exception:  # failed: the other batch in flight ends as it would, giving its leases back
            for worker in in_flight:
                await worker.wait()
            raise
        finally:  # cancelled (Ctrl-C): the other batch in flight ends with it
            await backend.stop_all(in_flight, BATCH_GRACE_SECONDS)
        return progress.report(time.perf_counter(), stopped=progress.stop_requested)

    async def _seed_batch(self, batch: range, scripts: SeedScripts, per_key: bool, pipelined: bool) -> SeedBatch:
        """Claim, read, store one batch, and give back the leases it has nothing to store for."""
        lease, keys = new_lease(), [self.policy.key(user_id) for user_id in batch]
        claims = claim_commands(keys, lease, self.policy.lease_ms, scripts, per_key)
        claimed = claimed_flags(await self._send(claims, keys, pipelined), per_key)
        try:
            rows = await self.database.read_range(batch)
        except Exception:  # the database failed: its keys go back before the error does, so no lookup waits on them
            ours = [key for key, taken in zip(keys, claimed, strict=True) if taken]
            await self._release(ours, lease, scripts, per_key, pipelined)
            raise
        plan = seed_plan(batch, keys, claimed, rows, rows.problems, self.policy)
        commands, command_keys = plan.commands(lease, scripts, per_key)
        return plan.outcome(await self._send(commands, command_keys, pipelined), per_key)

    async def _release(self, keys: list[str], lease: str, scripts: SeedScripts, per_key: bool, pipelined: bool) -> None:
        """Give back the lease on `keys` (each that still holds it); if Redis fails too, they expire by themselves."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._send(release_commands(keys, lease, scripts, per_key), keys, pipelined)

    async def _send(self, commands: Sequence[tuple[Any, ...]], keys: Sequence[str], pipelined: bool) -> list[Any]:
        """Each command in its own round trip, or all in one pipeline (`keys[i]`: command i's key)."""
        if not pipelined:
            return [await self._send_one(command) for command in commands]
        pipeline: Any = self.client.pipeline(transaction=False)
        for command, key in zip(commands, keys, strict=False):  # one batch script has no single key
            pipeline.execute_command(*command, **routed(self.client, key))
        async with backend.deadline(BULK_BATCH_TIMEOUT_SECONDS, "a seeding batch"):
            results: list[Any] = await pipeline.execute()
        return results

    async def _send_one(self, command: tuple[Any, ...]) -> Any:
        client: Any = self.client
        async with backend.deadline(BULK_BATCH_TIMEOUT_SECONDS, "a seeding command"):
            return await client.execute_command(*command)


class AsyncBackgroundSeed(BaseBackgroundSeed):
    """A seed in the background, so the prompt is usable at once."""

    def __init__(
        self,
        seed: Callable[[SeedProgress], Awaitable[SeedReport]],
        progress: SeedProgress,
        on_done: Callable[[SeedReport, Exception | None], object],
    ) -> None:
        super().__init__(progress, on_done)
        self._seed = seed
        self._worker: backend.Worker[None] | None = None

    def start(self) -> AsyncBackgroundSeed:
        """Start seeding; returns at once."""
        self._worker = backend.start(self._run, "background-seed")
        return self

    async def wait(self) -> SeedReport:
        """Wait until the seed ends by itself."""
        if self._worker is not None:
            await self._worker.wait()
        return self._final_report()

    async def stop(self) -> SeedReport | None:
        """Stop after the current batch and wait (what was written stays); None if it already reported."""
        self.progress.request_stop()
        report = await self.wait()
        return report if self._claim_report() else None

    async def _run(self) -> None:
        try:
            report = await self._seed(self.progress)
        except Exception as error:  # Redis, the database, or a bug: told in one line, never a traceback
            self._ended(None, error)
        else:
            self._ended(report, None)
