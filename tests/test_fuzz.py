"""Property-based fuzzing (hypothesis) of everything the demo parses: prompt input, stdin bytes, settings, flags.

Each property runs at least 1000 examples. Nothing may raise except the documented error,
only documented ids are accepted, and whatever is echoed back has no raw control characters.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cli.arguments import parse_command_line
from cli.commands import MAX_STAMPEDE, Invalid, LineSplitter, Lookup, Stampede, parse_command, parse_user_id
from config.settings import MAX_USER_ID, ConfigError, Settings, setting_names

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ID_TEXT = re.compile(r"(?:user-)?0*([1-9][0-9]*)", re.IGNORECASE | re.ASCII)

# Text that is almost valid is where parsers break: digits of every script, signs, separators,
# control and bidi characters, huge numbers, and the command words.
tricky = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("0123456789١٢٣１２３٠۵߁൧+-_., \t\x00\x1b\u200f\u202e\u2066user-USERq")),
    st.builds(
        lambda digits, prefix, pad: f"{pad}{prefix}{digits}{pad}",
        st.integers(min_value=-(10**30), max_value=10**30).map(str) | st.from_regex(r"[0-9_]{1,40}", fullmatch=True),
        st.sampled_from(["", "user-", "USER-", "user_", "uſer-"]),
        st.sampled_from(["", " ", "\t", "\u00a0"]),
    ),
    st.builds(
        lambda verb, rest: f"{verb} {rest}",
        st.sampled_from(["stampede", "ttl", "del", "update", "clear", "stats"]),
        st.text(max_size=30),
    ),
)


def no_raw_control_characters(text: str) -> bool:
    return all(char.isprintable() for char in text)


def settings_or_error(environ: dict[str, str], labels: dict[str, str] | None = None) -> Settings | ConfigError:
    """The settings, or the one documented error."""
    try:
        return Settings.from_env(environ, "async", labels=labels)
    except ConfigError as error:
        return error


@EXAMPLES
@given(tricky)
@example("9" * 5000)
@example("١٢٣")
@example("１２３")
@example("1_000")
@example("+1")
@example("-0")
def test_only_documented_ids_are_accepted_and_nothing_raises(line: str) -> None:
    command = parse_command(line)
    if isinstance(command, Lookup):
        match = ID_TEXT.fullmatch(line.strip())
        assert match is not None
        assert command.user_id == int(match.group(1))
        assert 1 <= command.user_id <= MAX_USER_ID
    if isinstance(command, Stampede):
        assert 1 <= command.user_id <= MAX_USER_ID
        assert 1 <= command.lookups <= MAX_STAMPEDE
    if isinstance(command, Invalid):
        assert no_raw_control_characters(command.message)
        assert "\n" not in command.message


@EXAMPLES
@given(st.text())
def test_parse_user_id_accepts_exactly_the_grammar(text: str) -> None:
    user_id = parse_user_id(text)
    match = ID_TEXT.fullmatch(text)
    expected = int(match.group(1)) if match and int(match.group(1)) <= MAX_USER_ID else None  # any leading zeros
    assert user_id == expected


@EXAMPLES
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_stdin_bytes_of_any_kind_become_lines_and_commands_without_raising(chunks: list[bytes]) -> None:
    splitter = LineSplitter(max_line_bytes=64)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.finish()
    for line in lines:
        assert "\n" not in line
        assert len(line.encode("utf-8", "surrogateescape")) <= 64
        command = parse_command(line)
        if isinstance(command, Invalid):
            assert no_raw_control_characters(command.message)


@EXAMPLES
@given(st.sampled_from(setting_names()), st.text(max_size=60))
def test_any_setting_value_is_accepted_or_refused_in_one_clean_line(name: str, value: str) -> None:
    outcome = settings_or_error({"SEED_COUNT": "1", name: value})
    if isinstance(outcome, ConfigError):
        message = str(outcome)
        assert message.startswith(name)
        assert no_raw_control_characters(message)
        if name == "REDIS_PASSWORD" and len(value) > 3:
            assert value not in message


@EXAMPLES
@given(
    st.sampled_from(
        [
            "--count",
            "--seed-mode",
            "--batch-size",
            "--db-latency",
            "--ttl",
            "--key-prefix",
            "--ttl-jitter",
            "--negative-ttl",
            "--db-size",
            "--redis-timeout",
            "--cooldown",
            "--redis-url",
        ]
    ),
    st.text(max_size=40).filter(lambda text: not text.startswith("-")),
)
def test_any_flag_value_is_accepted_or_refused_in_one_clean_line(flag: str, value: str) -> None:
    command_line = parse_command_line([flag, value], "async")
    outcome = settings_or_error({"SEED_COUNT": "1", **command_line.overrides}, command_line.labels)
    if isinstance(outcome, ConfigError):
        assert str(outcome).startswith(flag)
        assert no_raw_control_characters(str(outcome))


@pytest.mark.parametrize("password", ["hunter2", "p@ss/w:rd", "%41%42", "a b"])
def test_a_password_is_never_part_of_a_configuration_error(password: str) -> None:
    for environ in (
        {"REDIS_PASSWORD": password, "REDIS_PORT": "nope"},
        {"REDIS_URL": f"redis://u:{password}@h:nope/0"},
        {"REDIS_URL": f"redis://u:{password}@h:6379/x"},
    ):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env(environ, "sync")
        assert password not in str(raised.value)
