"""Dev tooling: the two commands that keep the lock files honest. Run them from README's test venv.

- `nox -s latest`: installs the newest versions the ranges of requirements-dev.in allow into a throwaway
  venv (.nox/latest), says which differ from the lock, and runs the whole suite on them. .ci/run runs it
  after the locked run, so an upstream release that breaks the demo fails our CI before a user who
  regenerates the lock meets it.
- `nox -s lock`: regenerates requirements.txt and requirements-dev.txt from the .in files with uv (one
  universal lock for every supported Python and platform, with the hash of every file), checks that each
  supported Python on Linux, macOS and Windows finds a wheel of every locked version, then installs the
  new lock into a fresh venv and runs the suite. This is how versions are upgraded: commit the two files
  only if it passes. `nox -s lock -- --upgrade-package redis` moves one package and keeps the rest.

Arguments after `--` go to pytest for `latest`, and to `uv pip compile` for `lock`.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["latest"]

ROOT = Path(__file__).parent
# The Pythons the demo supports (pyproject.toml's requires-python and README say the same; a test checks).
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# Where each lock must install from wheels alone. The demo's: Linux (x86-64, ARM), macOS (Apple silicon,
# Intel), Windows. The tests' the same but Intel macOS: cryptography (the TLS tests' CA) ships no wheel for
# it since 51.0, so there pip would need a Rust toolchain to build it.
PLATFORMS = {
    "requirements.txt": (
        "x86_64-manylinux_2_28",
        "aarch64-manylinux_2_28",
        "aarch64-apple-darwin",
        "x86_64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ),
    "requirements-dev.txt": (
        "x86_64-manylinux_2_28",
        "aarch64-manylinux_2_28",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ),
}
# Each lock and the ranges it is generated from; the runtime lock first: the dev lock is held to its versions.
LOCKS = (("requirements.in", "requirements.txt"), ("requirements-dev.in", "requirements-dev.txt"))


def _uv(session: nox.Session, *arguments: str) -> None:
    # uv from the venv nox runs in (requirements-dev.txt brings both), so the lock names the uv that made it.
    session.run(sys.executable, "-m", "uv", *arguments, external=True)


def locked_versions(lock: Path) -> dict[str, str]:
    """Package name -> version, for the lock's lines whose markers hold on this Python."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0] in " #-":
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def differences_from_lock(frozen: str, lock: Path) -> list[str]:
    """Each package of `pip freeze`'s output whose version is not the lock's, as "name version (locked v)"."""
    locked = locked_versions(lock)
    installed = (line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    return [
        f"{name} {version} (locked {locked.get(canonicalize_name(name), 'not at all')})"
        for name, version in sorted(installed)
        if locked.get(canonicalize_name(name)) != version
    ]


@nox.session
def latest(session: nox.Session) -> None:
    """The suite on the newest versions the ranges allow (a throwaway venv; the lock is not touched)."""
    session.install("--upgrade", "-r", "requirements-dev.in")
    frozen = str(session.run("python", "-m", "pip", "freeze", silent=True))  # with silent=True, run returns the output
    newer = differences_from_lock(frozen, ROOT / "requirements-dev.txt")
    session.log("Newest allowed versions that differ from the lock: " + (", ".join(newer) if newer else "none"))
    session.run("pytest", *session.posargs)


@nox.session
def lock(session: nox.Session) -> None:
    """Regenerate both lock files (newest versions in range), check every supported platform, run the suite."""
    upgrade = list(session.posargs) or ["--upgrade"]
    for source, target in LOCKS:
        constraints = ["-c", "requirements.txt"] if target != "requirements.txt" else []
        _uv(
            session,
            "pip",
            "compile",
            source,
            *constraints,
            "--universal",
            "--python-version",
            SUPPORTED_PYTHONS[0],
            "--generate-hashes",
            "--custom-compile-command",
            "nox -s lock",
            "--quiet",
            "--output-file",
            target,
            *upgrade,
        )
    for lock_file, platforms in PLATFORMS.items():
        for python, platform in itertools.product(SUPPORTED_PYTHONS, platforms):
            session.log(f"{lock_file}: wheels for Python {python} on {platform}")
            _uv(
                session,
                "pip",
                "install",
                "--dry-run",
                "--quiet",
                "--target",
                str(Path(session.create_tmp()) / "target"),
                "--python-version",
                python,
                "--python-platform",
                platform,
                "--only-binary",
                ":all:",
                "-r",
                lock_file,
            )
    session.install("-r", "requirements-dev.txt")
    session.run("pytest")
