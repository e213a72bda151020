"""Prompt layer: the sentences that say which Redis and database the demo uses, and why one cannot be used.

config/ connects and classifies: what kind of failure an exception is (`failure_kind`,
`database_failure_kind`) and its short technical reason (`failure_reason`, which the
simulator's warnings use too). This module words that for a person: the start-up lines,
each start-up failure with the hint for its cause, and the Redis in use after a recovery.
It sits beside cli/answers.py so that every printed sentence lives under cli/; config/ and
simulator/ never import it. Nothing here prints or connects (cli/startup.py's `connect`
runs config's start-up check and words what it found with these). Only words taken from an
error are redacted: the masked URLs, the fixed reasons and the hints are the demo's own.
"""

from __future__ import annotations

import os

from config.database import DatabaseError, DatabaseFailureKind, database_failure_kind
from config.redis import NodeUnavailable, OpenedRedis, get_redis
from config.redis_failures import (
    NO_ROUTE_ERRNOS,
    REDIS_ERRORS,
    FailureKind,
    Probed,
    errno_name,
    error_numbers,
    failure_kind,
    failure_reason,
    is_refused,
)
from config.settings import Settings
from config.urls import redact_password

# --- Redis ---

# What the embedded Redis does not share: said whenever it is in use (an update's answer says it too).
PRIVATE_CACHE = "this process's own cache, which other processes on the same database do not share"
DOCKER_HINT = "start one with `docker compose up -d redis`, or set REDIS_URL=memory:// for the embedded one"
# What to do about each kind of failure (config.redis_failures.failure_kind), on a server or a cluster.
_REDIS_HINTS: dict[FailureKind, str] = {
    "no-password": "put the password in REDIS_URL (redis://:password@host, percent-encoded) or in REDIS_PASSWORD",
    "authentication": "check the user name and password in REDIS_URL (percent-encoded), "
    "or REDIS_USERNAME and REDIS_PASSWORD",
    "permission": "allow the ACL user the commands the demo sends (docs/security.md)",
    "out-of-memory": "raise the server's maxmemory, or give it an eviction policy such as allkeys-lru",
    "read-only": "point REDIS_URL at the master (or use REDIS_SENTINELS to find it), not at a replica",
    "tls-verification": "set REDIS_TLS_CA_FILE to the CA that signed the server's certificate, "
    "and use the host name the certificate names",
    "tls-handshake": "use redis:// for a plain port, rediss:// for a TLS one",
    "speaks-plain": "use redis:// for this port, or the server's TLS port with rediss://",
    "speaks-tls": "use rediss:// for this port (with REDIS_TLS_CA_FILE for a private CA)",
    "timeout": "check that the server is up and answering and that no firewall drops the port, "
    "or raise REDIS_TIMEOUT_SECONDS",
    "refused": DOCKER_HINT,
    "no-route": "check the host in REDIS_URL and this machine's network connection",
    "unknown-host": "check the host name in REDIS_URL (or REDIS_HOST)",
    "closed": "check that the port is a Redis server's (a TLS port needs rediss://) and that it is not restarting",
    "not-a-cluster": "unset REDIS_CLUSTER to use it as a single server",
    "not-redis": "check the host and port in REDIS_URL",
    "other": "check REDIS_URL",
}
# Through Sentinel the master's address comes from the Sentinels, so some hints differ.
_SENTINEL_HINTS: dict[FailureKind, str] = {
    "no-sentinel": "check REDIS_SENTINELS (`docker compose --profile sentinel up -d` starts some)",
    "no-master": "check REDIS_SENTINEL_MASTER: the name in the Sentinels' `sentinel monitor` line",
    "refused": "the master the Sentinels name is down: wait for a failover, or check the Sentinels",
    "no-route": "the master the Sentinels name cannot be reached from here: check the network",
    "timeout": "the master the Sentinels name does not answer: check it, or raise REDIS_TIMEOUT_SECONDS",
    "unknown-host": "the Sentinels name the master by a host name this machine cannot resolve",
    "closed": "check that the master speaks what REDIS_URL's scheme says (rediss:// for TLS)",
    "speaks-plain": "the master the Sentinels name speaks plain Redis: use redis:// in REDIS_URL",
    "speaks-tls": "the master the Sentinels name speaks TLS: use rediss:// in REDIS_URL "
    "(with REDIS_TLS_CA_FILE for a private CA)",
    "other": "check REDIS_SENTINELS, REDIS_SENTINEL_MASTER and REDIS_URL's credentials",
}


class StartupError(Exception):
    """Redis cannot be used; the message is one printable line with the password masked."""


def startup_failure(settings: Settings, error: BaseException, found: Probed | None = None) -> StartupError:
    """The one-line error for a server that cannot be used: what, why, and the hint for that cause."""
    kind = failure_kind(error, found)
    reason = failure_reason(error, settings.redis_url, found)
    if settings.sentinels:
        target = f"the Redis master '{settings.sentinel_master}' through Sentinel {_sentinel_names(settings)}"
        hint = _SENTINEL_HINTS.get(kind) or _REDIS_HINTS.get(kind, _SENTINEL_HINTS["other"])
    else:
        target = f"{'Redis Cluster' if settings.redis_cluster else 'Redis'} at {settings.redis_url_for_display}"
        hint = _REDIS_HINTS.get(kind, _REDIS_HINTS["other"])
    return StartupError(f"Cannot use {target}: {reason}. Hint: {hint}.")


def describe_connection(opened: OpenedRedis) -> str:
    """The start-up line saying which Redis the demo uses, and on which topology."""
    if opened.fallback_error is not None:
        return _fallback_line(opened.fallback_error)
    if opened.clients.embedded:
        return f"Using the embedded in-memory Redis (fakeredis), as REDIS_URL=memory:// asks: {PRIVATE_CACHE}"
    return f"Connected to {_where(opened)}"


def _fallback_line(error: BaseException) -> str:
    numbers = error_numbers(error)
    if is_refused(error):
        nothing = "nothing listens on localhost:6379"  # the usual case
    elif numbers & NO_ROUTE_ERRNOS:
        nothing = f"localhost:6379 cannot be reached ({errno_name(numbers & NO_ROUTE_ERRNOS)})"
    else:
        nothing = "localhost:6379 cannot be reached (the name localhost cannot be resolved)"
    return (
        f"No Redis is configured and {nothing}: using the embedded "
        f"in-memory Redis (fakeredis), {PRIVATE_CACHE}. Set REDIS_URL to use a server."
    )


def _where(opened: OpenedRedis) -> str:
    settings = opened.clients.settings
    if settings.redis_cluster:
        return f"Redis Cluster ({opened.masters} masters) through {settings.redis_url_for_display}"
    if settings.sentinels and opened.master is not None:
        return (
            f"Redis master '{settings.sentinel_master}' at {_address(*opened.master)}, "
            f"found through Sentinel {_sentinel_names(settings)}"
        )
    return f"Redis at {settings.redis_url_for_display}"


def describe_in_use(settings: Settings) -> str:
    """Which Redis the demo uses now (no I/O): for a Sentinel master, the address Sentinel last gave the client."""
    if settings.embedded:
        return "the embedded in-memory Redis (fakeredis)"
    if settings.redis_cluster:
        return f"Redis Cluster through {settings.redis_url_for_display}"
    if settings.sentinels:
        master = get_redis(settings).master_address()
        at = f" at {_address(*master)}" if master is not None else ""
        return f"Redis master '{settings.sentinel_master}'{at} (found through Sentinel {_sentinel_names(settings)})"
    return f"Redis at {settings.redis_url_for_display}"


def _sentinel_names(settings: Settings) -> str:
    return ",".join(_address(host, port) for host, port in settings.sentinels)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- the database ---

_DATABASE_DOCKER_HINT = "start one with `docker compose up -d postgres`, or unset DATABASE_URL for the SQLite file"
# What to do about each kind of failure (config.database.database_failure_kind).
_DATABASE_HINTS: dict[DatabaseFailureKind, str] = {
    "authentication": "check the user name and password in DATABASE_URL (percent-encoded)",
    "no-database": "check the database name at the end of DATABASE_URL, or create it with createdb",
    "refused": _DATABASE_DOCKER_HINT,
    "timeout": "check that the server is up and that no firewall drops the port, or raise DB_TIMEOUT_SECONDS",
    "unknown-host": "check the host name in DATABASE_URL",
    "no-route": "check the host in DATABASE_URL and this machine's network connection",
    "tls": "check the sslmode and sslrootcert options in DATABASE_URL",
    # SQLite's reasons say what to do, so no hint follows them; a damaged file's does (--reset-db cannot read it).
    "locked": "",
    "damaged": "restore it from a copy, or delete it and the next run creates it again",
    "not-a-database": "",
    "not-writable": "",
    # Readable, but its users table disagrees with demo_meta: the demo never recreates it by itself.
    "inconsistent": "`--reset-db` (DB_RESET=1) starts over, with users 1..DB_SIZE at version 0",
}
_SQLITE_HINTED: tuple[DatabaseFailureKind, ...] = ("damaged", "inconsistent")


def describe_database(settings: Settings) -> str:
    """Where the data lives, for the start-up line: the SQLite file, or the masked PostgreSQL URL."""
    path = settings.sqlite_path
    if path is not None:
        return f"SQLite file {os.path.abspath(path)}"
    return f"PostgreSQL at {settings.database_url_for_display}"


def database_unavailable(settings: Settings, error: DatabaseError) -> str:
    """The one-line start-up error for a database that cannot be used, with the hint for its cause
    (the password masked).

    A reason in the driver's own words is redacted (it never should quote the password, but it might).
    """
    kind = database_failure_kind(error)
    reason = str(error) if kind is not None else redact_password(str(error), settings.database_url)
    if settings.sqlite_path is not None:
        hint = _DATABASE_HINTS[kind] if kind in _SQLITE_HINTED else ""
    else:
        hint = _DATABASE_HINTS[kind] if kind is not None else "check DATABASE_URL"
    return f"Cannot use the database, {describe_database(settings)}: {reason}." + (f" Hint: {hint}." if hint else "")


# --- a command that failed ---


def describe_failure(error: BaseException) -> str:
    """Why a command or a lookup failed, in one line: Redis's words, the database's, or (a bug) the error's own."""
    if isinstance(error, NodeUnavailable):  # on a cluster: which node, and that the others still work
        return f"Redis error: {error}"
    if isinstance(error, REDIS_ERRORS):
        return f"Redis error: {failure_reason(error)}"
    if isinstance(error, DatabaseError):
        return f"Database error: {error}"
    return f"Unexpected error: {type(error).__name__}: {error}"
