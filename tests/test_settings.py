"""Settings: sources, precedence, validation and masking (config.settings and cli.startup)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.arguments import build_parser, unrecognized_arguments
from cli.startup import load_settings
from config.settings import DEFAULT_REDIS_URL, EMBEDDED_REDIS_URL, ConfigError, Settings, parse_redis_url, setting_names
from config.urls import mask_url, redact_password, value_for_error

NOT_A_URL = " (value hidden: it is not a scheme://... URL, and may hold a password)"


def test_defaults_match_the_documented_ones() -> None:
    settings = Settings.from_env({}, "sync")
    assert settings == Settings(
        redis_url=DEFAULT_REDIS_URL,
        redis_configured=False,
        seed_count=1000,
        seed_batch_size=1000,
        seed_mode="threaded",
        db_latency_seconds=2.0,
        cache_ttl_seconds=3600,
        key_prefix="",
        json_output=False,
    )
    assert Settings.from_env({}, "async").seed_mode == "pipelined"


@pytest.mark.parametrize(
    ("environ", "attribute", "expected"),
    [
        ({"SEED_COUNT": "250"}, "seed_count", 250),
        ({"SEED_COUNT": "0"}, "seed_count", 0),
        ({"SEED_BATCH_SIZE": "100"}, "seed_batch_size", 100),
        ({"SEED_MODE": "Sequential"}, "seed_mode", "sequential"),
        ({"SEED_MODE": "none"}, "seed_mode", "none"),
        ({"DB_LATENCY_SECONDS": "0.05"}, "db_latency_seconds", 0.05),
        ({"DB_LATENCY_SECONDS": "3"}, "db_latency_seconds", 3.0),
        ({"CACHE_TTL_SECONDS": "60"}, "cache_ttl_seconds", 60),
        ({"KEY_PREFIX": "demo:"}, "key_prefix", "demo:"),
        ({"JSON_OUTPUT": "yes"}, "json_output", True),
        ({"SEED_COUNT": ""}, "seed_count", 1000),  # empty means unset
    ],
)
def test_each_setting_is_read_from_the_environment(environ: dict[str, str], attribute: str, expected: object) -> None:
    assert getattr(Settings.from_env(environ, "sync"), attribute) == expected


@pytest.mark.parametrize(
    ("environ", "expected_url"),
    [
        ({"REDIS_HOST": "cache.local"}, "redis://cache.local:6379/0"),
        ({"REDIS_HOST": "cache.local", "REDIS_PORT": "6380", "REDIS_DB": "2"}, "redis://cache.local:6380/2"),
        ({"REDIS_PASSWORD": "p@ss/w:rd"}, "redis://:p%40ss%2Fw%3Ard@localhost:6379/0"),
        ({"REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw"}, "redis://app:pw@localhost:6379/0"),
        ({"REDIS_USERNAME": "app"}, "redis://app@localhost:6379/0"),
        ({"REDIS_HOST": "::1"}, "redis://[::1]:6379/0"),
        ({"REDIS_URL": "rediss://u:p@h:6380/1", "REDIS_HOST": "ignored"}, "rediss://u:p@h:6380/1"),
        ({"REDIS_URL": "memory://"}, EMBEDDED_REDIS_URL),
    ],
)
def test_the_redis_url_comes_from_redis_url_or_the_original_variables(
    environ: dict[str, str], expected_url: str
) -> None:
    settings = Settings.from_env(environ, "sync")
    assert settings.redis_url == expected_url
    assert settings.redis_configured


def test_nothing_configured_means_the_default_url_with_a_fallback_allowed() -> None:
    settings = Settings.from_env({"SEED_COUNT": "5"}, "sync")
    assert settings.redis_url == DEFAULT_REDIS_URL
    assert not settings.redis_configured


@pytest.mark.parametrize(
    ("environ", "twin", "fragments"),
    [
        ({"REDIS_PORT": "abc"}, "sync", ["REDIS_PORT='abc'", "whole number from 1 to 65,535"]),
        ({"REDIS_PORT": "70000"}, "sync", ["REDIS_PORT='70000'", "65,535"]),
        ({"DB_LATENCY_SECONDS": "-1"}, "sync", ["DB_LATENCY_SECONDS='-1'", "number from 0 to 600"]),
        ({"DB_LATENCY_SECONDS": "nan"}, "sync", ["DB_LATENCY_SECONDS='nan'"]),
        ({"DB_LATENCY_SECONDS": "1e3"}, "sync", ["DB_LATENCY_SECONDS='1e3'"]),
        ({"SEED_MODE": "fast"}, "sync", ["SEED_MODE='fast'", "threaded, sequential, pipelined, none"]),
        ({"SEED_MODE": "threaded"}, "async", ["SEED_MODE='threaded'", "pipelined, sequential, none"]),
        ({"SEED_COUNT": "-5"}, "sync", ["SEED_COUNT='-5'", "whole number"]),
        ({"SEED_COUNT": "١٢٣"}, "sync", ["SEED_COUNT='\\u0661\\u0662\\u0663'"]),
        ({"SEED_BATCH_SIZE": "0"}, "sync", ["SEED_BATCH_SIZE='0'", "from 1 to 100,000"]),
        ({"CACHE_TTL_SECONDS": "0"}, "sync", ["CACHE_TTL_SECONDS='0'"]),
        ({"KEY_PREFIX": "a*b"}, "sync", ["KEY_PREFIX='a*b'", "letters, digits"]),
        ({"JSON_OUTPUT": "maybe"}, "sync", ["JSON_OUTPUT='maybe'", "1 or 0"]),
        ({"REDIS_URL": "http://h"}, "sync", ["REDIS_URL='http://h'", "scheme"]),
        ({"REDIS_URL": "redis://h:1/x"}, "sync", ["REDIS_URL='redis://h:1/x'", "database number"]),
        # a port that is not a number may be a password typed without its '@': not shown
        ({"REDIS_URL": "redis://h:port"}, "sync", ["REDIS_URL (value hidden", "port must be a number"]),
        ({"REDIS_URL": "redis://"}, "sync", ["names no valid host"]),
        ({"REDIS_URL": "redis://[zz]:6379/0"}, "sync", ["names no valid host"]),
        ({"REDIS_HOST": "1:2:3"}, "sync", ["REDIS_HOST='1:2:3'", "host name or IP address"]),
        ({"REDIS_URL": "redis://h/x"}, "sync", ["database number"]),
        ({"REDIS_URL": "redis://h/0?ssl_cert_reqs=none"}, "sync", ["query options are not supported"]),
        ({"REDIS_HOST": "bad host"}, "sync", ["REDIS_HOST='bad host'", "host name"]),
    ],
)
def test_a_bad_value_names_the_setting_the_value_and_what_is_accepted(
    environ: dict[str, str], twin: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ, twin)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:Qj/Xvzk@host:6379/0",  # '/' in the password
        "redis://user:Qj@Xvzk@host:6379/0",  # '@' in the password
        "redis://user:Qj:Xvzk@host:6379/0",  # ':' in the password
        "redis://:Qj?Xvzk@host/0",  # '?' in the password
        "redis://:Qj#Xvzk@host/0",  # '#' in the password
        "redis://:Qj[Xvzk]@host/0",  # brackets in the password
        "redis://:Qj%zzXvzk@host/0",  # a '%' that starts no percent-encoded byte
        "redis://:Qj Xvzk@host/0",  # a space
    ],
)
def test_an_unencoded_password_is_refused_without_echoing_any_of_it(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_redis_url(url)
    message = str(raised.value)
    for fragment in ("Qj", "Xvzk"):
        assert fragment not in message
    assert "percent-encode" in message or "percent-encoded byte" in message


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("REDIS://h:6379/0", "redis://h:6379/0"),
        ("Rediss://u:P%40ss@h:6380/1", "rediss://u:P%40ss@h:6380/1"),
        ("MEMORY://", EMBEDDED_REDIS_URL),
        ("Memory://", EMBEDDED_REDIS_URL),
    ],
)
def test_an_upper_case_redis_scheme_is_accepted_and_normalised(url: str, normalised: str) -> None:
    settings = Settings.from_env({"REDIS_URL": url}, "sync")
    assert settings.redis_url == normalised


def test_an_upper_case_rediss_scheme_is_tls_for_the_ca_file_check() -> None:
    settings = Settings.from_env({"REDIS_URL": "REDISS://h:6380/0", "REDIS_TLS_CA_FILE": "ca.pem"}, "sync")
    assert settings.redis_url == "rediss://h:6380/0"


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("SQLITE:///users.db", "sqlite:///users.db"),
        ("Sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("POSTGRESQL://u:pw@h:5433/demo", "postgresql://u:pw@h:5433/demo"),
        ("Postgres://u@h/demo", "postgresql://u@h/demo"),
    ],
)
def test_an_upper_case_database_scheme_is_accepted_and_normalised(url: str, normalised: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}, "sync").database_url == normalised


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("SEED_COUNT", "abc", "='abc'"),
        ("SEED_COUNT", "redis://:Qjxvzk@h", " (value hidden: it may contain a password)"),
        ("KEY_PREFIX", "u:Qjxvzk@h", " (value hidden: it may contain a password)"),
        ("REDIS_SENTINELS", ":Qjxvzk@h:1", " (value hidden: it may contain a password)"),
        ("REDIS_PASSWORD", "Qjxvzk", " (value hidden)"),
        ("REDIS_URL", "redis://:Qjxvzk@h:notaport", "='redis://:****@h:notaport'"),
        ("REDIS_URL", "redis://:Qj@xvzk@h", "='redis://:****@h'"),
        ("REDIS_URL", "redis://:Qj/x@vzk@h", " (value hidden: it may contain a password)"),
        ("REDIS_URL", "redis://:Qjxvzk", " (value hidden: it may contain a password)"),
        ("REDIS_URL", "redis://:Qjxvzk@[::1", " (value hidden: it may contain a password)"),
        ("DATABASE_URL", "sqlite:///u:Qjxvzk@h/x.db", " (value hidden: it may contain a password)"),
        ("DATABASE_URL", "mysql://h/x", "='mysql://h/x'"),
        ("DATABASE_URL", "postgresql://h/db?password=Qjxvzk", "='postgresql://h/db?password=****'"),
        # a URL setting that is not a scheme:// URL may be all secret: a libpq keyword DSN, a bare password
        ("DATABASE_URL", "host=localhost password=Qjxvzk dbname=x", NOT_A_URL),
        ("DATABASE_URL", "host=h password='Qj xvzk'", NOT_A_URL),
        ("DATABASE_URL", "Qjxvzk", NOT_A_URL),
        ("REDIS_URL", "password=Qjxvzk", NOT_A_URL),
        ("REDIS_URL", "Qjxvzk", NOT_A_URL),
        ("REDIS_URL", "127.0.0.1:6379 Qjxvzk", NOT_A_URL),
        ("REDIS_URL", "redis://h/0 password=Qjxvzk", NOT_A_URL),  # a URL has no spaces
        ("KEY_PREFIX", "password=Qjxvzk", " (value hidden: it may contain a password)"),
        ("SEED_COUNT", "sslpassword = Qjxvzk", " (value hidden: it may contain a password)"),
    ],
)
def test_a_bad_value_is_shown_only_when_it_cannot_hold_a_password(name: str, value: str, shown: str) -> None:
    assert value_for_error(name, value) == shown


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DATABASE_URL": "host=localhost password=Qjxvzk dbname=x"},
            f"DATABASE_URL{NOT_A_URL} is not valid: expected sqlite:///file.db",
        ),
        (
            {"REDIS_URL": "password=Qjxvzk"},
            f"REDIS_URL{NOT_A_URL} is not valid: the scheme must be redis://, rediss:// or memory://; expected redis://",
        ),
    ],
)
def test_a_keyword_dsn_in_a_url_setting_is_not_echoed_and_the_url_form_is_named(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ, "sync")
    assert str(raised.value).startswith(message)
    assert "Qjxvzk" not in str(raised.value)


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        (["--redis-ulr"], "unrecognized arguments: --redis-ulr"),
        (["--redis=redis://:Qjxvzk@h/0"], "unrecognized arguments: --redis=redis://:****@h/0"),
        (["--redis=Qjxvzk"], "unrecognized arguments: --redis=(value not shown)"),
        (["redis://:Qj/x@vzk@h"], "unrecognized arguments: 1 argument not shown (it may be a password"),
        (["Qjxvzk", "x"], "unrecognized arguments: 2 arguments not shown (it may be a password"),
        (["redis://:Qjxvzk@h", "x"], "unrecognized arguments: redis://:****@h, 1 more argument not shown ("),
    ],
)
def test_unrecognized_arguments_are_named_without_any_password(extras: list[str], message: str) -> None:
    text = unrecognized_arguments(extras)
    assert text.startswith(message)
    assert "Qj" not in text
    assert "vzk" not in text


def test_redact_password_replaces_every_form_of_the_password() -> None:
    url = "postgresql://u:P%40ss%2Fw0rd@h/db"
    text = "failed for P%40ss%2Fw0rd, P@ss/w0rd and P%40ss%2Fw0rd"
    assert redact_password(text, url) == "failed for ****, **** and ****"
    assert redact_password("nothing to hide", "sqlite:///users.db") == "nothing to hide"


def test_a_percent_encoded_password_is_accepted() -> None:
    assert parse_redis_url("redis://user:pa%2Fss%40wo%3Ard@host:6379/0").startswith("redis://user:")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:secret@host:6379/0", "redis://user:****@host:6379/0"),
        ("redis://:secret@host:6379/0", "redis://:****@host:6379/0"),
        ("rediss://host:6380/1", "rediss://host:6380/1"),
        ("redis://u:s%40cret@host/0", "redis://u:****@host/0"),
        ("memory://", "memory://"),
        ("redis://:Qj/x@vzk@h/0", "redis://(hidden: the URL may contain a password)"),  # cut at the '/'
        ("redis://:Qj#x@vzk@h/0", "redis://(hidden: the URL may contain a password)"),  # cut at the '#'
        ("redis://:Qj@x@h/0", "redis://:****@h/0"),
        # the URL keeps its shape: no `//` dropped, no scheme lower-cased
        ("postgresql:///db?host=/tmp&password=x", "postgresql:///db?host=/tmp&password=****"),
        ("REDIS://u:secret@h/0", "REDIS://u:****@h/0"),
        (
            "postgresql://u:secret@h/db?sslmode=require&sslpassword=x",
            "postgresql://u:****@h/db?sslmode=require&sslpassword=****",
        ),
        # `password=`-style options anywhere, as libpq reads them: quoted, escaped, or up to a space
        ("host=localhost password=s3cr3t dbname=x", "host=localhost password=**** dbname=x"),
        ("host=h password = 'it\\'s a#secret' port=1", "host=h password = **** port=1"),
        ("PASSWORD=s3c#r3t host=h", "PASSWORD=**** host=h"),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_bad_password_variable_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"REDIS_PASSWORD": "hunter2", "REDIS_PORT": "x"}, "sync")
    assert "hunter2" not in str(raised.value)


# --- sources and precedence: flags, then environment, then .env, then defaults ---


def test_flags_beat_the_environment_which_beats_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SEED_COUNT=10\nCACHE_TTL_SECONDS=20\nDB_LATENCY_SECONDS=0.3\n")
    environ = {"CACHE_TTL_SECONDS": "40", "DB_LATENCY_SECONDS": "0.4"}
    settings = load_settings(["--db-latency", "0.5"], "sync", environ)
    assert (settings.seed_count, settings.cache_ttl_seconds, settings.db_latency_seconds) == (10, 40, 0.5)


def test_dotenv_is_read_without_interpolation(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_PASSWORD=${HOME}$x\n")
    settings = load_settings([], "sync", {"HOME": "/root"})
    assert settings.redis_url == "redis://:%24%7BHOME%7D%24x@localhost:6379/0"


def test_a_redis_url_flag_overrides_the_host_variables(tmp_path: Path) -> None:
    settings = load_settings(["--redis-url", "memory://"], "sync", {"REDIS_HOST": "elsewhere"})
    assert settings.embedded


def test_a_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--count='abc' is not valid: expected a whole number"):
        load_settings(["--count", "abc"], "sync", {})


def test_a_chosen_env_file_must_exist() -> None:
    with pytest.raises(ConfigError, match="--env-file"):
        load_settings(["--env-file", "missing.env"], "sync", {})


def test_every_setting_has_a_flag_or_is_a_connection_variable() -> None:
    help_text = build_parser("sync").format_help() + build_parser("async").format_help()
    for flag in ("--redis-url", "--count", "--seed-mode", "--batch-size", "--db-latency", "--ttl", "--json"):
        assert flag in help_text
    for name in setting_names():
        assert name in help_text or name == "JSON_OUTPUT"
