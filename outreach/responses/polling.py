"""Polling: read what is new in a mailbox and record each message once, with its effects.

A source is read from where the last poll stopped (`inbox_cursors`), in batches of one transaction each: the
responses and the cursor that follows them are committed together, so a crash reads again at most one batch, and the
raw message's SHA-256 (unique in the table) keeps a message read twice from being recorded twice. A large inbox is
read on both cores: a second process classifies the next batch while this one records the last.

Mail is written by strangers: every text taken from it is made storable at one place (`_storable`: PostgreSQL
holds no NUL, no codec writes a lone surrogate), and a message that still cannot be read or recorded is recorded as
`unreadable`, with the error and its raw bytes and no effect, so that it stops neither the poll nor what is behind it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from itertools import islice
from multiprocessing import get_context
from typing import Any, cast

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import (
    InboxCursor,
    Response,
    ResponseMessage,
)
from outreach.errors import OutreachError
from outreach.responses.effects import SOFT_BOUNCE_LIMIT, SUPPRESSES, Facts, apply_effects
from outreach.responses.linking import Letter, letters_named, match
from outreach.responses.reading import Understood, Unreadable, describe, fingerprint, understand_all
from outreach.responses.sources import Checkpoint, Fetched, Source
from outreach.untrusted import storable

BATCH = 200  # messages a transaction when polling


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
) -> list[Facts]:  # fmt: skip
    """Record a batch a message a transaction, each with the cursor after it; one that fails is recorded as
    unreadable, with the error and its raw bytes."""
    after = {fetched.key: checkpoint for fetched, checkpoint in batch}
    recorded: list[Facts] = []
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
) -> list[Facts]:
    """Insert the responses not recorded yet, with their raw messages, and apply their effects."""
    known = _known(session, [read.fingerprint for _, read in understood])  # recorded since it was read
    fresh = [(fetched, _storable(read)) for fetched, read in understood if read.fingerprint not in known]
    message_ids = [
        message_id for _, read in fresh if isinstance(read, Understood) for message_id in read.clues.message_ids
    ]
    letters = letters_named(session, message_ids)
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
        facts = Facts(response_id, row["kind"], row["contact_id"], row["sender"], row["status"])
        if facts.kind in SUPPRESSES or facts.kind == "soft_bounce":
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


def _response(
    session: Session, source: str, fetched: Fetched, understood: Understood, letters: dict[str, Letter],
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The values of a response row for one inbound message, matched to what it answers."""
    found = understood.classification
    letter, contact_id, matched_by = match(session, understood, letters)
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


def _original(understood: Understood, letter: Letter | None, matched_by: str | None) -> tuple[str | None, str | None]:
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
