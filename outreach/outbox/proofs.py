"""Proofs: a campaign's letters sent now to the campaigner, over one connection, before the real send.

They pass through neither the outbox nor its pace (a few letters to one's own address), are signed and dated as
the real ones will be, and are recorded in `proofs`, which no outbox figure or report counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import Proof
from outreach.outbox.sending import Sending, wire
from outreach.outbox.states import Verdict, classify_reply
from outreach.rendering.letters import Letter


@dataclass(frozen=True)
class ProofSent:
    """One proof: whose letter it is, where it went, and what the server said."""

    contact: str
    to: str
    language: str
    subject: str
    accepted: bool
    reply: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dict(self.__dict__)


def send_proofs(
    sessions: sessionmaker[Session], campaign_id: int, letters: Sequence[tuple[int, str, Letter]], sending: Sending
) -> list[ProofSent]:
    """Send each letter (contact id, contact address, letter) now over one connection, and record it."""
    sent: list[ProofSent] = []
    transport = sending.connect()
    try:
        for contact_id, contact, letter in letters:
            now = sending.clock()
            data = wire(letter.data, letter.sender, now, sending.signers)
            smtputf8 = not (letter.recipient.isascii() and letter.envelope_sender.isascii())
            reply = transport.send(letter.envelope_sender, letter.recipient, data, lambda: None, smtputf8=smtputf8)
            said = f"{reply.code or '-'} {reply.text}".strip()
            accepted = classify_reply(reply.code, reply.text, after_data_mark=reply.after_data_mark) is Verdict.SENT
            with sessions.begin() as session:
                session.add(Proof(campaign_id=campaign_id, contact_id=contact_id, recipient=letter.recipient,
                                  message_id=letter.message_id, language=letter.language, reply=said[:2000],
                                  sent_at=now))  # fmt: skip
            sent.append(ProofSent(contact, letter.recipient, letter.language, letter.subject, accepted, said))
    finally:
        transport.close()
    return sent
