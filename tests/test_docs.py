"""The documents a newcomer reads stay true: README, docs/, .env.example, docker-compose.yml and .ci/run."""

from __future__ import annotations

import contextlib
import fnmatch
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import yaml

from cli.arguments import build_parser
from config.settings import setting_names
from labs.private_redis import free_port
from tests.conftest import PROJECT_ROOT
from tests.servers import redis_cli_binary, redis_server_binary

README = (PROJECT_ROOT / "README.md").read_text()
# README and what it points to: docs/*.md, the rest of the documentation
DOCS = "\n".join([README, *(path.read_text() for path in sorted((PROJECT_ROOT / "docs").glob("*.md")))])


def test_ci_runs_exactly_the_test_command_readme_gives() -> None:
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if line.endswith("&& pytest"))
    assert f"\n{command}\n" in README


def test_readme_and_env_example_document_every_setting() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    for name in setting_names():
        assert f"`{name}`" in DOCS, name
        assert re.search(rf"^# {name}=", example, re.MULTILINE), name


def test_readme_documents_every_flag() -> None:
    for twin in ("sync", "async"):
        for action in build_parser(twin)._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}`" in DOCS, flag


def test_env_example_holds_no_real_secret() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    assert "REDIS_PASSWORD=change-me" in example
    assert not re.search(r"^REDIS_PASSWORD=", example, re.MULTILINE)  # commented out, never active
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def test_docker_compose_runs_redis_with_a_health_check_on_loopback() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    redis_service = compose["services"]["redis"]
    assert redis_service["image"].startswith("redis:")
    assert "127.0.0.1:6379:6379" in redis_service["ports"]
    assert "ping" in redis_service["healthcheck"]["test"]
    assert "--maxmemory-policy" in redis_service["command"]
    app = compose["services"]["app"]
    assert app["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert app["profiles"] == ["app"]


COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_docker_compose_runs_postgres_on_loopback_with_a_health_check_and_a_kept_volume() -> None:
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert postgres["ports"] == ["127.0.0.1:5432:5432"]  # loopback only
    assert "pg_isready" in postgres["healthcheck"]["test"]
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert volume in COMPOSE["volumes"]  # a named volume: the users survive `down` and `up`
    assert mount == "/var/lib/postgresql/data"
    user, password, database = (postgres["environment"][f"POSTGRES_{name}"] for name in ("USER", "PASSWORD", "DB"))
    assert f"DATABASE_URL=postgresql://{user}:{password}@localhost:5432/{database} python main.py" in DOCS
    assert "DATABASE_URL" not in COMPOSE["services"]["app"]["environment"]  # the app stays on SQLite by default


def test_git_ignores_the_sqlite_database_the_demo_creates() -> None:
    patterns = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    for name in ("users.db", "users.db-wal", "users.db-shm"):
        assert any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns if not pattern.startswith("#")), name


def test_the_cluster_and_sentinel_profiles_are_opt_in_and_loopback_only() -> None:
    services = COMPOSE["services"]
    cluster = [name for name, service in services.items() if service.get("profiles") == ["cluster"]]
    sentinel = [name for name, service in services.items() if service.get("profiles") == ["sentinel"]]
    assert sorted(cluster) == ["cluster-init", "cluster-node-1", "cluster-node-2", "cluster-node-3"]
    assert sorted(sentinel) == ["sentinel", "sentinel-master", "sentinel-replica"]
    for name in cluster + sentinel:
        assert services[name]["network_mode"] == "host"
        assert "--bind 127.0.0.1" in services[name]["command"][2] or name == "cluster-init"
    assert "profiles" not in services["redis"]
    for port in ("7001", "7002", "7003"):
        assert f"127.0.0.1:{port}" in services["cluster-init"]["command"][2]
    assert "--cluster-require-full-coverage no" in services["cluster-node-1"]["command"][2]
    assert "sentinel monitor mymaster 127.0.0.1 6390 1" in services["sentinel"]["command"][2]
    assert "--replicaof 127.0.0.1 6390" in services["sentinel-replica"]["command"][2]


def _run_profile(names: list[str], ports: dict[str, str], directory: Path) -> list[subprocess.Popen[bytes]]:
    """Run the profile's own shell commands here, on free ports instead of the documented ones."""
    processes = []
    for name in names:
        command = COMPOSE["services"][name]["command"][2]
        for documented, free in ports.items():
            command = command.replace(documented, free)
        processes.append(
            subprocess.Popen(["sh", "-c", command], cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    return processes


def _ports(*documented: str) -> dict[str, str]:
    chosen: dict[str, str] = {}
    while len(chosen) < len(documented):
        port = free_port()
        if port + 10000 < 65536 and str(port) not in chosen.values():  # a cluster node's bus is port + 10000
            chosen[documented[len(chosen)]] = str(port)
    return chosen


def _ask(port: str, question: Callable[[redis.Redis], bool]) -> bool:
    with redis.Redis(port=int(port), socket_timeout=1) as client:
        return question(client)


def _wait(condition: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError, IndexError):
            if condition():
                return True
        time.sleep(0.1)  # polling servers that are starting
    return False


@pytest.mark.integration
def test_the_cluster_profiles_commands_really_make_a_cluster(tmp_path: Path) -> None:
    redis_server_binary()
    redis_cli_binary()  # cluster-init runs it through `sh -c`: missing, it would only show as exit 127
    ports = _ports("7001", "7002", "7003")
    nodes = _run_profile(["cluster-node-1", "cluster-node-2", "cluster-node-3"], ports, tmp_path)
    try:
        assert _wait(lambda: all(_ask(port, lambda client: bool(client.ping())) for port in ports.values()))
        [init] = _run_profile(["cluster-init"], ports, tmp_path)
        assert init.wait(timeout=60) == 0
        client = redis.Redis(port=int(ports["7001"]))
        assert _wait(lambda: b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"))
        client.close()
    finally:
        for process in nodes:
            process.terminate()
            process.wait()


@pytest.mark.integration
def test_the_sentinel_profiles_commands_really_watch_the_master(tmp_path: Path) -> None:
    redis_server_binary()
    ports = _ports("6390", "6391", "26379")
    processes = _run_profile(["sentinel-master", "sentinel-replica", "sentinel"], ports, tmp_path)
    try:
        sentinel = redis.Redis(port=int(ports["26379"]))
        assert _wait(lambda: sentinel.sentinel_master("mymaster")["port"] == int(ports["6390"]))
        assert _wait(
            lambda: _ask(ports["6391"], lambda client: client.info("replication")["master_link_status"] == "up")
        )
        sentinel.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait()


def test_readme_is_read_in_ten_minutes_and_every_link_in_the_docs_leads_somewhere() -> None:
    assert len(README.splitlines()) <= 200  # the lesson; operations, failures, security, scale and speed are in docs/
    for document in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (document.parent / target).exists(), f"{document.name} links to {target}, which is missing"


def test_readme_shows_the_lookup_as_it_is_and_it_fits_one_screen() -> None:
    """README's copy of the lookup's body is the code itself, and the method a reader is pointed at is short."""
    import inspect
    import textwrap

    from simulator._async.cache_aside import AsyncCacheAside

    source = textwrap.dedent(inspect.getsource(AsyncCacheAside.lookup))
    body = source.split('"""', 2)[2].strip("\n")  # after the docstring
    shown = README.split("The demo's is `AsyncCacheAside.lookup`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert shown.strip("\n") == textwrap.dedent(body)
    assert len(source.splitlines()) <= 30
