"""Alembic's entry point: runs the migrations on the engine `outreach.db.engine.upgrade` hands over."""

from __future__ import annotations

from alembic import context

from outreach.db.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode changes a SQLite table by copying it and dropping the old one; with foreign keys on, the drop
        # runs the ON DELETE actions of the rows that refer to it (sqlite.org/lang_droptable.html): CASCADE would
        # delete them, SET NULL forget what they point at. So they are off while the tables change, as the steps of
        # sqlite.org/lang_altertable.html#otheralter say, and checked before the change commits. The pragma does
        # nothing inside a transaction: it comes before the migrations' one.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        # Batch mode lets SQLite alter tables the only way it can: copy and rename.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"the migrations would break foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            connection.rollback()  # (nothing is left to roll back; the pragma needs no transaction open)
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
