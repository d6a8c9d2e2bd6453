"""Campaigns as a campaigner names and manages them: create, list, show, pause, resume, cancel."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.segments import parse_segment
from outreach.db.models import Campaign, CampaignStep, OutboxMessage
from outreach.errors import InvalidValueError, NotFoundError
from outreach.rendering.previewing import Sender, parse_mailbox
from outreach.vocabulary import OUTBOX_STATES

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


@dataclass
class CampaignView:
    """A campaign as shown: its steps and how many of its messages are in each state."""

    name: str
    status: str
    segment: str
    sender: str | None
    reply_to: str | None
    created_at: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def find_campaign(session: Session, name: str) -> Campaign:
    """The campaign of that name, or a clear error."""
    campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
    if campaign is None:
        raise NotFoundError(f"no campaign {name!r}", hint="`outreach campaigns list` shows them")
    return campaign


def campaign_sender(campaign: Campaign, default: Sender) -> Sender:
    """The campaign's own sender and Reply-To where it has them, else the workspace's."""
    return Sender(
        parse_mailbox(campaign.sender, "--from") if campaign.sender else default.mailbox,
        default.organization,
        parse_mailbox(campaign.reply_to, "--reply-to") if campaign.reply_to else default.reply_to,
    )


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
        campaign = Campaign(name=name, segment=str(parsed) if parsed.clauses else "", sender=sender,
                            reply_to=reply_to, status="draft", created_at=now)  # fmt: skip
        session.add(campaign)
        session.flush()
        session.add(CampaignStep(campaign_id=campaign.id, position=0, template=template, delay_days=0, created_at=now))
    return show_campaign(sessions, name)


def show_campaign(sessions: sessionmaker[Session], name: str) -> CampaignView:
    """A campaign with its steps and its outbox counts by state."""
    with sessions() as session:
        campaign = find_campaign(session, name)
        view = CampaignView(campaign.name, campaign.status, campaign.segment, campaign.sender, campaign.reply_to,
                            campaign.created_at)  # fmt: skip
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
            view.steps.append({"position": step.position, "template": step.template,
                               "after_days": step.delay_days, "outbox": by_state})  # fmt: skip
        view.outbox = counts
        return view


def list_campaigns(sessions: sessionmaker[Session]) -> list[CampaignView]:
    """Every campaign, oldest first."""
    with sessions() as session:
        names = list(session.scalars(select(Campaign.name).order_by(Campaign.id)))
    return [show_campaign(sessions, name) for name in names]


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
                .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.state.in_(("queued", "held")))
                .values(state="cancelled")
            )
    return show_campaign(sessions, name)
