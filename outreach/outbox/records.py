"""The outbox as the campaigner sees it: list messages by state, and send again those that may go again.

What may go again: a `failed` message (a permanent refusal, or temporary ones until the attempts ran out), an
`unknown` one (the sender stopped between the end of data and the server's answer: it may arrive twice), and a
`held` one (kept back). A `sent` message never moves again (states.MOVES), whatever is asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from outreach.db.models import Campaign, CampaignStep, Contact, OutboxBody, OutboxMessage, as_utc
from outreach.db.queries import find_campaign
from outreach.errors import InvalidValueError, NotFoundError
from outreach.outbox.states import State
from outreach.rendering.letters import domain_of

AGAIN = (State.FAILED, State.UNKNOWN, State.HELD)  # the states a message may be queued again from
_has_letter = OutboxMessage.message_id.in_(select(OutboxBody.message_id).where(OutboxBody.letter.is_not(None)))
# A campaign with a message in one of these has begun: a letter of it reached, or is reaching, a server.
BEGUN = (State.SENDING, State.COMMITTING, State.SENT, State.UNKNOWN)


@dataclass(frozen=True)
class OutboxEntry:
    """One message of the outbox, as a line of `outbox list`."""

    id: int
    campaign: str
    step: int
    recipient: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_reply: str | None
    message_id: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        values = dict(self.__dict__)
        for key in ("next_attempt_at", "sent_at"):
            values[key] = values[key].isoformat() if values[key] else None
        return values


@dataclass(frozen=True)
class FirstLetters:
    """The queued first letters of a campaign that has sent nothing yet: how many, to whom (by role, country,
    language and recipient domain), and when the first and the last of them are due."""

    campaign: str
    time_zone: str  # the campaign's zone, to show its times in (UTC when it has none)
    count: int
    roles: dict[str, int]
    countries: dict[str, int]
    languages: dict[str, int]
    domains: dict[str, int]
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Waiting:
    """The queued messages of active campaigns: how many, to which recipient domains, and when the next and the
    last of them are due."""

    count: int
    domains: dict[str, int]
    next_at: datetime | None
    last_at: datetime | None


def first_letters(
    sessions: sessionmaker[Session], *, due_by: datetime | None, campaign: str | None = None
) -> list[FirstLetters]:
    """The queued first letters (step 0) of active campaigns that have sent nothing yet, due by `due_by` (at any
    time when None), per campaign in the order they fall due: what is looked at before the first of them goes."""
    other = aliased(OutboxMessage)  # not correlated: the campaigns that have begun are found once, by state
    begun = select(other.campaign_id).where(other.state.in_(BEGUN))
    query = (
        select(Campaign.name, Campaign.time_zone, Contact.role, Contact.country, OutboxMessage.language,
               OutboxMessage.recipient, OutboxMessage.next_attempt_at)
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .join(Contact, Contact.id == OutboxMessage.contact_id)
        .where(OutboxMessage.state == State.QUEUED, CampaignStep.position == 0, Campaign.status == "active")
        .where(Campaign.id.not_in(begun))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    )  # fmt: skip
    if due_by is not None:
        query = query.where(OutboxMessage.next_attempt_at <= due_by)
    if campaign:
        query = query.where(Campaign.name == campaign)
    found: dict[str, tuple[str, tuple[Counter[str], ...], list[datetime]]] = {}
    with sessions() as session:
        for name, time_zone, role, country, language, recipient, due in session.execute(query):
            if name not in found:
                found[name] = (time_zone or "UTC", (Counter(), Counter(), Counter(), Counter()), [])
            roles, countries, languages, domains = found[name][1]
            roles[role or "no role"] += 1
            countries[country or "no country"] += 1
            languages[language] += 1
            domains[domain_of(recipient)] += 1
            found[name][2].append(as_utc(due))
    return [
        FirstLetters(name, time_zone, len(times), dict(roles), dict(countries), dict(languages), dict(domains),
                     first_at=times[0], last_at=times[-1])
        for name, (time_zone, (roles, countries, languages, domains), times) in found.items()
    ]  # fmt: skip


def waiting_messages(sessions: sessionmaker[Session], *, campaign: str | None = None) -> Waiting:
    """The queued messages of active campaigns (of `campaign` alone when given), whenever they are due."""
    query = (
        select(OutboxMessage.recipient, OutboxMessage.next_attempt_at)
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .where(OutboxMessage.state == State.QUEUED, Campaign.status == "active")
    )
    if campaign:
        query = query.where(Campaign.name == campaign)
    domains: Counter[str] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    with sessions() as session:
        for recipient, due in session.execute(query):
            domains[domain_of(recipient)] += 1
            due = as_utc(due)
            first, last = min(first or due, due), max(last or due, due)
    return Waiting(domains.total(), dict(domains), first, last)


def list_outbox(
    sessions: sessionmaker[Session],
    *,
    states: Sequence[str] = (),
    campaign: str | None = None,
    limit: int | None = 100,
) -> tuple[list[OutboxEntry], dict[str, int]]:
    """Messages in the given states (all without), newest change first, at most `limit` (None: all), and the count
    of every state."""
    for state in states:
        if state not in State.__members__.values():
            raise InvalidValueError(f"{state!r} is not an outbox state", hint=", ".join(State))
    with sessions() as session:
        query = (
            select(OutboxMessage, Campaign.name, CampaignStep.position)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
        )
        counting = select(OutboxMessage.state)
        if campaign:
            owner = find_campaign(session, campaign)
            query = query.where(OutboxMessage.campaign_id == owner.id)
            counting = counting.where(OutboxMessage.campaign_id == owner.id)
        if states:
            query = query.where(OutboxMessage.state.in_(states))
        counts: dict[str, int] = {}
        for state in session.scalars(counting):
            counts[state] = counts.get(state, 0) + 1
        entries = [
            OutboxEntry(message.id, name, position, message.recipient, message.state, message.attempts,
                        as_utc(message.next_attempt_at), as_utc(message.sent_at), message.last_reply,
                        message.message_id)
            for message, name, position in session.execute(query.limit(limit))
        ]  # fmt: skip
    return entries, counts


def requeue(
    sessions: sessionmaker[Session],
    now: datetime,
    *,
    states: Sequence[str] = (),
    ids: Sequence[int] = (),
    campaign: str | None = None,
) -> int:
    """Queue again, due now and with a fresh allowance of attempts, the messages of `ids` or in `states`.

    A message named by id that cannot go again (sent, cancelled, or on its way) is an error naming it, and
    nothing is changed; one found through `states` is only ever in a state that may go again.
    """
    for state in states:
        if state not in AGAIN:
            raise InvalidValueError(f"messages that are {state} cannot be queued again",
                                    hint=f"only {', '.join(AGAIN)} ones can")  # fmt: skip
    with sessions.begin() as session:
        query = update(OutboxMessage)
        if ids:
            found = {row.id: row.state for row in session.execute(
                select(OutboxMessage.id, OutboxMessage.state).where(OutboxMessage.id.in_(ids)))}  # fmt: skip
            for message_id in ids:
                if message_id not in found:
                    raise NotFoundError(f"there is no outbox message {message_id}")
                if found[message_id] not in AGAIN:
                    raise InvalidValueError(
                        f"outbox message {message_id} is {found[message_id]}",
                        hint="only failed, unknown or held messages can be queued again",
                    )
            unmade = session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(ids), ~_has_letter)).first()
            if unmade is not None:
                raise InvalidValueError(f"outbox message {unmade} has no letter: it was queued by an older version",
                                        hint="`outreach campaigns refresh CAMPAIGN` makes it first")  # fmt: skip
            query = query.where(OutboxMessage.id.in_(ids))
        # A copy queued by an older version waits for `campaigns refresh` to make its letter.
        query = query.where(OutboxMessage.state.in_(states or AGAIN), _has_letter)
        if campaign:
            query = query.where(OutboxMessage.campaign_id == find_campaign(session, campaign).id)
        moved = session.execute(query.values(state="queued", attempts=0, next_attempt_at=now, claimed_by=None,
                                             lease_until=None, updated_at=now)).rowcount  # type: ignore[attr-defined]  # fmt: skip
    return moved or 0


def hold_missed(sessions: sessionmaker[Session], *, since: datetime, before: datetime,
                now: datetime | None = None) -> int:  # fmt: skip
    """Hold the queued messages of active campaigns that fell due after `since` and by `before`: they missed their
    time while no scheduler ran, by more than the grace period, and go only when released (`outbox release`)."""
    now = now or datetime.now(UTC)
    active = select(Campaign.id).where(Campaign.status == "active")
    with sessions.begin() as session:
        moved = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == State.QUEUED, OutboxMessage.next_attempt_at > since,
                   OutboxMessage.next_attempt_at <= before, OutboxMessage.campaign_id.in_(active))
            .values(state=State.HELD, updated_at=now,
                    last_reply="held: it fell due while no scheduler ran, longer ago than OUTREACH_MISFIRE_GRACE")
        ).rowcount  # type: ignore[attr-defined]  # fmt: skip
    return moved or 0
