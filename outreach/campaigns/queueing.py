"""Queueing: every copy of a step rendered once, straight into the outbox, in one transaction.

One pass: each copy is rendered and written as it comes; if any copy fails, the transaction is rolled back and
nothing is queued, and the error names the contact, the template file and the line. The first step is queued for
the campaign's segment at once, each copy due when the campaign's schedule places it in its recipient's zone;
a follow-up is queued for a contact when it falls due (`queue_followups`, which `outreach run` calls), unless
the contact has replied, bounced or unsubscribed meanwhile: that is decided then, once, and recorded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from babel.dates import format_date
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import FollowUp, campaign_sender, find_step, follow_ups, schedule_of
from outreach.campaigns.plan import first_send_time, zone_for
from outreach.campaigns.spool import LetterSpool, MadeFrom
from outreach.contacts.directory import count_contacts
from outreach.contacts.segments import parse_segment
from outreach.contacts.selecting import streamed_contacts
from outreach.contacts.tokens import unsubscribe_token
from outreach.db.engine import workspace_secret
from outreach.db.models import Campaign, CampaignStep, Contact, OutboxBody, OutboxMessage, Response, StepSkip, as_utc
from outreach.db.queries import find_campaign, insert_many
from outreach.errors import ConfigError, InvalidValueError
from outreach.parallel import in_order
from outreach.rendering.copies import CompiledTemplate, Letterhead, Recipient
from outreach.rendering.environment import RenderLimits
from outreach.rendering.folders import template_digest
from outreach.rendering.letters import Letter, Sender, domain_of, letter_for
from outreach.rendering.mime import make_message_id
from outreach.rendering.previewing import compile_template, letterhead, recipient_of

BATCH = 500
_COLUMNS = (
    "campaign_id", "step_id", "contact_id", "state", "message_id", "recipient", "recipient_name", "language",
    "subject", "attempts", "next_attempt_at", "thread_id", "sender", "envelope_sender", "template_digest",
    "created_at", "updated_at",
)  # fmt: skip
_BODY_COLUMNS = ("message_id", "letter")


@dataclass
class QueueReport:
    """What queueing a step did, contact by contact."""

    campaign: str
    step: int
    queued: int = 0
    already_queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by contact status (bounced, unsubscribed ...)
    repeats: int = 0  # contacts another campaign has written to with the same template (skipped unless allowed)
    languages: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    domains: dict[str, int] = field(default_factory=dict)  # by recipient domain: what the pace is counted by
    dry_run: bool = False
    first_due: datetime | None = None  # when the first copy may go, as the schedule places it
    sender: str = ""  # the From address
    time_zone: str = "UTC"  # the campaign's, where its times are shown

    def count(self, letter: Letter, role: str | None, country: str | None, due: datetime) -> None:
        """Count one queued letter: by language, its contact's role and country, recipient domain, and its due
        time."""
        self.queued += 1
        for tally, key in ((self.languages, letter.language), (self.roles, role or "no role"),
                           (self.countries, country or "no country"),
                           (self.domains, domain_of(letter.recipient))):  # fmt: skip
            tally[key] = tally.get(key, 0) + 1
        self.first_due = min(self.first_due or due, due)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**self.__dict__, "first_due": self.first_due.isoformat() if self.first_due else None}


class _Order(NamedTuple):
    """One copy to queue: what its letter is made from (plain values, which a worker process can be sent), and
    what its outbox row and the report take from its contact."""

    contact_id: int
    name: str | None
    role: str | None
    country: str | None
    recipient: Recipient
    due: datetime
    thread_id: str | None
    extra: dict[str, str] | None
    letter: Letter | None = None  # made by a look before queueing, from the same: nothing to make

    @property
    def made_for(self) -> tuple[Any, ...]:
        """What a letter kept by the look must have been made for, to be taken instead of made again."""
        return (self.recipient, self.thread_id, self.extra)


class _Copies:
    """Letters of one step on their way into the outbox: rendered, counted, and written in batches."""

    def __init__(self, session: Session, campaign: Campaign, step: CampaignStep, template: CompiledTemplate,
                 head: Letterhead, sender: Sender, digest: str, report: QueueReport,
                 now: datetime) -> None:  # fmt: skip
        self.session, self.campaign, self.step, self.template, self.head = session, campaign, step, template, head
        self.sender, self.digest, self.report, self.now = sender, digest, report, now
        self.secret = workspace_secret(session)  # signs each letter's one-click unsubscribe token
        # Plain values for the worker: an ORM object read there could load from the database it inherited.
        self.campaign_id, self.step_id = campaign.id, step.id
        self.rows: list[tuple[Any, ...]] = []
        self.bodies: list[tuple[Any, ...]] = []
        self.keeping: LetterSpool | None = None  # where the letters made are kept (a look before queueing)
        self.taking: LetterSpool | None = None  # where letters made before are taken from, instead of made again

    @property
    def made_from(self) -> MadeFrom:
        """What these letters are made from, besides each contact's details."""
        return MadeFrom(self.digest, self.head, self.sender)

    def queue(self, wanted: Iterable[tuple[Contact, datetime, str | None, dict[str, str] | None]]) -> None:
        """Make the letter of each wanted copy (contact, due time, thread, and the variables of this contact alone
        that a follow-up adds) and queue it, in order; an error leaves the session, and nothing is kept. The
        letters are made on both cores where there are many (outreach/parallel.py)."""
        orders = (self._order(*copy) for copy in wanted)
        for order, letter in in_order(self._make, orders, local=lambda order: order.letter is not None):
            self._add(order, letter)
        self.flush()

    def _order(self, contact: Contact, due: datetime, thread_id: str | None = None,
               extra: dict[str, str] | None = None) -> _Order:  # fmt: skip
        """What one copy's letter is made from, or the letter a look before made from the same."""
        assert contact.email is not None
        order = _Order(contact.id, contact.name, contact.role, contact.country, recipient_of(contact), due, thread_id,
                       extra)  # fmt: skip
        letter = self.taking.take(contact.id, order.made_for) if self.taking else None
        return order if letter is None else order._replace(letter=letter)

    def _make(self, order: _Order) -> Letter:
        """One copy's letter, under a new Message-ID and with its signed one-click token (what a worker process
        runs: it reads nothing but the order and what was forked, so that the signing is shared out too)."""
        if order.letter is not None:
            return order.letter
        unique = f"outreach.{self.campaign_id}.{self.step_id}.{order.contact_id}.{secrets.token_hex(4)}"
        signed = unsubscribe_token(self.secret, order.contact_id, self.campaign_id)
        return letter_for(self.template, order.recipient, self.head, self.sender,
                          make_message_id(self.sender.domain, unique), thread_id=order.thread_id, extra=order.extra,
                          unsubscribe_token=signed)  # fmt: skip

    def _add(self, order: _Order, letter: Letter) -> None:
        """Queue one letter made."""
        if self.keeping:
            self.keeping.keep(order.contact_id, order.made_for, letter)
        self.report.count(letter, order.role, order.country, order.due)
        self.rows.append((
            self.campaign_id, self.step_id, order.contact_id, "queued", letter.message_id, letter.recipient,
            order.name, letter.language, letter.subject, 0, order.due, order.thread_id, letter.sender,
            letter.envelope_sender, self.digest, self.now, self.now,
        ))  # fmt: skip
        self.bodies.append((letter.message_id, letter.data))
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Insert the letters so far. A dry run inserts their messages too, which the rollback at the end undoes
        after the database has checked their constraints, but not the letters' bytes: there is nothing in them to
        check, and they are most of what a queue writes."""
        insert_many(self.session, OutboxMessage.__table__, _COLUMNS, self.rows)  # type: ignore[arg-type]
        if not self.report.dry_run:
            insert_many(self.session, OutboxBody.__table__, _BODY_COLUMNS, self.bodies)  # type: ignore[arg-type]
        self.rows.clear()
        self.bodies.clear()


def _copies(session: Session, campaign: Campaign, step: CampaignStep, templates: Path, default_sender: Sender,
            report: QueueReport, now: datetime, limits: RenderLimits | None) -> _Copies:  # fmt: skip
    """Everything the letters of a step share: the compiled template, the letterhead, the sender."""
    sender = campaign_sender(campaign, default_sender)
    if sender.mailbox is None:
        raise ConfigError("no sender: OUTREACH_FROM is not set and the campaign has no --from")
    report.sender = sender.mailbox.address
    digest = template_digest(templates, step.template)  # before compiling: an edit in between makes it stale
    template = compile_template(templates, step.template, limits)
    return _Copies(session, campaign, step, template, letterhead(session, sender, now), sender, digest, report, now)


def queue_step(
    sessions: sessionmaker[Session],
    templates: Path,
    name: str,
    default_sender: Sender,
    *,
    now: datetime,
    position: int = 0,
    dry_run: bool = False,
    allow_repeat: bool = False,
    progress: Callable[[int, int], None] | None = None,
    limits: RenderLimits | None = None,
    spool: LetterSpool | None = None,
) -> QueueReport:
    """Render and queue one step of a campaign for every active contact of its segment not yet queued, and not
    written to with the same template by another campaign unless `allow_repeat`.

    With `spool`, a dry run keeps every letter it makes there, and the run that queues takes from there the
    letters a dry run made from the same template, letterhead and sender, instead of making them again.
    `progress(seen, total)` hears of each contact of the segment looked at, of how many."""
    report = QueueReport(name, position, dry_run=dry_run)
    with sessions() as session:
        campaign = find_campaign(session, name)
        if campaign.status == "cancelled":
            raise InvalidValueError(f"campaign {name!r} is cancelled", hint="create a new campaign instead")
        step = find_step(session, campaign, position)
        copies = _copies(session, campaign, step, templates, default_sender, report, now, limits)
        if spool is not None and dry_run:
            spool.start(copies.made_from)
            copies.keeping = spool
        elif spool is not None and spool.usable(copies.made_from):
            copies.taking = spool
        placement, fallback = schedule_of(campaign)
        report.time_zone = campaign.time_zone or "UTC"
        done = set(session.scalars(
            select(OutboxMessage.contact_id).where(OutboxMessage.step_id == step.id, OutboxMessage.state != "cancelled")
        ))  # fmt: skip
        repeated = set() if allow_repeat else _written_with(session, step.template, besides=campaign.id)
        segment = parse_segment(campaign.segment)
        total = count_contacts(sessions, segment) if progress else 0

        def wanted(contacts: Iterable[Contact]) -> Iterator[tuple[Contact, datetime, None, None]]:
            for seen, contact in enumerate(contacts, 1):
                if progress:
                    progress(seen, total)
                if contact.status != "active" or not contact.email:
                    report.skipped[contact.status] = report.skipped.get(contact.status, 0) + 1
                elif contact.id in done:
                    report.already_queued += 1
                elif contact.id in repeated:
                    report.repeats += 1
                else:
                    zone = zone_for(contact.time_zone, contact.country, fallback)
                    yield contact, first_send_time(as_utc(campaign.send_at), now, zone, placement), None, None

        with streamed_contacts(session, segment) as contacts:
            copies.queue(wanted(contacts))
        if dry_run:
            session.rollback()
        else:
            if campaign.status == "draft":
                campaign.status = "active"
            session.commit()
    return report


def _written_with(session: Session, template: str, *, besides: int) -> set[int]:
    """The contacts other campaigns than `besides` have written to, or will, with this template: every copy but a
    cancelled one or one the server refused."""
    return set(session.scalars(
        select(OutboxMessage.contact_id).join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .where(CampaignStep.template == template, OutboxMessage.campaign_id != besides,
               OutboxMessage.state.not_in(("cancelled", "failed")))
    ))  # fmt: skip


@dataclass
class FollowUpReport:
    """What one look at the follow-ups did: queued, skipped (and why), and what waits for later."""

    waiting: int = 0
    next_due: datetime | None = None
    steps: list[QueueReport] = field(default_factory=list)  # the steps where something was queued or skipped

    @property
    def queued(self) -> int:
        """Follow-ups queued, all steps together."""
        return sum(step.queued for step in self.steps)

    @property
    def skipped(self) -> dict[str, int]:
        """Follow-ups skipped, by reason, all steps together."""
        total: dict[str, int] = {}
        for step in self.steps:
            for reason, count in step.skipped.items():
                total[reason] = total.get(reason, 0) + count
        return total

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"queued": self.queued, "skipped": self.skipped, "waiting": self.waiting,
                "next_due": self.next_due.isoformat() if self.next_due else None,
                "steps": [step.as_json() for step in self.steps]}  # fmt: skip


def queue_followups(
    sessions: sessionmaker[Session], templates: Path, default_sender: Sender, *, now: datetime,
    limits: RenderLimits | None = None,
) -> FollowUpReport:  # fmt: skip
    """Queue every follow-up that has fallen due (its delay after the contact's step before it was sent, placed
    in the campaign's hours in the contact's zone), and skip, once and for good, those whose contact replied,
    bounced or unsubscribed meanwhile. One transaction a step; a rendering error queues none of that step."""
    report = FollowUpReport()
    with sessions() as session:
        steps = [(name, position) for name, position in session.execute(
            select(Campaign.name, CampaignStep.position).join(CampaignStep, CampaignStep.campaign_id == Campaign.id)
            .where(Campaign.status == "active", CampaignStep.position > 0)
            .order_by(Campaign.id, CampaignStep.position))]  # fmt: skip
    for name, position in steps:
        with sessions.begin() as session:
            campaign = find_campaign(session, name)
            step = find_step(session, campaign, position)
            step_report = QueueReport(name, position)

            def due_now(session: Session = session, campaign: Campaign = campaign, step: CampaignStep = step,
                        step_report: QueueReport = step_report) -> Iterator[tuple[Contact, datetime, str | None,
                                                                                     dict[str, str]]]:  # fmt: skip
                for follow_up in follow_ups(session, campaign, step):
                    if follow_up.due > now:
                        report.waiting += 1
                        report.next_due = min(report.next_due or follow_up.due, follow_up.due)
                        continue
                    contact = follow_up.contact
                    reason = _skip_reason(session, campaign, step, contact)
                    if reason is not None:
                        session.add(StepSkip(step_id=step.id, contact_id=contact.id, reason=reason, created_at=now))
                        step_report.skipped[reason] = step_report.skipped.get(reason, 0) + 1
                        continue
                    yield contact, follow_up.due, follow_up.thread_id, first_letter_variables(follow_up)

            due = due_now()
            first = next(due, None)  # the template is compiled once a follow-up of the step is due
            if first is not None:
                copies = _copies(session, campaign, step, templates, default_sender, step_report, now, limits)
                copies.queue(chain([first], due))
        if step_report.queued or step_report.skipped:
            report.steps.append(step_report)
    return report


def first_letter_variables(follow_up: FollowUp) -> dict[str, str]:
    """What a follow-up's template says of the first letter: its subject, and the day it went, in its language."""
    if follow_up.first_sent_at is None:
        return {}
    sent_on = format_date(follow_up.first_sent_at.date(), "long", locale=follow_up.first_language or "en")
    return {"first_subject": follow_up.first_subject or "", "first_sent_on": sent_on}


def _skip_reason(session: Session, campaign: Campaign, step: CampaignStep, contact: Contact) -> str | None:
    """Why this follow-up must not go to this contact, or None: a suppressed contact (bounced, unsubscribed,
    complained) is never written to; one who replied to this campaign (by mail, or logged by hand) is not, when
    the step's `unless` names replies."""
    if contact.status != "active" or not contact.email:
        return contact.status
    if "replied" in step.unless.split(","):
        reply = (Response.contact_id == contact.id, Response.campaign_id == campaign.id, Response.kind == "reply")
        replied = session.scalar(select(exists().where(*reply)))
        if replied:
            return "replied"
    return None
