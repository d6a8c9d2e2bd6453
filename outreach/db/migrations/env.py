"""Alembic's entry point: runs the migrations on the engine `outreach.db.engine.upgrade` hands over."""

from __future__ import annotations

from alembic import context

from outreach.db.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    # Batch mode lets SQLite alter tables the only way it can: copy and rename.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
