"""The async twin keeps the meaning of the user's order, and bounds the work it has in flight.

Lookups of different ids overlap; a command waits for the earlier commands on its id, and
`clear`, `stats` and the end of input wait for everything typed before them. The unit
tests drive `InFlight` with commands that block on events, so they never depend on timing.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import main_async
from cli.commands import order_of, parse_command
from main_async import InFlight

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Gate:
    """A command that records when it starts and ends only when the test opens it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self.started = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        self.log.append(f"start {self.name}")
        await self.opened.wait()
        self.log.append(f"end {self.name}")


async def settle() -> None:
    """Give every runnable task turns of the loop, before checking that something did NOT happen.

    What must happen is awaited as an event (`started.wait()`); only the absence of a start
    is checked after these turns. All runs on one event loop with no I/O, so no thread's
    scheduling is involved: a start that was wrongly allowed happens within them.
    """
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_command_waits_for_the_earlier_ones_on_its_id_and_other_ids_overlap() -> None:
    log: list[str] = []
    flight = InFlight(10)
    first, second, other = Gate("42a", log), Gate("42b", log), Gate("7", log)
    await flight.start(42, 1, first)
    await flight.start(42, 1, second)
    await flight.start(7, 1, other)
    await first.started.wait()
    await other.started.wait()  # another id: overlaps, while the first still runs
    await settle()
    assert not second.started.is_set()  # same id: waits for the first
    first.opened.set()
    await second.started.wait()
    second.opened.set()
    other.opened.set()
    await flight.wait()
    assert log.index("end 42a") < log.index("start 42b")


async def test_a_command_spanning_every_key_waits_for_all_before_it_and_holds_back_all_after_it() -> None:
    log: list[str] = []
    flight = InFlight(10)
    earlier = [Gate(f"early {user_id}", log) for user_id in (1, 2)]
    for user_id, gate in zip((1, 2), earlier, strict=True):
        await flight.start(user_id, 1, gate)
    clear = Gate("clear", log)
    await flight.start(None, 1, clear)
    later = Gate("later 3", log)
    await flight.start(3, 1, later)
    await settle()
    assert not clear.started.is_set()
    assert not later.started.is_set()  # an id nobody used before still waits for the clear
    earlier[0].opened.set()
    await settle()
    assert not clear.started.is_set()  # one earlier command is still running
    earlier[1].opened.set()
    await clear.started.wait()
    await settle()
    assert not later.started.is_set()
    clear.opened.set()
    await later.started.wait()
    later.opened.set()
    await flight.wait()
    assert log.index("end clear") < log.index("start later 3")


async def test_reading_input_waits_while_the_lookup_limit_is_in_flight() -> None:
    log: list[str] = []
    flight = InFlight(1000)
    big = Gate("stampede of 800", log)
    await flight.start(42, 800, big)
    another = asyncio.create_task(flight.start(43, 300, Gate("stampede of 300", log)))
    await settle()
    assert not another.done()  # 800 + 300 > 1000: the reader waits, starting nothing more
    big.opened.set()
    await another
    assert flight.limit == 1000


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("42", (42, 1)),
        ("update 42", (42, 1)),
        ("del 42", (42, 1)),
        ("ttl 42", (42, 1)),
        ("stampede 42 500", (42, 500)),
        ("clear", (None, 1)),
        ("stats", (None, 1)),
    ],
)
def test_what_each_command_waits_for(typed: str, expected: tuple[int | None, int]) -> None:
    assert order_of(parse_command(typed)) == expected


# --- through the real async twin, on a private redis-server ---


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def run_async_twin(redis_url: str, typed: bytes) -> tuple[int, list[str], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0.05"]
    code = main_async.main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


@pytest.mark.integration
def test_update_then_lookup_reads_the_new_record(redis_url: str, server: redis.Redis) -> None:
    code, out, _ = run_async_twin(redis_url, b"41\nupdate 41\n41\n")
    assert code == 0
    assert out[0].startswith("Stored: user-41 = ")
    assert '"version":0' in out[0]
    assert out[1].startswith("Updated user-41 in the database")
    assert out[2].startswith("Stored: user-41 = ")
    assert '"version":1' in out[2]
    assert b'"version":1' in (server.get("user-41") or b"")


@pytest.mark.integration
def test_delete_then_lookup_is_a_miss(redis_url: str, server: redis.Redis) -> None:
    code, out, _ = run_async_twin(redis_url, b"42\n42\ndel 42\n42\n")
    assert code == 0
    assert [line.split(" = ")[0] for line in out] == [
        "Stored: user-42",
        "Found in cache: user-42",
        "Deleted user-42: the next lookup reads the database.",
        "Stored: user-42",
    ]


@pytest.mark.integration
def test_clear_waits_for_the_lookups_before_it_and_stats_counts_them(redis_url: str, server: redis.Redis) -> None:
    server.set("not-ours", "keep")
    code, out, _ = run_async_twin(redis_url, b"41\n42\n43\nclear\nstats\n")
    assert code == 0
    assert sorted(line.split(" = ")[0] for line in out[:3]) == ["Stored: user-41", "Stored: user-42", "Stored: user-43"]
    assert out[3].startswith("Cleared 3 demo keys")
    assert out[4].startswith("Stats: 3 lookups: 0 hits, 3 misses")
    # no lookup stored its key after the clear (user-database ties the namespace to its database: not a user's key)
    assert sorted(server.keys()) == [b"not-ours", b"user-database"]


# --- bounded work: never "unavailable" while the server is healthy, memory flat ---


@pytest.mark.timeout(300)  # 40,000 lookups (threads, in main.py): 25 s on an idle 2-core machine, more when loaded
@pytest.mark.parametrize("script", ["main.py", "main_async.py"])
def test_repeated_stampedes_on_the_embedded_redis_never_report_an_outage_and_memory_stays_flat(
    script: str, tmp_path: Path
) -> None:
    typed = b"stampede 42 1000\n" * 40 + b"stats\n"
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "memory://",
        "SEED_MODE": "none",
        "DB_LATENCY_SECONDS": "0.01",
        "DB_SIZE": "1000",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    measured = (  # the child reports its own peak memory, whatever else this test session ran
        "import re, runpy, sys\n"
        f"sys.argv = [{str(PROJECT_ROOT / script)!r}]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n"
        # VmHWM: this program's own peak (ru_maxrss would also count the pytest process it was forked from)
        "    peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "    sys.stderr.write(f'peak-rss-kib={peak}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", measured],
        input=typed,
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out, err = done.stdout.decode().splitlines(), done.stderr.decode()
    assert len([line for line in out if line.startswith("Stampede on user-42: ")]) == 40
    assert "unavailable" not in err
    assert "Too many connections" not in err
    assert "0 answered without the cache" in out[-3]
    peak_kib = int(err.rsplit("peak-rss-kib=", 1)[1].split()[0])
    assert peak_kib < 150 * 1024
