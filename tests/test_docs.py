"""The documents a newcomer reads stay true: README, .env.example, docker-compose.yml and .ci/run."""

from __future__ import annotations

import re

import yaml

from config.settings import build_parser, setting_names
from tests.conftest import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_test_command_readme_gives() -> None:
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    command = next(line for line in ci_lines if line.endswith("&& pytest"))
    assert f"\n{command}\n" in README


def test_readme_and_env_example_document_every_setting() -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    for name in setting_names():
        assert f"`{name}`" in README, name
        assert re.search(rf"^# {name}=", example, re.MULTILINE), name


def test_readme_documents_every_flag() -> None:
    for twin in ("sync", "async"):
        for action in build_parser(twin)._actions:  # type: ignore[arg-type]
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}`" in README, flag


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
