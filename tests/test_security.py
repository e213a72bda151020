"""Security: credentials never leak, least privilege works, TLS verifies or refuses, never downgrades.

Each test starts its own redis-server (a password, an ACL user, or TLS with a throwaway CA
from tests/tls.py) and runs the real scripts against it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import PROJECT_ROOT
from tests.servers import RedisServer, redis_cli_binary, redis_server_binary, start_cluster, start_sentinel_group
from tests.test_e2e import assert_clean, script_env, stderr_lines
from tests.tls import TlsFiles, make_tls

pytestmark = pytest.mark.integration
SCRIPTS = ["main.py", "main_async.py"]
# Everything the demo sends, and nothing else (docs/security.md shows this line).
ACL_RULES = "-@all +ping +get +set +del +unlink +pttl +type +scan +evalsha +script|load +client|setname +select"
SECRET = "s3cr:t@p/w?#%"  # every character that breaks a URL unless percent-encoded


def run(
    script: str, url: str, typed: bytes, cwd: Path, *arguments: str, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), "--db-latency", "0.01", *arguments],
        input=typed,
        capture_output=True,
        cwd=cwd,
        timeout=60,
        check=False,
        env=script_env(**({"REDIS_URL": url} if url else {}), **env),
    )


def assert_secret_absent(done: subprocess.CompletedProcess[bytes], *secrets: str) -> None:
    output = done.stdout + done.stderr
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form.encode() not in output, form


# --- authentication ---


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_wrong_password_is_an_authentication_failure_reported_fast_without_the_password(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis("--requirepass", "the-right-one")
    url = f"redis://:{quote(SECRET, safe='')}@127.0.0.1:{server.port}/0"
    done = run(script, url, b"42\n", tmp_path)
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line == (
        f"Cannot use Redis at redis://:****@127.0.0.1:{server.port}/0: authentication failed (wrong password or "
        "unknown user). Hint: check the user name and password in REDIS_URL (percent-encoded), or REDIS_USERNAME "
        "and REDIS_PASSWORD."
    )
    assert "docker" not in line  # a server answered: starting one is not the fix
    assert_secret_absent(done, SECRET)


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_password_for_a_server_that_requires_one_says_so(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis("--requirepass", SECRET)
    done = run(script, f"redis://127.0.0.1:{server.port}/0", b"42\n", tmp_path)
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line == (
        f"Cannot use Redis at redis://127.0.0.1:{server.port}/0: the server requires a password, and none was "
        "given. Hint: put the password in REDIS_URL (redis://:password@host, percent-encoded) or in REDIS_PASSWORD."
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_acl_user_given_as_variables_is_an_authentication_failure(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis()
    done = run(
        script,
        "",
        b"42\n",
        tmp_path,
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(server.port),
        REDIS_USERNAME="nobody",
        REDIS_PASSWORD=SECRET,
    )
    assert done.returncode == 1
    assert f"redis://nobody:****@127.0.0.1:{server.port}/0: authentication failed" in done.stderr.decode()
    assert_secret_absent(done, SECRET)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_password_with_url_characters_works_percent_encoded_or_as_a_variable(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis("--requirepass", SECRET)
    encoded = run(
        script, f"redis://:{quote(SECRET, safe='')}@127.0.0.1:{server.port}/0", b"42\n", tmp_path, "--seed-mode", "none"
    )
    variable = run(
        script,
        "",
        b"43\n",
        tmp_path,
        "--seed-mode",
        "none",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(server.port),
        REDIS_PASSWORD=SECRET,
    )
    for done in (encoded, variable):
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(b"Stored: user-4")
        assert_secret_absent(done, SECRET)
        assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unencoded_password_is_a_configuration_error_that_echoes_none_of_it(script: str, tmp_path: Path) -> None:
    done = run(script, "redis://:pa/ss@word@127.0.0.1:6379/0", b"", tmp_path)
    assert done.returncode == 2
    assert b"percent-encode" in done.stderr
    for fragment in (b"pa/ss", b"ss@word", b"word@"):
        assert fragment not in done.stderr + done.stdout


# --- least privilege ---


def _acl_user(server: RedisServer, rules: str, prefix: str = "") -> str:
    admin = server.admin()
    admin.execute_command(
        "ACL",
        "SETUSER",
        "cache-demo",
        "on",
        ">a-long-password",
        "resetkeys",
        f"~{prefix}user-*",
        "resetchannels",
        *rules.split(),
    )
    admin.close()
    return f"redis://cache-demo:a-long-password@127.0.0.1:{server.port}/0"


def test_readme_documents_the_acl_line_the_tests_use() -> None:
    readme = (PROJECT_ROOT / "docs" / "security.md").read_text()
    assert f"ACL SETUSER cache-demo on >a-long-password resetkeys ~user-* resetchannels {ACL_RULES}" in readme


@pytest.mark.parametrize(
    ("script", "mode"), [("main.py", "threaded"), ("main.py", "sequential"), ("main_async.py", "pipelined")]
)
def test_the_whole_demo_runs_as_a_user_allowed_only_its_keys_and_commands(
    script: str, mode: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis()
    url = _acl_user(server, ACL_RULES, prefix="demo:")
    typed = b"42\n5000\nstampede 6000 10\nttl 42\ndel 42\nupdate 43\n43\n3000000\nstats\nclear\n"
    done = run(
        script, url, typed, tmp_path, "--seed-mode", mode, "--count", "100", "--key-prefix", "demo:", "--early-refresh"
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "Redis error" not in out
    assert "permission" not in (out + done.stderr.decode()).lower()
    assert "Cleared " in out
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_command_outside_the_acl_is_reported_not_swallowed(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis()
    url = _acl_user(server, ACL_RULES.replace(" +unlink", ""))
    with server.admin() as admin:  # a key for `clear` to find, whatever order the async twin runs things in
        admin.set("user-42", "x", ex=60)
    done = run(script, url, b"clear\n", tmp_path, "--seed-mode", "none")
    out = done.stdout.decode().splitlines()
    assert done.returncode == 0
    assert any(
        line.startswith("Redis error: permission denied by the server's ACL (") and "unlink" in line for line in out
    )


# --- TLS ---


@pytest.fixture
def tls(tmp_path: Path, start_redis: Callable[..., RedisServer]) -> tuple[RedisServer, str, str]:
    """A TLS-only redis-server whose certificate names `localhost`; the right CA file and a wrong one."""
    files = make_tls(tmp_path / "tls", ("localhost",))
    server = start_redis(*files.server_arguments(), tls=True)
    return server, files.ca_file, files.wrong_ca_file


@pytest.mark.parametrize("script", SCRIPTS)
def test_tls_with_the_right_ca_file_works(script: str, tls: tuple[RedisServer, str, str], tmp_path: Path) -> None:
    server, ca_file, _ = tls
    url = f"rediss://localhost:{server.port}/0"
    first = run(script, url, b"42\n", tmp_path, "--seed-mode", "none", REDIS_TLS_CA_FILE=ca_file)
    second = run(script, url, b"42\n", tmp_path, "--seed-mode", "none", REDIS_TLS_CA_FILE=ca_file)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr
    assert stderr_lines(first.stderr)[0].startswith(f"Connected to Redis at {url}")
    assert first.stdout.startswith(b"Stored: user-42 = ")
    assert second.stdout.startswith(b"Found in cache: user-42 = ")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("case", ["wrong CA", "host mismatch", "system CAs only"])
def test_tls_that_cannot_be_verified_is_refused_never_downgraded(
    script: str, case: str, tls: tuple[RedisServer, str, str], tmp_path: Path
) -> None:
    server, ca_file, wrong_ca_file = tls
    host = "127.0.0.1" if case == "host mismatch" else "localhost"  # the certificate names localhost only
    env = (
        {"REDIS_TLS_CA_FILE": {"wrong CA": wrong_ca_file, "host mismatch": ca_file}[case]}
        if case != "system CAs only"
        else {}
    )
    done = run(script, f"rediss://{host}:{server.port}/0", b"42\n", tmp_path, **env)
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert ": TLS verification failed (check the CA file and the host name)." in line
    assert done.stdout == b""


@pytest.mark.parametrize("script", SCRIPTS)
def test_plain_redis_to_a_tls_port_is_a_clear_error(
    script: str, tls: tuple[RedisServer, str, str], tmp_path: Path
) -> None:
    server, _, _ = tls
    done = run(script, f"redis://localhost:{server.port}/0", b"42\n", tmp_path)
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line == (
        f"Cannot use Redis at redis://localhost:{server.port}/0: the server speaks TLS, not plain Redis. "
        "Hint: use rediss:// for this port (with REDIS_TLS_CA_FILE for a private CA)."
    )
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_tls_to_a_plain_port_is_named_not_taken_for_a_frozen_server(
    script: str, start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = start_redis()
    done = run(script, f"rediss://localhost:{server.port}/0", b"42\n", tmp_path)
    assert done.returncode == 1
    [line] = stderr_lines(done.stderr)
    assert line == (
        f"Cannot use Redis at rediss://localhost:{server.port}/0: the server speaks plain Redis, not TLS. "
        "Hint: use redis:// for this port, or the server's TLS port with rediss://."
    )
    assert "timed out" not in line
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("scheme", ["Rediss", "REDISS"])
def test_an_upper_case_tls_scheme_is_tls(
    script: str, scheme: str, tls: tuple[RedisServer, str, str], tmp_path: Path
) -> None:
    server, ca_file, _ = tls
    url = f"{scheme}://localhost:{server.port}/0"
    done = run(script, url, b"42\n", tmp_path, "--seed-mode", "none", REDIS_TLS_CA_FILE=ca_file)
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done.stderr)[0] == f"Connected to Redis at rediss://localhost:{server.port}/0"
    assert done.stdout.startswith(b"Stored: user-42 = ")


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_ca_file_without_rediss_is_a_configuration_error(
    script: str, tls: tuple[RedisServer, str, str], tmp_path: Path
) -> None:
    _, ca_file, _ = tls
    done = run(script, "redis://localhost:6379/0", b"", tmp_path, REDIS_TLS_CA_FILE=ca_file)
    assert done.returncode == 2
    assert "TLS is only used with a rediss:// URL" in done.stderr.decode()
    missing = run(script, "rediss://localhost:6380/0", b"", tmp_path, REDIS_TLS_CA_FILE=str(tmp_path / "nope.pem"))
    assert missing.returncode == 2
    assert "expected a readable PEM file" in missing.stderr.decode()


# --- TLS on a Redis Cluster and through Sentinel: the same verification, the same one-line refusals ---
# A certificate names 127.0.0.1, the address the cluster's nodes and the Sentinel give out; for the host
# mismatch, a second cluster or group has one that names another host only. ("localhost" would not do:
# redis-py's cluster client turns it into 127.0.0.1 before it connects.)

TLS_CASES = ["right CA", "wrong CA", "host mismatch"]
ANOTHER_HOST = "redis.example.org"


def _tls_cluster(factory: pytest.TempPathFactory, host: str) -> Iterator[tuple[list[RedisServer], TlsFiles]]:
    directory = factory.mktemp("tls-cluster")
    files = make_tls(directory / "tls", (host,))
    nodes = start_cluster(
        directory,
        server_binary=redis_server_binary(),
        cli_binary=redis_cli_binary(),
        tls_arguments=files.server_arguments(),
    )
    yield nodes, files
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[RedisServer], TlsFiles]]:
    """A private 3-master cluster serving TLS only (its bus too), its certificate for 127.0.0.1."""
    yield from _tls_cluster(tmp_path_factory, "127.0.0.1")


@pytest.fixture(scope="module")
def tls_cluster_for_another_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[RedisServer], TlsFiles]]:
    """The same, with a certificate that names another host only."""
    yield from _tls_cluster(tmp_path_factory, ANOTHER_HOST)


def _tls_sentinel(factory: pytest.TempPathFactory, host: str) -> Iterator[tuple[RedisServer, TlsFiles]]:
    directory = factory.mktemp("tls-sentinel")
    files = make_tls(directory / "tls", (host,))
    group = start_sentinel_group(directory, server_binary=redis_server_binary(), tls_arguments=files.server_arguments())
    yield group[2], files
    for server in group:
        server.stop()


@pytest.fixture(scope="module")
def tls_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, TlsFiles]]:
    """A TLS-only master and replica (certificate for 127.0.0.1), and the plain-text Sentinel that names them."""
    yield from _tls_sentinel(tmp_path_factory, "127.0.0.1")


@pytest.fixture(scope="module")
def tls_sentinel_for_another_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, TlsFiles]]:
    """The same, with a certificate that names another host only."""
    yield from _tls_sentinel(tmp_path_factory, ANOTHER_HOST)


def _assert_verified(done: subprocess.CompletedProcess[bytes], connected: str, user_id: int) -> None:
    assert done.returncode == 0, done.stderr
    assert stderr_lines(done.stderr)[0] == connected
    answers = done.stdout.decode().splitlines()
    assert answers[0].startswith(f"Stored: user-{user_id} = ")
    assert answers[1].startswith(f"Found in cache: user-{user_id} = ")
    assert_clean(done.stderr)


def _assert_refused(done: subprocess.CompletedProcess[bytes], line: str) -> None:
    assert done.returncode == 1
    assert stderr_lines(done.stderr) == [line]
    assert done.stdout == b""
    assert_clean(done.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("case", TLS_CASES)
def test_tls_on_a_cluster_verifies_every_node_or_refuses(
    script: str, case: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixture = "tls_cluster_for_another_host" if case == "host mismatch" else "tls_cluster"
    nodes, files = request.getfixturevalue(fixture)
    url = f"rediss://127.0.0.1:{nodes[0].port}/0"
    user_id = 7000 + SCRIPTS.index(script)  # the cluster lives for the module: each twin its own key
    ca_file = files.wrong_ca_file if case == "wrong CA" else files.ca_file
    typed = f"{user_id}\n{user_id}\ndel {user_id}\n".encode()
    done = run(script, url, typed, tmp_path, "--cluster", "--seed-mode", "none", REDIS_TLS_CA_FILE=ca_file)
    if case == "right CA":
        _assert_verified(done, f"Connected to Redis Cluster (3 masters) through {url}", user_id)
    else:
        _assert_refused(
            done,
            f"Cannot use Redis Cluster at {url}: TLS verification failed (check the CA file and the host name). "
            "Hint: set REDIS_TLS_CA_FILE to the CA that signed the server's certificate, "
            "and use the host name the certificate names.",
        )


@pytest.mark.parametrize("script", SCRIPTS)
def test_tls_to_a_plain_cluster_is_named(script: str, cluster: list[RedisServer], tmp_path: Path) -> None:
    url = f"rediss://127.0.0.1:{cluster[0].port}/0"
    done = run(script, url, b"42\n", tmp_path, "--cluster", "--seed-mode", "none")
    _assert_refused(
        done,
        f"Cannot use Redis Cluster at {url}: the server speaks plain Redis, not TLS. "
        "Hint: use redis:// for this port, or the server's TLS port with rediss://.",
    )


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("case", TLS_CASES)
def test_tls_through_sentinel_verifies_the_master_or_refuses(
    script: str, case: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixture = "tls_sentinel_for_another_host" if case == "host mismatch" else "tls_sentinel"
    sentinel, files = request.getfixturevalue(fixture)
    user_id = 8000 + SCRIPTS.index(script)
    ca_file = files.wrong_ca_file if case == "wrong CA" else files.ca_file
    typed = f"{user_id}\n{user_id}\ndel {user_id}\n".encode()
    arguments = ("--sentinel", sentinel.address, "--seed-mode", "none")
    done = run(script, "rediss://sentinel-names-the-host/0", typed, tmp_path, *arguments, REDIS_TLS_CA_FILE=ca_file)
    through = f"through Sentinel {sentinel.address}"
    if case == "right CA":
        master = stderr_lines(done.stderr)[0].split(" at ", 1)[-1].split(",", 1)[0]
        _assert_verified(done, f"Connected to Redis master 'mymaster' at {master}, found {through}", user_id)
    else:
        _assert_refused(
            done,
            f"Cannot use the Redis master 'mymaster' {through}: TLS verification failed (check the CA file and the "
            "host name). Hint: set REDIS_TLS_CA_FILE to the CA that signed the server's certificate, "
            "and use the host name the certificate names.",
        )


@pytest.mark.parametrize("script", SCRIPTS)
def test_plain_redis_to_a_tls_master_through_sentinel_is_named(
    script: str, tls_sentinel: tuple[RedisServer, TlsFiles], tmp_path: Path
) -> None:
    sentinel, _ = tls_sentinel
    done = run(script, "", b"42\n", tmp_path, "--sentinel", sentinel.address, "--seed-mode", "none")
    _assert_refused(
        done,
        f"Cannot use the Redis master 'mymaster' through Sentinel {sentinel.address}: the server speaks TLS, "
        "not plain Redis. Hint: the master the Sentinels name speaks TLS: use rediss:// in REDIS_URL "
        "(with REDIS_TLS_CA_FILE for a private CA).",
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_tls_to_a_plain_master_through_sentinel_is_named_not_taken_for_a_frozen_server(
    script: str, sentinel_group: tuple[RedisServer, RedisServer, RedisServer], tmp_path: Path
) -> None:
    sentinel = sentinel_group[2]
    done = run(script, "rediss://sentinel-names-the-host/0", b"42\n", tmp_path, "--sentinel", sentinel.address)
    _assert_refused(
        done,
        f"Cannot use the Redis master 'mymaster' through Sentinel {sentinel.address}: the server speaks plain "
        "Redis, not TLS. Hint: the master the Sentinels name speaks plain Redis: use redis:// in REDIS_URL.",
    )
