"""The outbox as the campaigner sees it: list messages by state, and send again those that may go again.

What may go again: a `failed` message (a permanent refusal, or temporary ones until the attempts ran out), an
`unknown` one (the sender stopped between the end of data and the server's answer: it may arrive twice), and a
`held` one (kept back). A `sent` message never moves again (states.MOVES), whatever is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import find_campaign
from outreach.db.models import Campaign, CampaignStep, OutboxMessage, as_utc
from outreach.errors import InvalidValueError, NotFoundError
from outreach.outbox.states import State

AGAIN = (State.FAILED, State.UNKNOWN, State.HELD)  # the states a message may be queued again from


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


def list_outbox(
    sessions: sessionmaker[Session], *, states: Sequence[str] = (), campaign: str | None = None, limit: int = 100
) -> tuple[list[OutboxEntry], dict[str, int]]:
    """Messages in the given states (all without), newest change first, and the count of every state."""
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
            query = query.where(OutboxMessage.id.in_(ids))
        query = query.where(OutboxMessage.state.in_(states or AGAIN))
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
