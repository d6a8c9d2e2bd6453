"""The response log as it is read: lists, one response, the letter it answers, its raw bytes; no writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.directory import find_contact
from outreach.db.models import (
    Campaign,
    Contact,
    OutboxBody,
    OutboxMessage,
    Response,
    ResponseMessage,
    Suppression,
    as_utc,
)
from outreach.db.queries import find_campaign
from outreach.errors import InvalidValueError, NotFoundError
from outreach.responses.inbound import body_text, read_message
from outreach.responses.sources import source_of
from outreach.vocabulary import RESPONSE_KINDS


@dataclass(frozen=True)
class ResponseView:
    """One response as listed and shown."""

    id: int
    kind: str
    detected_kind: str | None
    channel: str
    received_at: datetime
    sender: str | None
    contact: str | None
    campaign: str | None
    subject: str | None
    text: str | None
    outcome: str | None
    status: str | None
    reason: str | None
    matched_by: str | None  # how: in-reply-to, references, report, quoted-text, token (VERP), address, by hand
    answered: str | None  # the Message-ID of the message of ours it answers
    effects: tuple[str, ...] = ()
    # What makes the log auditable against the mailbox: the message's own Message-ID, what its Date said, where it
    # was read, what the classifier found inside, which letter of ours it names (matched or not) and where.
    sub_kind: str | None = None
    message_id: str | None = None
    date_header: datetime | None = None
    source: dict[str, Any] | None = None
    original: dict[str, Any] | None = None
    bounced: tuple[dict[str, Any], ...] = ()
    contact_id: int | None = None
    contact_name: str | None = None  # the contact's name as the list shows it
    outbox_message_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values: the flat fields as before, then the same facts grouped for a script that checks the log
        against the mailbox."""
        return {
            **self.__dict__, "received_at": self.received_at.isoformat(), "effects": list(self.effects),
            "date_header": self.date_header.isoformat() if self.date_header else None, "bounced": list(self.bounced),
            "matched": {"method": self.matched_by, "outbox_message_id": self.outbox_message_id,
                        "message_id": self.answered, "contact_id": self.contact_id, "contact": self.contact},
        }  # fmt: skip


def get_response(session: Session, response_id: int) -> Response:
    response = session.get(Response, response_id)
    if response is None:
        raise NotFoundError(f"no response {response_id}", hint="`outreach responses list` shows them")
    return response


def list_responses(
    sessions: sessionmaker[Session], *, campaign: str | None = None, kind: str | None = None,
    contact: str | None = None, since: datetime | None = None, limit: int | None = None, offset: int = 0,
) -> list[ResponseView]:  # fmt: skip
    """The response log, newest first, filtered as asked; `offset` skips the newest so many."""
    with sessions() as session:
        query = _filtered(session, select(Response), campaign, kind, contact, since)
        query = query.order_by(Response.received_at.desc(), Response.id.desc()).offset(offset).limit(limit)
        return views_of(session, list(session.scalars(query)))


def count_responses(
    sessions: sessionmaker[Session], *, campaign: str | None = None, kind: str | None = None,
    contact: str | None = None, since: datetime | None = None,
) -> int:  # fmt: skip
    """How many responses `list_responses` would list with no limit."""
    with sessions() as session:
        return session.scalar(_filtered(session, select(func.count(Response.id)), campaign, kind, contact, since)) or 0


def _filtered(
    session: Session, query: Select[Any], campaign: str | None, kind: str | None, contact: str | None,
    since: datetime | None,
) -> Select[Any]:  # fmt: skip
    """A query of responses narrowed to a campaign, a kind, a contact and a time, each checked first."""
    if kind is not None and kind not in RESPONSE_KINDS:
        raise InvalidValueError(f"kind {kind!r} is not one of {', '.join(RESPONSE_KINDS)}")
    if campaign is not None:
        query = query.where(Response.campaign_id == find_campaign(session, campaign).id)
    if kind is not None:
        query = query.where(Response.kind == kind)
    if contact is not None:
        query = query.where(Response.contact_id == find_contact(session, contact).id)
    if since is not None:
        query = query.where(Response.received_at >= since)
    return query


def show_response(sessions: sessionmaker[Session], response_id: int) -> ResponseView:
    """One response with what it answered and what it caused."""
    with sessions() as session:
        return views_of(session, [get_response(session, response_id)])[0]


@dataclass(frozen=True)
class AnsweredLetter:
    """The letter of ours a response answers, as it was sent: to whom, when, its subject and its plain text."""

    message_id: str
    recipient: str
    subject: str
    sent_at: datetime | None
    text: str


def answered_letter(sessions: sessionmaker[Session], response_id: int) -> AnsweredLetter | None:
    """The letter a response answers, read back from the outbox's bytes (None: it answers none we know)."""
    with sessions() as session:
        response = get_response(session, response_id)
        if response.outbox_message_id is None:
            return None
        row = session.get_one(OutboxMessage, response.outbox_message_id)
        data = session.scalar(select(OutboxBody.letter).where(OutboxBody.message_id == row.message_id))
    text = body_text(read_message(data)) if data else ""
    sent = as_utc(row.sent_at) if row.sent_at else None
    return AnsweredLetter(row.message_id, row.recipient, row.subject, sent, text)


def raw_message(sessions: sessionmaker[Session], response_id: int) -> bytes | None:
    """The raw bytes of an inbound response (None for one logged by hand)."""
    with sessions() as session:
        get_response(session, response_id)
        return session.scalar(select(ResponseMessage.raw).where(ResponseMessage.response_id == response_id))


def views_of(session: Session, responses: Iterable[Response]) -> list[ResponseView]:
    """Plain views of responses, with names looked up in a few queries rather than one a row."""
    rows = list(responses)
    people = _lookup(session, Contact.id, {r.contact_id for r in rows}, Contact.email, Contact.name)
    nobody = (None, None)
    campaigns = _lookup(session, Campaign.id, {r.campaign_id for r in rows}, Campaign.name)
    answered = _lookup(session, OutboxMessage.id, {r.outbox_message_id for r in rows}, OutboxMessage.message_id)
    effects: dict[int | None, list[str]] = {}
    caused = select(Suppression.response_id, Suppression.reason).where(
        Suppression.response_id.in_([r.id for r in rows])
    )
    for response_id, reason in session.execute(caused):
        effects.setdefault(response_id, []).append(f"address suppressed: {reason}")
    return [
        ResponseView(
            id=r.id,
            kind=r.kind,
            detected_kind=r.detected_kind,
            channel=r.channel,
            received_at=as_utc(r.received_at),
            sender=r.sender,
            contact=people.get(r.contact_id, nobody)[0],
            contact_name=people.get(r.contact_id, nobody)[1],
            campaign=campaigns.get(r.campaign_id),
            subject=r.subject,
            text=r.text,
            outcome=r.outcome,
            status=r.status,
            reason=r.reason,
            matched_by=r.matched_by,
            answered=answered.get(r.outbox_message_id),
            effects=tuple(effects.get(r.id, [])) + (("stops follow-ups",) if r.kind == "reply" else ()),
            sub_kind=r.sub_kind,
            message_id=r.message_id,
            date_header=as_utc(r.date_header) if r.date_header else None,
            source=source_of(r.source, r.source_key),
            original={"message_id": r.original_message_id, "found_in": r.original_found_in}
            if r.original_message_id
            else None,
            bounced=tuple(r.bounced or ()),
            contact_id=r.contact_id,
            outbox_message_id=r.outbox_message_id,
        )
        for r in rows
    ]


def _lookup(session: Session, key: Any, ids: set[int | None], *values: Any) -> dict[int | None, Any]:
    """The `values` of the rows whose `key` is among `ids`, in one query: each row's one value, or its tuple."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    found = session.execute(select(key, *values).where(key.in_(wanted)))
    return {row[0]: row[1] if len(values) == 1 else tuple(row[1:]) for row in found}
