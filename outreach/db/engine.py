"""Engines and session factories for SQLite (the default) and PostgreSQL, and the schema's migrations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from outreach.errors import ConfigError, WorkspaceError
from outreach.scrubbing import redact_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration. Every command checks the database against it, so it is a constant rather than read from
# the scripts: importing Alembic cost every command 0.18 s. A test checks it against the scripts.
SCHEMA_HEAD = "0010"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while a sender writes; NORMAL keeps every commit across a process crash
    # (only a power loss can take the last one); foreign keys are off in SQLite unless asked for.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Freed space is overwritten with zeros (many builds, Debian's among them, default to this; python.org's and
    # macOS's do not): `contacts forget` must leave no copy of a person in the file, also none left behind by an
    # earlier update that moved their row within its page, or by a letter rewritten since.
    cursor.execute("PRAGMA secure_delete=ON")
    # 16 MB of page cache (the default is 2 MB): a large import writes to its indexes at random places.
    cursor.execute("PRAGMA cache_size=-16000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the engine for a database URL, with SQLite's pragmas set on every connection."""
    if url.startswith("postgresql") and "+" not in url.split("://", 1)[0]:
        url = url.replace("postgresql", "postgresql+psycopg", 1)
    try:
        engine = create_engine(url)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"the driver for {redact_url(url)} is not installed ({error.name})",
            hint="pip install 'outreach[postgres]'",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


# The key of Session.info under which a session carries the workspace's secret (see make_session_factory).
_SECRET = "outreach.secret"


def make_session_factory(engine: Engine, *, secret: bytes | None = None) -> sessionmaker[Session]:
    """Return the factory services open their short transactions with.

    `secret` is the workspace's secret (its `secret.key`), which keys the hashes of the suppression list. It rides
    in each session's `info` rather than in the arguments of every service that may suppress or look up an
    address (an import, a poll of the inbox, a send that meets a bounce, `contacts forget`): they all take the
    session factory already, and the secret belongs to the same workspace as the database it opens.
    """
    return sessionmaker(engine, expire_on_commit=False, info={_SECRET: _Hidden(secret)} if secret else None)


class _Hidden:
    """A secret that never shows: a session factory's repr names its `info`, and a traceback may print it."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


def workspace_secret(session: Session) -> bytes:
    """The workspace's secret, carried by the session (make_session_factory); one made without it cannot hash."""
    secret = session.info.get(_SECRET)
    if not isinstance(secret, _Hidden):
        raise WorkspaceError(
            "no workspace secret to hash addresses with",
            hint="open the database through the workspace (Workspace.sessions), which reads secret.key",
        )
    return secret.value


def _alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # only where the schema changes: see SCHEMA_HEAD

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest schema; return the revisions before and after.

    A database already there is left alone without loading Alembic. An empty one gets the tables as the models
    describe them, and is marked as at the newest revision: Alembic's own recipe for a new database ("building an up
    to date database from scratch"), one step instead of every migration in turn (0.25 s on SQLite). Any other runs
    the migrations it has not had. tests/test_workspace.py checks that both ways build the same schema.
    """
    before = current_revision(engine)
    if before == SCHEMA_HEAD:
        return before, before
    if before is None and _is_empty(engine):
        return before, _create_schema(engine)
    migrate(engine)
    return before, head_revision()


def migrate(engine: Engine) -> None:
    """Apply, one by one, every migration the database has not had."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not inspect(connection).get_table_names()


def _create_schema(engine: Engine) -> str:
    """Create every table of the models and record the newest revision, in one transaction; return it."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from outreach.db.models import Base

    scripts = ScriptDirectory.from_config(_alembic_config())
    with engine.begin() as connection:
        Base.metadata.create_all(connection)
        MigrationContext.configure(connection).stamp(scripts, "head")
    head = scripts.get_current_head()
    assert head is not None
    return head


def head_revision() -> str:
    """Return the newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if revision is None else str(revision)
    except OperationalError as error:
        raise WorkspaceError(
            f"cannot open the database {redact_url(str(engine.url))}: {error.orig}",
            hint="is the server running, and is OUTREACH_DATABASE_URL right?",
        ) from None


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or older than the code."""
    revision = current_revision(engine)
    if revision is None:
        raise WorkspaceError(
            f"the database {redact_url(str(engine.url))} has no tables yet", hint="run `outreach db upgrade`"
        )
    if revision != SCHEMA_HEAD:
        raise WorkspaceError(
            f"the database is at revision {revision}, the code expects {SCHEMA_HEAD}",
            hint="run `outreach db upgrade`",
        )
