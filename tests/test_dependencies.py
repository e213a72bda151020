"""The lock files stay the truth: hashed, generated from the ranges, in step with each other, and run by CI.

Offline checks of what `nox -s lock` wrote (noxfile.py); `nox -s latest`, which .ci/run runs after the
locked suite, is what tries the newest versions the ranges allow.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import noxfile
from tests.conftest import PROJECT_ROOT

LOCKS = [(PROJECT_ROOT / source, PROJECT_ROOT / target) for source, target in noxfile.LOCKS]


def ranges(path: Path) -> list[Requirement]:
    """The requirements a .in file asks for, following its `-r` includes."""
    found: list[Requirement] = []
    for raw in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if line.startswith("-r "):
            found += ranges(path.parent / line.removeprefix("-r ").strip())
        elif line:
            found.append(Requirement(line))
    return found


@pytest.mark.parametrize(("source", "lock"), LOCKS, ids=[lock.name for _, lock in LOCKS])
def test_every_locked_version_is_exact_and_hash_checked(source: Path, lock: Path) -> None:
    text = lock.read_text()
    assert "nox -s lock" in text.splitlines()[1]  # the header names the command that regenerates it
    entries = re.split(r"\n(?=\S)", text)
    pins = [entry for entry in entries if not entry.startswith("#")]
    assert pins, lock
    for entry in pins:
        requirement = Requirement(entry.splitlines()[0].rstrip(" \\"))
        assert str(requirement.specifier).startswith("=="), entry.splitlines()[0]
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{requirement.name} has no hash"


@pytest.mark.parametrize(("source", "lock"), LOCKS, ids=[lock.name for _, lock in LOCKS])
def test_the_lock_satisfies_every_range_it_was_made_from(source: Path, lock: Path) -> None:
    """Edit a range without `nox -s lock` and this fails: the lock would not be what the ranges say."""
    locked = noxfile.locked_versions(lock)
    for requirement in ranges(source):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = locked.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in {lock.name}: run nox -s lock"
        assert SpecifierSet(str(requirement.specifier)).contains(version, prereleases=True), (
            f"{lock.name} has {requirement.name} {version}, outside {requirement.specifier}: run nox -s lock"
        )


def test_the_dev_lock_runs_the_tests_on_exactly_the_versions_users_install() -> None:
    runtime = noxfile.locked_versions(PROJECT_ROOT / "requirements.txt")
    development = noxfile.locked_versions(PROJECT_ROOT / "requirements-dev.txt")
    assert {name: development.get(name) for name in runtime} == runtime


def test_the_supported_pythons_agree_everywhere() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lowest = noxfile.SUPPORTED_PYTHONS[0]
    assert project["requires-python"] == f">={lowest}"
    classified = [line.rsplit(" :: ", 1)[1] for line in project["classifiers"] if "Python :: 3." in line]
    assert classified == list(noxfile.SUPPORTED_PYTHONS)
    readme = (PROJECT_ROOT / "README.md").read_text()
    *earlier, last = noxfile.SUPPORTED_PYTHONS
    assert f"Python {', '.join(earlier)} or {last}." in readme


def test_ci_tries_the_newest_allowed_versions_after_the_locked_run() -> None:
    lines = [line for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    locked_run = next(index for index, line in enumerate(lines) if line.endswith("&& pytest"))
    assert "pip install -q -r requirements-dev.txt" in lines[locked_run]
    assert "nox -s latest" in lines[locked_run + 1 :]


def test_the_newest_run_names_each_version_the_lock_does_not_have(tmp_path: Path) -> None:
    lock = tmp_path / "requirements-dev.txt"
    lock.write_text(
        "# header\n#    nox -s lock\ndogpile-cache==1.5.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
        "redis==8.2.0 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via -r requirements.in\n"
        "colorama==0.4.6 ; sys_platform == 'nothing-here' \\\n    --hash=sha256:" + "2" * 64 + "\n"
    )
    frozen = "dogpile.cache==1.5.0\nredis==9.0.1\nnew_package==1.0\ncolorama==0.4.6\n"
    assert noxfile.differences_from_lock(frozen, lock) == [
        "colorama 0.4.6 (locked not at all)",
        "new_package 1.0 (locked not at all)",
        "redis 9.0.1 (locked 8.2.0)",
    ]
