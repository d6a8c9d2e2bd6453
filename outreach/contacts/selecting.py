"""The query that turns a segment into the contacts it names (SQL only: sessions stay with the services)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, ScalarResult, Select, and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from outreach.contacts.segments import Clause, Segment
from outreach.db.models import Campaign, Contact, ContactTag, OutboxMessage, Response, Tag
from outreach.errors import NotFoundError

# The response kinds each state of `campaign:NAME=STATE` looks for (what each state means: CAMPAIGN_STATES in
# outreach/contacts/segments.py). A person's reply is kind `reply` on any channel, those logged by hand included.
_KINDS = {"replied": ("reply",), "bounced": ("hard_bounce", "soft_bounce"), "auto-replied": ("auto_reply",),
          "unsubscribed": ("unsubscribe",)}  # fmt: skip
# What ends `no-reply`: an answer, a letter that came back, a refusal. An auto-reply, a delay warning (`delayed`) or
# a message the classifier could not place (`unknown`) does not.
_ENDS_NO_REPLY = ("reply", "hard_bounce", "soft_bounce", "unsubscribe", "complaint")


def check_segment(session: Session, segment: Segment) -> dict[str, int]:
    """The ids of the campaigns a segment names, by name; a campaign that does not exist is an error naming it.

    Every query of a segment goes through here (segment_contacts), so a misspelt campaign is an error on every
    command that takes --segment, never a segment that silently selects nobody."""
    names = segment.campaigns()
    if not names:
        return {}
    found = select(Campaign.name, Campaign.id).where(Campaign.name.in_(names))
    ids: dict[str, int] = {name: id_ for name, id_ in session.execute(found)}
    for clause in segment.clauses:
        if clause.campaign is not None and clause.campaign not in ids:
            raise NotFoundError(f"segment clause {str(clause)!r}: no campaign {clause.campaign!r}",
                                hint="`outreach campaigns list` shows them")  # fmt: skip
    return ids


def _responded(campaign_id: int, kinds: tuple[str, ...]) -> ColumnElement[bool]:
    """The contact has a response of one of `kinds` matched to the campaign."""
    # NOT IN would be unknown for all if one row were NULL: a response matched to no contact is left out.
    return Contact.id.in_(
        select(Response.contact_id).where(
            Response.campaign_id == campaign_id, Response.kind.in_(kinds), Response.contact_id.is_not(None)
        )
    )


def campaign_condition(campaign_id: int, state: str) -> ColumnElement[bool]:
    """The contacts to whom `state` applies in the campaign, on SQLite and PostgreSQL alike.

    `IN (SELECT ...)` rather than a correlated EXISTS: the subquery names no contact, so SQLite runs it once into
    a temporary index, where an EXISTS would search the campaign's letters again for each contact (outbox
    messages have no index on the contact) and take a time that grows with contacts times letters."""
    if state in _KINDS:
        return _responded(campaign_id, _KINDS[state])
    # `unknown` (perhaps delivered, perhaps not) is not sent: the campaigner resends or cancels it first.
    sent = Contact.id.in_(
        select(OutboxMessage.contact_id).where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.state == "sent")
    )
    if state == "sent":
        return sent
    if state == "no-reply":
        return and_(sent, not_(_responded(campaign_id, _ENDS_NO_REPLY)))
    raise ValueError(f"no campaign state {state!r}")  # parse_segment lets none through


def _clause_condition(clause: Clause, campaigns: dict[str, int]) -> ColumnElement[bool]:
    if clause.campaign is not None:
        campaign_id = campaigns[clause.campaign]
        condition: ColumnElement[bool] = or_(*(campaign_condition(campaign_id, s) for s in clause.choices))
    elif clause.field == "tag":
        condition = exists(
            select(ContactTag.contact_id)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id == Contact.id, Tag.name.in_(clause.choices))
        )
    else:
        column = {"role": Contact.role, "country": Contact.country, "language": Contact.language,
                  "status": Contact.status}[clause.field]  # fmt: skip
        condition = column.in_(clause.choices)
        if clause.negated:
            # NOT IN is unknown for NULL in SQL; a contact with no role is still "not an mp".
            return not_(and_(column.is_not(None), condition))
    return not_(condition) if clause.negated else condition


def segment_contacts(session: Session, segment: Segment) -> Select[Contact]:
    """Select the contacts a segment names, forgotten ones excluded, in the order they were added; the campaigns
    it names must exist (check_segment), which is why it takes the session."""
    campaigns = check_segment(session, segment)
    query = select(Contact).where(Contact.forgotten_at.is_(None))
    for clause in segment.clauses:
        query = query.where(_clause_condition(clause, campaigns))
    return query.order_by(Contact.id)


@contextmanager
def streamed_contacts(session: Session, segment: Segment, batch: int = 1000) -> Iterator[ScalarResult[Contact]]:
    """The contacts of a segment, fetched a batch at a time (a server-side cursor on PostgreSQL), and closed
    on the way out, also when the caller stops early on an error."""
    result = session.scalars(segment_contacts(session, segment).execution_options(yield_per=batch))
    try:
        yield result
    finally:
        result.close()
