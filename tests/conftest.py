"""Real parts for tests: a SQLite file per test, and this machine's PostgreSQL with a database per run and worker.

The suite runs on every core (pytest-xdist, `-n auto` in pyproject.toml); each worker is a process of its own with
its own PostgreSQL database, dovecot and free ports, so workers never share a server's state.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from outreach import parallel
from outreach.db.engine import make_engine, make_session_factory, upgrade
from outreach.db.models import Base
from outreach.workspace import init_workspace, read_secret
from tests.cli_server import ForkServer
from tests.imap_server import Dovecot, dovecot_binary, start_dovecot

RUNS = ForkServer()  # this test process's runs of `outreach`
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = os.environ.get("OUTREACH_TEST_PG_ADMIN", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres")


def _unavailable(reason: str, tests: str = "PostgreSQL") -> None:
    """Skip on a user's machine; fail in CI, where the server must be there (.ci/run starts PostgreSQL and
    installs dovecot)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the {tests} tests)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    yield
    RUNS.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test worker's own on the local PostgreSQL (named by its process), dropped at the end."""
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError as error:
        _unavailable(f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}: {error}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[dev]')")
    name = f"outreach_test_{os.getpid()}"
    url = _new_database(name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs twice: on a fresh SQLite file and on a clean PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outreach.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    engine = make_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A maker of new, empty databases: SQLite files, or PostgreSQL databases of this worker dropped at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"outreach_empty_{os.getpid()}_{len(made)}"
        made.append(name)
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        request.getfixturevalue("postgres_url")  # skips, or fails in CI, without a server
        return _new_database(name)

    yield make
    for name in made if request.param == "postgresql" else ():
        _drop_database(name)


def _new_database(name: str) -> str:
    """Make an empty database on this machine's PostgreSQL (dropping one of that name first); return its URL."""
    _admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(name: str) -> None:
    """Drop a database of this machine's PostgreSQL, and end the connections still open to it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(*statements: str) -> None:
    """Run statements on this machine's PostgreSQL as its administrator, one connection for all."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for statement in statements:
            connection.execute(text(statement))
    admin.dispose()


@dataclass
class Env:
    """A workspace on disk with its database, and a way to run the real `outreach` command in it."""

    root: Path
    url: str
    sessions: sessionmaker[Session]

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
        env["OUTREACH_DATABASE_URL"] = self.url
        env["COLUMNS"] = "200"
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `python -m outreach ARGS` in the workspace, as a user would: a process of its own (forked from one
        that has imported the libraries, tests/cli_server.py)."""
        result = RUNS.run(args, cwd=self.root, env=self.environ(), text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"outreach {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def write(self, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        """Write a file into the workspace and return its path."""
        path = self.root / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    """A fresh workspace on each database."""
    root = tmp_path / "ws"
    init_workspace(root, {"OUTREACH_DATABASE_URL": database_url})
    engine = make_engine(database_url)
    yield Env(root, database_url, make_session_factory(engine, secret=read_secret(root)))
    engine.dispose()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """This machine's dovecot, started on 127.0.0.1 and free ports from a temporary folder, with the user
    `campaign` (password `secret`); stopped, with every process it started, at the end of the run."""
    binary = dovecot_binary()
    if binary is None:
        _unavailable("dovecot is not installed (apt-get install dovecot-imapd)", "IMAP")
        return
    try:
        server = start_dovecot(binary)
    except (OSError, RuntimeError) as error:
        _unavailable(f"dovecot does not start: {error}", "IMAP")
        return
    yield server
    server.stop()


def on_a_terminal(env: Env, *args: str, stream: str = "stdout") -> bytes:
    """What `outreach ARGS` writes to its stdout (or its stderr) when that is a terminal (a pseudo-terminal, which
    is its stdin too), progress bars included; the other stream is dropped."""
    leader, follower = pty.openpty()
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: follower}
    with RUNS.popen(args, cwd=env.root, env=env.environ(), stdin=follower, **streams) as process:
        os.close(follower)  # (the child holds its own copy: reading ends when it exits)
        written = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            written += chunk
        os.close(leader)
        assert process.wait(timeout=120) == 0, written.decode(errors="replace")
    return written


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Letters made on both cores even for a few contacts (outreach/parallel.py): chunks of 8, and a worker forked
    as on a machine with two cores."""
    if sys.platform != "linux":
        pytest.skip("the worker is forked on Linux only")
    monkeypatch.setattr(parallel, "CHUNK", 8)
    monkeypatch.setattr(parallel, "second_core", lambda: True)
