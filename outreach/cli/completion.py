"""What the shell offers on TAB: the workspace's campaign and template names, found without loading the services.

The shell runs the whole `outreach` command on every TAB, so completion reads only what it must: the template
folders with pathlib, and the campaign names straight from the SQLite file with the stdlib's sqlite3, read-only.
Whatever goes wrong (no workspace, a locked or damaged database) it offers nothing and says nothing: what it would
print would land in the middle of the command line being typed.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import typer

# Seconds to wait for a database another process has locked: a TAB that hangs is worse than one that offers nothing.
_TIMEOUT = 0.5


def complete_campaign(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The campaigns whose name starts with what was typed, each with its status (zsh and fish show it).

    Only a SQLite database is read. On PostgreSQL nothing is offered: connecting to a server (and loading SQLAlchemy
    and its driver to do it) on every TAB could hang, and would make every completion slow.
    """
    from outreach.config import find_database_url  # here: the commands' modules import this one to load at once

    try:
        root = _workspace(ctx)
        path = _sqlite_file(find_database_url(root)) if root else None
        if path is None or not path.is_file():
            return []
        with closing(_read_only(path)) as connection:
            rows = connection.execute("SELECT name, status FROM campaigns ORDER BY name").fetchall()
    except Exception:  # completion never shows an error: it offers nothing instead
        return []
    return [(str(name), str(status)) for name, status in rows if str(name).startswith(incomplete)]


def complete_template(ctx: typer.Context, incomplete: str) -> list[str]:
    """The workspace's templates whose name starts with what was typed (found with pathlib alone)."""
    from outreach.rendering.folders import template_names

    try:
        root = _workspace(ctx)
        names = template_names(root / "templates") if root else []  # Workspace.templates
    except OSError:
        return []
    return [name for name in names if name.startswith(incomplete)]


def _workspace(ctx: typer.Context) -> Path | None:
    """The workspace the command line names (`--workspace`, or the current folder), if it is one (it has `.env`).

    The root's callback does not run during completion, so the option is read from what was parsed."""
    from outreach.config import ENV_FILE

    given = ctx.find_root().params.get("workspace")
    root = (given if isinstance(given, Path) else Path(".")).resolve()
    return root if (root / ENV_FILE).is_file() else None


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (`sqlite:///PATH`, as config.database_url makes it absolute); None for any
    other database, or one in memory."""
    scheme, separator, rest = url.partition(":///")
    if not separator or scheme.split("+")[0] != "sqlite":
        return None
    database = rest.partition("?")[0]
    return Path(database) if database and database != ":memory:" else None


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to the database, nor leave a file beside it.

    A database in WAL mode with no `-wal` file beside it holds every commit in its main file (the last connection to
    close checkpoints and removes the `-wal`): `immutable=1` reads that file without the shared-memory file a
    read-only connection would otherwise create. While a `-wal` is there, some process is at work, and `mode=ro`
    reads through it.
    """
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    return sqlite3.connect(f"{path.as_uri()}?{mode}", uri=True, timeout=_TIMEOUT)
