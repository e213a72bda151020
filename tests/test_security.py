"""Security: credentials never leak, least privilege works, TLS verifies or refuses, never downgrades.

Each test starts its own redis-server (a password, an ACL user, or TLS with a throwaway CA
made here with `cryptography`) and runs the real scripts against it.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import PROJECT_ROOT
from tests.servers import RedisServer
from tests.test_e2e import assert_clean, script_env, stderr_lines

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


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, pem: bytes) -> str:
    path.write_bytes(pem)
    return str(path)


def _certificate(
    subject: str,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    ca: bool,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if hosts:
        names = [
            x509.IPAddress(ipaddress.ip_address(host)) if host[0].isdigit() else x509.DNSName(host) for host in hosts
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def tls(tmp_path: Path, start_redis: Callable[..., RedisServer]) -> tuple[RedisServer, str, str]:
    """A TLS-only redis-server whose certificate names `localhost`; the right CA file and a wrong one."""
    ca_key, other_key, server_key = _key(), _key(), _key()
    ca = _certificate("test CA", None, ca_key, ca_key, ca=True)
    other_ca = _certificate("another CA", None, other_key, other_key, ca=True)
    certificate = _certificate("localhost", ca.subject, ca_key, server_key, ca=False, hosts=("localhost",))
    pem = serialization.Encoding.PEM
    ca_file = _write(tmp_path / "ca.pem", ca.public_bytes(pem))
    wrong_ca_file = _write(tmp_path / "other-ca.pem", other_ca.public_bytes(pem))
    server = start_redis(
        "--tls-cert-file",
        _write(tmp_path / "server.pem", certificate.public_bytes(pem)),
        "--tls-key-file",
        _write(
            tmp_path / "server.key",
            server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
        "--tls-ca-cert-file",
        ca_file,
        "--tls-auth-clients",
        "no",
        tls=True,
    )
    return server, ca_file, wrong_ca_file


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
