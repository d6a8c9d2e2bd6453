"""responses: what came back, its raw message, how far each inbox was read, and which suppression it caused

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

`responses` holds every answer (inbound mail as classified and matched, or logged by hand), unique by the SHA-256
of the raw message so that reading a mailbox again records nothing twice; `response_messages` keeps the raw bytes;
`inbox_cursors` says how far each source was read. A suppression remembers the response that caused it, so that
reclassifying the response can undo it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_cursors",
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("validity", sa.String(length=200), nullable=False),
        sa.Column("position", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_inbox_cursors")),
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "phone",
                "letter",
                "meeting",
                name="response_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "reply",
                "auto_reply",
                "hard_bounce",
                "soft_bounce",
                "delayed",
                "unsubscribe",
                "complaint",
                "unknown",
                name="response_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("detected_kind", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("source_key", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("matched_by", sa.String(length=32), nullable=True),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "signed",
                "declined",
                "interested",
                "none",
                name="response_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_responses_campaign_id_campaigns"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_responses_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_responses_outbox_message_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_responses_fingerprint")),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_responses_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_responses_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_responses_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_responses_outbox_message_id"), ["outbox_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_responses_received_at"), ["received_at"], unique=False)

    op.create_table(
        "response_messages",
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_response_messages_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", name=op.f("pk_response_messages")),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_suppressions_response_id"), ["response_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_suppressions_response_id_responses"),
            "responses",
            ["response_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_suppressions_response_id_responses"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_suppressions_response_id"))
        batch_op.drop_column("response_id")

    op.drop_table("response_messages")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responses_received_at"))
        batch_op.drop_index(batch_op.f("ix_responses_outbox_message_id"))
        batch_op.drop_index(batch_op.f("ix_responses_kind"))
        batch_op.drop_index(batch_op.f("ix_responses_contact_id"))
        batch_op.drop_index(batch_op.f("ix_responses_campaign_id"))

    op.drop_table("responses")
    op.drop_table("inbox_cursors")
