"""One-click unsubscribe (RFC 8058): the one place a click on a letter's List-Unsubscribe URL takes effect.

Every letter queued with OUTREACH_PUBLIC_URL set carries `List-Unsubscribe: <PUBLIC_URL/u/TOKEN>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the token, signed with the workspace's secret, names the
contact and the campaign (outreach/contacts/tokens.py). `outreach serve` answers `GET /u/TOKEN` by reading the
token (`read_unsubscribe_token`), changing nothing (mail scanners follow links), and `POST /u/TOKEN` with
`unsubscribe_by_token` here.

A click is recorded as a response of kind `unsubscribe`, matched "one-click", and takes effect as an unsubscribe
request that came by mail does (effects.apply_effects: the address suppressed as unsubscribed, the contact's
status with it), in one transaction. A click on a contact already unsubscribed or suppressed changes nothing and
records nothing, however often it comes; a token this workspace did not sign, or whose contact is gone (erased,
or the no-one token of a sample letter), changes nothing and raises UnknownTokenError.

Two clicks at once (a mail client that posts twice, a user who clicks again) record one response: the first
statement of the transaction writes the contact's row, which takes its lock on PostgreSQL and the one writer lock
on SQLite before anything is read, so the second waits for the first to commit and then finds its suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.directory import suppression_reason
from outreach.contacts.tokens import read_unsubscribe_token
from outreach.db.engine import workspace_secret
from outreach.db.models import Campaign, Contact, Response
from outreach.errors import NotFoundError
from outreach.responses.effects import SOFT_BOUNCE_LIMIT, apply_effects
from outreach.responses.linking import last_letter

MATCHED_BY = "one-click"
REASON = "one-click unsubscribe (RFC 8058)"


class UnknownTokenError(NotFoundError):
    """An unsubscribe token this workspace did not sign, or one that names no contact (any more)."""


@dataclass(frozen=True)
class OneClick:
    """What a one-click unsubscribe did: whom it was for, and whether it changed anything."""

    contact_id: int
    campaign_id: int | None  # the campaign the token names, if it still exists
    done: bool  # True: unsubscribed now; False: already unsubscribed or suppressed, nothing changed
    response_id: int | None = None  # the response recorded (None when nothing changed)


def unsubscribe_by_token(sessions: sessionmaker[Session], token: str, *, now: datetime) -> OneClick:
    """Unsubscribe the contact a one-click token names, once: record the response and suppress the address in one
    transaction; a token not signed here, or naming no contact, raises UnknownTokenError."""
    with sessions.begin() as session:
        named = read_unsubscribe_token(workspace_secret(session), token)
        if named is None:
            raise UnknownTokenError("this unsubscribe link was not made by this workspace, or was altered")
        contact_id, campaign_id = named
        # Written first, before anything is read: the lock that lets two clicks at once record one response.
        touched = session.execute(
            update(Contact).where(Contact.id == contact_id, Contact.email_key.is_not(None))
            .values(updated_at=Contact.updated_at)
        ).rowcount  # type: ignore[attr-defined]  # fmt: skip
        if touched != 1:  # forgotten (GDPR), or the no-one token of a sample letter
            raise UnknownTokenError("this unsubscribe link names no contact: it was erased, or the letter a sample")
        contact = session.get_one(Contact, contact_id)
        if campaign_id is not None and session.get(Campaign, campaign_id) is None:
            campaign_id = None  # deleted since: the response stays the contact's
        assert contact.email_key is not None
        if contact.status == "unsubscribed" or suppression_reason(session, contact.email_key) is not None:
            return OneClick(contact_id, campaign_id, done=False)
        response = Response(
            channel="email", kind="unsubscribe", detected_kind=None, reason=REASON, sender=contact.email,
            matched_by=MATCHED_BY, contact_id=contact_id, campaign_id=campaign_id,
            outbox_message_id=_answered(session, contact_id, campaign_id), received_at=now, recorded_at=now,
        )  # fmt: skip
        session.add(response)
        session.flush()
        apply_effects(session, response, SOFT_BOUNCE_LIMIT, now)
        return OneClick(contact_id, campaign_id, done=True, response_id=response.id)


def _answered(session: Session, contact_id: int, campaign_id: int | None) -> int | None:
    """The newest letter of the campaign sent to the contact, which the click answers (None: none went)."""
    letter = last_letter(session, contact_id, campaign_id) if campaign_id is not None else None
    return letter.id if letter else None
