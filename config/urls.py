"""Configuration layer, pure: what the demo accepts as a URL, and how it shows one without its password.

DATABASE_URL's parser and the Redis URL's checks (the Redis URL's own parser, which raises
the settings' ConfigError, is in config/settings.py), and every way a value is shown in a
message or a banner: a URL with its password masked, a setting's value hidden when it may
hold one. Nothing here reads the environment or prints.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, unquote, urlsplit

_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")

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


def is_host(text: str) -> bool:
    """A host name, an IPv4 address, or an IPv6 address (bare or in brackets)."""
    if 0 < len(text) <= 253 and _HOST_NAME.fullmatch(text):
        return True
    try:
        ipaddress.IPv6Address(text.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


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


_ENCODING_ADVICE = "percent-encode the password's @ : / ? # [ ] % and spaces (for example %40 for @)"


def url_problem(url: str) -> str | None:
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
