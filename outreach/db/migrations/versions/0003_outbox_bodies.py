"""outbox bodies in a table of their own

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

SQLite rewrites a whole row, overflow pages included, whenever one of its columns changes size: every move of a
message through the outbox (claimed, committing, sent) rewrote its 20 kB of text and HTML. The bodies now sit in
`outbox_bodies`, written once at queueing, and the outbox rows the sender updates are small.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_bodies",
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_messages.message_id"],
            name=op.f("fk_outbox_bodies_message_id_outbox_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_outbox_bodies")),
    )
    op.execute(
        "INSERT INTO outbox_bodies (message_id, text_body, html_body) "
        "SELECT message_id, text_body, html_body FROM outbox_messages"
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("text_body")
        batch_op.drop_column("html_body")


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_body", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("html_body", sa.Text(), nullable=True))
    op.execute(
        "UPDATE outbox_messages SET text_body = (SELECT b.text_body FROM outbox_bodies b "
        "WHERE b.message_id = outbox_messages.message_id), html_body = (SELECT b.html_body FROM outbox_bodies b "
        "WHERE b.message_id = outbox_messages.message_id)"
    )
    op.drop_table("outbox_bodies")
