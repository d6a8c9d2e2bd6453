"""Workspaces and settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from sqlalchemy import inspect

from outreach.config import KNOWN, load_settings
from outreach.db.engine import SCHEMA_HEAD, head_revision, make_engine, migrate, upgrade
from outreach.db.models import Base
from outreach.errors import ConfigError, WorkspaceError
from outreach.scrubbing import redact_url
from outreach.workspace import init_workspace, open_workspace


def test_init_twice_never_overwrites(tmp_path: Path) -> None:
    first = init_workspace(tmp_path / "ws", {})
    assert ".env" in first.created and "contacts/signatories.csv" in first.created
    assert "templates/appeal/fr/body.txt" in first.created
    (tmp_path / "ws" / ".env").write_text("OUTREACH_DATABASE_URL=\n# mine\n")
    (tmp_path / "ws" / "contacts" / "prospects.csv").write_text("email\nme@example.org\n")
    second = init_workspace(tmp_path / "ws", {})
    assert second.created == [] and ".env" in second.kept
    assert "# mine" in (tmp_path / "ws" / ".env").read_text()
    assert (tmp_path / "ws" / "contacts" / "prospects.csv").read_text() == "email\nme@example.org\n"
    assert (tmp_path / "ws" / "outreach.db").is_file()


def test_a_folder_without_env_is_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not an outreach workspace"):
        open_workspace(tmp_path, {})


def test_the_environment_wins_over_env_and_relative_sqlite_paths_are_in_the_workspace(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OUTREACH_DATABASE_URL=sqlite:///data/campaign.db\n")
    assert load_settings(tmp_path, {}).database_url == f"sqlite:///{tmp_path.resolve()}/data/campaign.db"
    env = {"OUTREACH_DATABASE_URL": "postgresql+psycopg://u:secret@db/x"}
    settings = load_settings(tmp_path, env)
    assert settings.database_url == "postgresql+psycopg://u:secret@db/x"
    assert "secret" not in repr(settings)


def test_a_misspelt_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OUTREACH_DATABASE_ULR=sqlite:///x.db\n")
    with pytest.raises(ConfigError, match=r"unknown setting OUTREACH_DATABASE_ULR.*did you mean OUTREACH_DATABASE_URL"):
        load_settings(tmp_path, {})


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql+psycopg://user:pw@host/db") == "postgresql+psycopg://user:***@host/db"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_a_database_behind_the_code_is_refused_until_upgraded(tmp_path: Path) -> None:
    init_workspace(tmp_path, {})
    (tmp_path / "outreach.db").unlink()
    workspace = open_workspace(tmp_path, {})
    with pytest.raises(WorkspaceError, match=r"no tables yet.*outreach db upgrade"):
        _ = workspace.sessions
    workspace.close()


def test_the_schema_head_every_command_checks_is_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_HEAD, "a new migration must update SCHEMA_HEAD in outreach/db/engine.py"


def test_env_example_documents_every_setting_with_its_default() -> None:
    documented = dotenv_values(Path(__file__).parent.parent / ".env.example")
    assert set(documented) == set(KNOWN)
    assert {key: value or "" for key, value in documented.items()} == KNOWN


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("OUTREACH_SMTP_CONNECTIONS=0", "OUTREACH_SMTP_CONNECTIONS is '0'"),
        ("OUTREACH_SMTP_CONNECTIONS=many", "OUTREACH_SMTP_CONNECTIONS is 'many'"),
        ("OUTREACH_PUBLIC_URL=http://appeal.example.org/u", "OUTREACH_PUBLIC_URL is 'http://"),
        ("OUTREACH_SMTP_SECURITY=ssl", "OUTREACH_SMTP_SECURITY is 'ssl'"),
        ("OUTREACH_RETURN_PATH=bounces+{token}+{token}@example.org", "OUTREACH_RETURN_PATH is 'bounces+{token}+"),
        ("OUTREACH_RETURN_PATH=<bounces@example.org>", "OUTREACH_RETURN_PATH is '<bounces"),
        ("OUTREACH_SOFT_BOUNCE_LIMIT=0", "OUTREACH_SOFT_BOUNCE_LIMIT is '0'"),
        ("OUTREACH_IMAP_SECURITY=ssl", "OUTREACH_IMAP_SECURITY is 'ssl'"),
    ],
)
def test_a_sending_setting_that_cannot_work_is_named(tmp_path: Path, line: str, named: str) -> None:
    (tmp_path / ".env").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(tmp_path, {})


def test_the_migrations_build_exactly_the_tables_the_models_describe(empty_databases: Callable[[], str]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(empty_databases())
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == [], "models.py and the migrations disagree: write a migration (alembic autogenerate)"


def _schema(url: str) -> dict[str, dict[str, Any]]:
    """Everything the database says of its tables, in an order that does not depend on how they were built:
    columns with their types, nullability and server defaults, keys, indexes (partial ones with their condition),
    unique and CHECK constraints."""
    engine = make_engine(url)
    with engine.connect() as connection:
        found = inspect(connection)
        schema = {
            table: {
                "columns": {column["name"]: (str(column["type"]), column["nullable"], column.get("default"))
                            for column in found.get_columns(table)},
                "primary key": found.get_pk_constraint(table)["constrained_columns"],
                "foreign keys": sorted(
                    (key["constrained_columns"], key["referred_table"], key["referred_columns"],
                     sorted((key.get("options") or {}).items())) for key in found.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (index["name"], index["column_names"], bool(index["unique"]),
                     sorted((option, str(value)) for option, value in (index.get("dialect_options") or {}).items()))
                    for index in found.get_indexes(table)
                ),
                "unique": sorted((unique["name"], unique["column_names"])
                                 for unique in found.get_unique_constraints(table)),
                "checks": sorted((check["name"], " ".join(check["sqltext"].split()))
                                 for check in found.get_check_constraints(table)),
            }
            for table in found.get_table_names()
        }  # fmt: skip
    engine.dispose()
    return schema


def test_a_new_database_is_made_in_one_step_with_the_schema_the_migrations_build(
    empty_databases: Callable[[], str],
) -> None:
    migrated, made = empty_databases(), empty_databases()
    engine = make_engine(migrated)
    migrate(engine)
    engine.dispose()
    engine = make_engine(made)
    assert upgrade(engine) == (None, SCHEMA_HEAD)
    assert upgrade(engine) == (SCHEMA_HEAD, SCHEMA_HEAD)  # at the newest revision already: nothing to do
    engine.dispose()
    built, expected = _schema(made), _schema(migrated)
    assert set(built) == set(expected) and len(built) > 10
    for table, description in expected.items():
        assert built[table] == description, f"table {table} differs from what the migrations build"
