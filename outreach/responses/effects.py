"""What a response does, and its undoing: the one place a response's kind becomes a suppression.

Written in the same transaction as the response: a hard bounce (or `soft_bounce_limit` soft ones) puts the address on
the suppression list as bounced, an unsubscribe request as unsubscribed, an abuse complaint as complained
(outreach/contacts/directory.py sets the contact's status to match). Each suppression remembers the response that
caused it, so reclassifying the response undoes it and applies the new kind's. A human reply is an effect by
itself: follow-ups look for one before they are queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from outreach.contacts.directory import suppress_address, suppression_hashes
from outreach.db.models import (
    Contact,
    Response,
    Suppression,
)
from outreach.responses.linking import ABOUT_RECIPIENT, address_key

SOFT_BOUNCE_LIMIT = 3  # soft bounces of one address before it counts as bounced


# The suppression each kind puts an address under.
SUPPRESSES = {"hard_bounce": "bounced", "unsubscribe": "unsubscribed", "complaint": "complained"}


class Facts(NamedTuple):
    """What a response's effects depend on."""

    id: int
    kind: str
    contact_id: int | None
    sender: str | None
    status: str | None


def about(session: Session, response: Facts | Response) -> str | None:
    """The address key a response's effects fall on: its contact's, else the address it is about."""
    if response.contact_id is not None:
        email_key = session.scalar(select(Contact.email_key).where(Contact.id == response.contact_id))
        if email_key:
            return email_key
    return address_key(response.sender) if response.kind not in ABOUT_RECIPIENT else None


def apply_effects(session: Session, response: Facts | Response, soft_bounce_limit: int, now: datetime) -> None:
    """Suppress the address as the response's kind says (a soft bounce only once there are enough of them): the
    one way a response takes effect, whether it came by mail, by a correction or by a one-click unsubscribe."""
    reason = SUPPRESSES.get(response.kind)
    if response.kind == "soft_bounce" and response.contact_id is not None:
        soft = session.scalar(select(func.count()).select_from(Response).where(
            Response.contact_id == response.contact_id, Response.kind == "soft_bounce"))  # fmt: skip
        if soft and soft >= soft_bounce_limit:
            reason = "bounced"
    key = about(session, response) if reason else None
    if reason is None or key is None:
        return
    note = f"response {response.id}: {response.kind.replace('_', ' ')}"
    if response.status:
        note += f" ({response.status})"
    suppress_address(session, key, reason, note, now=now, response_id=response.id)


def undo_effects(session: Session, response: Response, now: datetime) -> None:
    """Lift the suppressions a response caused, and make their contacts active again."""
    hashes = list(session.scalars(select(Suppression.address_hash).where(Suppression.response_id == response.id)))
    if not hashes:
        return
    session.execute(delete(Suppression).where(Suppression.response_id == response.id))
    if response.contact_id is not None:
        contact = session.get_one(Contact, response.contact_id)
        if contact.email_key and set(suppression_hashes(session, contact.email_key)) & set(hashes):
            contact.status, contact.updated_at = "active", now


def settle_soft_bounces(session: Session, leaving: Response, soft_bounce_limit: int, now: datetime) -> None:
    """A soft bounce is reclassified: if the others no longer reach the limit, lift the suppression one of them
    caused."""
    same = (Response.contact_id == leaving.contact_id, Response.kind == "soft_bounce", Response.id != leaving.id)
    others = list(session.scalars(select(Response).where(*same)))
    if len(others) < soft_bounce_limit:
        for other in others:
            undo_effects(session, other, now)
