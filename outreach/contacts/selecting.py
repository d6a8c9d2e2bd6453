"""The query that turns a segment into the contacts it names (SQL only: sessions stay with the services)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, ScalarResult, Select, and_, exists, not_, select
from sqlalchemy.orm import Session

from outreach.contacts.segments import Clause, Segment
from outreach.db.models import Contact, ContactTag, Tag


def _clause_condition(clause: Clause) -> ColumnElement[bool]:
    if clause.field == "tag":
        condition: ColumnElement[bool] = exists(
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


def segment_contacts(segment: Segment) -> Select[Contact]:
    """Select the contacts a segment names, forgotten ones excluded, in the order they were added."""
    query = select(Contact).where(Contact.forgotten_at.is_(None))
    for clause in segment.clauses:
        query = query.where(_clause_condition(clause))
    return query.order_by(Contact.id)


@contextmanager
def streamed_contacts(session: Session, segment: Segment, batch: int = 1000) -> Iterator[ScalarResult[Contact]]:
    """The contacts of a segment, fetched a batch at a time (a server-side cursor on PostgreSQL), and closed
    on the way out, also when the caller stops early on an error."""
    result = session.scalars(segment_contacts(segment).execution_options(yield_per=batch))
    try:
        yield result
    finally:
        result.close()
