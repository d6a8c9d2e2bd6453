"""Signatories: the people who signed the appeal, with the line printed under each name, by group."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import case, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts import values
from outreach.contacts.addresses import InvalidAddressError, parse_address
from outreach.contacts.rejects import RejectsFile, rejects_path_for
from outreach.contacts.rows import Reject, match_columns, open_table
from outreach.db.models import Contact, Signatory
from outreach.errors import InputError, InvalidValueError, RejectedRowsError
from outreach.vocabulary import GROUPS

SIGNATORY_SYNONYMS = {
    "name": "name full_name signatory",
    "line": "line description affiliation title position credentials",
    "group": "group category section",
    "country": "country country_code",
    "email": "email e_mail email_address",
}


def group(value: str) -> str:
    """Return one of the signatory groups for a loosely written one (`Military Officials`)."""
    key = values.fold(value).replace(" ", "_")
    for name in GROUPS:
        if key in (name, name.rstrip("s"), name.removesuffix("ies") + "y"):
            return name
    raise values.InvalidValueError(f"group {value!r} is not one of {', '.join(GROUPS)}")


@dataclass(frozen=True)
class SignatoryView:
    """A signatory as shown: name and line exactly as printed under the appeal."""

    id: int
    name: str
    line: str
    group: str
    country: str | None
    email: str | None
    contact_id: int | None

    def as_json(self) -> dict[str, Any]:
        """Return the signatory as JSON-ready values."""
        return dict(self.__dict__)


def _view(row: Signatory) -> SignatoryView:
    return SignatoryView(row.id, row.name, row.line, row.group, row.country, row.email, row.contact_id)


def list_signatories(sessions: sessionmaker[Session], group_name: str | None = None) -> list[SignatoryView]:
    """Return the signatories in print order: by group, then in the order they signed."""
    order = case({name: index for index, name in enumerate(GROUPS)}, value=Signatory.group)
    query = select(Signatory).order_by(order, Signatory.id)
    if group_name:
        query = query.where(Signatory.group == group(group_name))
    with sessions() as session:
        return [_view(row) for row in session.scalars(query)]


def _checked(name: str, line: str, group_name: str, country: str, email: str) -> dict[str, str | None]:
    checked_name = values.clean_text(name)
    if not checked_name:
        raise values.InvalidValueError("no name")
    address = None
    if email.strip():
        try:
            address = parse_address(email).email
        except InvalidAddressError as error:
            raise values.InvalidValueError(str(error)) from None
    return {
        "name": checked_name,
        "line": values.clean_text(line),
        "group": group(group_name),
        "country": values.country(country) if country.strip() else None,
        "email": address,
    }


def _link(session: Session, email: str | None) -> int | None:
    if email is None:
        return None
    return session.scalar(select(Contact.id).where(Contact.email_key == parse_address(email).key))


def add_signatory(
    sessions: sessionmaker[Session], name: str, line: str, group_name: str, country: str, email: str,
    *, now: datetime,
) -> SignatoryView:  # fmt: skip
    """Add one signatory; the same name with the same line is refused."""
    try:
        fields = _checked(name, line, group_name, country, email)
    except values.InvalidValueError as error:
        raise InvalidValueError(str(error)) from None
    with sessions.begin() as session:
        enrolled = enrol(session, fields, contact_id=_link(session, fields["email"]), now=now)
        if enrolled.already:
            raise InvalidValueError(f"{enrolled.signatory.name} ({enrolled.signatory.line}) is already a signatory")
        return enrolled.signatory


@dataclass(frozen=True)
class Enrolled:
    """A signatory after `enrol`: `already` when they had signed before (by contact, or by name and line)."""

    signatory: SignatoryView
    already: bool


def draft_for(contact: Contact) -> dict[str, str | None]:
    """The signatory a contact becomes unless the campaigner edits it: their name, position and organisation, and
    the parliamentarians' group for an MP or MEP."""
    name = contact.name or " ".join(part for part in (contact.first_name, contact.last_name) if part) or contact.email
    return {
        "name": name or f"contact {contact.id}",
        "line": ", ".join(part for part in (contact.position, contact.organization) if part),
        "group": "parliamentarians" if contact.role in ("mp", "mep") else "signatories",
        "country": contact.country,
        "email": contact.email,
    }


def checked_line(name: str, line: str, group_name: str) -> dict[str, str]:
    """A signatory's printed name, line and group as the campaigner wrote them, checked as `signatories add` checks
    them."""
    try:
        fields = _checked(name, line, group_name, "", "")
    except values.InvalidValueError as error:
        raise InvalidValueError(str(error)) from None
    return {key: fields[key] or "" for key in ("name", "line", "group")}


def enrol(session: Session, fields: Mapping[str, str | None], *, contact_id: int | None, now: datetime) -> Enrolled:
    """The one way a signatory is added (by hand, or by a response marked signed): a contact who is a signatory
    already, or a name already printed with the same line, is not added twice; such a signatory is linked to the
    contact and dated if it was not."""
    existing = None
    if contact_id is not None:
        existing = session.scalars(select(Signatory).where(Signatory.contact_id == contact_id)).first()
    if existing is None:
        existing = session.scalars(
            select(Signatory).where(Signatory.name == fields["name"], Signatory.line == (fields["line"] or ""))
        ).first()  # fmt: skip
    if existing is not None:
        if existing.contact_id is None and contact_id is not None:
            existing.contact_id = contact_id
        existing.signed_at = existing.signed_at or now
        session.flush()
        return Enrolled(_view(existing), already=True)
    row = Signatory(**fields, contact_id=contact_id, signed_at=now, created_at=now)
    session.add(row)
    session.flush()
    return Enrolled(_view(row), already=False)


@dataclass
class SignatoryImport:
    """What became of each row of a signatories file."""

    source: str
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    first_rejects: list[Reject] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The counts by outcome."""
        return {"imported": self.imported, "unchanged": self.unchanged, "rejected": self.rejected}


def import_signatories(
    sessions: sessionmaker[Session],
    binary: BinaryIO,
    source: Path,
    *,
    default_group: str | None = None,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    strict: bool = False,
    now: datetime,
) -> SignatoryImport:
    """Import signatories from CSV (name, line, group, country, email) in one transaction, in file order."""
    table = open_table(binary, str(source), encoding)
    columns = match_columns(table.headers, SIGNATORY_SYNONYMS, mapping)
    index = {target: i for i, target in enumerate(columns.targets)}
    if "name" not in index:
        raise InputError(f"no name column among: {', '.join(table.headers)}", where=str(source))
    summary = SignatoryImport(str(source))
    rejects = RejectsFile(rejects_path_for(source), table.headers, enabled=True)
    summary.first_rejects = rejects.first
    try:
        with sessions() as session:
            seen = {(name, line) for name, line in session.execute(select(Signatory.name, Signatory.line))}
            for record in table.records():
                if isinstance(record, Reject):  # a quote left open
                    summary.rejected += 1
                    rejects.add(record)
                    continue
                number, cells = record

                def cell(target: str, cells: list[str] = cells) -> str:
                    position = index.get(target)
                    return cells[position] if position is not None and position < len(cells) else ""

                try:
                    fields = _checked(
                        cell("name"), cell("line"), cell("group") or default_group or "", cell("country"),
                        cell("email"),
                    )  # fmt: skip
                except values.InvalidValueError as error:
                    reject = Reject(number, str(error), tuple(cells))
                    summary.rejected += 1
                    rejects.add(reject)
                    continue
                key = (fields["name"], fields["line"])
                if key in seen:
                    summary.unchanged += 1
                    continue
                seen.add(key)  # type: ignore[arg-type]
                contact_id = _link(session, fields["email"])
                session.add(Signatory(**fields, contact_id=contact_id, signed_at=None, created_at=now))
                summary.imported += 1
            if strict and summary.rejected:
                raise RejectedRowsError(
                    f"{summary.rejected} rows rejected; nothing was imported (--strict)", where=str(source)
                )
            session.commit()
    finally:
        summary.rejects_path = rejects.finish()
    return summary
