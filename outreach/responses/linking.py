"""Matching a response against the database: the letter of ours it answers and the contact it is from or about.

By a Message-ID it names (in its threading headers, inside a bounce report, or quoted in a bounce's text), by the
token of a VERP address, else by an address (the one that bounced, or the sender, also among a contact's
alternates) and that contact's last letter. The clues themselves are read from the message by the pure
outreach/responses/matching.py.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.contacts.addresses import InvalidAddressError, parse_address
from outreach.contacts.directory import contact_by_address
from outreach.db.models import (
    OutboxMessage,
)
from outreach.responses.reading import Understood

# Kinds that are about the recipient of our message (the address that bounced or complained), not the sender.
ABOUT_RECIPIENT = ("hard_bounce", "soft_bounce", "delayed", "complaint")


LETTER_COLUMNS = (OutboxMessage.id, OutboxMessage.campaign_id, OutboxMessage.contact_id, OutboxMessage.message_id)


class Letter(NamedTuple):
    """A message of ours that a response answers."""

    id: int
    campaign_id: int
    contact_id: int
    message_id: str


def letters_named(session: Session, message_ids: list[str]) -> dict[str, Letter]:
    """Our messages by Message-ID, for a batch of responses in one query."""
    if not message_ids:
        return {}
    query = select(*LETTER_COLUMNS).where(OutboxMessage.message_id.in_(set(message_ids)))
    return {row.message_id: Letter(*row) for row in session.execute(query)}


def match(
    session: Session, understood: Understood, letters: dict[str, Letter]
) -> tuple[Letter | None, int | None, str | None]:
    """The message of ours a response answers, its contact, and how it was found: by a Message-ID it names (in
    its threading headers or inside a bounce report), by the token of a VERP address, else by an address (the one
    that bounced, or the sender) and that contact's last message."""
    for message_id in understood.clues.message_ids:
        if message_id in letters:
            return letters[message_id], letters[message_id].contact_id, understood.clues.place_of(message_id)
    columns = LETTER_COLUMNS
    for token in understood.clues.tokens:
        row = session.execute(
            select(*columns).where(OutboxMessage.message_id.startswith(f"<{token}@", autoescape=True))
        ).first()
        if row is not None:
            return Letter(*row), row[2], "token"
    kind = understood.classification.kind
    candidates = understood.classification.recipients if kind in ABOUT_RECIPIENT else (understood.clues.sender,)
    for address in candidates:
        contact_id = contact_for(session, address)
        if contact_id is not None:
            return last_letter(session, contact_id), contact_id, "address"
    return None, None, None


def last_letter(session: Session, contact_id: int, campaign_id: int | None = None) -> Letter | None:
    """The newest letter sent to a contact (of one campaign, if given): what an answer that names no letter of
    ours answers (None: none went)."""
    query = select(*LETTER_COLUMNS).where(OutboxMessage.contact_id == contact_id, OutboxMessage.sent_at.is_not(None))
    if campaign_id is not None:
        query = query.where(OutboxMessage.campaign_id == campaign_id)
    row = session.execute(query.order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(1)).first()
    return Letter(*row) if row else None


def contact_for(session: Session, address: str | None) -> int | None:
    """The contact with this address, or with it among its alternates (a member answering from another)."""
    key = address_key(address)
    contact = None if key is None else contact_by_address(session, key)
    return None if contact is None else contact.id


def address_key(address: str | None) -> str | None:
    """An address's key, or None for one that is not valid (bounces quote what they like)."""
    if not address:
        return None
    try:
        return parse_address(address).key
    except InvalidAddressError:
        return None
