"""`contacts forget`: erase a person from every table and stored message that holds them (GDPR art. 17), in one
transaction, keeping only what the report's figures are counted from and the hash that stops a re-import.

The person is the contact with the address (or with it among its alternates), and whatever else names one of
their addresses: responses sent from it, signatories listed with it. Each of their addresses stays as a hash.
Column by column, what is left of them (outreach/db/models.py; ERASED is "erased", written where a column held
something a view shows, so that lists say "erased" rather than nothing):

  table              column                                    after `forget`
  contacts           id, role, country, import_id, created_at   kept: the figures count contacts by role and country
                     email, email_key, alternates, name,        NULL (attributes: {})
                     first_name, last_name, honorific, gender,
                     position, organization, language,
                     time_zone, attributes
                     status, forgotten_at, updated_at           do_not_contact, now, now
  contact_tags       their rows                                 deleted
  suppressions       their rows, under either hash              replaced by one: the keyed hash, reason `forgotten`,
                                                                no note, no response (reclassifying a response
                                                                cannot lift it, and no unkeyed hash is left)
  outbox_messages    id, campaign_id, step_id, contact_id,      kept: states and times are the figures; message_id
  (their copies)     state, language, attempts, sender,         and thread_id are ours (a token at our domain),
                     envelope_sender, template_digest,          sender and envelope_sender the campaign's
                     next_attempt_at, sent_at, created_at,
                     claimed_by, lease_until
                     state (queued, held; sending whose         cancelled, last_reply saying why: never sent
                     claim ran out)                             afterwards (failed and unknown stay as they are:
                                                                what happened; without their letter they cannot go)
                     recipient, subject (NOT NULL)              ERASED
                     recipient_name                             NULL
                     last_reply (a server's answer may quote    ERASED where it held one
                     the address)
  outbox_bodies      their rows (letter, text_body, html_body)  deleted
  proofs             contact_id                                 NULL (recipient is the campaigner's own address,
                                                                and no letter is stored)
  responses          id, channel, kind, detected_kind, status,  kept: kinds, outcomes and times are the figures;
  (matched to them,  outcome, matched_by, outbox_message_id,    fingerprint is the SHA-256 of the raw message,
  or from their      campaign_id, contact_id, received_at,      kept so that the message, still in the inbox, is
  address)           recorded_at, source, source_key,           not recorded again by the next poll (it tells
                     fingerprint                                nothing without the message itself)
                     sender, subject, text, reason              ERASED where they held something
                     message_id (the inbound Message-ID)        kept, NULL when it holds the address's local part
  response_messages  their rows (the raw message)               deleted
  signatories        contact_id = theirs, or their email        deleted: an erased person is printed in no letter
  step_skips         all                                        kept: ids, reason, time
  imports, campaigns, campaign_steps, inbox_cursors, scheduler_leases: hold no one's data, untouched.

What the database cannot reach stays: the messages in the inbox (IMAP, Maildir), the CSV files imported, letters
already in other people's mailboxes (a signatory's name printed in letters sent to others), backups.

SQLite: every connection runs with `secure_delete` on (outreach/db/engine.py), so a freed cell or page is
overwritten, here and in every earlier update that moved a row or rewrote a letter (a database written before that,
by an SQLite built with it off, may keep such copies in its free space until a VACUUM); after the commit a TRUNCATE
checkpoint copies the WAL into the database file and empties it, so neither file holds the erased bytes.
PostgreSQL: the UPDATEs and DELETEs leave the old row versions in the tables' files until VACUUM reclaims them (and
the space is reused), which cannot run inside this transaction: the command says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, delete, false, func, or_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from outreach.contacts.addresses import InvalidAddressError, address_hash, parse_address
from outreach.contacts.directory import contact_by_address, suppression_hashes, suppression_reason
from outreach.db.engine import workspace_secret
from outreach.db.models import (
    Campaign,
    Contact,
    ContactTag,
    OutboxBody,
    OutboxMessage,
    Proof,
    Response,
    ResponseMessage,
    Signatory,
    Suppression,
)
from outreach.errors import InvalidValueError, LockedError, NotFoundError
from outreach.vocabulary import CONTACT_FIELDS, ERASED, UNSENT_STATES

# The contact's fields that figures count by; every other one is erased.
_KEPT_FIELDS = ("role", "country")
CANCELLED_NOTE = "cancelled: its contact was forgotten (`contacts forget`)"
_CLAIMED = ("sending", "committing")  # in a sender's hands


@dataclass(frozen=True)
class Erasure:
    """What `forget` did: the contact's id (None when the address was no contact's), the rows erased per table,
    and the copies it cancelled; the address is then on the suppression list, as one keyed hash. `refresh` names
    the campaigns whose letters not yet sent were rendered with the signatory list the person was on. `database`
    is the dialect; `checkpointed` whether SQLite's WAL was emptied (None on PostgreSQL, whose old row versions
    stay until VACUUM)."""

    contact_id: int | None
    rows: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0
    refresh: tuple[str, ...] = ()
    database: str = "sqlite"
    checkpointed: bool | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "contact_id": self.contact_id,
            "erased": dict(self.rows),
            "cancelled": self.cancelled,
            "refresh": list(self.refresh),
            "database": self.database,
            "checkpointed": self.checkpointed,
        }


def forget_contact(sessions: sessionmaker[Session], address: str, *, now: datetime, dry_run: bool = False) -> Erasure:
    """Erase a person from every table that holds them, in one transaction (see the module's docstring for what
    is left); their address stays only as a keyed hash, so that no import brings them back. A dry run does the
    same and rolls it back: what it says is what the erasure would erase, counted by the erasure itself."""
    try:
        key = parse_address(address).key
    except InvalidAddressError as error:
        raise InvalidValueError(str(error)) from None
    with sessions() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":  # on for every connection already (db/engine.py); said again where it matters
            session.execute(text("PRAGMA secure_delete=ON"))
        contact = contact_by_address(session, key)
        contact_id = None if contact is None else contact.id
        keys = _their_keys(key, contact)
        rows = {"contacts": 0, "contact_tags": 0}
        cancelled = _erase_outbox(session, contact_id, now, rows)
        _erase_responses(session, contact_id, keys, rows)
        theirs = _of(Signatory.contact_id, contact_id) | _same_address(session, Signatory.id, Signatory.email, keys)
        rows["signatories"] = _count(session.execute(delete(Signatory).where(theirs)))
        refresh = _printing_signatories(session) if rows["signatories"] else ()
        unlink = update(Proof).where(_of(Proof.contact_id, contact_id)).values(contact_id=None)
        rows["proofs"] = _count(session.execute(unlink))
        if contact is not None:
            untag = delete(ContactTag).where(ContactTag.contact_id == contact.id)
            rows["contact_tags"] = _count(session.execute(untag))
            _erase_contact(contact, now)
            rows["contacts"] = 1
        elif not any(rows.values()):
            if suppression_reason(session, key) == "forgotten":
                raise NotFoundError(f"{address} is forgotten already: nothing names it but its hash")
            raise NotFoundError(
                f"no contact {address}, and nothing else names that address",
                hint="`outreach contacts list` shows who is there",
            )
        for each in keys:
            _suppress_for_good(session, each, now)
        if dry_run:
            session.rollback()
            return Erasure(contact_id, rows, cancelled, refresh, dialect, None)
        session.commit()
    checkpointed = _checkpoint(sessions) if dialect == "sqlite" else None
    return Erasure(contact_id, rows, cancelled, refresh, dialect, checkpointed)


def _printing_signatories(session: Session) -> tuple[str, ...]:
    """The campaigns with letters that `campaigns refresh` would make again (queued, held, failed): rendered
    with the signatory list as it was, they may print the person's name."""
    unsent = select(OutboxMessage.campaign_id).where(OutboxMessage.state.in_(("queued", "held", "failed")))
    return tuple(session.scalars(select(Campaign.name).where(Campaign.id.in_(unsent)).order_by(Campaign.name)))


def _erase_outbox(session: Session, contact_id: int | None, now: datetime, rows: dict[str, int]) -> int:
    """Cancel the contact's copies that have not gone, blank the person in every copy, delete the letters; return
    how many were cancelled. A copy a sender holds this moment stops the erasure: nothing is changed."""
    rows["outbox_messages"] = rows["outbox_bodies"] = 0
    if contact_id is None:
        return 0
    theirs = OutboxMessage.contact_id == contact_id
    # A claim that ran out with no data sent would be queued again (outbox/claims.py `recover`): cancelled too. A
    # `committing` one may have reached the server: `recover` makes it `unknown`, and without its letter it cannot
    # go again. The write comes first: on SQLite it takes the write lock, so no sender claims anything after it.
    lapsed = (OutboxMessage.state == "sending") & (OutboxMessage.lease_until < now)
    cancel = (
        update(OutboxMessage)
        .where(theirs, OutboxMessage.state.in_(UNSENT_STATES) | lapsed)
        .values(state="cancelled", last_reply=CANCELLED_NOTE, claimed_by=None, lease_until=None, updated_at=now)
    )
    cancelled = _count(session.execute(cancel))
    held = (OutboxMessage.lease_until >= now) | OutboxMessage.lease_until.is_(None)
    live = session.scalars(select(OutboxMessage.id).where(theirs, OutboxMessage.state.in_(_CLAIMED), held)).first()
    if live is not None:  # raised inside the transaction: it is rolled back, nothing is changed
        raise LockedError(
            f"outbox message {live} to this contact is being sent this moment",
            hint="run `contacts forget` again once the sender is done with it (a claim lasts two minutes at most)",
        )
    note_kept = OutboxMessage.last_reply.is_(None) | (OutboxMessage.last_reply == CANCELLED_NOTE)
    blank = (
        update(OutboxMessage)
        .where(theirs)
        .values(recipient=ERASED, recipient_name=None, subject=ERASED, updated_at=now,
                last_reply=case((note_kept, OutboxMessage.last_reply), else_=ERASED))
    )  # fmt: skip
    rows["outbox_messages"] = _count(session.execute(blank))
    letters = select(OutboxMessage.message_id).where(theirs).scalar_subquery()
    rows["outbox_bodies"] = _count(session.execute(delete(OutboxBody).where(OutboxBody.message_id.in_(letters))))
    return cancelled


def _their_keys(key: str, contact: Contact | None) -> list[str]:
    """Every address of the person, as keys: the one asked for, and their contact's address and alternates."""
    written = [contact.email, *(contact.alternates or ())] if contact is not None else []
    return list(dict.fromkeys([key, *(found for email in written if (found := _key(email)) is not None)]))


def _erase_responses(session: Session, contact_id: int | None, keys: list[str], rows: dict[str, int]) -> None:
    """Blank who the person is and what they wrote in the responses matched to them or sent from one of their
    addresses, and delete the raw messages."""
    theirs = _of(Response.contact_id, contact_id) | _same_address(session, Response.id, Response.sender, keys)
    ids = list(session.scalars(select(Response.id).where(theirs)))
    rows["responses"] = rows["response_messages"] = 0
    if not ids:
        return
    # The inbound Message-ID names a message, not a person, unless the sender's software built it from the
    # address (some do): then it goes too.
    names_them = or_(
        *(func.lower(Response.message_id).contains(key.rpartition("@")[0], autoescape=True) for key in keys)
    )
    blank = (
        update(Response)
        .where(Response.id.in_(ids))
        .values(sender=_erased(Response.sender), subject=_erased(Response.subject), text=_erased(Response.text),
                reason=_erased(Response.reason), message_id=case((names_them, None), else_=Response.message_id))
    )  # fmt: skip
    rows["responses"] = _count(session.execute(blank))
    raws = delete(ResponseMessage).where(ResponseMessage.response_id.in_(ids))
    rows["response_messages"] = _count(session.execute(raws))


def _erase_contact(contact: Contact, now: datetime) -> None:
    """Blank every field of the contact but those the figures count by."""
    for name in ("email", "email_key", *CONTACT_FIELDS):
        if name not in _KEPT_FIELDS:
            setattr(contact, name, None)
    contact.attributes = {}
    contact.alternates = None
    contact.status = "do_not_contact"
    contact.forgotten_at = contact.updated_at = now


def _suppress_for_good(session: Session, key: str, now: datetime) -> None:
    """Leave the address on the suppression list as one row of its own: keyed, `forgotten`, tied to no response
    (reclassifying the response that suppressed it before must not lift it), with no unkeyed hash left."""
    session.execute(delete(Suppression).where(Suppression.address_hash.in_(suppression_hashes(session, key))))
    digest = address_hash(key, workspace_secret(session))
    session.add(Suppression(address_hash=digest, reason="forgotten", note=None, created_at=now, response_id=None))


def _same_address(
    session: Session,
    id_column: InstrumentedAttribute[int],
    column: InstrumentedAttribute[str | None],
    keys: list[str],
) -> ColumnElement[bool]:
    """The rows whose address column holds one of these address keys, however it was written: a LIKE on the local
    part finds the candidates, parsing each decides (a key lowers the local part and writes the domain in ASCII)."""
    likes = (func.lower(column).contains(key.rpartition("@")[0], autoescape=True) for key in keys)
    candidates = session.execute(select(id_column, column).where(or_(*likes)))
    ids = [row_id for row_id, written in candidates if _key(written) in keys]
    return id_column.in_(ids) if ids else false()


def _of(column: InstrumentedAttribute[int | None], contact_id: int | None) -> ColumnElement[bool]:
    """The rows of this contact; none without one (`column == None` would be IS NULL: everyone else's)."""
    return column == contact_id if contact_id is not None else false()


def _key(address: str | None) -> str | None:
    try:
        return parse_address(address).key if address else None
    except InvalidAddressError:
        return None


def _erased(column: InstrumentedAttribute[str | None]) -> ColumnElement[str | None]:
    """ERASED where the column held something, NULL where it held nothing."""
    return case((column.is_(None), None), else_=ERASED)


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


def _checkpoint(sessions: sessionmaker[Session]) -> bool:
    """Copy SQLite's WAL into the database file and empty it (TRUNCATE), so that the erased bytes are in neither
    file; False when a reader still needs the old pages (another outreach process): its next checkpoint does it."""
    with sessions() as session:
        busy, _, _ = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
    return not busy
