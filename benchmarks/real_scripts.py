"""Benchmark I/O: `main.py` and `main_async.py` run as a user runs them, over pipes, on the run's database.

A `--big` seed through each script against `redis-cli --pipe` of the same SETs, with peak
memory at N and at N/10 (`measure_scale`); hits typed at the prompt, paced like a person,
while the script seeds behind it (`measure_hits_during_seed`); and start-up to the first
answer (`measure_startup`). The scripts are given the run's URLs in their environment,
never in argv (`ps` shows argv to everyone), and keep their bytecode in the run's temp dir,
never in the project.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import BenchDatabase, cleanup
from benchmarks.measurements import Measurements
from benchmarks.plan import HIT_ID, POLICY, PREFIX, Plan
from benchmarks.seeding import redis_cli_pipe, write_seed_commands
from config.redis import RedisClients
from config.settings import Settings
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record

# What the real scripts seed with (their default settings, TTL jitter included); the scale rows' pipe sends the same
SCRIPT_POLICY = CachePolicy.from_settings(Settings(key_prefix=PREFIX))
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ScriptSeed:
    """A real script's seed: the time it printed, and its peak memory."""

    seconds: float
    peak_rss_mb: float


def _script(twin: str) -> str:
    return str(PROJECT_ROOT / ("main.py" if twin == "sync" else "main_async.py"))


def _spawn(
    twin: str, url: str, data: BenchDatabase, *arguments: str, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """The script on the run's Redis and its filled SQLite file (so it creates no users of its own).

    Python may keep the bytecode it compiles, as on a user's machine (in the run's own temp
    dir, never in the project): with PYTHONDONTWRITEBYTECODE, as some machines set, every
    start would compile the project's modules again, about 50 ms a start measured here.
    """
    unwanted = {"DB_RESET", "PYTHONDONTWRITEBYTECODE"}
    environment = {name: value for name, value in os.environ.items() if name not in unwanted}
    environment["PYTHONPYCACHEPREFIX"] = str(data.path.parent / "pycache")
    return subprocess.Popen(
        [
            sys.executable,
            _script(twin),
            "--key-prefix",
            PREFIX,
            "--db-latency",
            "0",
            "--db-size",
            str(data.users),
            *arguments,
        ],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=PROJECT_ROOT,
        # the environment, not argv: `ps` shows argv to everyone
        env={**environment, "REDIS_URL": url, "DATABASE_URL": data.url},
    )


def _reap(process: subprocess.Popen[str]) -> float:
    """Wait for the process; its peak resident memory in MB (Linux reports ru_maxrss in KB)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return usage.ru_maxrss / 1024


def _seconds_in(line: str) -> float:
    """The measured time in `Seeded 1,000,000 users in 8.67 s (...)`."""
    return float(line.split(" in ", 1)[1].split(" s", 1)[0])


def run_script_seed(twin: str, url: str, data: BenchDatabase, count: int, batch_size: int) -> ScriptSeed:
    """`python main.py --count N --seed-mode pipelined` (or the async twin), as a user runs it."""
    process = _spawn(
        twin, url, data, "--count", str(count), "--seed-mode", "pipelined", "--batch-size", str(batch_size)
    )
    assert process.stderr is not None
    assert process.stdin is not None
    seeded = ""
    for line in process.stderr:
        if line.startswith(("Seeded", "Seeding failed", "Seeding stopped", "Cannot use", "Configuration error")):
            seeded = line
            break
    process.stdin.write("q\n")
    process.stdin.flush()
    peak = _reap(process)
    if not seeded.startswith("Seeded"):
        raise RuntimeError(f"{twin} seed did not finish: {seeded.strip() or 'no report'}")
    if "already cached" in seeded:
        raise RuntimeError(f"{twin} seed left keys as they were, so it timed less work: {seeded.strip()}")
    return ScriptSeed(_seconds_in(seeded), peak)


def measure_scale(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """A big seed through each real script against the ceiling (redis-cli --pipe), and peak memory at N/10 and N."""
    client = clients.sync_client()
    url = clients.settings.redis_url
    with tempfile.TemporaryDirectory(prefix="benchmark-pipe-") as directory:
        commands = Path(directory) / "seed.resp"
        write_seed_commands(commands, data.sync(), plan.big, plan.seed_batch_size, SCRIPT_POLICY)  # not timed
        for _ in range(plan.scale_rounds):
            for twin in ("sync", "async"):
                cleanup(client)
                seed = run_script_seed(twin, url, data, plan.big, plan.seed_batch_size)
                measurements.scale.setdefault(f"{twin}-seconds", []).append(seed.seconds)
                measurements.scale.setdefault(f"{twin}-peak-mb", []).append(seed.peak_rss_mb)
            cleanup(client)
            ceiling = redis_cli_pipe(url, commands, plan.big)
            if ceiling is not None:
                measurements.scale.setdefault("pipe-seconds", []).append(ceiling)
    for twin in ("sync", "async"):
        cleanup(client)
        small = run_script_seed(twin, url, data, plan.big // 10, plan.seed_batch_size)
        measurements.scale.setdefault(f"{twin}-peak-mb-tenth", []).append(small.peak_rss_mb)
    cleanup(client)


def measure_hits_during_seed(
    clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase
) -> None:
    """Hits typed at the prompt (paced like a person) while the script seeds `big` records behind it."""
    client = clients.sync_client()
    for twin, mode in (("sync", "threaded"), ("async", "pipelined")):
        cleanup(client)
        client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
        process = _spawn(
            twin,
            clients.settings.redis_url,
            data,
            "--count",
            str(plan.big),
            "--seed-mode",
            mode,
            "--json",
            stdout=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        started, finished = threading.Event(), threading.Event()
        threading.Thread(target=_watch_seed, args=(process.stderr, started, finished), daemon=True).start()
        started.wait(timeout=30)
        latencies: list[float] = []
        while not finished.is_set() and process.poll() is None:
            sent = time.perf_counter()
            process.stdin.write(f"{HIT_ID}\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            latencies.append(time.perf_counter() - sent)
            if answer.get("source") != "cache":
                raise RuntimeError(f"expected a hit while seeding, got {answer}")
            time.sleep(plan.hit_pace_seconds)  # the pace of a person typing, part of the workload
        process.stdin.write("q\n")
        process.stdin.flush()
        _reap(process)
        measurements.hits_during_seed[twin] = latencies
    cleanup(client)


def _watch_seed(stderr: io.TextIOBase, started: threading.Event, finished: threading.Event) -> None:
    for line in stderr:
        if "in the background" in line:
            started.set()
        if line.startswith(("Seeded", "Seeding stopped", "Seeding failed")):
            finished.set()
    started.set()
    finished.set()


def measure_startup(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """From starting the script to its first answer (a hit), with --seed-mode none."""
    client = clients.sync_client()
    client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    for _ in range(plan.startup_rounds):
        for twin in ("sync", "async"):
            started = time.perf_counter()
            process = _spawn(twin, clients.settings.redis_url, data, "--seed-mode", "none", stdout=subprocess.PIPE)
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(f"{HIT_ID}\n")
            process.stdin.flush()
            first_answer = process.stdout.readline()
            measurements.startup.setdefault(twin, []).append(time.perf_counter() - started)
            process.stdin.write("q\n")
            process.stdin.flush()
            _reap(process)
            if not first_answer.startswith("Found in cache"):
                raise RuntimeError(f"unexpected first answer: {first_answer!r}")
    cleanup(client)
