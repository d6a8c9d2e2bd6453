"""Previews: letters of a campaign's first step as .eml files, to open in a mail client, without touching the outbox.

A contact whose letter is queued gets that very letter, the bytes the server will receive (but for Date and the
DKIM signature); one not queued yet gets a letter made now the same way, which differs only in its Message-ID and
what follows from it (a VERP return path, the MIME boundary): its one-click unsubscribe link, which names the
contact and the campaign, is the one the letter will carry. By default the preview picks one contact for
each language and role the campaign will write in, and every contact whose letter falls back from their own
language to another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import campaign_sender, find_step
from outreach.contacts.directory import find_contact
from outreach.contacts.segments import parse_segment
from outreach.contacts.selecting import segment_contacts
from outreach.contacts.tokens import NO_ONE, unsubscribe_token
from outreach.db.engine import workspace_secret
from outreach.db.models import Contact, OutboxBody, OutboxMessage
from outreach.db.queries import find_campaign
from outreach.rendering.copies import CompiledTemplate, Letterhead
from outreach.rendering.eml import eml_name, write_eml
from outreach.rendering.environment import RenderLimits
from outreach.rendering.folders import FALLBACK_LANGUAGE
from outreach.rendering.letters import Letter, Sender, letter_for
from outreach.rendering.mime import Mailbox
from outreach.rendering.previewing import compile_template, letterhead, recipient_of


@dataclass(frozen=True)
class Preview:
    """One letter written for a look: where, to whom, in which language, and whether it is the queued letter."""

    path: Path
    recipient: str
    role: str | None
    language: str  # the letter's
    fallback_from: str | None  # the contact's own language, when the letter is in another
    queued: bool  # True: the outbox's letter, exactly what will be sent

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**self.__dict__, "path": str(self.path)}


def write_previews(
    sessions: sessionmaker[Session], templates: Path, name: str, default_sender: Sender, folder: Path, *,
    now: datetime, contacts: Sequence[str] = (), limit: int | None = None, limits: RenderLimits | None = None,
) -> list[Preview]:  # fmt: skip
    """Write the letters of the chosen contacts (`contacts` by address; else the first `limit` of the segment;
    else one per language and role, and every fallback) to `folder`; return what was written."""
    written: list[Preview] = []
    with sessions() as session:
        look = _look(session, templates, name, default_sender, now, contacts, limit, limits)
        queued = _queued_letters(session, look.step_id, [contact.id for contact in look.chosen])
        for number, contact in enumerate(look.chosen, start=1):
            recipient = recipient_of(contact)
            if contact.id in queued:
                language, data = queued[contact.id]
            else:
                token = unsubscribe_token(workspace_secret(session), contact.id, look.campaign_id)
                letter = letter_for(look.template, recipient, look.head, look.sender, None, unsubscribe_token=token)
                language, data = letter.language, letter.data
            path = write_eml(folder / eml_name(number, recipient.email), data, now)
            own = contact.language
            written.append(Preview(path, recipient.email, contact.role, language,
                                   own if own and own != language else None, contact.id in queued))  # fmt: skip
    return written


class _Look(NamedTuple):
    """What a look at a campaign's first letters needs: the campaign and step, who sends, the compiled template,
    the letterhead as it stands now, and the contacts chosen."""

    campaign_id: int
    step_id: int
    sender: Sender
    template: CompiledTemplate
    head: Letterhead
    chosen: list[Contact]


def _look(session: Session, templates: Path, name: str, default_sender: Sender, now: datetime,
          contacts: Sequence[str], limit: int | None, limits: RenderLimits | None) -> _Look:  # fmt: skip
    """The campaign's first step made ready to write the chosen contacts' letters (as `write_previews` says)."""
    campaign = find_campaign(session, name)
    step = find_step(session, campaign, 0)
    sender = campaign_sender(campaign, default_sender)
    template = compile_template(templates, step.template, limits)
    chosen = _chosen(session, campaign.segment, template.languages, contacts, limit)
    return _Look(campaign.id, step.id, sender, template, letterhead(session, sender, now), chosen)


def _chosen(session: Session, segment: str, languages: Sequence[str], addresses: Sequence[str],
            limit: int | None) -> list[Contact]:  # fmt: skip
    """The contacts to preview: those named, else the first `limit` of the segment, else a sample of it."""
    if addresses:
        return [find_contact(session, address) for address in addresses]
    query = segment_contacts(session, parse_segment(segment)).where(
        Contact.status == "active", Contact.email.is_not(None)
    )
    if limit:
        return list(session.scalars(query.limit(limit)))
    return _sample(session.scalars(query), languages)


def _sample(contacts: Iterable[Contact], languages: Sequence[str]) -> list[Contact]:
    """One contact for each language a letter will be in and each role, and every contact whose own language the
    template lacks (their letter falls back), in the segment's order."""
    seen: set[tuple[str | None, str | None]] = set()
    picked: list[Contact] = []
    for contact in contacts:
        language = contact.language if contact.language in languages else FALLBACK_LANGUAGE
        falls_back = bool(contact.language) and contact.language != language
        if falls_back or (language, contact.role) not in seen:
            seen.add((language, contact.role))
            picked.append(contact)
    return picked


def _queued_letters(session: Session, step_id: int, contact_ids: list[int]) -> dict[int, tuple[str, bytes]]:
    """The letters of a step already in the outbox for these contacts (cancelled ones aside), by contact."""
    rows = session.execute(
        select(OutboxMessage.contact_id, OutboxMessage.language, OutboxBody.letter)
        .join(OutboxBody, OutboxBody.message_id == OutboxMessage.message_id)
        .where(OutboxMessage.step_id == step_id, OutboxMessage.contact_id.in_(contact_ids),
               OutboxMessage.state != "cancelled")
    )  # fmt: skip
    return {contact_id: (language, letter) for contact_id, language, letter in rows if letter is not None}


def proof_letters(
    sessions: sessionmaker[Session], templates: Path, name: str, default_sender: Sender, to: Mailbox, *,
    now: datetime, contacts: Sequence[str] = (), limit: int | None = None, limits: RenderLimits | None = None,
) -> tuple[int, list[tuple[int, str, Letter]]]:  # fmt: skip
    """The campaign's id and its proof letters to `to`: the chosen contacts' letters as a preview picks them,
    each made now, subject marked as a proof; (contact id, contact address, letter) each. A proof's one-click
    link names no one: the campaigner's mail client offers it as an Unsubscribe button, which must not
    unsubscribe the contact."""
    with sessions() as session:
        look = _look(session, templates, name, default_sender, now, contacts, limit, limits)
        token = unsubscribe_token(workspace_secret(session), NO_ONE, look.campaign_id)
        letters = [(contact.id, contact.email or "", letter_for(look.template, recipient_of(contact), look.head,
                                                                look.sender, None, proof_to=to,
                                                                unsubscribe_token=token))
                   for contact in look.chosen]  # fmt: skip
        return look.campaign_id, letters
