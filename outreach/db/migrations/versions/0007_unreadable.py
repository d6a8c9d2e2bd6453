"""unreadable: a response kind for an inbound message that could not be read or recorded

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

A message that breaks reading or recording (a NUL the database refuses, a bug in the classifier) is recorded as
`unreadable`, with the error as its reason and its raw bytes kept, instead of stopping every poll of its inbox.
Response kinds are a CHECK constraint: this one gains the new kind (SQLite copies the table to change it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BEFORE = ("reply", "auto_reply", "hard_bounce", "soft_bounce", "delayed", "unsubscribe", "complaint", "unknown")
_AFTER = (*_BEFORE, "unreadable")


def _kinds(kinds: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*kinds, name="response_kind", native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=_kinds(_BEFORE), type_=_kinds(_AFTER), existing_nullable=False)


def downgrade() -> None:
    # An unreadable response becomes `unknown`: it was not read, and the older code knows no other kind for that.
    op.execute("UPDATE responses SET kind = 'unknown' WHERE kind = 'unreadable'")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=_kinds(_AFTER), type_=_kinds(_BEFORE), existing_nullable=False)
