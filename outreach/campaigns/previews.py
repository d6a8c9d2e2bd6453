"""Previews: the first copies of a campaign's first step as .eml files, without touching the outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import campaign_sender, find_campaign, find_step
from outreach.contacts.segments import parse_segment
from outreach.contacts.selecting import segment_contacts
from outreach.db.models import Contact
from outreach.rendering.previewing import Sender, as_eml, compile_template, letterhead, recipient_of


def write_previews(
    sessions: sessionmaker[Session], templates: Path, name: str, default_sender: Sender, folder: Path, limit: int,
    *, now: datetime,
) -> list[Path]:  # fmt: skip
    """Write up to `limit` copies (active contacts, in segment order) to `folder`; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sessions() as session:
        campaign = find_campaign(session, name)
        step = find_step(session, campaign, 0)
        sender = campaign_sender(campaign, default_sender)
        template = compile_template(templates, step.template)
        head = letterhead(session, sender, now)
        query = segment_contacts(parse_segment(campaign.segment)).where(Contact.status == "active").limit(limit)
        for number, contact in enumerate(session.scalars(query), start=1):
            recipient = recipient_of(contact)
            copy = template.render(recipient, head)
            path = folder / f"{number:03d}-{(contact.email or 'contact').replace('@', '_at_')}.eml"
            path.write_bytes(as_eml(copy, recipient, sender, now=now))
            written.append(path)
    return written
