"""Every message tells the truth, names what to do about it, and shows no part of a secret: both twins.

- After a Sentinel failover, the recovery line names the master now in use.
- An unreachable Sentinel is one line, at once: no backoff, no client object dumped.
- Each start-up failure gets the hint for its cause (Redis and the database).
- Upper-case URL schemes are accepted and normalised.
- With nothing configured and no network at all, the embedded Redis stands in.
- Generated passwords holding every URL-special character, raw and percent-encoded, driven
  through every error path of both entry points: no 4-character fragment of one is printed.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import random
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio.sentinel
import redis.sentinel

import main
import main_async
from cli.console import Console
from cli.messages import _REDIS_HINTS as _HINTS
from cli.messages import PRIVATE_CACHE, database_unavailable, describe_in_use, startup_failure
from config.database import DatabaseError, database_failure_reason
from config.redis import get_redis
from config.redis_failures import NoSentinelAnswered
from config.settings import EMBEDDED_REDIS_URL, Settings
from config.urls import is_host
from simulator.breaker import CacheEvent
from simulator.policy import CachePolicy
from simulator.results import LookupResult, Source
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from tests.conftest import PROJECT_ROOT
from tests.postgres import LocalPostgres
from tests.servers import RedisServer
from tests.test_e2e import assert_clean, script_env, stderr_lines
from tests.twins import async_sqlite_database, sqlite_database

TWINS = {"sync": main, "async": main_async}
SCRIPTS = ["main.py", "main_async.py"]
DOCKER_HINT = "start one with `docker compose up -d redis`, or set REDIS_URL=memory:// for the embedded one"


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_main(
    twin: str, argv: list[str], typed: bytes = b"", capsys: pytest.CaptureFixture[str] | None = None
) -> tuple[int, list[str], list[str]]:
    """Run one entry point in-process; returns the exit code and every stdout and stderr line it printed.

    argparse writes its one-line error to the real sys.stderr: `capsys` collects that too.
    """
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    printed = capsys.readouterr() if capsys is not None else None
    extra_out = printed.out.splitlines() if printed else []
    extra_err = printed.err.splitlines() if printed else []
    get_redis.cache_clear()
    return code, out.getvalue().splitlines() + extra_out, err.getvalue().splitlines() + extra_err


# --- 1. after a Sentinel failover, the recovery line names the master in use ---


def _wait_until_the_sentinel_knows_the_replica(sentinel: RedisServer, replica: RedisServer) -> None:
    """Sentinel learns of replicas from the master's INFO: wait for that, or a forced failover finds none."""
    deadline = time.monotonic() + 30  # a cap on a hung server, not a margin: Sentinel asks every 10 s
    with sentinel.admin(decode_responses=True) as admin:
        while True:
            known = admin.sentinel_slaves("mymaster")
            if any(item["port"] == replica.port and not item["is_disconnected"] for item in known):
                return
            assert time.monotonic() < deadline, "Sentinel never learned of the replica"
            time.sleep(0.05)  # polling another process's state


def _fail_over(sentinel: RedisServer) -> None:
    """Make Sentinel promote the replica now, and wait for its +switch-master announcement."""
    with sentinel.admin(decode_responses=True) as admin, admin.pubsub() as announcements:
        announcements.subscribe("+switch-master")
        announcements.get_message(timeout=10)  # the subscription's confirmation
        admin.execute_command("SENTINEL", "FAILOVER", "mymaster")
        deadline = time.monotonic() + 30  # a cap on a hung Sentinel, not a margin
        while (message := announcements.get_message(timeout=1)) is None or message["type"] != "message":
            assert time.monotonic() < deadline, "Sentinel never switched masters"


async def _lookup(cache: CacheAside | AsyncCacheAside, user_id: int) -> LookupResult:
    if isinstance(cache, CacheAside):
        return cache.lookup(user_id)
    return await cache.lookup(user_id)


@pytest.fixture
async def wired_like_the_demo(
    twin: str, sentinel_group: tuple[RedisServer, RedisServer, RedisServer]
) -> AsyncIterator[tuple[CacheAside | AsyncCacheAside, Settings, io.StringIO]]:
    """A twin's cache on the Sentinel group, its notices going to a Console as main.py and main_async.py wire it."""
    _, _, sentinel = sentinel_group
    settings = Settings(
        redis_configured=True,
        sentinels=(("127.0.0.1", sentinel.port),),
        db_latency_seconds=0.0,
        cache_cooldown_seconds=0.0,  # the lookup after the failover probes Redis at once
    )
    notes = io.StringIO()
    console = Console(io.StringIO(), notes)
    clients, policy = get_redis(settings), CachePolicy.from_settings(settings)
    cache: CacheAside | AsyncCacheAside
    if twin == "sync":
        notify = lambda event: console.cache_event(event, settings)  # noqa: E731 - main.py's own wiring
        cache = CacheAside(clients.sync_client(), sqlite_database(0.0), policy, notify=notify)
    else:
        notify = lambda event: console.cache_event(event, settings)  # noqa: E731 - main_async.py's own wiring
        cache = AsyncCacheAside(clients.async_client(), async_sqlite_database(0.0), policy, notify=notify)
    yield cache, settings, notes
    clients.close()
    await clients.aclose()


@pytest.mark.integration
async def test_after_a_failover_the_recovery_line_names_the_new_master(
    wired_like_the_demo: tuple[CacheAside | AsyncCacheAside, Settings, io.StringIO],
    sentinel_group: tuple[RedisServer, RedisServer, RedisServer],
) -> None:
    cache, settings, notes = wired_like_the_demo
    master, replica, sentinel = sentinel_group
    with sentinel.admin() as admin:  # no failover on its own: the test says when
        admin.execute_command("SENTINEL", "SET", "mymaster", "down-after-milliseconds", "600000")
    _wait_until_the_sentinel_knows_the_replica(sentinel, replica)
    assert (await _lookup(cache, 77)).source is Source.DATABASE
    assert describe_in_use(settings) == (
        f"Redis master 'mymaster' at {master.address} (found through Sentinel {sentinel.address})"
    )
    master.kill()
    assert (await _lookup(cache, 77)).degraded  # Sentinel still names the dead master
    _fail_over(sentinel)
    recovered = await _lookup(cache, 77)
    assert not recovered.degraded
    warning, recovery = notes.getvalue().splitlines()
    assert warning.startswith("Warning: the cache is unavailable (")
    assert recovery == (
        f"Cache recovered: using Redis master 'mymaster' at {replica.address} "
        f"(found through Sentinel {sentinel.address}) again."
    )
    assert master.address not in recovery


@pytest.mark.parametrize(
    ("settings", "in_use"),
    [
        (
            Settings(redis_url="redis://app:Qjxvzk@cache.local:6380/2", redis_configured=True),
            "Redis at redis://app:****@cache.local:6380/2",
        ),
        (
            Settings(redis_url="redis://:Qjxvzk@10.0.0.1:7001/0", redis_configured=True, redis_cluster=True),
            "Redis Cluster through redis://:****@10.0.0.1:7001/0",
        ),
        (Settings(redis_url=EMBEDDED_REDIS_URL), "the embedded in-memory Redis (fakeredis)"),
        (
            # Sentinel mode before any client asked: the master's name, never REDIS_URL's host
            Settings(redis_url="redis://:Qjxvzk@ignored:6379/0", sentinels=(("10.0.0.9", 26379), ("::1", 26380))),
            "Redis master 'mymaster' (found through Sentinel 10.0.0.9:26379,[::1]:26380)",
        ),
    ],
)
def test_the_recovery_line_names_the_server_in_use_never_a_password(settings: Settings, in_use: str) -> None:
    notes = io.StringIO()
    Console(io.StringIO(), notes).cache_event(CacheEvent(True), settings)
    assert notes.getvalue() == f"Cache recovered: using {in_use} again.\n"
    assert "ignored" not in notes.getvalue()


# --- 2. an unreachable Sentinel: one line, at once ---


def test_an_unreachable_sentinel_is_one_line_without_backoff_or_object_dumps(
    twin: str, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It took 9 s (redis-py's exponential backoff, then a second discovery) and printed a client's repr.

    No clock here: the waits are counted. Nothing listens, so a connection attempt fails at
    once; the time goes only to sleeps, and there must be none.
    """
    attempts: list[object] = []
    sleeps: list[float] = []
    real_connect, real_sleep, real_asleep = socket.socket.connect, time.sleep, asyncio.sleep

    def connect(self: socket.socket, address: Any) -> None:
        if address[1] == free_port:
            attempts.append(address)
        real_connect(self, address)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    async def asleep(seconds: float, *arguments: Any) -> Any:
        if seconds:
            sleeps.append(seconds)
        return await real_asleep(seconds, *arguments)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(asyncio, "sleep", asleep)
    code, out, err = run_main(twin, ["--sentinel", f"127.0.0.1:{free_port}", "--db-latency", "0"])
    assert code == 1
    assert out == []
    assert err == [
        f"Cannot use the Redis master 'mymaster' through Sentinel 127.0.0.1:{free_port}: no Sentinel could be "
        "reached: connection refused (nothing is listening there). Hint: check REDIS_SENTINELS "
        "(`docker compose --profile sentinel up -d` starts some)."
    ]
    assert sleeps == []
    assert 1 <= len(attempts) <= 2  # one ping, and one retry of a dropped connection


@pytest.mark.integration
def test_sentinels_that_do_not_know_the_master_say_so(
    twin: str, sentinel_group: tuple[RedisServer, RedisServer, RedisServer]
) -> None:
    _, _, sentinel = sentinel_group
    code, _, err = run_main(twin, ["--sentinel", sentinel.address, "--sentinel-master", "nosuch", "--db-latency", "0"])
    assert code == 1
    assert err == [
        f"Cannot use the Redis master 'nosuch' through Sentinel {sentinel.address}: no Sentinel that answered "
        "knows a master by that name that is up. Hint: check REDIS_SENTINEL_MASTER: the name in the Sentinels' "
        "`sentinel monitor` line."
    ]


# --- 3 and 4. each failure: its reason and the hint for that cause ---


def _error(kind: type[Exception], text: str, **options: Any) -> Exception:
    return kind(text, **options)


def _no_sentinel() -> Exception:
    try:
        raise NoSentinelAnswered("no Sentinel could be reached") from redis.ConnectionError(
            "Error 111 connecting to 127.0.0.1:26379. Connection refused."
        )
    except NoSentinelAnswered as error:
        return error


SERVER = Settings(redis_url="redis://app:Qjxvzk@cache.local:6380/0", redis_configured=True)
SENTINEL = Settings(redis_url="redis://:Qjxvzk@ignored/0", redis_configured=True, sentinels=(("10.0.0.9", 26379),))


@pytest.mark.parametrize(
    ("settings", "error", "found", "reason", "hint"),
    [
        (
            SERVER,
            _error(redis.ConnectionError, "Error 111 connecting to cache.local:6380. Connection refused."),
            None,
            "connection refused (nothing is listening there)",
            DOCKER_HINT,
        ),
        (
            SERVER,
            _error(redis.AuthenticationError, "invalid username-password pair", status_code="WRONGPASS"),
            None,
            "authentication failed (wrong password or unknown user)",
            "check the user name and password in REDIS_URL (percent-encoded), or REDIS_USERNAME and REDIS_PASSWORD",
        ),
        (
            SERVER,
            _error(redis.AuthenticationError, "Authentication required.", status_code="NOAUTH"),
            None,
            "the server requires a password, and none was given",
            "put the password in REDIS_URL (redis://:password@host, percent-encoded) or in REDIS_PASSWORD",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, "Error -2 connecting to cache.local:6380. Name or service not known."),
            None,
            "unknown host (the name could not be resolved)",
            "check the host name in REDIS_URL (or REDIS_HOST)",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, "Error 113 connecting to cache.local:6380. No route to host."),
            None,
            "no route to the server (no route to host, EHOSTUNREACH)",
            "check the host in REDIS_URL and this machine's network connection",
        ),
        (
            SERVER,
            _error(redis.TimeoutError, "Timeout connecting to server"),
            None,
            "timed out (is the server frozen, overloaded or behind a firewall?)",
            "check that the server is up and answering and that no firewall drops the port, "
            "or raise REDIS_TIMEOUT_SECONDS",
        ),
        (
            SERVER,
            _error(redis.TimeoutError, "Timeout connecting to server"),
            "plain",
            "the server speaks plain Redis, not TLS",
            "use redis:// for this port, or the server's TLS port with rediss://",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, "Error while reading from h:1 : (104, 'Connection reset by peer')"),
            "tls",
            "the server speaks TLS, not plain Redis",
            "use rediss:// for this port (with REDIS_TLS_CA_FILE for a private CA)",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, "Error while reading from h:1 : (104, 'Connection reset by peer')"),
            None,
            "the server closed the connection",
            "check that the port is a Redis server's (a TLS port needs rediss://) and that it is not restarting",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, "Error 1 connecting to h:1. [SSL: CERTIFICATE_VERIFY_FAILED] certificate"),
            None,
            "TLS verification failed (check the CA file and the host name)",
            "set REDIS_TLS_CA_FILE to the CA that signed the server's certificate, "
            "and use the host name the certificate names",
        ),
        (
            SERVER,
            _error(redis.ConnectionError, 'Protocol error, got "H" as reply type byte'),
            None,
            "what answers there does not speak the Redis protocol",
            "check the host and port in REDIS_URL",
        ),
        (
            SERVER,
            _error(
                redis.exceptions.RedisClusterException,
                "Redis Cluster cannot be connected. Please provide at least one reachable node: "
                "Cluster mode is not enabled on this node",
            ),
            None,
            "that server is not a Redis Cluster node (cluster mode is not enabled on it)",
            "unset REDIS_CLUSTER to use it as a single server",
        ),
        (
            SENTINEL,
            _no_sentinel(),
            None,
            "no Sentinel could be reached: connection refused (nothing is listening there)",
            "check REDIS_SENTINELS (`docker compose --profile sentinel up -d` starts some)",
        ),
        (
            SENTINEL,
            _error(
                redis.sentinel.MasterNotFoundError,
                "No master found for 'mymaster'",  # the Sentinels answered, and none knows it
            ),
            None,
            "no Sentinel that answered knows a master by that name that is up",
            "check REDIS_SENTINEL_MASTER: the name in the Sentinels' `sentinel monitor` line",
        ),
        (
            SENTINEL,
            _error(
                redis.asyncio.sentinel.MasterNotFoundError,  # during a run: every Sentinel failed, reprs and all
                "No master found for 'mymaster' : <redis.asyncio.client.Redis(<...>)> - network:ConnectionError, "
                "<redis.asyncio.client.Redis(<...>)> - network:TimeoutError",
            ),
            None,
            "no Sentinel gave the master's address (2 could not be reached)",
            "check REDIS_SENTINELS (`docker compose --profile sentinel up -d` starts some)",
        ),
        (
            SERVER,
            _error(
                redis.exceptions.RedisClusterException,
                "Redis Cluster cannot be connected. Please provide at least one reachable node: "
                "Timeout connecting to server",
            ),
            None,
            "timed out (is the server frozen, overloaded or behind a firewall?)",
            "check that the server is up and answering and that no firewall drops the port, "
            "or raise REDIS_TIMEOUT_SECONDS",
        ),
        (
            SENTINEL,
            _error(redis.ConnectionError, "Error 111 connecting to 10.0.0.5:6379. Connection refused."),
            None,
            "connection refused (nothing is listening there)",
            "the master the Sentinels name is down: wait for a failover, or check the Sentinels",
        ),
    ],
)
def test_each_startup_failure_gets_the_reason_and_hint_for_its_cause(
    settings: Settings, error: Exception, found: Any, reason: str, hint: str
) -> None:
    line = str(startup_failure(settings, error, found))
    assert line.endswith(f": {reason}. Hint: {hint}.")
    assert "\n" not in line
    assert "<" not in line  # no object's repr
    assert "Qjxvzk" not in line


@pytest.mark.parametrize(
    ("reason", "hint"),
    [
        ("authentication failed (wrong password or unknown user)", "check the user name and password in DATABASE_URL"),
        ("connection refused (nothing is listening there)", "start one with `docker compose up -d postgres`"),
        ("no such database on the server", "check the database name at the end of DATABASE_URL"),
        ("unknown host", "check the host name in DATABASE_URL"),
        ("timed out (is the server down, overloaded or behind a firewall?)", "raise DB_TIMEOUT_SECONDS"),
        ("no route to the server", "check the host in DATABASE_URL and this machine's network connection"),
    ],
)
def test_each_database_failure_gets_the_hint_for_its_cause(reason: str, hint: str) -> None:
    settings = Settings(database_url="postgresql://app:Qjxvzk@db.local:5432/demo")
    line = database_unavailable(settings, DatabaseError(reason))
    assert line.startswith(
        f"Cannot use the database, PostgreSQL at postgresql://app:****@db.local:5432/demo: {reason}."
    )
    assert hint in line.partition(" Hint: ")[2]
    assert ("docker" in line) == ("refused" in reason)


@pytest.mark.integration
def test_a_wrong_database_password_gets_the_password_hint_not_the_docker_one(
    twin: str, postgres_server: LocalPostgres
) -> None:
    wrong = postgres_server.url.replace(f":{postgres_server.password}@", ":Wr0ng-Qjxvzk@")
    code, out, err = run_main(twin, ["--redis-url", "memory://", "--seed-mode", "none", "--database-url", wrong])
    assert code == 1
    assert err[-1].endswith(
        ": authentication failed (wrong password or unknown user). "
        "Hint: check the user name and password in DATABASE_URL (percent-encoded)."
    )
    assert "Qjxvzk" not in "\n".join(out + err)


# --- 4b. a password that is a common word: only the driver's words are redacted ---

COMMON_WORDS = ["demo", "redis", "refused", "docker", "postgresql", "localhost"]
DATABASE_DOCKER_HINT = "start one with `docker compose up -d postgres`, or unset DATABASE_URL for the SQLite file"


@pytest.mark.parametrize("password", COMMON_WORDS)
def test_a_common_word_as_the_redis_password_leaves_the_line_intact(twin: str, password: str, free_port: int) -> None:
    code, out, err = run_main(
        twin, ["--redis-url", f"redis://:{password}@127.0.0.1:{free_port}/0", "--db-latency", "0"]
    )
    assert code == 1
    assert out == []
    assert err == [
        f"Cannot use Redis at redis://:****@127.0.0.1:{free_port}/0: connection refused (nothing is listening "
        f"there). Hint: {DOCKER_HINT}."
    ]


@pytest.mark.parametrize("password", COMMON_WORDS)
def test_a_common_word_as_the_database_password_leaves_the_line_intact(
    twin: str, password: str, free_port: int
) -> None:
    url = f"postgresql://demo:{password}@127.0.0.1:{free_port}/demo"
    code, out, err = run_main(twin, ["--redis-url", "memory://", "--seed-mode", "none", "--database-url", url])
    assert code == 1
    assert out == []
    assert err[-1] == (
        f"Cannot use the database, PostgreSQL at postgresql://demo:****@127.0.0.1:{free_port}/demo: connection "
        f"refused (nothing is listening there). Hint: {DATABASE_DOCKER_HINT}."
    )


@pytest.mark.parametrize("password", COMMON_WORDS)
@pytest.mark.parametrize(
    ("error", "reason", "hint"),
    [
        (
            redis.ResponseError("ERR the proxy rejected {password} for this client"),
            "ERR the proxy rejected **** for this client",
            "check REDIS_URL",
        ),
        (
            redis.exceptions.NoPermissionError("NOPERM this user ({password}) has no permissions to run 'ping'"),
            "permission denied by the server's ACL (NOPERM this user (****) has no permissions to run 'ping')",
            "allow the ACL user the commands the demo sends (docs/security.md)",
        ),
    ],
)
def test_a_redis_password_quoted_by_the_driver_is_redacted_there_only(
    password: str, error: Exception, reason: str, hint: str
) -> None:
    quoted = type(error)(str(error).format(password=password))
    settings = Settings(redis_url=f"redis://:{password}@127.0.0.1:6380/0", redis_configured=True)
    line = str(startup_failure(settings, quoted))
    assert line == f"Cannot use Redis at redis://:****@127.0.0.1:6380/0: {reason}. Hint: {hint}."


@pytest.mark.parametrize("password", COMMON_WORDS)
def test_a_database_password_quoted_by_the_driver_is_redacted_there_only(password: str) -> None:
    settings = Settings(database_url=f"postgresql://demo:{password}@127.0.0.1:5433/demo")
    driver = Exception(f"FATAL: unexpected startup option {password} in the packet\nDETAIL: more")
    line = database_unavailable(settings, DatabaseError(database_failure_reason(driver)))
    assert line == (
        "Cannot use the database, PostgreSQL at postgresql://demo:****@127.0.0.1:5433/demo: FATAL: unexpected "
        "startup option **** in the packet. Hint: check DATABASE_URL."
    )


# --- 4c. a host name is no evidence of a cause: "ssl", "tls" or "handshake" in it is not a TLS failure ---


def _caused_by(error: Exception, cause: BaseException) -> Exception:
    error.__context__ = cause  # as redis-py raises its own error while handling the socket's
    return error


def _ssl_error(reason: str, text: str, kind: type[ssl.SSLError] = ssl.SSLError) -> ssl.SSLError:
    error = kind(1, text)
    error.reason = reason  # set by the ssl module's C code; not by the constructor
    return error


WRONG_VERSION = "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
REFUSED = ("connection refused (nothing is listening there)", DOCKER_HINT)
UNKNOWN_HOST = ("unknown host (the name could not be resolved)", "check the host name in REDIS_URL (or REDIS_HOST)")
TLS_HANDSHAKE = (
    "the TLS handshake failed (is the server speaking TLS? use rediss:// only for TLS ports)",
    "use redis:// for a plain port, rediss:// for a TLS one",
)


@pytest.mark.parametrize(
    ("error", "found", "expected"),
    [
        (redis.ConnectionError("Error 111 connecting to SSL-cache.corp:6379. Connection refused."), None, REFUSED),
        (redis.ConnectionError("Error 111 connecting to tls-handshake.corp:6379. Connection refused."), None, REFUSED),
        (
            redis.ConnectionError("Error 111 connecting to NOAUTH-WRONGPASS.corp:6379. Connection refused."),
            None,
            REFUSED,
        ),
        (
            _caused_by(
                redis.ConnectionError("Error 111 connecting to handshake.ssl.corp:6379. Connection refused."),
                ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            ),
            None,
            REFUSED,
        ),
        (
            redis.ConnectionError("Error -2 connecting to ssl-handshake.corp:6379. Name or service not known."),
            None,
            UNKNOWN_HOST,
        ),
        (
            redis.ConnectionError("Error 113 connecting to refused.tls.corp:6379. No route to host."),
            None,
            ("no route to the server (no route to host, EHOSTUNREACH)", _HINTS["no-route"]),
        ),
        (
            redis.TimeoutError("Timeout reading from handshake.ssl.corp:6379"),
            None,
            ("timed out (is the server frozen, overloaded or behind a firewall?)", _HINTS["timeout"]),
        ),
        (
            redis.ConnectionError("Error while reading from ssl.corp:6379 : (104, 'Connection reset by peer')"),
            None,
            ("the server closed the connection", _HINTS["closed"]),
        ),
        (
            redis.ConnectionError("Error while reading from protocol-error.corp:6379 : (104, 'Connection reset')"),
            None,
            ("the server closed the connection", _HINTS["closed"]),
        ),
        # TLS is named from the ssl module's exception in the chain, or OpenSSL's own words
        (
            _caused_by(
                redis.ConnectionError(f"Error 1 connecting to cache.corp:6380. {WRONG_VERSION}."),
                _ssl_error("WRONG_VERSION_NUMBER", WRONG_VERSION),
            ),
            None,
            TLS_HANDSHAKE,
        ),
        (
            _caused_by(
                redis.ConnectionError("Error 8 connecting to cache.corp:6380. EOF occurred in violation of protocol."),
                _ssl_error("UNEXPECTED_EOF_WHILE_READING", "EOF occurred in violation of protocol", ssl.SSLEOFError),
            ),
            None,
            TLS_HANDSHAKE,
        ),
        (redis.ConnectionError(f"Error 1 connecting to cache.corp:6380. {WRONG_VERSION}."), None, TLS_HANDSHAKE),
        # rediss:// to a port that answers neither in TLS nor in plain Redis: it does not speak Redis
        (
            _caused_by(
                redis.ConnectionError(f"Error 1 connecting to cache.corp:6380. {WRONG_VERSION}."),
                _ssl_error("WRONG_VERSION_NUMBER", WRONG_VERSION),
            ),
            "neither",
            ("what answers there does not speak the Redis protocol", "check the host and port in REDIS_URL"),
        ),
        (  # a TLS server that turned the client down (an alert) does speak TLS
            _caused_by(
                redis.ConnectionError("Error 1 connecting to cache.corp:6380. [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE]."),
                _ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE", "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] alert"),
            ),
            "neither",
            TLS_HANDSHAKE,
        ),
    ],
)
def test_the_cause_comes_from_errno_and_exception_types_never_from_the_host_name(
    error: Exception, found: Any, expected: tuple[str, str]
) -> None:
    reason, hint = expected
    line = str(startup_failure(SERVER, error, found))
    assert line == f"Cannot use Redis at redis://app:****@cache.local:6380/0: {reason}. Hint: {hint}."


def _resolve(monkeypatch: pytest.MonkeyPatch, host: str, address: str | None) -> None:
    """`host` resolves to `address` (None: it does not resolve), for both twins' resolvers."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(name: Any, port: Any, *arguments: Any, **options: Any) -> Any:
        if name == host:
            if address is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real_getaddrinfo(address, port, *arguments, **options)
        return real_getaddrinfo(name, port, *arguments, **options)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("host", "address", "expected"),
    [
        ("ssl-tls-handshake.test", "127.0.0.1", REFUSED),
        ("handshake.test", None, UNKNOWN_HOST),
    ],
)
def test_a_host_named_like_tls_is_not_reported_as_a_tls_failure(
    twin: str,
    host: str,
    address: str | None,
    expected: tuple[str, str],
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolve(monkeypatch, host, address)
    code, out, err = run_main(twin, ["--redis-url", f"redis://{host}:{free_port}/0", "--db-latency", "0"])
    reason, hint = expected
    assert (code, out) == (1, [])
    assert err == [f"Cannot use Redis at redis://{host}:{free_port}/0: {reason}. Hint: {hint}."]


class _AnswersHttp(socketserver.BaseRequestHandler):
    """What an HTTP server says to anything it does not understand, and nothing else."""

    def handle(self) -> None:
        self.request.recv(65536)  # the TLS ClientHello, or the probe's PING
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.request.shutdown(socket.SHUT_WR)
        while self.request.recv(65536):  # until the client hangs up: closing first could reset its read
            pass


@pytest.fixture
def http_port() -> Iterator[int]:
    """A port on 127.0.0.1 that answers in HTTP: neither TLS nor Redis."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _AnswersHttp)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_rediss_to_a_port_that_speaks_neither_tls_nor_redis_says_it_is_not_redis(twin: str, http_port: int) -> None:
    code, out, err = run_main(twin, ["--redis-url", f"rediss://127.0.0.1:{http_port}/0", "--db-latency", "0"])
    assert (code, out) == (1, [])
    assert err == [
        f"Cannot use Redis at rediss://127.0.0.1:{http_port}/0: what answers there does not speak the Redis "
        "protocol. Hint: check the host and port in REDIS_URL."
    ]
    assert "use redis:// for a plain port" not in err[0]


# --- 5. upper-case schemes ---


@pytest.mark.integration
def test_an_upper_case_redis_scheme_connects_to_the_server(twin: str, redis_url: str) -> None:
    shouted = redis_url.replace("redis://", "REDIS://", 1)
    code, out, err = run_main(twin, ["--redis-url", shouted, "--seed-mode", "none", "--db-latency", "0"], b"42\n")
    assert code == 0
    assert err[0] == f"Connected to Redis at {redis_url}"
    assert out[0].startswith("Stored: user-42 = ")


def test_upper_case_memory_and_sqlite_schemes_run_the_demo(twin: str) -> None:
    argv = ["--redis-url", "MEMORY://", "--database-url", "SQLITE:///users.db", "--seed-mode", "none"]
    code, out, err = run_main(twin, [*argv, "--db-latency", "0"], b"42\n")
    assert code == 0
    assert err[0] == "Using the embedded in-memory Redis (fakeredis), as REDIS_URL=memory:// asks: " + PRIVATE_CACHE
    assert err[1].startswith(f"Database: SQLite file {Path('users.db').resolve()}, users 1..")
    assert out[0].startswith("Stored: user-42 = ")


@pytest.mark.integration
def test_an_upper_case_postgresql_scheme_uses_the_server(twin: str, postgres_url: str) -> None:
    shouted = postgres_url.replace("postgresql://", "POSTGRESQL://", 1)
    argv = ["--redis-url", "memory://", "--database-url", shouted, "--seed-mode", "none", "--db-latency", "0"]
    code, out, err = run_main(twin, [*argv, "--db-size", "50", "--count", "10"], b"42\n")
    assert code == 0, err
    assert err[1].startswith("Database: PostgreSQL at postgresql://")
    assert out[0].startswith("Stored: user-42 = ")


# --- 6. nothing configured and no network at all: the embedded Redis ---


def _fail_connections_to_6379(monkeypatch: pytest.MonkeyPatch, ipv4: int, ipv6: int | None = None) -> None:
    """Connecting to localhost:6379 fails as it does with no network; no test ever reaches a real 6379.

    With `ipv6`, localhost resolves to ::1 and 127.0.0.1, each failing with its own errno
    (asyncio then reports `Multiple exceptions: [Errno ...], [Errno ...]`).
    """
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if address[1] == 6379:
            number = ipv6 if ipv6 is not None and self.family == socket.AF_INET6 else ipv4
            raise OSError(number, os.strerror(number))
        real_connect(self, address)

    def getaddrinfo(host: Any, port: Any, *arguments: Any, **options: Any) -> Any:
        if host == "localhost" and port == 6379 and ipv6 is not None:
            stream = (socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
            return [(socket.AF_INET6, *stream, ("::1", 6379, 0, 0)), (socket.AF_INET, *stream, ("127.0.0.1", 6379))]
        return real_getaddrinfo(host, port, *arguments, **options)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _fail_name_resolution(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *arguments: Any, **options: Any) -> Any:
        if host == "localhost" and port == 6379:
            raise socket.gaierror(number, "Temporary failure in name resolution")
        return real_getaddrinfo(host, port, *arguments, **options)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


FALLBACK = f"using the embedded in-memory Redis (fakeredis), {PRIVATE_CACHE}. Set REDIS_URL to use a server."


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "because"),
    [
        (errno.ECONNREFUSED, None, "nothing listens on localhost:6379"),
        (errno.ENETUNREACH, None, "localhost:6379 cannot be reached (network is unreachable, ENETUNREACH)"),
        (
            errno.EADDRNOTAVAIL,
            None,
            "localhost:6379 cannot be reached (cannot assign requested address, EADDRNOTAVAIL)",
        ),
        (errno.EHOSTUNREACH, None, "localhost:6379 cannot be reached (no route to host, EHOSTUNREACH)"),
        (errno.ENETDOWN, None, "localhost:6379 cannot be reached (network is down, ENETDOWN)"),
        (
            errno.EAFNOSUPPORT,
            None,
            "localhost:6379 cannot be reached (address family not supported by protocol, EAFNOSUPPORT)",
        ),
        (errno.ENETUNREACH, errno.EADDRNOTAVAIL, "localhost:6379 cannot be reached (network is unreachable"),
        (errno.ECONNREFUSED, errno.EADDRNOTAVAIL, "nothing listens on localhost:6379"),
    ],
)
def test_with_nothing_configured_and_no_network_the_embedded_redis_stands_in(
    twin: str, ipv4: int, ipv6: int | None, because: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_connections_to_6379(monkeypatch, ipv4, ipv6)
    code, out, err = run_main(twin, ["--seed-mode", "none", "--db-latency", "0"], b"42\n")
    assert code == 0, err
    assert err[0].startswith(f"No Redis is configured and {because}")
    assert err[0].endswith(f": {FALLBACK}")
    assert out[0].startswith("Stored: user-42 = ")


@pytest.mark.parametrize("number", [socket.EAI_AGAIN, socket.EAI_NONAME])
def test_with_nothing_configured_and_no_name_service_the_embedded_redis_stands_in(
    twin: str, number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_name_resolution(monkeypatch, number)
    code, out, err = run_main(twin, ["--seed-mode", "none", "--db-latency", "0"], b"42\n")
    assert code == 0, err
    because = "localhost:6379 cannot be reached (the name localhost cannot be resolved)"
    assert err[0] == f"No Redis is configured and {because}: {FALLBACK}"
    assert out[0].startswith("Stored: user-42 = ")


def test_a_configured_server_that_cannot_be_reached_is_never_replaced_by_the_embedded_one(
    twin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_connections_to_6379(monkeypatch, errno.ENETUNREACH)
    code, out, err = run_main(twin, ["--redis-url", "redis://localhost:6379/0", "--db-latency", "0"], b"42\n")
    assert code == 1
    assert out == []
    assert err == [
        "Cannot use Redis at redis://localhost:6379/0: no route to the server (network is unreachable, ENETUNREACH). "
        "Hint: check the host in REDIS_URL and this machine's network connection."
    ]


NO_NETWORK_WRAPPER = """
import errno, os, runpy, socket, sys

def connect(self, address):  # every connection fails as in a network namespace without loopback
    number = errno.EADDRNOTAVAIL if self.family == socket.AF_INET6 else errno.ENETUNREACH
    raise OSError(number, os.strerror(number))

socket.socket.connect = connect
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


def _without_network(tmp_path: Path) -> list[str]:
    """A command prefix that runs Python with no network at all.

    A network namespace of its own where `unshare` allows one (loopback left down, so
    localhost gives ENETUNREACH or EADDRNOTAVAIL, not ECONNREFUSED); elsewhere (CI users
    may not create namespaces) a wrapper that makes every connection fail the same way.
    Either way the test runs: it never skips.
    """
    unshare = shutil.which("unshare")
    for flags in (["-rn"], ["-n"]):
        if unshare is not None:
            probe = subprocess.run([unshare, *flags, "true"], capture_output=True, check=False, timeout=30)
            if probe.returncode == 0:
                return [unshare, *flags, sys.executable]
    wrapper = tmp_path / "no_network.py"
    wrapper.write_text(NO_NETWORK_WRAPPER)
    return [sys.executable, str(wrapper)]


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_with_no_network_at_all_the_real_scripts_use_the_embedded_redis(script: str, tmp_path: Path) -> None:
    command = [*_without_network(tmp_path), str(PROJECT_ROOT / script), "--db-latency", "0", "--count", "50"]
    done = subprocess.run(
        command, input=b"42\n4242\n", capture_output=True, cwd=tmp_path, env=script_env(), timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    first = stderr_lines(done.stderr)[0]
    assert first.startswith("No Redis is configured and localhost:6379 cannot be reached (")
    assert first.endswith(f": {FALLBACK}")
    assert b"Stored: user-4242" in done.stdout
    assert_clean(done.stderr)


# --- 7. no fragment of a password, on any path ---

SPECIALS = ["@", ":", "/", "?", "#", "[", "]", "%", " ", "%40", "%2F", "%zz", "%25", "@@", "://"]
LETTERS = "QXZJKVWYqxzjkvwy"  # rare in the demo's messages, so a 4-character window of the password is telling


def generated_passwords(count: int = 4, seed: int = 20261126) -> list[str]:
    """Passwords that hold every URL-special character and percent-encoded forms, in a different order each."""
    rng = random.Random(seed)
    passwords = ["Qzxj9KvWy"]  # nothing special: the URL is valid and only masking protects it
    for _ in range(count):
        specials = SPECIALS[:]
        rng.shuffle(specials)
        pieces = ["".join(rng.choices(LETTERS, k=3)) + special for special in specials]
        passwords.append("".join(pieces) + "".join(rng.choices(LETTERS, k=3)))
    return passwords


PASSWORDS = generated_passwords()


def fragments(password: str) -> set[str]:
    """Every 4-character window of the password, as typed and percent-encoded."""
    forms = {password, quote(password, safe=""), quote(password)}
    return {form[start : start + 4] for form in forms for start in range(len(form) - 3)}


def assert_no_fragment(printed: str, password: str) -> None:
    leaked = sorted(fragment for fragment in fragments(password) if fragment in printed)
    assert not leaked, f"{leaked} of {password!r} printed in: {printed}"


Scenario = tuple[str, list[str], dict[str, str], str | None]


def error_paths(password: str, port: int) -> list[Scenario]:
    """Every way a password can reach a message: (name, argv, environment, .env content)."""
    raw, encoded = password, quote(password, safe="")
    url, memory = f"redis://:{raw}@127.0.0.1:{port}/0", ["--redis-url", "memory://", "--seed-mode", "none"]
    database = f"postgresql://app:{encoded}@127.0.0.1:{port}/demo"
    scenarios: list[Scenario] = [
        ("raw REDIS_URL flag", ["--redis-url", url], {}, None),
        ("raw REDIS_URL with a user", ["--redis-url", f"redis://app:{raw}@127.0.0.1:{port}/0"], {}, None),
        ("raw REDIS_URL variable", [], {"REDIS_URL": url}, None),
        ("raw REDIS_URL in .env", [], {}, f"REDIS_URL='{url}'\n"),
        ("raw REDIS_URL, upper case", ["--redis-url", url.replace("redis://", "REDIS://")], {}, None),
        ("raw, port not a number", ["--redis-url", f"redis://:{raw}@127.0.0.1:notaport/0"], {}, None),
        ("raw, unbalanced bracket", ["--redis-url", f"redis://:{raw}@[::1"], {}, None),
        ("raw, no host", ["--redis-url", f"redis://:{raw}"], {}, None),
        ("encoded, nothing listening", ["--redis-url", f"redis://app:{encoded}@127.0.0.1:{port}/0"], {}, None),
        ("encoded rediss, nothing listening", ["--redis-url", f"rediss://:{encoded}@127.0.0.1:{port}/0"], {}, None),
        ("encoded, cluster", ["--cluster", "--redis-url", f"redis://:{encoded}@127.0.0.1:{port}/0"], {}, None),
        ("encoded, Sentinel", ["--sentinel", f"127.0.0.1:{port}", "--redis-url", f"redis://:{encoded}@x/0"], {}, None),
        ("encoded, CA file missing", ["--redis-url", f"rediss://:{encoded}@h/0", "--tls-ca-file", "no.pem"], {}, None),
        ("positional raw URL", [url], {}, None),
        ("positional encoded URL", [f"redis://:{encoded}@127.0.0.1/0"], {}, None),
        ("positional password", [raw], {}, None),
        ("unknown flag with a URL", [f"--redis={url}"], {}, None),
        ("unknown flag, then a URL", ["--redis-ulr", url], {}, None),
        ("a value for a switch", [f"--json={url}"], {}, None),
        ("REDIS_PASSWORD, bad port", [], {"REDIS_PASSWORD": raw, "REDIS_PORT": "notaport"}, None),
        (
            "REDIS_PASSWORD, nothing listening",
            [],
            {"REDIS_PASSWORD": raw, "REDIS_USERNAME": "app", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)},
            None,
        ),
        ("Sentinels with credentials", ["--sentinel", f":{raw}@127.0.0.1:{port}"], {}, None),
        ("REDIS_SENTINELS with credentials", [], {"REDIS_SENTINELS": f"app:{raw}@h:1"}, None),
        ("raw DATABASE_URL", [*memory, "--database-url", f"postgresql://app:{raw}@127.0.0.1:{port}/demo"], {}, None),
        ("raw DATABASE_URL, upper case", memory, {"DATABASE_URL": f"POSTGRESQL://app:{raw}@h:{port}/demo"}, None),
        ("encoded DATABASE_URL, nothing listening", [*memory, "--database-url", database], {}, None),
        ("encoded DATABASE_URL, bad sslmode", [*memory, "--database-url", database + "?sslmode=bogus"], {}, None),
        (
            "encoded DATABASE_URL, port not a number",
            [*memory, "--database-url", database.replace(f":{port}", ":x")],
            {},
            None,
        ),
        ("SQLite path with credentials", [*memory, "--database-url", f"sqlite:///app:{raw}@h/x.db"], {}, None),
        ("--env-file given a URL", ["--env-file", url], {}, None),
        # not a scheme:// URL: a libpq keyword DSN, or a password typed alone, is never echoed
        ("keyword DATABASE_URL", [*memory, "--database-url", f"host=127.0.0.1 password={raw} dbname=x"], {}, None),
        ("keyword DATABASE_URL, quoted", memory, {"DATABASE_URL": f"host=h port={port} password='{raw}'"}, None),
        ("keyword DATABASE_URL in .env", memory, {}, f"DATABASE_URL='password={encoded} dbname=x'\n"),
        ("keyword REDIS_URL", [], {"REDIS_URL": f"password={raw}"}, None),
        ("keyword REDIS_URL flag", ["--redis-url", f"host=127.0.0.1 password={encoded}"], {}, None),
        ("a password as REDIS_URL", ["--redis-url", raw], {}, None),
        ("a password as DATABASE_URL", [*memory, "--database-url", raw], {}, None),
        ("a password option as a key prefix", ["--key-prefix", f"password={raw}"], {}, None),
    ]
    if not is_host(raw):  # else `redis://<it>` names a host, and is shown as one
        scenarios.append(("raw, no '@'", ["--redis-url", f"redis://{raw}"], {}, None))
        # (a valid host is shown as typed, even one that holds the password: only driver words are redacted)
        scenarios.append(("REDIS_PASSWORD, bad host", [], {"REDIS_PASSWORD": raw, "REDIS_HOST": f"h{raw}"}, None))
    for flag in ("--count", "--key-prefix", "--sentinel", "--sentinel-master", "--seed-mode", "--db-latency",
                 "--tls-ca-file", "--database-url", "--ttl-jitter", "--redis-timeout"):  # fmt: skip
        scenarios.append((f"a URL given to {flag}", [flag, url], {}, None))
    return scenarios


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_fragment_of_a_generated_password_is_printed_on_any_error_path(
    twin: str, password: str, free_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name, argv, environ, dotenv in error_paths(password, free_port):
        with monkeypatch.context() as scoped:
            for variable, value in environ.items():
                scoped.setenv(variable, value)
            if dotenv is not None:
                (tmp_path / ".env").write_text(dotenv)
            full = argv if "--db-latency" in argv else [*argv, "--db-latency", "0"]
            code, out, err = run_main(twin, full, b"42\n", capsys)
            (tmp_path / ".env").unlink(missing_ok=True)
        assert code in (1, 2), (name, out, err)
        problems = [line for line in err if not line.startswith("Using the embedded in-memory Redis")]
        assert len(problems) == 1, (name, err)  # one line, whatever went wrong
        assert_no_fragment("\n".join(out + err), password)


@pytest.mark.integration
@pytest.mark.parametrize("password", PASSWORDS)
def test_no_fragment_of_a_generated_password_is_printed_when_the_server_refuses_it(
    twin: str, password: str, start_redis: Callable[..., RedisServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_redis("--requirepass", "the-right-one")
    url = f"redis://app:{quote(password, safe='')}@127.0.0.1:{server.port}/0"
    code, out, err = run_main(twin, ["--redis-url", url, "--db-latency", "0"], b"42\n", capsys)
    assert code == 1
    assert err == [
        f"Cannot use Redis at redis://app:****@127.0.0.1:{server.port}/0: authentication failed (wrong password "
        "or unknown user). Hint: check the user name and password in REDIS_URL (percent-encoded), or "
        "REDIS_USERNAME and REDIS_PASSWORD."
    ]
    assert_no_fragment("\n".join(out + err), password)
