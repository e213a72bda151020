"""Command-line layer: the flags both twins take, parsed with argparse into overrides of the settings.

Which flag sets which setting is declared once, beside the setting, in `config.settings`
(OPTIONS, FLAG_OPTIONS); this module only turns argv into those names and values, with a
one-line error (exit code 2) that never repeats a value that may be a password.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from config.settings import CONNECTION_VARIABLES, FLAG_OPTIONS, OPTIONS, PROGRAM_NAMES, SEED_MODES, URL_FORM, Twin
from config.urls import SECRET_OPTION, mask_url, safe_to_show


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (not usage + error), exit code 2, and no password in it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_redact(message)} (see --help)\n")


def _redact(text: str) -> str:
    """An argparse message with nothing that was typed as a value in it (it may be a password).

    argparse quotes the value a flag without one was given (`--json=...`); any other word
    that looks like a URL or credentials is hidden whole, as a last guard.
    """
    text = re.sub(r"ignored explicit argument .*", "takes no value (the value given is not shown)", text)
    return " ".join(word if _harmless(word) else "(hidden)" for word in text.split(" "))


def _harmless(word: str) -> bool:
    """No URL or credentials in it, or a URL already masked (`redis://:****@host`, `--flag=redis://...`)."""
    value = word.rstrip(",")
    if value.startswith("-"):
        value = value.partition("=")[2]
    if SECRET_OPTION.search(value):
        return False
    if "@" not in value and "://" not in value:
        return True
    return safe_to_show(value) and mask_url(value) == value


def unrecognized_arguments(extras: Sequence[str]) -> str:
    """argparse's `unrecognized arguments` error, with no password in it: argparse would echo them as typed.

    Flags are named; a URL is shown masked when its shape leaves no doubt where the password
    is; anything else typed is counted, not shown (a password may have been typed alone).
    """
    shown = []
    hidden = 0
    for argument in extras:
        flag, equals, value = argument.partition("=")
        if re.fullmatch(r"--?[A-Za-z0-9][A-Za-z0-9_-]{0,40}", flag):
            shown.append(flag + (f"={_masked_or_hidden(value)}" if equals else ""))
        elif "://" in argument and safe_to_show(argument):
            shown.append(mask_url(argument))
        else:
            hidden += 1
    if hidden:
        more, plural = "more " if shown else "", "s" if hidden > 1 else ""
        shown.append(
            f"{hidden} {more}argument{plural} not shown (it may be a password; type ids at the prompt, "
            "and give URLs with --redis-url or --database-url)"
        )
    return "unrecognized arguments: " + ", ".join(shown)


def _masked_or_hidden(value: str) -> str:
    return mask_url(value) if "://" in value and safe_to_show(value) else "(value not shown)"


def build_parser(twin: Twin) -> argparse.ArgumentParser:
    """The command line both twins share; only the seed modes differ."""
    modes = SEED_MODES[twin]
    parser = _OneLineParser(
        prog=PROGRAM_NAMES[twin],
        allow_abbrev=False,  # `--redis=...` must not be taken for --redis-url
        description=(
            "Cache-aside on Redis, "
            + ("synchronous (redis.Redis)." if twin == "sync" else "non-blocking (redis.asyncio).")
            + " Type a user id to look it up; q quits."
        ),
        epilog=(
            "Every flag has an environment variable (also read from .env): "
            + ", ".join(f"{option.flag}={option.env}" for option in OPTIONS if option.flag)
            + ". Redis connection: REDIS_URL, or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB."
        ),
    )
    parser.add_argument("--redis-url", metavar="URL", help=f"Redis to use: {URL_FORM} (env REDIS_URL)")
    for option in OPTIONS:
        help_text = option.help
        if option.twin_choices:
            help_text = f"one of {', '.join(modes)} (default {modes[0]})"
        parser.add_argument(option.flag or "", metavar=option.metavar, help=f"{help_text} (env {option.env})")
    for option in FLAG_OPTIONS:
        parser.add_argument(
            option.flag or "", action="store_true", default=None, help=f"{option.help} (env {option.env})"
        )
    parser.add_argument("--env-file", metavar="PATH", help="the .env file to read (default: ./.env if it exists)")
    return parser


@dataclass(frozen=True, slots=True)
class CommandLine:
    """What the command line asked for: flag values as environment names, and the .env path."""

    overrides: dict[str, str] = field(repr=False)  # --redis-url may hold a password
    labels: dict[str, str]
    env_file: str | None


def parse_command_line(argv: Sequence[str], twin: Twin) -> CommandLine:
    """Parse flags into overrides of the environment; argparse exits 2 (or 0 for --help)."""
    parser = build_parser(twin)
    namespace, extras = parser.parse_known_args(list(argv))
    if extras:  # argparse would echo them, and one may be a URL with its password
        parser.error(unrecognized_arguments(extras))
    overrides: dict[str, str] = {}
    labels: dict[str, str] = {}
    flag_to_env = {"--redis-url": "REDIS_URL", **{option.flag: option.env for option in OPTIONS if option.flag}}
    for flag, env in flag_to_env.items():
        value = getattr(namespace, flag[2:].replace("-", "_"))
        if value is not None:
            overrides[env] = value
            labels[env] = flag
    for option in FLAG_OPTIONS:
        if getattr(namespace, (option.flag or "")[2:].replace("-", "_")):
            overrides[option.env] = "1"
            labels[option.env] = option.flag or option.env
    return CommandLine(overrides, labels, namespace.env_file)


def merge_sources(
    command_line: CommandLine, environ: Mapping[str, str], dotenv: Mapping[str, str | None]
) -> dict[str, str | None]:
    """Flags over the real environment over .env: python-dotenv's recipe, plus flags on top."""
    merged: dict[str, str | None] = {**dotenv, **environ}
    if "REDIS_URL" in command_line.overrides:
        for name in CONNECTION_VARIABLES:
            merged.pop(name, None)
    merged.update(command_line.overrides)
    return merged
