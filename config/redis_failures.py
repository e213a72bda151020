"""Configuration layer, no I/O but the probes: what a failed Redis call means, and why Redis cannot be used.

One decision for every place that meets a Redis error: `cache_failure` says what a failed
call means for a lookup (unavailable, full, wrong type, refused, rejected); `failure_kind`
classifies why Redis cannot be used from the error's own evidence (exception types, errno
values, OpenSSL's words, never a word of a host name), and `failure_reason` says it in a few
words (the simulator's warnings use them). Once start-up has failed, `probe_other_protocol`
asks whether the port speaks the other protocol (TLS or plain). The sentences a user reads,
with the hint for each kind, are worded in cli/messages.py. Nothing here prints, and no
reason it gives contains a password.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import ssl
from typing import Literal
from urllib.parse import urlsplit

import redis
import redis.asyncio.sentinel
import redis.sentinel

from config.settings import Settings
from config.urls import redact_password

# "Any Redis failure": redis-py's cluster client raises some that are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)

# What "the cache is unavailable" looks like: a dead or frozen server, a reset connection, a
# timeout (not a ConnectionError in redis-py), a cluster without the key's node (some of
# those are not even RedisErrors), or an OS-level socket error.
UNAVAILABLE_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
    OSError,
)
# Every error a call to the cache can end in: Redis's own, and the operating system's.
CACHE_ERRORS = (*REDIS_ERRORS, OSError)

# What a failed call to the cache means for a lookup (see `cache_failure`).
CacheFailure = Literal["unavailable", "full", "wrong type", "refused", "rejected"]


def cache_failure(error: BaseException) -> CacheFailure:
    """What a failed call to the cache means for a lookup.

    - "unavailable": Redis did not answer; answer from the database and let it rest.
    - "full": Redis answered that it is out of memory; answer without storing.
    - "wrong type": the key holds a hash, a list or another non-string type.
    - "refused": Redis answered that this client may not do that: a read-only replica (READONLY)
      or an ACL (NOPERM). A write refused: answer without storing; a read refused: the user must see it.
    - "rejected": any other error Redis answered with: the user must see it.
    """
    if isinstance(error, UNAVAILABLE_ERRORS):
        return "unavailable"
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return "full"
    if is_wrong_type(error):
        return "wrong type"
    if is_refusal(error):
        return "refused"
    return "rejected"


def is_refusal(error: BaseException) -> bool:
    """True when Redis answered that this client may not run that command or touch that key: a read-only
    replica (READONLY), or an ACL (NOPERM)."""
    if isinstance(error, redis.exceptions.ReadOnlyError | redis.exceptions.NoPermissionError):
        return True
    return isinstance(error, redis.ResponseError) and str(error).startswith(("NOPERM", "READONLY"))


def is_wrong_type(error: object) -> bool:
    """True when a GET hit a key holding a hash, list or other non-string type (alone or in a pipeline)."""
    return isinstance(error, redis.ResponseError) and "WRONGTYPE" in str(error)


# --- why Redis cannot be used: one decision, for the start-up line and every later message ---
# (what kind of failure it is, and a few words for it; cli/messages.py words it with a hint)

# errno values that say no packet can reach the address: no network at all (`unshare -n`
# without loopback), no route, or an address family the machine does not have.
NO_ROUTE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
)
_NO_ROUTE_ORDER = (errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
# getaddrinfo's errors (negative): the name cannot be resolved.
UNKNOWN_HOST_ERRNOS = frozenset(
    {socket.EAI_NONAME, socket.EAI_AGAIN, socket.EAI_FAIL, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
)
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\]|Error (-?\d+) connecting|\((-?\d+), '")
# Where redis-py names the address in its words ("Error 111 connecting to h:6379."): a host name
# such as ssl-handshake.corp is no evidence of a cause, so the cause is read from the rest.
_ADDRESS_IN_TEXT = re.compile(r"(Error(?: -?\d+)? connecting to|reading from|writing to) \S+")
# OpenSSL's and the ssl module's own words, for a TLS failure whose ssl.SSLError was not kept.
_TLS_WORDS = re.compile(r"\[SSL|\bSSL\w*Error\b|_ssl\.c|wrong version number|tlsv\d alert|sslv3 alert")
# OpenSSL's reasons for bytes that are not TLS at all: the port answered in some other protocol.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"})
Protocol = Literal["plain", "tls"]
# What a probe of the port found: the other protocol, or "neither" (no answer in it either).
Probed = Literal["plain", "tls", "neither"]
FailureKind = Literal[
    "no-password",
    "authentication",
    "permission",
    "out-of-memory",
    "read-only",
    "tls-verification",
    "tls-handshake",
    "speaks-plain",
    "speaks-tls",
    "timeout",
    "refused",
    "no-route",
    "unknown-host",
    "closed",
    "not-a-cluster",
    "not-redis",
    "no-sentinel",
    "no-master",
    "other",
]


class NoSentinelAnswered(redis.ConnectionError):
    """None of the Sentinels in REDIS_SENTINELS answered; `__cause__` is why the first did not."""


def causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first (redis-py raises its own error while handling the socket's)."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and all(cause is not seen for seen in chain):
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def error_numbers(error: BaseException) -> set[int]:
    """Every errno the error (or what caused it) carries or quotes: redis-py words them into its messages."""
    numbers: set[int] = set()
    for cause in causes(error):
        if isinstance(cause, OSError) and isinstance(cause.errno, int):
            numbers.add(cause.errno)
        for match in _ERRNO_IN_TEXT.finditer(str(cause)):
            numbers.add(int(next(group for group in match.groups() if group is not None)))
    return numbers


def _words(error: BaseException) -> str:
    """The error's text with the address redis-py quotes taken out."""
    return _ADDRESS_IN_TEXT.sub(r"\1 <address>", str(error))


def failure_kind(error: BaseException, found: Probed | None = None) -> FailureKind:
    """What went wrong, from the error (and `found`: what a probe found at the port instead).

    The connection's own evidence comes first: exception types and errno values in the
    cause chain (refused, unreachable, unknown host, timed out). TLS is named from an
    `ssl.SSLError` in the chain, or OpenSSL's own words, never from a word in the host name.
    """
    text = _words(error)
    numbers = error_numbers(error)
    if isinstance(error, NoSentinelAnswered):
        return "no-sentinel"
    if isinstance(error, redis.sentinel.MasterNotFoundError | redis.asyncio.sentinel.MasterNotFoundError):
        return "no-sentinel" if _unreachable_sentinels(str(error)) else "no-master"
    if isinstance(error, redis.AuthenticationError) or "NOAUTH" in text or "WRONGPASS" in text:
        noauth = getattr(error, "status_code", None) == "NOAUTH" or "NOAUTH" in text
        return "no-password" if noauth else "authentication"
    if isinstance(error, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        return "permission"
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return "out-of-memory"
    if isinstance(error, redis.exceptions.ReadOnlyError) or text.startswith("READONLY"):
        return "read-only"
    if found in ("plain", "tls"):
        return "speaks-plain" if found == "plain" else "speaks-tls"
    timed_out = "Timeout connecting to server" in text or "Timeout reading from" in text  # a cluster's words
    if isinstance(error, redis.TimeoutError | TimeoutError) or errno.ETIMEDOUT in numbers or timed_out:
        return "timeout"
    if is_refused(error):
        return "refused"
    if numbers & NO_ROUTE_ERRNOS:
        return "no-route"
    if numbers & UNKNOWN_HOST_ERRNOS or "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown-host"
    tls = next((cause for cause in causes(error) if isinstance(cause, ssl.SSLError)), None)
    if isinstance(tls, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "tls-verification"
    if tls is not None or _TLS_WORDS.search(text):
        not_tls = getattr(tls, "reason", None) in _NOT_TLS_REASONS or "wrong version number" in text
        return "not-redis" if not_tls and found == "neither" else "tls-handshake"  # neither TLS nor plain Redis
    if "Cluster mode is not enabled" in text:
        return "not-a-cluster"
    if "Protocol error" in text:
        return "not-redis"
    if numbers & {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED} or "Connection closed by server" in text:
        return "closed"
    return "other"


# The few words a newcomer reads for each kind (the other kinds are said from the error: see failure_reason).
_REASONS: dict[FailureKind, str] = {
    "no-password": "the server requires a password, and none was given",
    "authentication": "authentication failed (wrong password or unknown user)",
    "out-of-memory": "Redis is out of memory (maxmemory reached with a noeviction policy)",
    "read-only": "the server is a read-only replica (it refuses writes)",
    "tls-verification": "TLS verification failed (check the CA file and the host name)",
    "tls-handshake": "the TLS handshake failed (is the server speaking TLS? use rediss:// only for TLS ports)",
    "speaks-plain": "the server speaks plain Redis, not TLS",
    "speaks-tls": "the server speaks TLS, not plain Redis",
    "timeout": "timed out (is the server frozen, overloaded or behind a firewall?)",
    "refused": "connection refused (nothing is listening there)",
    "unknown-host": "unknown host (the name could not be resolved)",
    "closed": "the server closed the connection",
    "not-a-cluster": "that server is not a Redis Cluster node (cluster mode is not enabled on it)",
    "not-redis": "what answers there does not speak the Redis protocol",
    "no-master": "no Sentinel that answered knows a master by that name that is up",
}


def failure_reason(error: BaseException, url: str = "", found: Probed | None = None) -> str:
    """Why Redis could not be used, in a few words a newcomer can act on (one line, no object dump).

    Words taken from the error itself have `url`'s password redacted, if they quote it.
    `found` is what a probe found at the port instead, as for `failure_kind`.
    """
    kind = failure_kind(error, found)
    if kind == "permission":
        return f"permission denied by the server's ACL ({_library_words(error, url)})"
    if kind == "no-route":
        return f"no route to the server ({errno_name(error_numbers(error) & NO_ROUTE_ERRNOS)})"
    if kind == "no-sentinel":
        if not isinstance(error, NoSentinelAnswered):  # a MasterNotFoundError during a run: only a count is known
            return f"no Sentinel gave the master's address ({_unreachable_sentinels(str(error))} could not be reached)"
        cause = error.__cause__
        return "no Sentinel could be reached" + (f": {failure_reason(cause, url)}" if cause is not None else "")
    if kind == "other":
        return _library_words(error, url) or type(error).__name__
    return _REASONS[kind]


def _library_words(error: BaseException, url: str) -> str:
    # Redacted before the cut to one line: a password cut in two would not be found.
    return _first_line(redact_password(str(error), url))


def _unreachable_sentinels(text: str) -> int:
    """How many Sentinels a MasterNotFoundError says failed (each as `<client repr> - network:TimeoutError`)."""
    return len(re.findall(r" - (?:network|tls|auth|server):\w+", text))


def errno_name(numbers: set[int]) -> str:
    """The most telling of the errors (asyncio reports one per address; redis-py's sync client only the last)."""
    number = min(numbers, key=lambda each: (_NO_ROUTE_ORDER.index(each) if each in _NO_ROUTE_ORDER else 99, each))
    return f"{os.strerror(number).lower()}, {errno.errorcode.get(number, str(number))}"


def _first_line(text: str) -> str:
    # redis-py's MasterNotFoundError quotes whole client objects: never print past one.
    line = text.splitlines()[0][:200].rstrip(". ") if text else ""
    return line.split(" : <", 1)[0]


def is_refused(error: BaseException) -> bool:
    """True when nothing listens at the address (redis-py words this differently in each client)."""
    for cause in causes(error):
        if isinstance(cause, ConnectionRefusedError) or "connection refused" in _words(cause).lower():
            return True
    return errno.ECONNREFUSED in error_numbers(error)


def is_unreachable(error: BaseException) -> bool:
    """True when the address cannot be reached at all: refused, no route or network, or a name that does not resolve.

    With no network at all (a network namespace without loopback) connecting to localhost
    fails with ENETUNREACH or EADDRNOTAVAIL, not ECONNREFUSED, and asyncio words several
    addresses' failures as one `Multiple exceptions: [Errno 111] ..., [Errno 99] ...`.
    """
    if is_refused(error):
        return True
    numbers = error_numbers(error)
    return bool(numbers) and numbers <= {errno.ECONNREFUSED, *NO_ROUTE_ERRNOS, *UNKNOWN_HOST_ERRNOS}


# --- probes, only once start-up has failed: is the protocol the other one? did any Sentinel answer? ---


def probe_target(settings: Settings, error: BaseException, master: tuple[str, int] | None) -> tuple[str, int] | None:
    """Where to probe for the other protocol, when a TLS/plain mismatch could explain `error`; else None.

    (A TLS client to a plain port times out or fails its handshake; a plain client to a TLS port is
    disconnected.) The port is the URL's, or through Sentinel the master's as the Sentinels gave it
    (`master`; None when none did, and then there is nothing to probe).
    """
    kind = failure_kind(error)
    in_doubt = kind in (("timeout", "tls-handshake", "closed") if is_tls(settings) else ("closed", "tls-handshake"))
    if settings.embedded or not in_doubt:
        return None
    if settings.sentinels:
        return master
    parts = urlsplit(settings.redis_url)
    return parts.hostname or "localhost", parts.port or 6379


def is_tls(settings: Settings) -> bool:
    """True when the URL asks for TLS (rediss://)."""
    return settings.redis_url.lower().startswith("rediss://")


def _probe_tls_context() -> ssl.SSLContext:
    # Only asks whether the port completes a TLS handshake; nothing is sent over it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def other_protocol(settings: Settings) -> Protocol:
    """The protocol the URL's scheme does not ask for: plain for rediss://, TLS for redis://."""
    return "plain" if is_tls(settings) else "tls"


def probe_other_protocol(settings: Settings, target: tuple[str, int]) -> Probed:
    """The other protocol, if the port at `target` speaks it (PING answered in plain RESP, or a TLS
    handshake completed), else "neither"."""
    return other_protocol(settings) if _speaks_other_protocol(settings, target) else "neither"


async def aprobe_other_protocol(settings: Settings, target: tuple[str, int]) -> Probed:
    """The async twin of `probe_other_protocol`."""
    return other_protocol(settings) if await _aspeaks_other_protocol(settings, target) else "neither"


def _speaks_other_protocol(settings: Settings, target: tuple[str, int]) -> bool:
    host, port = target
    tls = other_protocol(settings) == "tls"
    try:
        with socket.create_connection((host, port), timeout=settings.redis_timeout_seconds) as raw:
            if tls:
                with _probe_tls_context().wrap_socket(raw, server_hostname=host):
                    return True
            raw.sendall(b"PING\r\n")
            return raw.recv(1) in (b"+", b"-")
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        return False


async def _aspeaks_other_protocol(settings: Settings, target: tuple[str, int]) -> bool:
    host, port = target
    tls = other_protocol(settings) == "tls"
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=_probe_tls_context() if tls else None, server_hostname=host if tls else None
            )
            try:
                if tls:
                    return True
                writer.write(b"PING\r\n")
                await writer.drain()
                return await reader.read(1) in (b"+", b"-")
            finally:
                writer.transport.abort()  # no TLS goodbye to wait for
    except (OSError, TimeoutError, ValueError):
        return False
