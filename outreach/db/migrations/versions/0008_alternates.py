"""alternates: the other addresses of a contact

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Official lists give some people two or three addresses in one cell (`a@x; mailto:b@y`). The first valid one is the
contact's address; the others are kept here (a JSON list, NULL for none), shown and exported, never written to
until `contacts edit --address` makes one of them the address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alternates", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"))
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("alternates")
