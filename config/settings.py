"""Configuration layer, pure: every setting of the demo, validated once.

Settings come from CLI flags, then the real environment, then a `.env` file, then
defaults. This module turns those strings into a frozen `Settings` value, and declares
which flag sets which setting (the parser itself is `cli.arguments`). It never connects, never reads a file
(the caller passes the mappings) and never prints a password: every URL it shows
goes through `mask_url`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

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
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
URL_FORM = "redis://[user[:password]@]host[:port][/db], rediss://... for TLS, or memory://"
_DATABASEURL_FORM = (
    "sqlite:///file.db (relative to the current directory), sqlite:////absolute/path.db, "
    "or postgresql://[user[:password]@]host[:port]/dbname"
)
_POSTGRES_QUERY_OPTIONS = frozenset({"sslmode", "sslrootcert"})
# `password=value` and its kin (`sslpassword`, libpq's `password = 'it\'s'`), in a query or a keyword DSN:
# the value is quoted, or runs to a space or an '&' (not to a '#': in a DSN that is part of it).
SECRET_OPTION = re.compile(r"(?i)([\w.-]*pass[\w.-]*\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:\\.|[^\s&\\])*)")
# What a URL setting's value must look like to be shown at all: a scheme, `://`, and no spaces.
_URL_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\x00-\x1f\x7f]*")


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


def is_host(text: str) -> bool:
    """A host name, an IPv4 address, or an IPv6 address (bare or in brackets)."""
    if 0 < len(text) <= 253 and _HOST_NAME.fullmatch(text):
        return True
    try:
        ipaddress.IPv6Address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


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


def parse_database_url(text: str) -> str:
    """A parser for DATABASE_URL: SQLite (a file) or PostgreSQL; the scheme is case-insensitive."""
    url = text.strip()
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(_DATABASEURL_FORM)
    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        raise ValueError("a URL without control characters")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in ("/", "//") or "?" in rest or "#" in rest:
            raise ValueError("a file: sqlite:///users.db (relative to the current directory) or sqlite:////abs/path.db")
        return f"sqlite://{rest}"
    problem = _postgres_url_problem(url)
    if problem:
        raise ValueError(f"{problem} ({_DATABASEURL_FORM})")
    return f"postgresql://{rest}"


def _postgres_url_problem(url: str) -> str | None:
    authority = url.partition("://")[2].split("/", 1)[0]
    if " " in url:
        return "no spaces (percent-encode them)"
    if re.search(r"%(?![0-9A-Fa-f]{2})|%00", url):
        return "a '%' must start a percent-encoded byte such as %40 (and %00 is not allowed)"
    if authority.count("@") > 1 or authority.rpartition("@")[0].count(":") > 1:
        return "percent-encode '@', '/' and ':' in the password"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "a valid host and a port from 1 to 65535"
    if not parts.hostname or not is_host(parts.hostname) or port == 0:
        return "a valid host and a port from 1 to 65535"
    if not re.fullmatch(r"/[A-Za-z0-9_.$-]{1,63}", parts.path):
        return "a database name, such as /postgres"
    options = [pair.partition("=")[0] for pair in parts.query.split("&") if pair]
    if parts.fragment or any(option not in _POSTGRES_QUERY_OPTIONS for option in options):
        return "only the query options " + " and ".join(sorted(_POSTGRES_QUERY_OPTIONS))
    return None


def sqlite_path(database_url: str) -> str | None:
    """The file of a sqlite:/// URL (sqlite:////abs is absolute), or None for another database."""
    if not database_url.startswith("sqlite:///"):
        return None
    return database_url.removeprefix("sqlite:///")


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
    if _url_problem(url):  # every part was checked; this only guards the assembly
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
    problem = _url_problem(url)
    if problem:
        shown = value_for_error("REDIS_URL", url)
        raise ConfigError(f"{label}{shown} is not valid: {problem}; expected {URL_FORM}")
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest}"  # REDIS:// and Rediss:// mean what redis:// and rediss:// do


_ENCODING_ADVICE = "percent-encode the password's @ : / ? # [ ] % and spaces (for example %40 for @)"


def _url_problem(url: str) -> str | None:
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("redis", "rediss"):
        return "the scheme must be redis://, rediss:// or memory://"
    authority_end = min((rest.find(char) for char in "/?#" if char in rest), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo = authority.rpartition("@")[0]
    if authority.count("@") > 1 or "@" in tail or userinfo.count(":") > 1 or "[" in userinfo or "]" in userinfo:
        return _ENCODING_ADVICE
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        return "it contains spaces or control characters (" + _ENCODING_ADVICE + ")"
    if re.search(r"%(?![0-9A-Fa-f]{2})", url):
        return "a '%' must start a percent-encoded byte such as %25 (for a '%' itself)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it names no valid host (an IPv6 address goes in brackets: [::1])"
    try:
        port = parts.port
    except ValueError:
        return "the port must be a number from 1 to 65535"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "query options are not supported (use the demo's settings; percent-encode '?' and '#' in passwords)"
    if not parts.hostname or not is_host(parts.hostname):
        return "it names no valid host"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    database = parts.path.lstrip("/")
    if database and not (database.isascii() and database.isdigit() and len(database) <= 7):
        return "the path must be a database number such as /0 (percent-encode '/' in the password)"
    return None


def mask_url(url: str) -> str:
    """The URL with any password replaced by ****: the only way a URL is ever shown.

    The password before the `@`, and any `password=`-style option (libpq reads `?password=`,
    and `password=...` in a keyword DSN), are masked; the rest keeps its shape as typed. A URL
    too malformed to split is hidden whole.
    """
    url = mask_keywords(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return _hide(url)
    if parts.password is None or url.count("@") != parts.netloc.count("@"):  # a password cut at a / ? or #
        return url if "@" not in url else _hide(url)
    start = url.find("//") + 2  # a scheme has no '/': the authority follows the first "//"
    if url[start : start + len(parts.netloc)] != parts.netloc:  # urlsplit dropped a tab or newline from it
        return _hide(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{url[:start]}{parts.username or ''}:****@{host}{url[start + len(parts.netloc) :]}"


def mask_keywords(text: str) -> str:
    """`text` with the value of every `password=`-style option (`sslpassword=x`, `password = '...'`) as ****."""
    return SECRET_OPTION.sub(r"\1****", text)


def redact_password(text: str, url: str) -> str:
    """A driver's or library's own words (`text`) with the URL's password, as typed or decoded, as ****.

    Only for the free-form reason taken from an error, before a message is built around it:
    the masked URL, the demo's fixed wording and its hints hold no password, and a password
    that is a common word would garble them (and say which word it is).
    """
    try:
        password = urlsplit(url).password or ""
    except ValueError:
        return text
    forms = {password, unquote(password), quote(unquote(password), safe="")}
    for form in sorted(forms, key=len, reverse=True):  # the longest first: one form may contain another
        if len(form) >= 4:
            text = text.replace(form, "****")
    return text


def _hide(url: str) -> str:
    scheme = url.partition("://")[0] if "://" in url else "redis"
    return f"{scheme}://(hidden: the URL may contain a password)"


_HIDDEN = " (value hidden: it may contain a password)"
_NOT_A_URL = " (value hidden: it is not a scheme://... URL, and may hold a password)"


def value_for_error(name: str, value: str) -> str:
    """How a bad value follows its setting's name in an error: `='value'`, or a note that it is hidden.

    A password is never shown, nor any value that might hold one. A URL setting is shown,
    masked, only when it is a `scheme://` URL whose shape leaves no doubt where the password
    is: anything else typed there (a libpq `host=h password=...` string, a bare password)
    may be all secret. Any other value that looks like a URL or credentials (`://`, `@`,
    `password=`) is hidden whole.
    """
    if name == "REDIS_PASSWORD":
        return " (value hidden)"
    if name in ("REDIS_URL", "DATABASE_URL"):
        if not _URL_SHAPE.fullmatch(value):
            return _NOT_A_URL
        return "=" + ascii(mask_url(value)) if safe_to_show(value) else _HIDDEN
    if "@" in value or "://" in value or SECRET_OPTION.search(value):
        return _HIDDEN
    shown = value if len(value) <= 40 else value[:40] + "..."
    return "=" + ascii(shown)


def safe_to_show(url: str) -> bool:
    """Can this (possibly malformed) URL be shown masked without any part of a password?

    Yes when urlsplit finds a password and every '@' is in the authority (mask_url then
    replaces all of it: the text between the first ':' and the last '@'; with an '@' after
    a '/', '?' or '#', part of the password would be left), or when there is no user part
    at all and the port, if any, is a number (`redis://:secret` would show "secret" as a port).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.password is not None:  # and every '@' in the authority: a password ends at the last '@'
        return url.count("@") == parts.netloc.count("@")
    if "@" in url:
        return False
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    port = authority.rpartition("]")[2].partition(":")[2]  # after any IPv6 address in brackets
    return port == "" or port.isdigit()


# --- the shared argument parser and the settings loader ---


def setting_names() -> list[str]:
    """Every environment variable the demo reads, for docs and their tests."""
    return [*CONNECTION_VARIABLES, *(option.env for option in (*OPTIONS, *FLAG_OPTIONS))]
