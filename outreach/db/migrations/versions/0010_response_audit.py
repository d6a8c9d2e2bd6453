"""response audit: when a message arrived and what its Date said; what it was found to answer, and where; each
bounced recipient with its DSN action and status; how the kind was detected

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-09

`received_at` becomes the time a message arrived (IMAP INTERNALDATE, the Maildir file's delivery time, the mbox
From_ line), which the response log's times and "time to first reply" use; `date_header` keeps what its Date said,
which the sender's clock (or a quoted old letter) sets. Rows recorded before keep their Date as `received_at`, and
`date_header` is filled from it. `original_message_id` and `original_found_in` say which Message-ID of ours the
message names and where (In-Reply-To, References, an attached report, quoted text), whether or not it is one of
ours; `bounced` lists the recipients a bounce names, each with its DSN Action, Status and diagnostic.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_header", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("sub_kind", sa.String(length=32)))
        batch_op.add_column(sa.Column("original_message_id", sa.String(length=500)))
        batch_op.add_column(sa.Column("original_found_in", sa.String(length=32)))
        batch_op.add_column(
            sa.Column("bounced", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"))
        )
    op.execute("UPDATE responses SET date_header = received_at WHERE channel = 'email' AND kind != 'unreadable'")


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        for column in ("bounced", "original_found_in", "original_message_id", "sub_kind", "date_header"):
            batch_op.drop_column(column)
