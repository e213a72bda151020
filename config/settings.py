"""Configuration layer, pure: every setting of the demo, validated once.

Settings come from CLI flags, then the real environment, then a `.env` file, then
defaults. This module turns those strings into a frozen `Settings` value, and declares
which flag sets which setting (the parser itself is `cli.arguments`). It never connects, never reads a file
(the caller passes the mappings) and never prints a password: every URL it shows
goes through `mask_url`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from config.urls import is_host, mask_url, parse_database_url, sqlite_path, url_problem, value_for_error

Twin = Literal["sync", "async"]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///users.db"  # a file in the current directory, like .env
DEFAULT_DB_SIZE = 100_000
EMBEDDED_REDIS_URL = "memory://"
MAX_USER_ID = 1_000_000_000
SEED_MODES: dict[Twin, tuple[str, ...]] = {
    "sync": ("threaded", "sequential", "pipelined", "none"),
    "async": ("pipelined", "sequential", "none"),
}
PROGRAM_NAMES: dict[Twin, str] = {"sync": "main.py", "async": "main_async.py"}
CONNECTION_VARIABLES = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_DB")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{0,64}")
URL_FORM = "redis://[user[:password]@]host[:port][/db], rediss://... for TLS, or memory://"


class ConfigError(ValueError):
    """A setting has a value the demo cannot use; the message is one line, safe to print."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the demo, validated."""

    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)  # it may hold a password
    redis_configured: bool = False
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # it may hold a password
    db_timeout_seconds: float = 2.0
    reset_database: bool = False
    seed_count: int = 1000
    seed_batch_size: int = 1000
    seed_mode: str = "threaded"
    db_latency_seconds: float = 2.0
    cache_ttl_seconds: int = 3600
    key_prefix: str = ""
    ttl_jitter: float = 0.10
    negative_ttl_seconds: int = 60
    db_size: int = DEFAULT_DB_SIZE
    early_refresh: bool = False
    redis_timeout_seconds: float = 1.0
    cache_cooldown_seconds: float = 5.0
    tls_ca_file: str | None = None
    redis_cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    json_output: bool = False
    trace: bool = False

    @property
    def embedded(self) -> bool:
        """True when the demo runs on the in-memory Redis instead of a server."""
        return self.redis_url == EMBEDDED_REDIS_URL

    @property
    def redis_url_for_display(self) -> str:
        """The Redis URL with its password masked."""
        return mask_url(self.redis_url)

    @property
    def database_url_for_display(self) -> str:
        """The database URL with its password masked."""
        return mask_url(self.database_url)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file DATABASE_URL names (relative to the current directory), or None for PostgreSQL."""
        return sqlite_path(self.database_url)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str | None],
        twin: Twin = "sync",
        *,
        labels: Mapping[str, str] | None = None,
    ) -> Settings:
        """Validate the settings found in `environ`; `labels` names where a value came from."""
        values = {name: value for name, value in environ.items() if value not in (None, "")}
        label = {**{name: name for name in values}, **(labels or {})}
        chosen: dict[str, Any] = {"seed_mode": SEED_MODES[twin][0]}  # each value parsed and checked as it is read
        for option in OPTIONS:
            if option.env in values:
                chosen[option.attribute] = _parse_option(option, values[option.env], label[option.env], twin)
        for option in FLAG_OPTIONS:
            if option.env in values:
                chosen[option.attribute] = _parse_option(option, values[option.env], label[option.env], twin)
        chosen["redis_url"], chosen["redis_configured"] = _redis_url_from(values, label)
        chosen["redis_configured"] = chosen["redis_configured"] or "REDIS_SENTINELS" in values
        settings = cls(**chosen)
        _check_topology(settings, label)
        if settings.tls_ca_file and not settings.redis_url.lower().startswith("rediss://"):
            raise ConfigError(
                f"{label.get('REDIS_TLS_CA_FILE', 'REDIS_TLS_CA_FILE')} is set but the Redis URL is not rediss://: "
                "TLS is only used with a rediss:// URL"
            )
        if settings.seed_count > settings.db_size:
            raise ConfigError(
                f"{label.get('SEED_COUNT', 'SEED_COUNT')}={settings.seed_count:,} is more than "
                f"{label.get('DB_SIZE', 'DB_SIZE')}={settings.db_size:,}: the database has no such users to seed"
            )
        return settings


# --- value parsers: each returns the value or raises ValueError naming what it accepts ---


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A parser for an ASCII whole number from `low` to `high`."""

    def parse(text: str) -> int:
        stripped = text.strip()
        if not (stripped.isascii() and stripped.isdigit() and len(stripped) <= 12 and low <= int(stripped) <= high):
            raise ValueError(f"a whole number from {low:,} to {high:,}")
        return int(stripped)

    return parse


def decimal(low: float, high: float) -> Callable[[str], float]:
    """A parser for a finite decimal number from `low` to `high`, such as 0.5."""

    def parse(text: str) -> float:
        stripped = text.strip()
        accepted = f"a number from {low:g} to {high:g}, such as 0.5"
        if not stripped.isascii() or not re.fullmatch(r"[0-9]*\.?[0-9]+|[0-9]+\.", stripped):
            raise ValueError(accepted)
        number = float(stripped)
        if not (math.isfinite(number) and low <= number <= high):
            raise ValueError(accepted)
        return number

    return parse


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser for one of `choices`, case-insensitive."""

    def parse(text: str) -> str:
        lowered = text.strip().lower()
        if lowered not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return lowered

    return parse


def boolean(text: str) -> bool:
    """A parser for 1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("1 or 0 (also true/false, yes/no, on/off)")


def sentinel_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """A parser for `host:port,host:port`: the Sentinels to ask where the master is."""
    accepted = "host:port[,host:port...] (up to 16 Sentinels)"
    addresses = []
    for part in text.split(","):
        host, _, port = part.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not (is_host(host) and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(accepted)
        addresses.append((host, int(port)))
    if not 1 <= len(addresses) <= 16:
        raise ValueError(accepted)
    return tuple(addresses)


def master_name(text: str) -> str:
    """A parser for a Sentinel master name."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise ValueError("a master name: up to 64 letters, digits, or . _ - characters")
    return text


def key_prefix(text: str) -> str:
    """A parser for a key namespace: letters, digits and . _ : - only, so it is never a glob."""
    if not _KEY_PREFIX.fullmatch(text):
        raise ValueError("up to 64 letters, digits, or . _ : - characters")
    return text


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field, its environment variable, its flag and how to parse it."""

    attribute: str
    env: str
    flag: str | None
    parse: Callable[[str], object]
    help: str
    metavar: str = "VALUE"
    twin_choices: bool = False


OPTIONS: tuple[Option, ...] = (
    Option(
        "seed_count",
        "SEED_COUNT",
        "--count",
        whole_number(0, MAX_USER_ID),
        "how many mock users to seed, ids 1..N (default 1000)",
        "N",
    ),
    Option(
        "seed_batch_size",
        "SEED_BATCH_SIZE",
        "--batch-size",
        whole_number(1, 100_000),
        "records per pipeline round trip when seeding (default 1000)",
        "N",
    ),
    Option(
        "seed_mode", "SEED_MODE", "--seed-mode", str, "how to seed: see the choices above", "MODE", twin_choices=True
    ),
    Option(
        "database_url",
        "DATABASE_URL",
        "--database-url",
        parse_database_url,
        "the database, the source of truth: sqlite:///users.db (default: a file in the current directory) "
        "or postgresql://user:password@host:port/dbname",
        "URL",
    ),
    Option(
        "db_latency_seconds",
        "DB_LATENCY_SECONDS",
        "--db-latency",
        decimal(0, 600),
        "seconds of simulated delay added to every database read and write (default 2.0)",
        "SECONDS",
    ),
    Option(
        "db_timeout_seconds",
        "DB_TIMEOUT_SECONDS",
        "--db-timeout",
        decimal(0.1, 60),
        "seconds to wait for the database to connect, lock or answer (default 2.0)",
        "SECONDS",
    ),
    Option(
        "cache_ttl_seconds",
        "CACHE_TTL_SECONDS",
        "--ttl",
        whole_number(1, 10 * 365 * 86400),
        "seconds every cached key lives (default 3600)",
        "SECONDS",
    ),
    Option(
        "key_prefix",
        "KEY_PREFIX",
        "--key-prefix",
        key_prefix,
        "namespace for the demo's keys on a shared server (default: none, keys are user-<id>)",
        "PREFIX",
    ),
    Option(
        "ttl_jitter",
        "CACHE_TTL_JITTER",
        "--ttl-jitter",
        decimal(0, 0.5),
        "spread each TTL by up to this fraction either way, so keys written together expire apart (default 0.1)",
        "FRACTION",
    ),
    Option(
        "negative_ttl_seconds",
        "NEGATIVE_TTL_SECONDS",
        "--negative-ttl",
        whole_number(1, 10 * 365 * 86400),
        "seconds a 'not found' answer stays cached (default 60)",
        "SECONDS",
    ),
    Option(
        "db_size",
        "DB_SIZE",
        "--db-size",
        whole_number(1, MAX_USER_ID),
        f"users 1..N created in a new database; other ids are not found (default {DEFAULT_DB_SIZE:,})",
        "N",
    ),
    Option(
        "redis_timeout_seconds",
        "REDIS_TIMEOUT_SECONDS",
        "--redis-timeout",
        decimal(0.05, 60),
        "seconds to wait for Redis to connect or answer before treating it as down (default 1.0)",
        "SECONDS",
    ),
    Option(
        "cache_cooldown_seconds",
        "CACHE_COOLDOWN_SECONDS",
        "--cooldown",
        decimal(0.1, 300),
        "after Redis fails, seconds to answer from the database alone before trying Redis again (default 5)",
        "SECONDS",
    ),
    Option(
        "tls_ca_file",
        "REDIS_TLS_CA_FILE",
        "--tls-ca-file",
        str,
        "CA certificates (PEM) to verify a rediss:// server with (default: the system's)",
        "PATH",
    ),
    Option(
        "sentinels",
        "REDIS_SENTINELS",
        "--sentinel",
        sentinel_addresses,
        "find the master through these Sentinels (host:port,host:port); REDIS_URL then gives only credentials and db",
        "HOSTS",
    ),
    Option(
        "sentinel_master",
        "REDIS_SENTINEL_MASTER",
        "--sentinel-master",
        master_name,
        "the master's name in Sentinel (default mymaster)",
        "NAME",
    ),
)
FLAG_OPTIONS = (
    Option(
        "redis_cluster",
        "REDIS_CLUSTER",
        "--cluster",
        boolean,
        "REDIS_URL names one node of a Redis Cluster; the client finds the others",
    ),
    Option(
        "early_refresh",
        "EARLY_REFRESH",
        "--early-refresh",
        boolean,
        "refresh hot keys in the background before they expire (probabilistic early expiration)",
    ),
    Option("json_output", "JSON_OUTPUT", "--json", boolean, "print one JSON object per answer"),
    Option(
        "trace",
        "TRACE",
        "--trace",
        boolean,
        "start with the trace on: each lookup also prints its steps, the command each sent, and its time",
    ),
    Option(
        "reset_database",
        "DB_RESET",
        "--reset-db",
        boolean,
        "put the database back to its first-run content (users 1..DB_SIZE, version 0) and remove the demo's keys",
    ),
)


def _parse_option(option: Option, raw: str | None, label: str, twin: Twin) -> object:
    parse = one_of(SEED_MODES[twin]) if option.twin_choices else option.parse
    try:
        return parse(raw or "")
    except ValueError as error:
        hint = ""
        if option.twin_choices and (raw or "").strip().lower() == "threaded":
            hint = " (threaded is main.py's; main_async.py seeds in the background with pipelined)"
        shown = value_for_error(option.env, raw or "")
        raise ConfigError(f"{label}{shown} is not valid: expected {error}{hint}") from None


def _check_topology(settings: Settings, label: Mapping[str, str]) -> None:
    cluster, sentinels = label.get("REDIS_CLUSTER", "REDIS_CLUSTER"), label.get("REDIS_SENTINELS", "REDIS_SENTINELS")
    if settings.redis_cluster and settings.sentinels:
        raise ConfigError(f"{cluster} and {sentinels} are both set: choose Redis Cluster or Sentinel")
    if (settings.redis_cluster or settings.sentinels) and settings.embedded:
        raise ConfigError(f"{cluster if settings.redis_cluster else sentinels} needs a redis:// URL, not memory://")
    if settings.redis_cluster and urlsplit(settings.redis_url).path.strip("/") not in ("", "0"):
        raise ConfigError(
            f"{cluster} is set but the URL names database {urlsplit(settings.redis_url).path.strip('/')}:"
            " Redis Cluster has only database 0"
        )


# --- the Redis URL ---


def _redis_url_from(values: Mapping[str, str | None], label: Mapping[str, str]) -> tuple[str, bool]:
    """The URL to use and whether the user configured one (so no embedded fallback)."""
    if "REDIS_URL" in values:
        return parse_redis_url(values["REDIS_URL"] or "", label["REDIS_URL"]), True
    if not any(name in values for name in CONNECTION_VARIABLES):
        return DEFAULT_REDIS_URL, False
    host = values.get("REDIS_HOST") or "localhost"
    if not is_host(host):
        raise ConfigError(
            f"{label.get('REDIS_HOST', 'REDIS_HOST')}{value_for_error('REDIS_HOST', host)} is not valid: "
            "expected a host name or IP address"
        )
    port = _parse_part("REDIS_PORT", values, label, whole_number(1, 65535), 6379)
    database = _parse_part("REDIS_DB", values, label, whole_number(0, 1_000_000), 0)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    username = quote(values.get("REDIS_USERNAME") or "", safe="")
    password = values.get("REDIS_PASSWORD")
    credentials = f"{username}:{quote(password, safe='')}@" if password else (f"{username}@" if username else "")
    url = f"redis://{credentials}{host}:{port}/{database}"
    if url_problem(url):  # every part was checked; this only guards the assembly
        raise ConfigError(f"{label.get('REDIS_HOST', 'REDIS_HOST')}{value_for_error('REDIS_HOST', host)} is not valid")
    return url, True


def _parse_part(
    name: str, values: Mapping[str, str | None], label: Mapping[str, str], parse: Callable[[str], int], default: int
) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigError(
            f"{label.get(name, name)}{value_for_error(name, raw)} is not valid: expected {error}"
        ) from None


def parse_redis_url(url: str, label: str = "REDIS_URL") -> str:
    """Validate a Redis URL and return it with its scheme in lower case; the error never echoes a password."""
    url = url.strip()
    if url.lower() == EMBEDDED_REDIS_URL:
        return EMBEDDED_REDIS_URL
    problem = url_problem(url)
    if problem:
        shown = value_for_error("REDIS_URL", url)
        raise ConfigError(f"{label}{shown} is not valid: {problem}; expected {URL_FORM}")
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"  # REDIS:// and Rediss:// mean what redis:// and rediss:// do


# --- the shared argument parser and the settings loader ---


def setting_names() -> list[str]:
    """Every environment variable the demo reads, for docs and their tests."""
    return [*CONNECTION_VARIABLES, *(option.env for option in (*OPTIONS, *FLAG_OPTIONS))]
