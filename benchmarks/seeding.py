"""Benchmark I/O: seeding `--records` records in-process, in each mode, against the ceiling: `redis-cli --pipe`.

The ceiling sends the very SETs a seed stores (`write_seed_commands`: `SET bench:user-<id>
<record> EX <ttl>`, read from the run's database and written to a file beforehand, not
timed). Each mode seeds through the demo's own `Seeder` / `AsyncSeeder` (`seed_once`, which
`topologies.py` times on a Cluster too), interleaved round by round with the others. A seed
that skipped keys left from before fails the run: it never times less work than it claims.
A password goes to redis-cli in its environment, never in argv (`ps` shows argv to everyone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from benchmarks.harness import BenchDatabase, cleanup, run_async
from benchmarks.measurements import Measurements
from benchmarks.plan import POLICY, SETUP_MODES, Plan
from config.redis import RedisClients
from simulator._sync.database import Database
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.seeding import SeedProgress, id_batches, seed_entries
from simulator.simulate_cache_db_flow import AsyncSeeder, BackgroundSeed, Seeder


def resp_command(*parts: str | int) -> bytes:
    """One command in the Redis protocol (RESP2 multi-bulk), as redis-cli --pipe reads it."""
    encoded = [str(part).encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)


def write_seed_commands(path: Path, database: Database, count: int, batch_size: int, policy: CachePolicy) -> None:
    """What a seed of users 1..`count` sends in effect, as RESP: `SET <key> <record> EX <ttl>` per id.

    The records are read from the run's database a batch at a time and encoded as the
    seed encodes them (`seed_entries`, as if the seed had claimed every key).
    """
    with path.open("wb") as commands:
        for batch in id_batches(count, batch_size):
            keys = [policy.key(user_id) for user_id in batch]
            entries = seed_entries(batch, keys, [True] * len(batch), database.read_range(batch), policy)
            commands.write(b"".join(resp_command("SET", key, value, "EX", ttl) for key, value, ttl in entries))


def redis_cli_pipe(url: str, commands: Path, expected_replies: int) -> float | None:
    """Seconds `redis-cli --pipe < commands` takes, start to exit; None without the binary.

    The password goes in REDISCLI_AUTH, never in argv (`ps` shows argv to everyone).
    """
    binary = shutil.which("redis-cli")
    if binary is None:
        return None
    parts = urlsplit(url)
    command = [binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.username:
        command += ["--user", unquote(parts.username)]
    if parts.path.strip("/"):
        command += ["-n", parts.path.strip("/")]
    if parts.scheme == "rediss":
        command.append("--tls")
    environment = {name: value for name, value in os.environ.items() if name != "REDISCLI_AUTH"}
    if parts.password:
        environment["REDISCLI_AUTH"] = unquote(parts.password)
    with commands.open("rb") as stdin:
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--pipe"], stdin=stdin, capture_output=True, text=True, env=environment, timeout=600, check=False
        )
        seconds = time.perf_counter() - started
    summary = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or summary[0] != f"errors: 0, replies: {expected_replies}":
        reason = summary[0] or done.stderr.strip()[:200]
        raise RuntimeError(f"redis-cli --pipe failed (exit {done.returncode}): {reason}")
    return seconds


def measure_setup(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Each seeding mode, interleaved round by round, and the ceiling: redis-cli --pipe of the same SETs."""
    client = clients.sync_client()
    value = encode_record(user_record(plan.records // 2 or 1))
    measurements.record_bytes = len(value)
    url = clients.settings.redis_url
    with tempfile.TemporaryDirectory(prefix="benchmark-pipe-") as directory:
        commands, nothing = Path(directory) / "seed.resp", Path(directory) / "empty.resp"
        write_seed_commands(commands, data.sync(), plan.records, plan.seed_batch_size, POLICY)  # not timed
        nothing.touch()
        for _ in range(plan.rounds):
            for mode in SETUP_MODES:
                cleanup(client)
                seconds = seed_once(clients, data, mode, plan.records, plan.seed_batch_size)
                measurements.setup.setdefault(mode, []).append(seconds)
            cleanup(client)
            ceiling = redis_cli_pipe(url, commands, plan.records)
            startup = redis_cli_pipe(url, nothing, 0)  # what of it is starting redis-cli, connecting and exiting
            if ceiling is not None and startup is not None:
                measurements.setup.setdefault("pipe", []).append(ceiling)
                measurements.setup.setdefault("pipe-startup", []).append(startup)
    cleanup(client)


def seed_once(clients: RedisClients, data: BenchDatabase, mode: str, count: int, batch_size: int) -> float:
    """One seed of users 1..`count` from the database in `mode`, timed by the seeder itself (as the demo prints it).

    The keys must be gone: seeding leaves a key that already holds a value as it is.
    """
    seeder = Seeder(clients.sync_client(), data.sync(), POLICY, batch_size)
    if mode == "sequential":
        report = seeder.seed_sequential(SeedProgress(mode, count, time.perf_counter()))
    elif mode == "pipelined-sync":
        report = seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter()))
    elif mode == "threaded":
        progress = SeedProgress(mode, count, time.perf_counter())
        report = BackgroundSeed(seeder.seed_pipelined, progress, lambda report, error: None).start().wait()
    else:

        async def seed_async() -> float:
            async with data.open_async() as database:  # connected before the clock starts
                async_seeder = AsyncSeeder(clients.async_bulk_client(), database, POLICY, batch_size)
                async_report = await async_seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter()))
            _check_seeded(mode, count, async_report.written)
            return async_report.seconds

        return run_async(clients, seed_async)
    _check_seeded(mode, count, report.written)
    return report.seconds


def _check_seeded(mode: str, count: int, written: int) -> None:
    """A seed that skipped keys (left from an earlier round) would time less work than it claims."""
    if written != count:
        raise RuntimeError(f"the {mode} seed wrote {written:,} of {count:,} records: keys were left from before")
