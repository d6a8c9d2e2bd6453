"""What a campaigner records by hand in the response log: a correction of a response's kind (its effects
follow), an answer that came another way (a call, a letter, a meeting), and what a response came to (an outcome;
`signed` makes the contact a signatory, printed as the campaigner confirmed).

Polling the inbox is outreach/responses/polling.py; matching against the database, linking.py; effects, effects.py;
reading the log, views.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.directory import find_contact
from outreach.contacts.signatories import Enrolled, SignatoryView, checked_line, draft_for, enrol
from outreach.db.models import (
    Contact,
    Response,
)
from outreach.errors import InvalidValueError
from outreach.responses.effects import SOFT_BOUNCE_LIMIT, apply_effects, settle_soft_bounces, undo_effects
from outreach.responses.linking import last_letter
from outreach.responses.views import ResponseView, get_response, views_of
from outreach.vocabulary import CHANNELS, OUTCOMES, RESPONSE_KINDS


def reclassify(
    sessions: sessionmaker[Session], response_id: int, kind: str, *, now: datetime,
    soft_bounce_limit: int = SOFT_BOUNCE_LIMIT,
) -> ResponseView:  # fmt: skip
    """Correct a response's kind: the old kind's effects are undone and the new kind's applied."""
    if kind not in RESPONSE_KINDS:
        raise InvalidValueError(f"kind {kind!r} is not one of {', '.join(RESPONSE_KINDS)}")
    with sessions.begin() as session:
        response = get_response(session, response_id)
        undo_effects(session, response, now)
        if response.kind == "soft_bounce" and response.contact_id is not None:
            settle_soft_bounces(session, response, soft_bounce_limit, now)
        response.kind = kind
        apply_effects(session, response, soft_bounce_limit, now)
        session.flush()
        return views_of(session, [response])[0]


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
        last = last_letter(session, contact.id)
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
        return views_of(session, [response])[0]


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
        response = get_response(session, response_id)
        response.outcome = outcome
        enrolled = _sign(session, response, now, signatory) if outcome == "signed" else None
        session.flush()
        view = views_of(session, [response])[0]
        return Marked(view, enrolled.signatory, enrolled.already) if enrolled else Marked(view)


def signatory_draft(sessions: sessionmaker[Session], response_id: int) -> dict[str, str | None]:
    """The signatory line marking this response signed would print, for the campaigner to edit and confirm."""
    with sessions() as session:
        return draft_for(_signing_contact(session, get_response(session, response_id)))


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
