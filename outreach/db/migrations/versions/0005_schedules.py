"""schedules: follow-up delays in seconds and their conditions, when and where a campaign sends, threading, skips

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A step's delay becomes `delay_seconds` (the days of before, converted) with `unless`, the events that skip a
follow-up; a campaign gets its schedule (`send_at`, `time_zone`, `local_time`, `window`, `weekdays_only`); an
outbox message the Message-ID of the first letter it follows up (`thread_id`); `step_skips` records the follow-ups
decided against, and `scheduler_leases` who leads `outreach run` and when it was last seen.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "step_skips",
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_step_skips_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["step_id"], ["campaign_steps.id"], name=op.f("fk_step_skips_step_id_campaign_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("step_id", "contact_id", name=op.f("pk_step_skips")),
    )
    with op.batch_alter_table("campaign_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delay_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("unless", sa.String(length=100), nullable=False, server_default="replied,bounced,unsubscribed")
        )
    op.execute("UPDATE campaign_steps SET delay_seconds = delay_days * 86400")
    with op.batch_alter_table("campaign_steps", schema=None) as batch_op:
        batch_op.drop_column("delay_days")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("local_time", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("window", sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column("weekdays_only", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("thread_id")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("weekdays_only")
        batch_op.drop_column("window")
        batch_op.drop_column("local_time")
        batch_op.drop_column("time_zone")
        batch_op.drop_column("send_at")

    with op.batch_alter_table("campaign_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delay_days", sa.INTEGER(), nullable=False, server_default="0"))
    op.execute("UPDATE campaign_steps SET delay_days = delay_seconds / 86400")
    with op.batch_alter_table("campaign_steps", schema=None) as batch_op:
        batch_op.drop_column("unless")
        batch_op.drop_column("delay_seconds")

    op.drop_table("step_skips")
    op.drop_table("scheduler_leases")
