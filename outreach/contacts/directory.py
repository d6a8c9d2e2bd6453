"""The contact list as a campaigner edits it: list, show, add, edit, tag, suppress, export (forgetting one is
outreach/contacts/erasing.py)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts import values
from outreach.contacts.addresses import (
    InvalidAddressError,
    address_hash,
    address_hashes,
    alternates_besides,
    parse_address,
)
from outreach.contacts.segments import Segment
from outreach.contacts.selecting import segment_contacts
from outreach.db.engine import workspace_secret
from outreach.db.models import Campaign, Contact, ContactTag, OutboxMessage, Suppression, Tag
from outreach.db.queries import contact_tags, insert_many, tag_ids
from outreach.errors import InvalidValueError, NotFoundError
from outreach.spreadsheets import quote_formula
from outreach.vocabulary import CONTACT_FIELDS, REFRESHED_STATES, SUPPRESSION_REASONS

# How a suppression reason leaves the contact's status.
_STATUS_FOR_REASON = {
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "complained": "do_not_contact",
    "do_not_contact": "do_not_contact",
    "forgotten": "do_not_contact",
}
EXPORT_COLUMNS = ("email", "alternates", *CONTACT_FIELDS, "status", "tags")
# How a list stands in one cell of an export: `alternates` as `a@x; b@y`, tags as `a|b` (both read back by import).
_LIST_SEPARATORS = {"alternates": "; ", "tags": "|"}
_LINKS = ("contact_id", "tag_id")


@dataclass(frozen=True)
class ContactView:
    """A contact as shown and exported: plain values, no database object."""

    id: int
    email: str | None
    alternates: list[str]
    name: str | None
    first_name: str | None
    last_name: str | None
    honorific: str | None
    gender: str | None
    position: str | None
    role: str | None
    organization: str | None
    country: str | None
    language: str | None
    time_zone: str | None
    status: str
    tags: list[str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """Return the contact as JSON-ready values."""
        data = dict(self.__dict__)
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data


def _view(contact: Contact, tags: list[str]) -> ContactView:
    return ContactView(
        id=contact.id, email=contact.email, alternates=list(contact.alternates or ()), name=contact.name,
        first_name=contact.first_name, last_name=contact.last_name, honorific=contact.honorific, gender=contact.gender,
        position=contact.position, role=contact.role, organization=contact.organization,
        country=contact.country, language=contact.language, time_zone=contact.time_zone,
        status=contact.status, tags=tags, attributes=dict(contact.attributes or {}),
        created_at=contact.created_at, updated_at=contact.updated_at,
    )  # fmt: skip


def _key(address: str) -> str:
    try:
        return parse_address(address).key
    except InvalidAddressError as error:
        raise InvalidValueError(str(error)) from None


def find_contact(session: Session, address: str) -> Contact:
    """The contact with that address (any spelling of it) or, failing that, with it among its alternates; or a
    clear error."""
    contact = contact_by_address(session, _key(address))
    if contact is None:
        raise NotFoundError(f"no contact {address}", hint="`outreach contacts list` shows who is there")
    return contact


def contact_by_address(session: Session, key: str) -> Contact | None:
    """The contact whose address has this key, or else the one that has it among its alternates."""
    contact = session.scalars(select(Contact).where(Contact.email_key == key)).one_or_none()
    if contact is not None:
        return contact
    # The alternates are a JSON list: its text narrows the search to those holding the local part (any case; as
    # written, or escaped as JSON writes a non-ASCII one on SQLite), then each candidate's addresses decide (the
    # domain may be written in Unicode there and in ASCII in the key).
    local = key.rpartition("@")[0]
    text = cast(Contact.alternates, String)
    likes = [text.ilike(f"%{_like_escaped(form)}@%", escape="\\") for form in {local, json.dumps(local)[1:-1]}]
    candidates = session.scalars(select(Contact).where(or_(*likes)).order_by(Contact.id))
    return next((c for c in candidates if key in {_key(email) for email in c.alternates or ()}), None)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_contacts(sessions: sessionmaker[Session], segment: Segment, limit: int | None = None) -> list[ContactView]:
    """Return the contacts of a segment, oldest first."""
    with sessions() as session:
        query = segment_contacts(session, segment)
        if limit:
            query = query.limit(limit)
        contacts = list(session.scalars(query))
        tags = contact_tags(session, [c.id for c in contacts])
        return [_view(c, tags[c.id]) for c in contacts]


def count_contacts(sessions: sessionmaker[Session], segment: Segment) -> int:
    """Return how many contacts a segment selects."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(segment_contacts(session, segment).subquery())) or 0


def show_contact(sessions: sessionmaker[Session], address: str) -> ContactView:
    """Return one contact by address."""
    with sessions() as session:
        contact = find_contact(session, address)
        return _view(contact, contact_tags(session, [contact.id])[contact.id])


def checked_fields(given: Mapping[str, str | None]) -> dict[str, str | None]:
    """Check and normalize fields given on the command line; an empty string clears a field."""
    checkers = {
        "role": values.role, "gender": values.gender, "country": values.country,
        "language": values.language, "time_zone": values.time_zone,
    }  # fmt: skip
    result: dict[str, str | None] = {}
    for name, raw in given.items():
        if raw is None:
            continue
        text = values.clean_text(raw)
        try:
            result[name] = checkers[name](text) if name in checkers and text else (text or None)
        except values.InvalidValueError as error:
            raise InvalidValueError(str(error)) from None
    honorific = result.get("honorific")
    if given.get("gender") is None and honorific and (implied := values.gender_of_honorific(honorific)):
        result["gender"] = implied
    return result


def add_contact(
    sessions: sessionmaker[Session],
    address: str,
    fields: Mapping[str, str | None],
    tags: tuple[str, ...],
    attributes: Mapping[str, str],
    *,
    now: datetime,
) -> ContactView:
    """Add one contact; an address already present or suppressed is refused."""
    try:
        parsed = parse_address(address)
    except InvalidAddressError as error:
        raise InvalidValueError(str(error)) from None
    checked = checked_fields(fields)
    if checked.get("name") is None and (checked.get("first_name") or checked.get("last_name")):
        checked["name"] = " ".join(v for k in ("first_name", "last_name") if (v := checked.get(k)))
    with sessions.begin() as session:
        if session.scalar(select(Contact.id).where(Contact.email_key == parsed.key)) is not None:
            raise InvalidValueError(f"{parsed.email} is already a contact", hint="use `contacts edit`")
        reason = suppression_reason(session, parsed.key)
        if reason is not None:
            raise InvalidValueError(f"{parsed.email} is on the suppression list ({reason})")
        contact = Contact(
            email=parsed.email, email_key=parsed.key, status="active", attributes=dict(attributes),
            created_at=now, updated_at=now, **checked,
        )  # fmt: skip
        session.add(contact)
        session.flush()
        _add_tags(session, contact.id, tags)
        return _view(contact, sorted(tags))


def edit_contact(
    sessions: sessionmaker[Session],
    address: str,
    fields: Mapping[str, str | None],
    set_attributes: Mapping[str, str],
    unset_attributes: tuple[str, ...],
    *,
    now: datetime,
    new_address: str | None = None,
) -> ContactView:
    """Change fields and custom attributes of one contact, and its address (`new_address`: one of its alternates,
    or another address nobody else has)."""
    checked = checked_fields(fields)
    with sessions.begin() as session:
        contact = find_contact(session, address)
        if new_address is not None:
            _switch_address(session, contact, new_address)
        for name, value in checked.items():
            setattr(contact, name, value)
        attributes = dict(contact.attributes or {})
        attributes.update({k: values.clean_text(v) for k, v in set_attributes.items()})
        for key in unset_attributes:
            attributes.pop(key, None)
        contact.attributes = attributes
        contact.updated_at = now
        session.flush()
        return _view(contact, contact_tags(session, [contact.id])[contact.id])


def _switch_address(session: Session, contact: Contact, raw: str) -> None:
    """Make `raw` the contact's address and keep the one it had among its alternates. A contact that bounced
    becomes active again: a bounce is the address's, not the person's (an unsubscribed or do-not-contact one stays
    so). Refused if another contact has that address or it is on the suppression list."""
    try:
        parsed = parse_address(raw)
    except InvalidAddressError as error:
        raise InvalidValueError(str(error)) from None
    if parsed.key == contact.email_key:
        return
    if session.scalar(select(Contact.id).where(Contact.email_key == parsed.key)) is not None:
        raise InvalidValueError(f"{parsed.email} is the address of another contact", hint="`contacts show` it")
    reason = suppression_reason(session, parsed.key)
    if reason is not None:
        raise InvalidValueError(f"{parsed.email} is on the suppression list ({reason})")
    kept = [email for email in contact.alternates or () if email.lower() != parsed.email.lower()]
    contact.alternates = list(alternates_besides(parsed.email, [contact.email or ""], kept)) or None
    contact.email, contact.email_key = parsed.email, parsed.key
    if contact.status == "bounced":
        contact.status = "active"


def letters_to_old_address(sessions: sessionmaker[Session], address: str) -> dict[str, int]:
    """The letters not sent yet to a contact that are addressed to another address than its own, by campaign:
    `campaigns refresh` makes them again to the address it has now."""
    with sessions() as session:
        contact = find_contact(session, address)
        found = session.execute(
            select(Campaign.name, func.count())
            .join(OutboxMessage, OutboxMessage.campaign_id == Campaign.id)
            .where(OutboxMessage.contact_id == contact.id, OutboxMessage.state.in_(REFRESHED_STATES),
                   OutboxMessage.recipient != contact.email)
            .group_by(Campaign.name)
            .order_by(Campaign.name)
        )  # fmt: skip
        return {name: count for name, count in found}


def _add_tags(session: Session, contact_id: int, tags: tuple[str, ...]) -> None:
    if tags:
        ids = tag_ids(session, tags)
        links = [(contact_id, ids[t]) for t in tags]
        insert_many(session, ContactTag.__table__, _LINKS, links, skip_duplicates=True)  # type: ignore[arg-type]


@dataclass
class TagResult:
    """How many contacts a tag change reached."""

    tag: str
    contacts: int
    removed: bool = False


def tag_contacts(
    sessions: sessionmaker[Session], tag: str, segment: Segment, addresses: list[str], *, remove: bool = False
) -> TagResult:
    """Add a tag to (or remove it from) the contacts named by address, or by a segment when none are named."""
    found = values.tags(tag)
    if len(found) != 1:
        raise InvalidValueError(f"tag {tag!r} is not one tag")
    name = found[0]
    with sessions.begin() as session:
        if addresses:
            ids = [find_contact(session, address).id for address in addresses]
        else:
            ids = list(session.scalars(segment_contacts(session, segment).with_only_columns(Contact.id)))
        if remove:
            tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
            if tag_id is None or not ids:
                return TagResult(name, 0, removed=True)
            removed = session.execute(
                delete(ContactTag).where(ContactTag.tag_id == tag_id, ContactTag.contact_id.in_(ids))
            )
            return TagResult(name, removed.rowcount or 0, removed=True)  # type: ignore[attr-defined]
        tag_id = tag_ids(session, [name])[name]
        links = [(contact_id, tag_id) for contact_id in ids]
        for start in range(0, len(links), 1000):
            insert_many(session, ContactTag.__table__, _LINKS, links[start : start + 1000], skip_duplicates=True)  # type: ignore[arg-type]
        return TagResult(name, len(ids))


def suppression_hashes(session: Session, key: str) -> tuple[str, str]:
    """The hashes an address key may be on the suppression list under, with the session's workspace secret:
    keyed, and unkeyed as written before hashes were keyed (still honoured, so nobody suppressed before comes
    back)."""
    return address_hashes(key, workspace_secret(session))


def suppression_reason(session: Session, key: str) -> str | None:
    """Why an address key is on the suppression list (under either form of its hash), or None."""
    hashes = suppression_hashes(session, key)
    return session.scalar(select(Suppression.reason).where(Suppression.address_hash.in_(hashes)).limit(1))


def suppress_address(
    session: Session, key: str, reason: str, note: str | None, *, now: datetime, response_id: int | None = None
) -> None:
    """Put an address key on the suppression list (once) and set its contact's status to match; `response_id`
    names the response that asked for it (reclassifying that response lifts it)."""
    if reason not in SUPPRESSION_REASONS:
        raise InvalidValueError(f"reason {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}")
    if suppression_reason(session, key) is None:  # once: also when it is there under its unkeyed hash
        insert_many(
            session,
            Suppression.__table__,  # type: ignore[arg-type]
            ("address_hash", "reason", "note", "created_at", "response_id"),
            [(address_hash(key, workspace_secret(session)), reason, note, now, response_id)],
            skip_duplicates=True,
        )
    contact = session.scalars(select(Contact).where(Contact.email_key == key)).one_or_none()
    if contact is not None:
        contact.status = _STATUS_FOR_REASON[reason]
        contact.updated_at = now


def suppress_contact(
    sessions: sessionmaker[Session], address: str, reason: str, note: str | None, *, now: datetime
) -> str:
    """Never write to this address again, whether or not it is a contact; return the normalized address."""
    try:
        parsed = parse_address(address)
    except InvalidAddressError as error:
        raise InvalidValueError(str(error)) from None
    with sessions.begin() as session:
        suppress_address(session, parsed.key, reason, note, now=now)
    return parsed.email


def export_contacts(sessions: sessionmaker[Session], segment: Segment, out: TextIO) -> int:
    """Write the contacts of a segment as CSV that `contacts import` reads back; return how many."""
    attribute_keys: dict[str, None] = {}
    for view in _stream(sessions, segment):
        attribute_keys.update(dict.fromkeys(view.attributes))
    writer = csv.writer(out)
    writer.writerow([quote_formula(header) for header in (*EXPORT_COLUMNS, *attribute_keys)])
    count = 0
    for view in _stream(sessions, segment):
        row = [
            *(_cell(getattr(view, column), _LIST_SEPARATORS.get(column)) for column in EXPORT_COLUMNS),
            *("" if view.attributes.get(k) is None else str(view.attributes[k]) for k in attribute_keys),
        ]
        # A name or an attribute such as `=HYPERLINK(...)` is text to a spreadsheet, and imports back as it was.
        writer.writerow([quote_formula(cell) for cell in row])
        count += 1
    return count


def _cell(value: Any, separator: str | None) -> str:
    if separator is not None:
        return separator.join(value)
    return "" if value is None else str(value)


def _stream(sessions: sessionmaker[Session], segment: Segment, batch: int = 1000) -> Iterator[ContactView]:
    """Yield the contacts of a segment a batch at a time, so memory stays flat."""
    last_id = 0
    while True:
        with sessions() as session:
            contacts = list(
                session.scalars(segment_contacts(session, segment).where(Contact.id > last_id).limit(batch))
            )
            if not contacts:
                return
            tags = contact_tags(session, [c.id for c in contacts])
        yield from (_view(c, tags[c.id]) for c in contacts)
        last_id = contacts[-1].id
