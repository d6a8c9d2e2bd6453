"""The report's service: read what happened from the database, in a handful of set-based queries, and hand it to
the pure figures.

Each query reads one kind of record for all the campaigns asked about at once (the outbox messages, the skips,
the responses, the signatories), never one query per contact; only the list of who has not answered is read a
campaign at a time, as the segment `campaign:NAME=no-reply` it is (see _unanswered). The counting is left to
figures.py rather than to GROUP BY: a campaign counts contacts, not messages, across its steps and per role and
country, and the median time to first reply needs each contact's first letter and first reply, which sums of SQL
groups cannot give.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.segments import Clause, Segment
from outreach.contacts.selecting import segment_contacts
from outreach.db.models import Campaign, CampaignStep, Contact, OutboxMessage, Response, Signatory, StepSkip, as_utc
from outreach.db.queries import find_campaign
from outreach.reports.figures import (
    CampaignRecord,
    MessageRecord,
    Records,
    Report,
    ResponseRecord,
    SkipRecord,
    StepRecord,
    UnansweredRecord,
    build_report,
)
from outreach.vocabulary import ERASED


def collect_report(sessions: sessionmaker[Session], campaign: str | None = None, *, now: datetime) -> Report:
    """The report on one campaign, or on every campaign when `campaign` is None; an unknown name is an error."""
    return build_report(collect_records(sessions, campaign), now=now, campaign=campaign)


def collect_records(sessions: sessionmaker[Session], campaign: str | None = None) -> Records:
    """What the report on one campaign (or all) is computed from, read in one transaction so the parts agree."""
    with sessions() as session:
        if campaign is not None:
            only: int | None = find_campaign(session, campaign).id
            query = select(Campaign).where(Campaign.id == only)
        else:
            only = None
            query = select(Campaign).order_by(Campaign.id)
        campaigns = [CampaignRecord(c.id, c.name, c.status, as_utc(c.created_at)) for c in session.scalars(query)]
        return Records(
            campaigns=campaigns,
            steps=_steps(session, only),
            messages=_messages(session, only),
            skips=_skips(session, only),
            responses=_responses(session, only),
            signed=_signed(session),
            unanswered=[record for c in campaigns for record in _unanswered(session, c)],
        )


def _steps(session: Session, campaign_id: int | None) -> list[StepRecord]:
    query = select(CampaignStep.id, CampaignStep.campaign_id, CampaignStep.position, CampaignStep.template)
    if campaign_id is not None:
        query = query.where(CampaignStep.campaign_id == campaign_id)
    return [StepRecord(*row) for row in session.execute(query)]


def _messages(session: Session, campaign_id: int | None) -> list[MessageRecord]:
    """Every outbox message of the campaign(s), with its contact's role and country."""
    query = select(
        OutboxMessage.campaign_id, OutboxMessage.step_id, OutboxMessage.contact_id, OutboxMessage.state,
        OutboxMessage.sent_at, Contact.role, Contact.country,
    ).join(Contact, Contact.id == OutboxMessage.contact_id)  # fmt: skip
    if campaign_id is not None:
        query = query.where(OutboxMessage.campaign_id == campaign_id)
    return [MessageRecord(c, s, contact, state, as_utc(sent_at), role, country)
            for c, s, contact, state, sent_at, role, country in session.execute(query)]  # fmt: skip


def _skips(session: Session, campaign_id: int | None) -> list[SkipRecord]:
    """Every follow-up skipped in the campaign(s), with the contact's role and country."""
    query = (
        select(CampaignStep.campaign_id, StepSkip.step_id, StepSkip.contact_id, StepSkip.reason, Contact.role,
               Contact.country)
        .join(CampaignStep, CampaignStep.id == StepSkip.step_id)
        .join(Contact, Contact.id == StepSkip.contact_id)
    )  # fmt: skip
    if campaign_id is not None:
        query = query.where(CampaignStep.campaign_id == campaign_id)
    return [SkipRecord(*row) for row in session.execute(query)]


def _responses(session: Session, campaign_id: int | None) -> list[ResponseRecord]:
    """Every response matched to the campaign(s), with the step it answers and who sent it."""
    query = (
        select(Response.id, Response.campaign_id, OutboxMessage.step_id, Response.contact_id, Response.kind,
               Response.channel, Response.outcome, Response.received_at, Contact.role, Contact.country, Contact.name,
               Contact.email, Response.sender, Response.text, Contact.forgotten_at)
        .outerjoin(OutboxMessage, OutboxMessage.id == Response.outbox_message_id)
        .outerjoin(Contact, Contact.id == Response.contact_id)
        .where(Response.campaign_id.is_not(None))
    )  # fmt: skip
    if campaign_id is not None:
        query = query.where(Response.campaign_id == campaign_id)
    records = []
    for (id_, campaign, step, contact_id, kind, channel, outcome, received_at, role, country, name, email, sender,
         text, forgotten_at) in session.execute(query):  # fmt: skip
        address = email or sender
        who = f"{name} <{address}>" if name and address else name or address
        if forgotten_at is not None:  # `contacts forget`: a reply logged by hand had no sender to say so
            who, text = ERASED, text and ERASED
        assert campaign is not None  # the query asks for responses matched to a campaign
        records.append(ResponseRecord(id_, campaign, step, contact_id, kind, channel, outcome, as_utc(received_at),
                                      role, country, who, text))  # fmt: skip
    return records


def _unanswered(session: Session, campaign: CampaignRecord) -> list[UnansweredRecord]:
    """Who has not answered a campaign, with the day its first letter to them went: the contacts of
    `--segment campaign:NAME=no-reply` itself, so the page and the export agree. One query per campaign (a report
    has a handful): the segment's query is fastest for one campaign at a time (outreach/contacts/selecting.py)."""
    first = (
        select(OutboxMessage.contact_id, func.min(OutboxMessage.sent_at).label("sent_at"))
        .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.state == "sent")
        .group_by(OutboxMessage.contact_id)
        .subquery()
    )
    no_reply = Segment((Clause("campaign", ("no-reply",), campaign=campaign.name),))
    query = (
        segment_contacts(session, no_reply)
        .join(first, first.c.contact_id == Contact.id)
        .with_only_columns(Contact.id, Contact.name, Contact.position, Contact.role, Contact.country, Contact.email,
                           first.c.sent_at)
    )  # fmt: skip
    return [UnansweredRecord(campaign.id, contact, name, position, role, country, email, as_utc(sent_at))
            for contact, name, position, role, country, email, sent_at in session.execute(query)]  # fmt: skip


def _signed(session: Session) -> list[datetime]:
    """When each signatory signed; for those imported from a list, when they were added."""
    return [as_utc(at) for at in session.scalars(select(func.coalesce(Signatory.signed_at, Signatory.created_at)))]
