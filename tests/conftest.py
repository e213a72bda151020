"""Shared fixtures: a clean environment, a fresh database and fakeredis server per test, a private redis-server.

No test ever talks to a shared Redis (such as one on localhost:6379): integration tests
use a redis-server that pytest-redis starts on a free port in a temp dir and stops at the
end; the PostgreSQL tests (marked `postgres`) use a private PostgreSQL server (see
tests/postgres.py). They never skip: a run that selects any of them without the binaries
they need (redis-server and redis-cli on PATH, PostgreSQL's server binaries) stops before
the first test, with one line that says what to install.
Every test runs in a temp directory holding its own SQLite `users.db` (the default
DATABASE_URL) with TEST_DB_SIZE users, copied from one filled once per session.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest
import redis
from pytest_redis import factories

from benchmarks.local_postgres import postgres_binaries
from config.database import AsyncSqliteConnector, SqliteConnector
from config.redis import get_redis
from config.settings import setting_names
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.records import UserRecord
from tests.postgres import MISSING_POSTGRES_LINE, LocalPostgres, fresh_database, needs_postgres, private_postgres
from tests.servers import (
    RedisServer,
    missing_redis_binaries,
    missing_redis_line,
    redis_cli_binary,
    redis_server_binary,
    start_cluster,
    start_sentinel_group,
)
from tests.twins import EVENT_WAIT_SECONDS, TEST_DB_SIZE, close_databases

PROJECT_ROOT = Path(__file__).resolve().parent.parent

private_redis_proc = factories.redis_proc(port=None)


@pytest.fixture(scope="session")
def users_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with users 1..TEST_DB_SIZE, filled once per session and copied into each test."""
    path = tmp_path_factory.mktemp("template") / "users.db"
    database = Database(SqliteConnector(str(path), 5.0), 0)
    database.fill(database.filled_to(), TEST_DB_SIZE)
    database.identity()  # drawn once: every test's copy is the same database, as a restored backup is
    database.close()
    return path


@pytest.fixture(autouse=True)
async def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, users_template: Path) -> AsyncIterator[None]:
    """No demo variable leaks in from the developer's shell or ./.env, no singleton between tests, and a
    fresh ./users.db (the default DATABASE_URL) with DB_SIZE users in the test's own directory."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(users_template, tmp_path / "users.db")
    monkeypatch.setenv("DB_SIZE", str(TEST_DB_SIZE))  # the copy is complete: no test run fills it further
    get_redis.cache_clear()
    yield
    await close_databases()
    get_redis.cache_clear()


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """A fresh in-memory server shared by the sync and async clients of one test."""
    return fakeredis.FakeServer()


@pytest.fixture
def sync_client(fake_server: fakeredis.FakeServer) -> Iterator[redis.Redis]:
    client = fakeredis.FakeRedis(server=fake_server)
    yield client
    client.close()


@pytest.fixture
async def async_client(fake_server: fakeredis.FakeServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = fakeredis.FakeAsyncRedis(server=fake_server)
    yield client
    await client.aclose()


# --- the no-skip policy (for every server), and the private redis-server ---


def pytest_collection_finish(session: pytest.Session) -> None:
    """Integration tests never skip: without the server binaries they need, stop the run with one line."""
    if session.config.option.collectonly:
        return
    integration = [item for item in session.items if item.get_closest_marker("integration")]
    problems = []  # `pytest -m "not integration"` selects none of them: no server needed
    # PostgreSQL's tests answer from the embedded Redis: only the others need redis-server.
    if any(not needs_postgres(item) for item in integration) and (missing := missing_redis_binaries()):
        problems.append(missing_redis_line(missing))
    if any(needs_postgres(item) for item in session.items) and postgres_binaries() is None:
        problems.append(MISSING_POSTGRES_LINE)
    if problems:
        # pytest prints a UsageError as one "ERROR: ..." line and exits 4, before any test runs.
        raise pytest.UsageError("; ".join(problems))


@dataclass(frozen=True)
class PrivateRedis:
    """A redis-server this test run started, and only it uses."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> PrivateRedis:
    """The session's private redis-server (started once, stopped at the end)."""
    redis_server_binary()
    executor = request.getfixturevalue("private_redis_proc")
    return PrivateRedis(executor.host, executor.port)


@pytest.fixture
def redis_url(redis_server: PrivateRedis) -> Iterator[str]:
    """The private server's URL, emptied after the test (it is ours alone, so FLUSHDB is safe here)."""
    yield redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start a server of the test's own (`start_redis("--requirepass", "pw")`); all are stopped after it."""
    started: list[RedisServer] = []

    def start(*arguments: str, tls: bool = False) -> RedisServer:
        server = RedisServer(tmp_path, *arguments, tls=tls, binary=redis_server_binary()).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    """A private 3-master Redis Cluster on free ports, stopped after the test."""
    nodes = start_cluster(tmp_path, server_binary=redis_server_binary(), cli_binary=redis_cli_binary())
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    """A private master, replica and Sentinel, stopped after the test."""
    redis_server_binary()
    group = start_sentinel_group(tmp_path)
    yield group
    for server in group:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the private PostgreSQL server (see tests/postgres.py) ---


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """The session's private PostgreSQL server (started once, stopped and removed at the end)."""
    yield from private_postgres()


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres) -> Iterator[str]:
    """The URL of a fresh, uniquely named database on the private server, dropped after the test."""
    yield from fresh_database(postgres_server)


# --- a database whose reads the test holds open (tests/test_race.py, tests/test_trace.py) ---


class GatedDatabase(Database):
    """A database whose reads, once done, wait at a gate: the read is "held open" until the test says.

    The test waits for `read_done`, does what must happen meanwhile (an update, a second
    lookup of the same id), then sets `gate`.
    """

    def __init__(self, path: str) -> None:
        super().__init__(SqliteConnector(path, 5.0), 0)
        self.read_done = threading.Event()
        self.gate = threading.Event()

    def fetch(self, user_id: int) -> UserRecord | None:
        record = super().fetch(user_id)
        self._hold()
        return record

    def read_range(self, ids: range) -> list[UserRecord]:
        records = super().read_range(ids)
        self._hold()
        return records

    def _hold(self) -> None:
        self.read_done.set()
        assert self.gate.wait(EVENT_WAIT_SECONDS)


class AsyncGatedDatabase(AsyncDatabase):
    """The async twin's gated database."""

    def __init__(self, path: str) -> None:
        super().__init__(AsyncSqliteConnector(path, 5.0), 0)
        self.read_done = asyncio.Event()
        self.gate = asyncio.Event()

    async def fetch(self, user_id: int) -> UserRecord | None:
        record = await super().fetch(user_id)
        await self._hold()
        return record

    async def read_range(self, ids: range) -> list[UserRecord]:
        records = await super().read_range(ids)
        await self._hold()
        return records

    async def _hold(self) -> None:
        self.read_done.set()
        await asyncio.wait_for(self.gate.wait(), EVENT_WAIT_SECONDS)
