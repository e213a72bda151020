"""Shared fixtures: a clean environment, a fresh fakeredis server per test, and a private redis-server.

No test ever talks to a shared Redis (such as one on localhost:6379): integration tests
use a redis-server that pytest-redis starts on a free port in a temp dir and stops at the
end. When CI=true and no redis-server can be found, those tests fail instead of skipping.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fakeredis
import pytest
import redis
from pytest_redis import factories

from config.redis import get_redis
from config.settings import setting_names
from tests.servers import RedisServer, redis_server_binary

PROJECT_ROOT = Path(__file__).resolve().parent.parent

private_redis_proc = factories.redis_proc(port=None)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No demo variable leaks in from the developer's shell or ./.env, and no singleton between tests."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_redis.cache_clear()  # type: ignore[attr-defined]
    yield
    get_redis.cache_clear()  # type: ignore[attr-defined]


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


# --- the private redis-server ---


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
        redis_server_binary()
        server = RedisServer(tmp_path, *arguments, tls=tls).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
