"""The response log: record what came back, once, match it to what we sent, and apply its effects.

Effects, written in the same transaction as the response: a hard bounce (or `soft_bounce_limit` soft ones) puts
the address on the suppression list as bounced, an unsubscribe request as unsubscribed, an abuse complaint as
complained (outreach/contacts/directory.py sets the contact's status to match). Each suppression remembers the
response that caused it, so reclassifying the response undoes it and applies the new kind's. A human reply is
an effect by itself: follow-ups look for one before they are queued.

Polling reads a source from where the last poll stopped (`inbox_cursors`), in batches of one transaction each:
the responses and the cursor that follows them are committed together, so a crash reads again at most one batch,
and the raw message's SHA-256 (unique in the table) keeps a message read twice from being recorded twice.

Mail is written by strangers: every text taken from it is made storable at one place (`_storable`: PostgreSQL
holds no NUL, no codec writes a lone surrogate), and a message that still cannot be read or recorded is recorded as
`unreadable`, with the error and its raw bytes and no effect, so that it stops neither the poll nor what is behind it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from itertools import islice
from multiprocessing import get_context
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.addresses import InvalidAddressError, parse_address
from outreach.contacts.directory import contact_by_address, find_contact, suppress_address, suppression_hashes
from outreach.contacts.signatories import Enrolled, SignatoryView, checked_line, draft_for, enrol
from outreach.db.models import (
    Campaign,
    Contact,
    InboxCursor,
    OutboxBody,
    OutboxMessage,
    Response,
    ResponseMessage,
    Suppression,
    as_utc,
)
from outreach.db.queries import find_campaign
from outreach.errors import InvalidValueError, NotFoundError, OutreachError
from outreach.responses.inbound import body_text, read_message
from outreach.responses.reading import Understood, Unreadable, describe, fingerprint, understand_all
from outreach.responses.sources import Checkpoint, Fetched, Source, source_of
from outreach.untrusted import storable
from outreach.vocabulary import CHANNELS, OUTCOMES, RESPONSE_KINDS

BATCH = 200  # messages a transaction when polling
SOFT_BOUNCE_LIMIT = 3  # soft bounces of one address before it counts as bounced

# The suppression each kind puts an address under.
_SUPPRESSES = {"hard_bounce": "bounced", "unsubscribe": "unsubscribed", "complaint": "complained"}
# Kinds that are about the recipient of our message (the address that bounced or complained), not the sender.
_ABOUT_RECIPIENT = ("hard_bounce", "soft_bounce", "delayed", "complaint")


@dataclass(frozen=True)
class Inbox:
    """What polling needs to know besides the source: our List-Unsubscribe mailboxes, the VERP pattern, and
    how many soft bounces make an address bounced."""

    unsubscribe_addresses: Collection[str] = ()
    token_address: str | None = None
    soft_bounce_limit: int = SOFT_BOUNCE_LIMIT


@dataclass
class PollReport:
    """What one poll read and recorded."""

    source: str
    read: int = 0
    recorded: int = 0
    already: int = 0  # read before (the same bytes), not recorded again
    unmatched: int = 0  # recorded and read, but tied to no contact (an unreadable one is counted in `kinds`)
    kinds: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**self.__dict__, "kinds": dict(self.kinds)}


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


def poll(
    sessions: sessionmaker[Session],
    source: Source,
    inbox: Inbox,
    *,
    now: Callable[[], datetime],
    progress: Callable[[PollReport], None] | None = None,
) -> PollReport:
    """Read what is new in `source` and record each message once, with its effects; safe to run again."""
    report = PollReport(source.name)
    name = storable(source.name)  # a path given on the command line may hold bytes that are not UTF-8
    with sessions() as session:
        cursor = session.get(InboxCursor, name)
        start = Checkpoint(cursor.validity, cursor.position) if cursor else None
    for batch, understood in _understood(sessions, _batches(source.fetch(start)), inbox):
        _record_batch(sessions, source, name, batch, understood, inbox, now(), report)
        if progress:
            progress(report)
    if progress:
        progress(report)
    return report


_Batch = list[tuple[Fetched, Checkpoint]]
_Read = Understood | Unreadable  # what a message says, or why it could not be read


def _batches(items: Iterable[tuple[Fetched, Checkpoint]]) -> Iterator[_Batch]:
    """The messages of a source in batches of BATCH."""
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def _understood(
    sessions: sessionmaker[Session], batches: Iterator[_Batch], inbox: Inbox
) -> Iterator[tuple[_Batch, list[tuple[Fetched, _Read]]]]:
    """Each batch with what its new messages say (those recorded before, known by their fingerprint, are not
    read again).

    A large inbox is read on both cores: a second process classifies the next batch while this one records the
    last (understanding a message costs about as much as recording it). A small one, whose batches never fill,
    is read here, without the second process's start (as is one read before). If the source breaks off (a
    dropped connection), the batches read before are still recorded, and then its error is raised.
    """
    mailboxes, token_address = tuple(inbox.unsubscribe_addresses), inbox.token_address
    failure: list[Exception] = []
    pool: ProcessPoolExecutor | None = None
    in_flight: deque[tuple[_Batch, list[Fetched], Future[list[_Read]]]] = deque()
    try:
        for batch in _until_broken(batches, failure):
            new = _unknown(sessions, batch)
            if pool is None and len(new) >= BATCH // 2:  # a large inbox, and mostly unread
                pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            if pool is None:
                here = understand_all([fetched.raw for fetched in new], unsubscribe_addresses=mailboxes,
                                      token_address=token_address)  # fmt: skip
                yield batch, list(zip(new, here, strict=True))
                continue
            there = pool.submit(understand_all, [fetched.raw for fetched in new], unsubscribe_addresses=mailboxes,
                                token_address=token_address)  # fmt: skip
            in_flight.append((batch, new, there))
            if len(in_flight) > 1:
                done, fetched_list, future = in_flight.popleft()
                yield done, list(zip(fetched_list, future.result(), strict=True))
        while in_flight:
            done, fetched_list, future = in_flight.popleft()
            yield done, list(zip(fetched_list, future.result(), strict=True))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if failure:
        raise failure[0]  # after what was read before it is recorded


def _until_broken(batches: Iterator[_Batch], failure: list[Exception]) -> Iterator[_Batch]:
    """The batches until the source breaks (a dropped connection), keeping the error for later."""
    try:
        yield from batches
    except Exception as error:
        failure.append(error)


def _unknown(sessions: sessionmaker[Session], batch: _Batch) -> list[Fetched]:
    """The messages of a batch not recorded before (and each only once, should the batch hold it twice)."""
    prints = {fingerprint(fetched.raw): fetched for fetched, _ in batch}
    with sessions() as session:
        known = _known(session, list(prints))
    return [fetched for print_, fetched in prints.items() if print_ not in known]


def _record_batch(
    sessions: sessionmaker[Session], source: Source, name: str, batch: _Batch,
    understood: list[tuple[Fetched, _Read]], inbox: Inbox, now: datetime, report: PollReport,
) -> None:  # fmt: skip
    """Record a batch and move the cursor past it in one transaction; then let the source file the messages.

    Should the batch fail on one of its messages (a value the database refuses, a bug in matching), it is
    recorded again one message a transaction, and a message that fails alone is recorded as unreadable: one
    message never stops the poll, nor the bounces and unsubscribes behind it.
    """
    try:
        with sessions.begin() as session:
            recorded = _record(session, name, understood, inbox, now)
            _move_cursor(session, name, batch[-1][1], now)
    except Exception as error:
        if _not_the_message(error):
            raise
        recorded = _record_one_by_one(sessions, name, batch, understood, inbox, now)
    for facts in recorded:
        report.kinds[facts.kind] += 1
        report.unmatched += facts.contact_id is None and facts.kind != "unreadable"  # (counted as such)
    report.read += len(batch)
    report.recorded += len(recorded)
    report.already += len(batch) - len(recorded)
    for fetched, _ in batch:
        source.done(fetched)


def _record_one_by_one(
    sessions: sessionmaker[Session], source: str, batch: _Batch, understood: list[tuple[Fetched, _Read]],
    inbox: Inbox, now: datetime,
) -> list[_Facts]:  # fmt: skip
    """Record a batch a message a transaction, each with the cursor after it; one that fails is recorded as
    unreadable, with the error and its raw bytes."""
    after = {fetched.key: checkpoint for fetched, checkpoint in batch}
    recorded: list[_Facts] = []
    for fetched, read in understood:
        try:
            with sessions.begin() as session:
                recorded += _record(session, source, [(fetched, read)], inbox, now)
                _move_cursor(session, source, after[fetched.key], now)
        except Exception as error:
            if _not_the_message(error) or isinstance(read, Unreadable):
                raise
            unreadable = Unreadable(read.fingerprint, describe(getattr(error, "orig", None) or error))
            with sessions.begin() as session:
                recorded += _record(session, source, [(fetched, unreadable)], inbox, now)
                _move_cursor(session, source, after[fetched.key], now)
    with sessions.begin() as session:
        _move_cursor(session, source, batch[-1][1], now)
    return recorded


def _not_the_message(error: Exception) -> bool:
    """Whether an error is the database's (gone, locked, out of time) or the workspace's (one of our own errors,
    such as a setting) rather than a message's: then the poll stops, to be run again once that is put right,
    instead of calling every message after it unreadable."""
    return isinstance(error, OutreachError | OperationalError | InterfaceError | PoolTimeoutError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


def _record(
    session: Session, source: str, understood: list[tuple[Fetched, _Read]], inbox: Inbox, now: datetime
) -> list[_Facts]:
    """Insert the responses not recorded yet, with their raw messages, and apply their effects."""
    known = _known(session, [read.fingerprint for _, read in understood])  # recorded since it was read
    fresh = [(fetched, _storable(read)) for fetched, read in understood if read.fingerprint not in known]
    message_ids = [
        message_id for _, read in fresh if isinstance(read, Understood) for message_id in read.clues.message_ids
    ]
    letters = _letters(session, message_ids)
    rows = [
        _response(session, source, fetched, read, letters, now)
        if isinstance(read, Understood)
        else _unreadable(source, fetched, read, now)
        for fetched, read in fresh
    ]
    # Bulk statements rather than one ORM object a row: the unit of work cost more than the parsing.
    if not rows:  # (with no rows, the statement would insert one row of defaults)
        return []
    ids = list(session.scalars(insert(Response).returning(Response.id, sort_by_parameter_order=True), rows))
    raws = [{"response_id": i, "raw": fetched.raw} for i, (fetched, _) in zip(ids, fresh, strict=True)]
    session.execute(insert(ResponseMessage), raws)
    recorded = []
    for response_id, row in zip(ids, rows, strict=True):
        facts = _Facts(response_id, row["kind"], row["contact_id"], row["sender"], row["status"])
        if facts.kind in _SUPPRESSES or facts.kind == "soft_bounce":
            apply_effects(session, facts, inbox.soft_bounce_limit, now)
        recorded.append(facts)
    return recorded


def _move_cursor(session: Session, source: str, checkpoint: Checkpoint, now: datetime) -> None:
    """Store how far the source has been read, in the transaction that recorded what it read."""
    cursor = session.get(InboxCursor, source)
    if cursor is None:
        session.add(InboxCursor(source=source, validity=checkpoint.validity, position=checkpoint.position,
                                updated_at=now))  # fmt: skip
    else:
        cursor.validity, cursor.position, cursor.updated_at = checkpoint.validity, checkpoint.position, now


def _storable(read: _Read) -> _Read:
    """What a message says, every text in it as the database can hold it (outreach/untrusted.py): the one place
    where text from the inbox is made fit to be written, or to be looked for in a query."""
    return cast(_Read, _storable_value(read))


def _storable_value(value: Any) -> Any:
    """A text storable; a tuple or dataclass with each of its texts storable; anything else as it is."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, tuple):
        return tuple(_storable_value(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _storable_value(getattr(value, f.name)) for f in fields(value)})
    return value  # a datetime, a number, None


def _known(session: Session, fingerprints: list[str]) -> set[str]:
    """Which of these messages were recorded before."""
    if not fingerprints:
        return set()
    return set(session.scalars(select(Response.fingerprint).where(Response.fingerprint.in_(fingerprints))))


_LETTER_COLUMNS = (OutboxMessage.id, OutboxMessage.campaign_id, OutboxMessage.contact_id, OutboxMessage.message_id)


class _Letter(NamedTuple):
    """A message of ours that a response answers."""

    id: int
    campaign_id: int
    contact_id: int
    message_id: str


def _letters(session: Session, message_ids: list[str]) -> dict[str, _Letter]:
    """Our messages by Message-ID, for a batch of responses in one query."""
    if not message_ids:
        return {}
    query = select(*_LETTER_COLUMNS).where(OutboxMessage.message_id.in_(set(message_ids)))
    return {row.message_id: _Letter(*row) for row in session.execute(query)}


def _response(
    session: Session, source: str, fetched: Fetched, understood: Understood, letters: dict[str, _Letter],
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The values of a response row for one inbound message, matched to what it answers."""
    found = understood.classification
    letter, contact_id, matched_by = _match(session, understood, letters)
    original, found_in = _original(understood, letter, matched_by)
    return {
        "channel": "email", "kind": found.kind, "detected_kind": found.kind, "reason": found.reason[:2000],
        "status": found.status, "fingerprint": understood.fingerprint, "source": source,
        "source_key": storable(fetched.key)[:500], "message_id": understood.message_id, "sender": understood.sender,
        "subject": understood.subject, "text": understood.text, "matched_by": matched_by,
        "outbox_message_id": letter.id if letter else None, "campaign_id": letter.campaign_id if letter else None,
        "contact_id": contact_id, "received_at": fetched.arrived or now, "recorded_at": now,
        "date_header": understood.date_header, "outcome": None, "sub_kind": found.sub_kind,
        "original_message_id": original, "original_found_in": found_in,
        "bounced": [asdict(one) for one in found.bounced] or None,
    }  # fmt: skip


def _original(understood: Understood, letter: _Letter | None, matched_by: str | None) -> tuple[str | None, str | None]:
    """The Message-ID of ours a message names and where it was found: the one matched, else the first it names."""
    clues = understood.clues
    if letter is not None and matched_by == "token":
        return letter.message_id, "verp"
    chosen = letter.message_id if letter is not None and matched_by != "address" else None
    chosen = chosen or (clues.message_ids[0] if clues.message_ids else None)
    return (chosen[:500], clues.place_of(chosen)) if chosen else (None, None)


def _unreadable(source: str, fetched: Fetched, unreadable: Unreadable, now: datetime) -> dict[str, Any]:
    """The values of a response row for a message that could not be read or recorded: the error as its reason,
    no effect, tied to nothing; its raw bytes are kept beside it (`outreach responses show ID --raw`)."""
    return {
        "channel": "email", "kind": "unreadable", "detected_kind": "unreadable",
        "reason": storable(f"could not be read: {unreadable.error}")[:2000], "status": None,
        "fingerprint": unreadable.fingerprint, "source": source, "source_key": storable(fetched.key)[:500],
        "message_id": None, "sender": None, "subject": None, "text": None, "matched_by": None,
        "outbox_message_id": None, "campaign_id": None, "contact_id": None, "received_at": now, "recorded_at": now,
        "outcome": None,
    }  # fmt: skip


class _Facts(NamedTuple):
    """What a response's effects depend on."""

    id: int
    kind: str
    contact_id: int | None
    sender: str | None
    status: str | None


def _match(
    session: Session, understood: Understood, letters: dict[str, _Letter]
) -> tuple[_Letter | None, int | None, str | None]:
    """The message of ours a response answers, its contact, and how it was found: by a Message-ID it names (in
    its threading headers or inside a bounce report), by the token of a VERP address, else by an address (the one
    that bounced, or the sender) and that contact's last message."""
    for message_id in understood.clues.message_ids:
        if message_id in letters:
            return letters[message_id], letters[message_id].contact_id, understood.clues.place_of(message_id)
    columns = _LETTER_COLUMNS
    for token in understood.clues.tokens:
        row = session.execute(
            select(*columns).where(OutboxMessage.message_id.startswith(f"<{token}@", autoescape=True))
        ).first()
        if row is not None:
            return _Letter(*row), row[2], "token"
    kind = understood.classification.kind
    candidates = understood.classification.recipients if kind in _ABOUT_RECIPIENT else (understood.clues.sender,)
    for address in candidates:
        contact_id = _contact_id(session, address)
        if contact_id is not None:
            last = session.execute(
                select(*columns)
                .where(OutboxMessage.contact_id == contact_id, OutboxMessage.sent_at.is_not(None))
                .order_by(OutboxMessage.sent_at.desc())
            ).first()  # fmt: skip
            return (_Letter(*last) if last else None), contact_id, "address"
    return None, None, None


def _contact_id(session: Session, address: str | None) -> int | None:
    """The contact with this address, or with it among its alternates (a member answering from another)."""
    key = _key(address)
    contact = None if key is None else contact_by_address(session, key)
    return None if contact is None else contact.id


def _key(address: str | None) -> str | None:
    """An address's key, or None for one that is not valid (bounces quote what they like)."""
    if not address:
        return None
    try:
        return parse_address(address).key
    except InvalidAddressError:
        return None


def _about(session: Session, response: _Facts | Response) -> str | None:
    """The address key a response's effects fall on: its contact's, else the address it is about."""
    if response.contact_id is not None:
        email_key = session.scalar(select(Contact.email_key).where(Contact.id == response.contact_id))
        if email_key:
            return email_key
    return _key(response.sender) if response.kind not in _ABOUT_RECIPIENT else None


def apply_effects(session: Session, response: _Facts | Response, soft_bounce_limit: int, now: datetime) -> None:
    """Suppress the address as the response's kind says (a soft bounce only once there are enough of them): the
    one way a response takes effect, whether it came by mail, by a correction or by a one-click unsubscribe."""
    reason = _SUPPRESSES.get(response.kind)
    if response.kind == "soft_bounce" and response.contact_id is not None:
        soft = session.scalar(select(func.count()).select_from(Response).where(
            Response.contact_id == response.contact_id, Response.kind == "soft_bounce"))  # fmt: skip
        if soft and soft >= soft_bounce_limit:
            reason = "bounced"
    key = _about(session, response) if reason else None
    if reason is None or key is None:
        return
    note = f"response {response.id}: {response.kind.replace('_', ' ')}"
    if response.status:
        note += f" ({response.status})"
    suppress_address(session, key, reason, note, now=now, response_id=response.id)


def _undo_effects(session: Session, response: Response, now: datetime) -> None:
    """Lift the suppressions a response caused, and make their contacts active again."""
    hashes = list(session.scalars(select(Suppression.address_hash).where(Suppression.response_id == response.id)))
    if not hashes:
        return
    session.execute(delete(Suppression).where(Suppression.response_id == response.id))
    if response.contact_id is not None:
        contact = session.get_one(Contact, response.contact_id)
        if contact.email_key and set(suppression_hashes(session, contact.email_key)) & set(hashes):
            contact.status, contact.updated_at = "active", now


def reclassify(
    sessions: sessionmaker[Session], response_id: int, kind: str, *, now: datetime,
    soft_bounce_limit: int = SOFT_BOUNCE_LIMIT,
) -> ResponseView:  # fmt: skip
    """Correct a response's kind: the old kind's effects are undone and the new kind's applied."""
    if kind not in RESPONSE_KINDS:
        raise InvalidValueError(f"kind {kind!r} is not one of {', '.join(RESPONSE_KINDS)}")
    with sessions.begin() as session:
        response = _get(session, response_id)
        _undo_effects(session, response, now)
        if response.kind == "soft_bounce" and response.contact_id is not None:
            _settle_soft_bounces(session, response, soft_bounce_limit, now)
        response.kind = kind
        apply_effects(session, response, soft_bounce_limit, now)
        session.flush()
        return _views(session, [response])[0]


def _settle_soft_bounces(session: Session, leaving: Response, soft_bounce_limit: int, now: datetime) -> None:
    """A soft bounce is reclassified: if the others no longer reach the limit, lift the suppression one of them
    caused."""
    same = (Response.contact_id == leaving.contact_id, Response.kind == "soft_bounce", Response.id != leaving.id)
    others = list(session.scalars(select(Response).where(*same)))
    if len(others) < soft_bounce_limit:
        for other in others:
            _undo_effects(session, other, now)


def _get(session: Session, response_id: int) -> Response:
    response = session.get(Response, response_id)
    if response is None:
        raise NotFoundError(f"no response {response_id}", hint="`outreach responses list` shows them")
    return response


def add_response(
    sessions: sessionmaker[Session], address: str, channel: str, note: str, *, now: datetime,
    outcome: str | None = None,
) -> ResponseView:  # fmt: skip
    """Log an answer that came another way (a call, a letter, a meeting) as a reply from a contact."""
    if channel not in CHANNELS:
        raise InvalidValueError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    with sessions.begin() as session:
        contact = find_contact(session, address)
        last = session.scalars(
            select(OutboxMessage).where(OutboxMessage.contact_id == contact.id, OutboxMessage.sent_at.is_not(None))
            .order_by(OutboxMessage.sent_at.desc())
        ).first()  # fmt: skip
        response = Response(
            channel=channel, kind="reply", detected_kind=None, reason=f"logged by hand ({channel})",
            sender=contact.email, text=note.strip(), matched_by="by hand", contact_id=contact.id,
            outbox_message_id=last.id if last else None, campaign_id=last.campaign_id if last else None,
            outcome=outcome, received_at=now, recorded_at=now,
        )  # fmt: skip
        session.add(response)
        session.flush()
        if outcome == "signed":
            _sign(session, response, now, None)
        return _views(session, [response])[0]


@dataclass(frozen=True)
class Marked:
    """A response after its outcome was marked; for `signed`, the signatory, and whether they had signed before."""

    response: ResponseView
    signatory: SignatoryView | None = None
    already: bool = False


def mark_outcome(
    sessions: sessionmaker[Session], response_id: int, outcome: str, *, now: datetime,
    signatory: Mapping[str, str] | None = None,
) -> Marked:  # fmt: skip
    """Say what a response came to; `signed` makes its contact a signatory (once), printed as `signatory` says
    (name, line, group, as the campaigner confirmed them) or else as `signatory_draft` drafts it."""
    if outcome not in OUTCOMES:
        raise InvalidValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    with sessions.begin() as session:
        response = _get(session, response_id)
        response.outcome = outcome
        enrolled = _sign(session, response, now, signatory) if outcome == "signed" else None
        session.flush()
        view = _views(session, [response])[0]
        return Marked(view, enrolled.signatory, enrolled.already) if enrolled else Marked(view)


def signatory_draft(sessions: sessionmaker[Session], response_id: int) -> dict[str, str | None]:
    """The signatory line marking this response signed would print, for the campaigner to edit and confirm."""
    with sessions() as session:
        return draft_for(_signing_contact(session, _get(session, response_id)))


def _signing_contact(session: Session, response: Response) -> Contact:
    if response.contact_id is None:
        raise InvalidValueError(f"response {response.id} is tied to no contact: add the signatory by hand",
                                hint="outreach signatories add NAME --line ...")  # fmt: skip
    return session.get_one(Contact, response.contact_id)


def _sign(session: Session, response: Response, now: datetime, line: Mapping[str, str] | None) -> Enrolled:
    """Make a response's contact a signatory, unless they are one already."""
    contact = _signing_contact(session, response)
    fields = draft_for(contact)
    if line is not None:
        fields |= checked_line(line.get("name", ""), line.get("line", ""), line.get("group", ""))
    return enrol(session, fields, contact_id=contact.id, now=now)


def list_responses(
    sessions: sessionmaker[Session], *, campaign: str | None = None, kind: str | None = None,
    contact: str | None = None, since: datetime | None = None, limit: int | None = None, offset: int = 0,
) -> list[ResponseView]:  # fmt: skip
    """The response log, newest first, filtered as asked; `offset` skips the newest so many."""
    with sessions() as session:
        query = _filtered(session, select(Response), campaign, kind, contact, since)
        query = query.order_by(Response.received_at.desc(), Response.id.desc()).offset(offset).limit(limit)
        return _views(session, list(session.scalars(query)))


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
        return _views(session, [_get(session, response_id)])[0]


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
        response = _get(session, response_id)
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
        _get(session, response_id)
        return session.scalar(select(ResponseMessage.raw).where(ResponseMessage.response_id == response_id))


def _views(session: Session, responses: Iterable[Response]) -> list[ResponseView]:
    """Plain views of responses, with names looked up in a few queries rather than one a row."""
    rows = list(responses)
    contacts = _lookup(session, Contact.id, Contact.email, {r.contact_id for r in rows})
    campaigns = _lookup(session, Campaign.id, Campaign.name, {r.campaign_id for r in rows})
    answered = _lookup(session, OutboxMessage.id, OutboxMessage.message_id, {r.outbox_message_id for r in rows})
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
            contact=contacts.get(r.contact_id),
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


def _lookup(session: Session, key: Any, value: Any, ids: set[int | None]) -> dict[int | None, Any]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {row[0]: row[1] for row in session.execute(select(key, value).where(key.in_(wanted)))}
