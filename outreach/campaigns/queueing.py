"""Queueing a step: every copy rendered once, straight into the outbox, in one transaction.

One pass: each copy is rendered and written as it comes; if any copy fails, the transaction is rolled back and
nothing is queued, and the error names the contact, the template file and the line.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import campaign_sender, find_campaign, find_step
from outreach.contacts.addresses import ascii_domain_form
from outreach.contacts.segments import parse_segment
from outreach.contacts.selecting import streamed_contacts
from outreach.db.models import OutboxBody, OutboxMessage
from outreach.db.queries import insert_many
from outreach.errors import ConfigError, InvalidValueError
from outreach.rendering.mime import make_message_id
from outreach.rendering.previewing import Sender, compile_template, letterhead, recipient_of

BATCH = 500
_COLUMNS = (
    "campaign_id", "step_id", "contact_id", "state", "message_id", "recipient", "recipient_name", "language",
    "subject", "attempts", "next_attempt_at", "created_at", "updated_at",
)  # fmt: skip
_BODY_COLUMNS = ("message_id", "text_body", "html_body")


@dataclass
class QueueReport:
    """What queueing a step did, contact by contact."""

    campaign: str
    step: int
    queued: int = 0
    already_queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by contact status (bounced, unsubscribed ...)
    languages: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dict(self.__dict__)


def queue_step(
    sessions: sessionmaker[Session],
    templates: Path,
    name: str,
    default_sender: Sender,
    *,
    now: datetime,
    position: int = 0,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> QueueReport:
    """Render and queue one step of a campaign for every active contact of its segment not yet queued."""
    report = QueueReport(name, position, dry_run=dry_run)
    with sessions() as session:
        campaign = find_campaign(session, name)
        if campaign.status == "cancelled":
            raise InvalidValueError(f"campaign {name!r} is cancelled", hint="create a new campaign instead")
        step = find_step(session, campaign, position)
        sender = campaign_sender(campaign, default_sender)
        if sender.mailbox is None:
            raise ConfigError("no sender: OUTREACH_FROM is not set and the campaign has no --from")
        domain = sender.mailbox.address.rpartition("@")[2]
        template = compile_template(templates, step.template)
        head = letterhead(session, sender, now)
        done = set(session.scalars(
            select(OutboxMessage.contact_id).where(OutboxMessage.step_id == step.id, OutboxMessage.state != "cancelled")
        ))  # fmt: skip
        rows: list[tuple[Any, ...]] = []
        bodies: list[tuple[Any, ...]] = []
        seen = 0
        with streamed_contacts(session, parse_segment(campaign.segment)) as contacts:
            for contact in contacts:
                seen += 1
                if progress:
                    progress(seen)
                if contact.status != "active" or not contact.email:
                    report.skipped[contact.status] = report.skipped.get(contact.status, 0) + 1
                    continue
                if contact.id in done:
                    report.already_queued += 1
                    continue
                copy = template.render(recipient_of(contact), head)  # an error leaves the session: nothing is kept
                report.languages[copy.language] = report.languages.get(copy.language, 0) + 1
                token = f"outreach.{campaign.id}.{step.id}.{contact.id}.{secrets.token_hex(4)}"
                message_id = make_message_id(domain, token)
                rows.append((
                    campaign.id, step.id, contact.id, "queued", message_id, ascii_domain_form(contact.email),
                    contact.name, copy.language, copy.subject, 0, now, now, now,
                ))  # fmt: skip
                bodies.append((message_id, copy.text, copy.html))
                report.queued += 1
                if len(rows) >= BATCH:
                    _write(session, rows, bodies)
        _write(session, rows, bodies)
        if dry_run:
            session.rollback()
        else:
            if campaign.status == "draft":
                campaign.status = "active"
            session.commit()
    return report


def _write(session: Session, rows: list[tuple[Any, ...]], bodies: list[tuple[Any, ...]]) -> None:
    """Insert a batch of copies and their bodies (in a dry run too: the rollback at the end undoes it, after the
    database has checked its constraints)."""
    insert_many(session, OutboxMessage.__table__, _COLUMNS, rows)  # type: ignore[arg-type]
    insert_many(session, OutboxBody.__table__, _BODY_COLUMNS, bodies)  # type: ignore[arg-type]
    rows.clear()
    bodies.clear()
