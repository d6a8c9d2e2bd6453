"""Campaigns as a campaigner names and manages them: create, list, show, pause, resume, cancel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from outreach.campaigns.plan import (
    Placement,
    first_send_time,
    follow_up_due,
    format_delay,
    parse_at,
    parse_clock,
    parse_delay,
    parse_window,
    place,
    zone,
    zone_for,
)
from outreach.contacts.segments import parse_segment
from outreach.contacts.selecting import check_segment
from outreach.db.models import Campaign, CampaignStep, Contact, OutboxMessage, StepSkip, as_utc
from outreach.db.queries import find_campaign
from outreach.errors import InvalidValueError, NotFoundError
from outreach.rendering.letters import Sender, parse_mailbox
from outreach.vocabulary import FOLLOW_UP_UNLESS, OUTBOX_STATES, UNSENT_STATES

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


@dataclass
class CampaignView:
    """A campaign as shown: its schedule, its steps (each with its counts and next send time) and how many of its
    messages are in each state."""

    name: str
    status: str
    segment: str
    sender: str | None
    reply_to: str | None
    created_at: datetime
    schedule: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Cancellation:
    """What cancelling a campaign does: how many unsent copies it withdraws, by state (queued, held), how many
    were sent already and stay sent, and how many a sender is handing to the server right now (they may go)."""

    campaign: str
    status: str
    withdrawn: dict[str, int]
    sent: int
    in_flight: int


@dataclass(frozen=True)
class FollowUp:
    """A contact whose step before this one was sent, when it falls due, and the first letter it threads under."""

    contact: Contact
    due: datetime
    thread_id: str | None  # the first letter's Message-ID
    first_subject: str | None = None  # what the reminder names it by
    first_sent_at: datetime | None = None
    first_language: str | None = None


def campaign_sender(campaign: Campaign, default: Sender) -> Sender:
    """The campaign's own sender and Reply-To where it has them, else the workspace's."""
    return replace(
        default,
        mailbox=parse_mailbox(campaign.sender, "--from") if campaign.sender else default.mailbox,
        reply_to=parse_mailbox(campaign.reply_to, "--reply-to") if campaign.reply_to else default.reply_to,
    )


def schedule_of(campaign: Campaign) -> tuple[Placement, ZoneInfo]:
    """Where in the day a campaign's letters may go, and the zone of contacts whose own zone is unknown."""
    placement = Placement(
        local_time=parse_clock(campaign.local_time, "--local-time") if campaign.local_time else None,
        window=parse_window(campaign.window) if campaign.window else None,
        weekdays_only=campaign.weekdays_only,
    )
    return placement, zone(campaign.time_zone or "UTC")


def find_step(session: Session, campaign: Campaign, position: int) -> CampaignStep:
    """A campaign's step at `position` (0 is the first letter), or a clear error."""
    step = session.scalars(
        select(CampaignStep).where(CampaignStep.campaign_id == campaign.id, CampaignStep.position == position)
    ).one_or_none()
    if step is None:
        raise NotFoundError(f"campaign {campaign.name!r} has no step {position}")
    return step


def create_campaign(
    sessions: sessionmaker[Session],
    name: str,
    template: str,
    segment: str,
    *,
    sender: str | None,
    reply_to: str | None,
    now: datetime,
) -> CampaignView:
    """Create a campaign with its first step; the segment is checked now, not at sending time."""
    if not _NAME.fullmatch(name):
        raise InvalidValueError(f"campaign name {name!r}: use lower-case letters, digits, '.', '_' and '-'")
    parsed = parse_segment(segment)
    with sessions.begin() as session:
        if session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
            raise InvalidValueError(f"a campaign {name!r} exists already")
        check_segment(session, parsed)  # a campaign its segment names (campaign:NAME=STATE) must exist
        campaign = Campaign(name=name, segment=str(parsed) if parsed.clauses else "", sender=sender,
                            reply_to=reply_to, status="draft", created_at=now)  # fmt: skip
        session.add(campaign)
        session.flush()
        session.add(CampaignStep(campaign_id=campaign.id, position=0, template=template, created_at=now))
    return show_campaign(sessions, name)


def add_follow_up(
    sessions: sessionmaker[Session], name: str, template: str, after: str, unless: str, *, now: datetime
) -> CampaignView:
    """Add a follow-up step: `after` ("7d") the contact's step before it was sent, unless they have (any of
    `unless`: replied, bounced, unsubscribed) meanwhile."""
    delay = parse_delay(after)
    conditions = [word.strip() for word in unless.split(",") if word.strip()]
    wrong = [word for word in conditions if word not in FOLLOW_UP_UNLESS]
    if wrong:
        raise InvalidValueError(f"--unless {wrong[0]!r} is not one of {', '.join(FOLLOW_UP_UNLESS)}")
    with sessions.begin() as session:
        campaign = find_campaign(session, name)
        if campaign.status == "cancelled":
            raise InvalidValueError(f"campaign {name!r} is cancelled", hint="create a new campaign instead")
        last = session.scalar(select(func.max(CampaignStep.position)).where(CampaignStep.campaign_id == campaign.id))
        session.add(CampaignStep(campaign_id=campaign.id, position=(last or 0) + 1, template=template,
                                 delay_seconds=int(delay.total_seconds()), unless=",".join(conditions),
                                 created_at=now))  # fmt: skip
    return show_campaign(sessions, name, now=now)


def schedule_campaign(
    sessions: sessionmaker[Session], name: str, *, at: str | None, tz: str | None, local_time: str | None,
    weekdays_only: bool, window: str | None, now: datetime,
) -> CampaignView:  # fmt: skip
    """Set when a campaign sends: not before `at` (read in `tz`), at `local_time` in each recipient's zone,
    within `window` and on weekdays if asked; the copies already queued are placed again."""
    zone_name = str(zone(tz).key) if tz else None
    placement = Placement(
        local_time=parse_clock(local_time, "--local-time") if local_time else None,
        window=parse_window(window) if window else None,
        weekdays_only=weekdays_only,
    )
    send_at = parse_at(at, zone(zone_name or "UTC")) if at else None
    with sessions.begin() as session:
        campaign = find_campaign(session, name)
        campaign.send_at, campaign.time_zone = send_at, zone_name
        campaign.local_time = f"{placement.local_time:%H:%M}" if placement.local_time else None
        campaign.window = str(placement.window) if placement.window else None
        campaign.weekdays_only = weekdays_only
        _place_queued(session, campaign, now)
    return show_campaign(sessions, name, now=now)


def _place_queued(session: Session, campaign: Campaign, now: datetime) -> None:
    """Give each queued copy of a campaign the time its schedule now says (a follow-up keeps its own due time
    as the earliest)."""
    placement, fallback = schedule_of(campaign)
    queued = session.execute(
        select(OutboxMessage, Contact.time_zone, Contact.country, CampaignStep.position)
        .join(Contact, Contact.id == OutboxMessage.contact_id)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.state == "queued")
    )  # fmt: skip
    for message, time_zone, country, position in queued:
        where = zone_for(time_zone, country, fallback)
        if position == 0:
            message.next_attempt_at = first_send_time(as_utc(campaign.send_at), now, where, placement)
        else:
            message.next_attempt_at = place(max(as_utc(message.next_attempt_at), now), where, placement)
        message.updated_at = now


def show_campaign(sessions: sessionmaker[Session], name: str, *, now: datetime | None = None) -> CampaignView:
    """A campaign with its schedule, its steps (due, waiting, sent, skipped, failed, and the next send time) and
    its outbox counts by state."""
    with sessions() as session:
        campaign = find_campaign(session, name)
        view = CampaignView(campaign.name, campaign.status, campaign.segment, campaign.sender, campaign.reply_to,
                            as_utc(campaign.created_at), schedule=_schedule(campaign))  # fmt: skip
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        steps = session.scalars(select(CampaignStep).where(CampaignStep.campaign_id == campaign.id)
                                .order_by(CampaignStep.position))  # fmt: skip
        for step in steps:
            by_state = dict.fromkeys(OUTBOX_STATES, 0)
            rows = session.execute(
                select(OutboxMessage.state, func.count()).where(OutboxMessage.step_id == step.id)
                .group_by(OutboxMessage.state)
            )  # fmt: skip
            for state, count in rows:
                by_state[state] = count
                counts[state] += count
            view.steps.append(_step_view(session, campaign, step, by_state, now))
        view.outbox = counts
        return view


def _schedule(campaign: Campaign) -> dict[str, Any]:
    """The campaign's schedule as shown."""
    send_at = as_utc(campaign.send_at)
    return {"send_at": send_at.isoformat() if send_at else None, "time_zone": campaign.time_zone,
            "local_time": campaign.local_time, "window": campaign.window,
            "weekdays_only": campaign.weekdays_only}  # fmt: skip


def _step_view(session: Session, campaign: Campaign, step: CampaignStep, by_state: dict[str, int],
               now: datetime | None) -> dict[str, Any]:  # fmt: skip
    """One step's counts: queued copies due now and waiting for their time, sent, skipped; its next send time
    (the earliest queued copy, or for a follow-up the earliest not yet queued)."""
    queued = select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.step_id == step.id, OutboxMessage.state == "queued"
    )
    total, first = session.execute(queued).one()
    due = None
    if now is not None:
        ready = (OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= now)
        due = session.scalar(select(func.count()).where(OutboxMessage.step_id == step.id, *ready))
    reasons = select(StepSkip.reason, func.count()).where(StepSkip.step_id == step.id).group_by(StepSkip.reason)
    skipped: dict[str, int] = {reason: count for reason, count in session.execute(reasons)}
    upcoming = [as_utc(first)] if first else []
    pending = 0
    if step.position > 0 and now is not None:  # `campaigns list` needs no next send time: it skips this
        for follow_up in follow_ups(session, campaign, step):
            pending += 1
            upcoming.append(follow_up.due)
    return {"position": step.position, "template": step.template, "after": format_delay(
                timedelta(seconds=step.delay_seconds)) if step.position else None,
            "unless": step.unless.split(",") if step.position else [], "due": due,
            "waiting": total - (due or 0) + pending, "sent": by_state["sent"], "skipped": skipped,
            "next_send": min(upcoming).isoformat() if upcoming else None, "outbox": by_state}  # fmt: skip


def follow_ups(session: Session, campaign: Campaign, step: CampaignStep) -> Iterator[FollowUp]:
    """The follow-ups of a step still to decide: contacts whose step before was sent, with neither a copy of
    this step nor a skip recorded, each with the time it falls due in the campaign's hours in their zone."""
    previous, first = aliased(OutboxMessage), aliased(OutboxMessage)
    before = select(CampaignStep.id).where(CampaignStep.campaign_id == campaign.id,
                                            CampaignStep.position == step.position - 1).scalar_subquery()  # fmt: skip
    opening = select(CampaignStep.id).where(CampaignStep.campaign_id == campaign.id,
                                             CampaignStep.position == 0).scalar_subquery()  # fmt: skip
    query = (
        select(Contact, previous.sent_at, first.message_id, first.subject, first.sent_at, first.language)
        .join(previous, previous.contact_id == Contact.id)
        .outerjoin(first, (first.contact_id == Contact.id) & (first.step_id == opening) & (first.state == "sent"))
        .where(previous.step_id == before, previous.state == "sent", previous.sent_at.is_not(None))
        .where(~exists().where(OutboxMessage.step_id == step.id, OutboxMessage.contact_id == Contact.id,
                               OutboxMessage.state != "cancelled"))
        .where(~exists().where(StepSkip.step_id == step.id, StepSkip.contact_id == Contact.id))
        .order_by(Contact.id)
    )  # fmt: skip
    placement, fallback = schedule_of(campaign)
    delay = timedelta(seconds=step.delay_seconds)
    for contact, sent_at, thread_id, subject, first_sent_at, language in session.execute(query):
        where = zone_for(contact.time_zone, contact.country, fallback)
        due = follow_up_due(as_utc(cast(datetime, sent_at)), delay, where, placement)  # a sent letter's time
        yield FollowUp(contact, due, thread_id, subject, as_utc(first_sent_at), language)


def list_campaigns(sessions: sessionmaker[Session]) -> list[CampaignView]:
    """Every campaign, oldest first."""
    with sessions() as session:
        names = list(session.scalars(select(Campaign.name).order_by(Campaign.id)))
    return [show_campaign(sessions, name) for name in names]


def cancellation(sessions: sessionmaker[Session], name: str) -> Cancellation:
    """What `set_status(name, "cancelled")` would do now, changing nothing."""
    with sessions() as session:
        campaign = find_campaign(session, name)
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        by_state = select(OutboxMessage.state, func.count()).where(OutboxMessage.campaign_id == campaign.id)
        for state, count in session.execute(by_state.group_by(OutboxMessage.state)):
            counts[state] = count
        return Cancellation(campaign.name, campaign.status, {state: counts[state] for state in UNSENT_STATES},
                            counts["sent"], counts["sending"] + counts["committing"])  # fmt: skip


def set_status(sessions: sessionmaker[Session], name: str, status: str) -> CampaignView:
    """Pause, resume (active) or cancel a campaign; a cancelled campaign stays cancelled."""
    with sessions.begin() as session:
        campaign = find_campaign(session, name)
        if campaign.status == "cancelled" and status != "cancelled":
            raise InvalidValueError(f"campaign {name!r} is cancelled", hint="create a new campaign instead")
        campaign.status = status
        if status == "cancelled":  # what has not gone yet never will
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.state.in_(UNSENT_STATES))
                .values(state="cancelled")
            )
    return show_campaign(sessions, name)
