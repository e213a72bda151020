"""Prompt layer, I/O at start-up: the settings, read from flags, the environment and .env; Redis, pinged once.

The one place that reads `os.environ` and the `.env` file. The file is read from an
explicit path (./.env, or --env-file), without interpolation, and never overrides the
real environment; `os.environ` is never changed.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Mapping, Sequence

from cli.arguments import merge_sources, parse_command_line
from cli.messages import describe_connection, startup_failure
from config.redis import RedisClients, RedisUnavailable, aopen_redis, open_redis
from config.settings import ConfigError, Settings, Twin
from config.urls import value_for_error

DEFAULT_ENV_FILE = ".env"


def load_settings(argv: Sequence[str] | None, twin: Twin, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags, then the environment, then .env, then defaults; raises ConfigError or SystemExit."""
    command_line = parse_command_line(sys.argv[1:] if argv is None else argv, twin)
    dotenv = read_env_file(command_line.env_file)
    merged = merge_sources(command_line, os.environ if environ is None else environ, dotenv)
    settings = Settings.from_env(merged, twin, labels=command_line.labels)
    if settings.tls_ca_file and not os.access(settings.tls_ca_file, os.R_OK):
        label = command_line.labels.get("REDIS_TLS_CA_FILE", "REDIS_TLS_CA_FILE")
        shown = value_for_error("REDIS_TLS_CA_FILE", settings.tls_ca_file)
        raise ConfigError(f"{label}{shown} is not valid: expected a readable PEM file of CA certificates")
    if settings.sqlite_path is not None and (problem := sqlite_file_problem(settings.sqlite_path)):
        label = command_line.labels.get("DATABASE_URL", "DATABASE_URL")
        shown = value_for_error("DATABASE_URL", settings.database_url)
        if shown.startswith(" (value hidden"):  # then the directory, part of the same value, is not named either
            problem = sqlite_file_problem(settings.sqlite_path, name_directory=False)
        raise ConfigError(f"{label}{shown} is not valid: {problem}")
    return settings


def sqlite_file_problem(path: str, name_directory: bool = True) -> str | None:
    """Why the demo could not create or open this SQLite file, or None."""
    absolute = os.path.dirname(os.path.abspath(path))
    directory = f"the directory {absolute!r}" if name_directory else "its directory"
    if not os.path.isdir(absolute):
        return f"{directory} does not exist"
    if not os.path.exists(path):
        return None if os.access(absolute, os.W_OK) else f"{directory} is not writable"
    if not os.path.isfile(path):
        return "it names a directory or a special file, not a database file"
    if not os.access(path, os.R_OK | os.W_OK):
        return "the file is not readable and writable"
    return None


def read_env_file(path: str | None) -> dict[str, str | None]:
    """The variables in the .env file; raises ConfigError for a file that cannot be read, or a line that cannot.

    A missing ./.env is no error (most runs have none); a chosen file that is missing is one, and so is
    anything at either path that is not a readable regular file (a directory, a FIFO, a broken link).
    """
    chosen = path is not None
    path = path or DEFAULT_ENV_FILE
    named = f"--env-file{value_for_error('--env-file', path)}" if chosen else DEFAULT_ENV_FILE
    if not os.path.isfile(path):
        if not chosen and not os.path.lexists(path):
            return {}
        raise ConfigError(f"{named} is not valid: expected a readable .env file ({_what_is_there(path)})")
    try:
        with open(path, encoding="utf-8") as file:  # python-dotenv's encoding
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{named} cannot be read ({type(error).__name__})") from None
    # Imported here: most runs have no .env, and python-dotenv costs ~2 ms of start-up. Its dotenv_values
    # reports a line it cannot parse only through the logging module (a warning of its own, on stderr) and
    # goes on without it, so its parser checks the text first, and a bad line is our one-line error.
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    if bad := next((binding for binding in parse_stream(io.StringIO(text)) if binding.error), None):
        # python-dotenv counts the blank lines before a statement in it: its line is the first one's.
        statement = bad.original.string
        blanks = statement[: len(statement) - len(statement.lstrip())]
        line = bad.original.line + len(re.findall(r"\r\n|\r|\n", blanks))
        raise ConfigError(f"{named} line {line} cannot be read: expected NAME=value")
    return dotenv_values(stream=io.StringIO(text), interpolate=False)  # the text read once, checked above


def _what_is_there(path: str) -> str:
    if not os.path.lexists(path):
        return "it does not exist"
    if os.path.isdir(path):
        return "it is a directory"
    if not os.path.exists(path):
        return "it is a broken symbolic link"
    return "it is not a regular file"


def connect(settings: Settings) -> tuple[RedisClients, str]:
    """Ping once (config.redis.open_redis); returns the clients and the start-up line, or raises StartupError."""
    try:
        opened = open_redis(settings)
    except RedisUnavailable as failure:
        raise startup_failure(settings, failure.error, failure.found) from None
    return opened.clients, describe_connection(opened)


async def aconnect(settings: Settings) -> tuple[RedisClients, str]:
    """Ping once (config.redis.aopen_redis); returns the clients and the start-up line, or raises StartupError."""
    try:
        opened = await aopen_redis(settings)
    except RedisUnavailable as failure:
        raise startup_failure(settings, failure.error, failure.found) from None
    return opened.clients, describe_connection(opened)
