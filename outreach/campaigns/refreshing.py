"""Refreshing: the copies of a campaign that no sender has handed to the server, made again after an edit.

A template, a signatory or a contact changed after a campaign was queued: each copy still `queued`, `held` or
`failed` is rendered again and made into its letter as queueing makes it (outreach/rendering/letters.py), under
the same Message-ID, in the same thread and due at the same time. A copy that is `sending`, `committing`, `sent`,
`unknown` or `cancelled` is never touched: its bytes may have reached the server, or it is withdrawn.

Like queueing, one broken copy refreshes none: every copy is rendered once first, changing nothing, and only then
are the copies found different written (the letters made first, kept aside, unless its contact changed in between:
outreach/campaigns/spool.py); a copy found current is not read again, so a refresh with nothing to change writes
nothing. The writes go one transaction a batch so that senders are not kept waiting for the whole outbox. Each batch
locks its rows (`FOR UPDATE` on PostgreSQL; SQLite has one writer at a time) and each write names the states it
expects, so a sender claiming a copy at the same moment either sends the old letter, and the copy is left as it was,
or waits and sends the new one (outreach/outbox/claims.py reads the letter in its claiming transaction).

A letter keeps the date it was made on (the `date` its template prints): refreshing it on a later day changes what
was edited, not the date, so that "already current" means what it says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from outreach.campaigns.catalog import FollowUp, campaign_sender
from outreach.campaigns.queueing import first_letter_variables
from outreach.campaigns.spool import LetterSpool
from outreach.contacts.tokens import unsubscribe_token
from outreach.db.engine import workspace_secret
from outreach.db.models import CampaignStep, Contact, OutboxBody, OutboxMessage, as_utc
from outreach.db.queries import find_campaign
from outreach.parallel import in_order
from outreach.rendering.copies import CompiledTemplate, Letterhead, Recipient
from outreach.rendering.differences import letter_diff, same_letter
from outreach.rendering.environment import RenderLimits
from outreach.rendering.folders import template_digest
from outreach.rendering.letters import Letter, Sender, letter_for
from outreach.rendering.previewing import compile_template, letterhead, recipient_of
from outreach.vocabulary import REFRESHED_STATES

BATCH = 500
_OUTBOX, _BODIES = cast(Table, OutboxMessage.__table__), cast(Table, OutboxBody.__table__)
# The writes, made once and run with each copy's values: building an UPDATE for each of 10,000 copies (and the ORM
# looking through the session for objects to keep in step with it) took most of a refresh's time.
_WRITTEN = ("recipient", "recipient_name", "language", "subject", "sender", "envelope_sender", "template_digest",
            "last_reply", "updated_at")  # fmt: skip
_WRITE_COPY = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("copy"), _OUTBOX.c.state.in_(REFRESHED_STATES))
    .values({name: bindparam(name) for name in _WRITTEN})
)
_WRITE_LETTER = update(_BODIES).where(_BODIES.c.message_id == bindparam("copy")).values(letter=bindparam("letter"))
# The states of the copies no sender has handed to the server: the only ones made again.

_Copy = Row[*tuple[Any, ...]]  # one copy as `_rows` reads it, its columns by name


@dataclass
class RefreshReport:
    """What refreshing a campaign did, copy by copy."""

    campaign: str
    changed: int = 0  # letters that now read differently
    current: int = 0  # letters that were already what the templates, signatories and contacts make
    made: int = 0  # copies queued by an older version, without a letter, that now have one
    releasable: int = 0  # of those, the held ones: `outreach outbox release` queues them again
    taken: int = 0  # claimed by a sender between the look and the write: left as they were
    skipped: dict[str, int] = field(default_factory=dict)  # not made again, by reason
    diff: str | None = None  # with `diff`: a unified diff of the first changed copy's text
    diff_of: str | None = None  # that copy's recipient

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dict(self.__dict__)


class _Order(NamedTuple):
    """One copy's letter to make: plain values, which a worker process can be sent."""

    copy: int  # the outbox row
    compiled: tuple[str, date]  # the template, and the day the letter was made on
    contact_id: int  # whose one-click unsubscribe token the letter carries (signed as it is made)
    recipient: Recipient
    message_id: str
    thread_id: str | None
    extra: dict[str, str] | None

    @property
    def made_for(self) -> tuple[Any, ...]:
        """What the letter kept for the copy must have been made for, to be taken instead of made again."""
        return (self.recipient, *self.compiled, self.message_id, self.thread_id, self.extra)


class _Letters:
    """The letters of a campaign made again: the templates compiled once for each day a letter was made on, with
    the sender and the signatories as they are now, each with its one-click token signed with `secret`."""

    def __init__(self, templates: Path, sender: Sender, head: Letterhead, limits: RenderLimits | None,
                 campaign_id: int, secret: bytes, spool: LetterSpool) -> None:  # fmt: skip
        self.templates, self.sender, self.head, self.limits = templates, sender, head, limits
        self.campaign_id, self.secret = campaign_id, secret
        self.spool = spool  # the letters the pass that checks made, for the pass that writes
        # A compiled template keeps what is the same for every copy of a language, the date too: one for each day.
        self.compiled: dict[tuple[str, date], tuple[CompiledTemplate, Letterhead]] = {}
        self.digests: dict[str, str] = {}

    def order(self, row: _Copy) -> _Order:
        """What one copy's letter is made from: under its Message-ID and in its thread, a follow-up saying what its
        first letter was called and when it went, as when it was queued."""
        day = as_utc(row.created_at).date()
        if (row.template, day) not in self.compiled:
            self.digest(row.template)  # before the files are read: an edit in between leaves the copies stale
            self.compiled[row.template, day] = (compile_template(self.templates, row.template, self.limits),
                                                replace(self.head, date=day))  # fmt: skip
        extra = None
        if row.thread_id:
            first = FollowUp(
                row.Contact,
                as_utc(row.next_attempt_at),
                row.thread_id,
                row.first_subject,
                as_utc(row.first_sent_at),
                row.first_language,
            )
            extra = first_letter_variables(first)
        return _Order(row.id, (row.template, day), row.Contact.id, recipient_of(row.Contact), row.message_id,
                      row.thread_id, extra)  # fmt: skip

    def made(self, order: _Order) -> Letter:
        """One copy's letter, made (what a worker process runs: a template compiled after it was forked is not
        there, and its letters are made here)."""
        template, head = self.compiled[order.compiled]
        token = unsubscribe_token(self.secret, order.contact_id, self.campaign_id)
        return letter_for(template, order.recipient, head, self.sender, order.message_id, thread_id=order.thread_id,
                          extra=order.extra, unsubscribe_token=token)  # fmt: skip

    def check(self, rows: Iterable[_Copy]) -> set[int]:
        """Make every copy's letter (on both cores when there are many) and return the copies found current: each
        already is what it would be written as. The others' letters are kept for the writes."""
        looked: deque[_Copy] = deque()  # the rows whose orders were handed out, in order: only orders are sent
        current: set[int] = set()

        def orders() -> Iterator[_Order]:
            for row in rows:
                looked.append(row)
                yield self.order(row)

        for order, letter in in_order(self.made, orders()):
            row = looked.popleft()
            if _is_current(row, letter, _written(row, letter, self.digest(row.template))):
                current.add(row.id)
            else:
                self.spool.keep(order.copy, order.made_for, letter)
        return current

    def make(self, row: _Copy) -> Letter:
        """The letter of one copy: the one kept when the check made it from the same, else made now."""
        order = self.order(row)
        return self.spool.take(row.id, order.made_for) or self.made(order)

    def digest(self, name: str) -> str:
        """The digest of a template's files as they are now."""
        if name not in self.digests:
            self.digests[name] = template_digest(self.templates, name)
        return self.digests[name]


def _rows(session: Session, ids: Sequence[int], *, lock: bool) -> Sequence[_Copy]:
    """The copies of `ids` still in a state that is refreshed, with their contact, template, letter and first
    letter; with `lock`, their outbox rows are locked until the transaction ends."""
    first = aliased(OutboxMessage)
    query = (
        select(OutboxMessage.id, OutboxMessage.message_id, OutboxMessage.state, OutboxMessage.thread_id,
               OutboxMessage.next_attempt_at, OutboxMessage.created_at, OutboxMessage.last_reply,
               OutboxMessage.recipient, OutboxMessage.recipient_name, OutboxMessage.language,
               OutboxMessage.subject, OutboxMessage.sender, OutboxMessage.envelope_sender,
               OutboxMessage.template_digest, Contact, CampaignStep.template, OutboxBody.letter,
               first.subject.label("first_subject"), first.sent_at.label("first_sent_at"),
               first.language.label("first_language"))
        .join(Contact, Contact.id == OutboxMessage.contact_id)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .outerjoin(OutboxBody, OutboxBody.message_id == OutboxMessage.message_id)
        .outerjoin(first, first.message_id == OutboxMessage.thread_id)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.state.in_(REFRESHED_STATES))
        .order_by(OutboxMessage.id)
    )  # fmt: skip
    if lock:
        # PostgreSQL re-checks the state of a row it had to wait for: one a sender claimed meanwhile drops out.
        # SQLite ignores FOR UPDATE; there the guarded UPDATE below does the same, under its one writer lock.
        query = query.with_for_update(of=OutboxMessage)
    return session.execute(query).all()


def _batches(ids: list[int]) -> Iterator[tuple[int, list[int]]]:
    """The ids a batch at a time, each with how many are done once it is."""
    for start in range(0, len(ids), BATCH):
        yield min(start + BATCH, len(ids)), ids[start : start + BATCH]


def refresh_campaign(
    sessions: sessionmaker[Session],
    templates: Path,
    name: str,
    default_sender: Sender,
    *,
    now: datetime,
    diff: bool = False,
    limits: RenderLimits | None = None,
    spool_folder: Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> RefreshReport:
    """Make every copy of a campaign not yet handed to the server (queued, held, failed) again from its template,
    its contact, the signatories and the campaign's sender as they are now, keeping its Message-ID, thread and due
    time; with `diff`, the report carries a unified diff of one changed copy. The letters made by the check are
    kept for the writes in `spool_folder` (the workspace's; None: the system's temporary folder).
    `progress(done, total, what)` hears after each batch how many copies are made and checked, then written."""
    report = RefreshReport(name)
    with sessions() as session:
        campaign = find_campaign(session, name)
        sender = campaign_sender(campaign, default_sender)
        head = letterhead(session, sender, now)
        campaign_id, secret = campaign.id, workspace_secret(session)
        ids = list(session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.campaign_id == campaign.id,
                                           OutboxMessage.state.in_(REFRESHED_STATES)).order_by(OutboxMessage.id)
        ))  # fmt: skip
    with LetterSpool(spool_folder) as spool:
        letters = _Letters(templates, sender, head, limits, campaign_id, secret, spool)

        # Every copy is made once, changing nothing, so that a broken one (TemplateRenderError: the contact, the
        # file, the line) stops the refresh before any batch is written; the batches then write the letters made.
        def checked() -> Iterator[_Copy]:
            for done, batch in _batches(ids):
                with sessions() as session:
                    yield from (row for row in _rows(session, batch, lock=False) if row.Contact.email)
                if progress:
                    progress(done, len(ids), "made and checked")

        # A copy the check found current is not looked at again: had its contact changed since, the refresh
        # reports it as it found it, as a refresh run a moment earlier would. The others are read again, locked.
        current = letters.check(checked())
        report.current += len(current)
        differing = [copy for copy in ids if copy not in current]
        for done, batch in _batches(differing):
            with sessions.begin() as session:
                for row in _rows(session, batch, lock=True):
                    _refresh(session, row, letters, report, now, diff=diff)
            if progress:
                progress(done, len(differing), "written")
    return report


def _written(row: _Copy, letter: Letter, digest: str) -> dict[str, Any]:
    """What a refresh writes in a copy's outbox row, as its letter made now has it."""
    return {"recipient": letter.recipient, "recipient_name": row.Contact.name, "language": letter.language,
            "subject": letter.subject, "sender": letter.sender, "envelope_sender": letter.envelope_sender,
            "template_digest": digest}  # fmt: skip


def _is_current(row: _Copy, letter: Letter, values: dict[str, Any]) -> bool:
    """Whether a copy already is what a refresh would write: its letter reads the same, and its row holds `values`."""
    return row.letter is not None and _holds(row, values) and same_letter(row.letter, letter.data)  # cheaper first


def _holds(row: _Copy, values: dict[str, Any]) -> bool:
    """Whether a copy's outbox row holds these values."""
    return all(getattr(row, column) == value for column, value in values.items())


def _refresh(session: Session, row: _Copy, letters: _Letters, report: RefreshReport, now: datetime, *,
             diff: bool) -> None:  # fmt: skip
    """Make one copy again and write what changed, if it is still where no sender has taken it."""
    if not row.Contact.email:  # erased (GDPR) since it was queued: there is nobody to make it for
        report.skipped["no address"] = report.skipped.get("no address", 0) + 1
        return
    letter = letters.make(row)
    values = _written(row, letter, letters.digest(row.template))
    made = row.letter is None
    changed = not made and not same_letter(row.letter, letter.data)
    # Held by migration 0006 for want of a letter (every copy queued since has one): made now, it may be released.
    releasable = made and row.state == "held"
    if not (made or changed) and _holds(row, values):  # current after all: what differed changed back since
        report.current += 1
        return
    # Through the session's connection: the same transaction, without the ORM's handling of each statement (half
    # the time of 15,000 small UPDATEs).
    connection = session.connection()
    written = connection.execute(_WRITE_COPY, {
        **values, "copy": row.id, "updated_at": now, "last_reply": None if releasable else row.last_reply,
    }).rowcount  # fmt: skip
    if written != 1:  # a sender claimed it between the look and the write: it sends the letter it read
        report.taken += 1
        return
    if made or changed:
        letter_values = {"copy": row.message_id, "letter": letter.data}
        if connection.execute(_WRITE_LETTER, letter_values).rowcount != 1:
            connection.execute(insert(_BODIES).values(message_id=row.message_id, letter=letter.data))
    if made:
        report.made += 1
        report.releasable += releasable
    elif changed:
        report.changed += 1
        if diff and report.diff is None:
            report.diff = letter_diff(row.letter, letter.data, f"{row.recipient} as it was", "as refreshed")
            report.diff_of = row.recipient
    else:
        report.current += 1
