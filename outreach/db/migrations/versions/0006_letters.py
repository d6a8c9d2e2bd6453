"""letters: the outbox keeps each whole letter, with its From and envelope sender; proofs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

An outbox message gets its From address (`sender`: its domain's DKIM key signs it), its envelope sender and the
digest of the template it was rendered from; its body row gets `letter`, the message's bytes but for Date and
DKIM-Signature, and the text and HTML of before become optional, written no more. A copy queued before this
revision and not yet sent has no letter: it is held until `outreach campaigns refresh` makes it again. `proofs`
records the copies sent to the campaigner before the real send.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_HELD_NOTE = "queued by an older version, without its letter: `outreach campaigns refresh CAMPAIGN` makes it again"


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.add_column(sa.Column("sender", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("envelope_sender", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("template_digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("outbox_bodies") as batch_op:
        batch_op.add_column(sa.Column("letter", sa.LargeBinary(), nullable=True))
        batch_op.alter_column("text_body", existing_type=sa.Text(), nullable=True)
    op.execute(
        sa.text(
            "UPDATE outbox_messages SET state = 'held', last_reply = :note WHERE state IN ('queued', 'failed')"
        ).bindparams(note=_HELD_NOTE)
    )
    op.create_table(
        "proofs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_proofs_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_proofs_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proofs")),
    )
    op.create_index(op.f("ix_proofs_campaign_id"), "proofs", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_proofs_campaign_id"), table_name="proofs")
    op.drop_table("proofs")
    op.execute("UPDATE outbox_bodies SET text_body = '' WHERE text_body IS NULL")  # the letters are lost
    with op.batch_alter_table("outbox_bodies") as batch_op:
        batch_op.alter_column("text_body", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("letter")
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.drop_column("template_digest")
        batch_op.drop_column("envelope_sender")
        batch_op.drop_column("sender")
