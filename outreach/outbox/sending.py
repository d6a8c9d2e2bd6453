"""Draining the outbox: claim a message, run the SMTP transaction, record what became of it.

Three short transactions per message, none held across the network (STYLE 6): the claim (`queued` ->
`sending`, with a lease), the commit point (`sending` -> `committing`, written just before the end-of-data mark
leaves), and the outcome (`sent`, back to `queued` with a later attempt, `failed`, or `unknown`). Each move is one
guarded UPDATE that checks its row count, so two senders can never both own a message. A message left in
`committing` by a sender that died is `unknown`: it may have been delivered, and is resent only on request.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import campaign_sender
from outreach.contacts.addresses import parse_address
from outreach.contacts.directory import suppress_address
from outreach.db.models import Campaign, Contact, OutboxMessage
from outreach.outbox.pacing import Pacer
from outreach.outbox.smtp import Reply
from outreach.outbox.states import Verdict, classify_reply, next_attempt_at
from outreach.rendering.mime import Mailbox, Message, build_message
from outreach.rendering.previewing import Sender

LEASE = timedelta(minutes=2)


class Transport(Protocol):
    """What sending needs from SMTP (or from the .eml writer of a dry run)."""

    def send(
        self, sender: str, recipient: str, data: bytes, before_commit: Callable[[], None], *, smtputf8: bool = False
    ) -> Reply: ...

    def close(self) -> None: ...


@dataclass
class SendReport:
    """What one drain of the outbox did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    recovered: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (recipient, reply)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return dict(self.__dict__)


def worker_name() -> str:
    """Who claims: host and process, so that a glance at the outbox says which sender holds what."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str | None) -> bool:
    """True when the worker that claimed a message was a process of this host that no longer runs."""
    host, _, pid = (worker or "").rpartition(":")
    # Only on POSIX: there, signal 0 only asks whether the process exists; on Windows os.kill would end it.
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(sessions: sessionmaker[Session], now: datetime) -> dict[str, int]:
    """Take back what a stopped sender left (its lease ran out, or its process on this host is gone): a claim
    without data sent is queued again; one that may have sent its end-of-data mark becomes unknown."""
    found = {"queued": 0, "unknown": 0}
    with sessions.begin() as session:
        held = session.execute(
            select(OutboxMessage.id, OutboxMessage.state, OutboxMessage.claimed_by, OutboxMessage.lease_until)
            .where(OutboxMessage.state.in_(("sending", "committing")))
        ).all()  # fmt: skip
        for message_id, state, worker, lease_until in held:
            if not (_gone(worker) or (lease_until is not None and _aware(lease_until) < now)):
                continue
            target = "queued" if state == "sending" else "unknown"
            note = None if target == "queued" else (
                "the sender stopped after the end of data, before the server's answer was recorded")  # fmt: skip
            moved = session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.state == state)
                .values(state=target, claimed_by=None, lease_until=None, updated_at=now,
                        **({"last_reply": note} if note else {}))
            ).rowcount  # type: ignore[attr-defined]  # fmt: skip
            found[target] += moved or 0
    return found


def _aware(instant: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored as UTC."""
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _claim(
    sessions: sessionmaker[Session], worker: str, now: datetime, campaign: str | None, default: Sender
) -> tuple[OutboxMessage, Sender] | None:
    """Claim the next due message of an active campaign, with the sender it goes out from."""
    with sessions.begin() as session:
        query = (
            select(OutboxMessage)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .where(OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= now, Campaign.status == "active")
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
        )
        if campaign:
            query = query.where(Campaign.name == campaign)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OutboxMessage)  # other senders skip what we hold
        message = session.scalars(query).first()
        if message is None:
            return None
        claimed = session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message.id, OutboxMessage.state == "queued")
            .values(state="sending", claimed_by=worker, lease_until=now + LEASE, updated_at=now)
        ).rowcount  # type: ignore[attr-defined]  # fmt: skip
        if claimed != 1:
            return None
        session.refresh(message)
        sender = campaign_sender(session.get_one(Campaign, message.campaign_id), default)
        session.expunge(message)
        return message, sender


def _move(sessions: sessionmaker[Session], message_id: int, source: str, now: datetime, **values: Any) -> None:
    """One guarded move; a row that is no longer where we left it means another sender took it: stop loudly."""
    with sessions.begin() as session:
        moved = session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.state == source)
            .values(updated_at=now, **values)
        ).rowcount  # type: ignore[attr-defined]  # fmt: skip
    if moved != 1:
        raise RuntimeError(f"outbox message {message_id} left state {source!r} under this sender's feet")


@dataclass
class Sending:
    """Everything a drain needs besides the database: who sends, how, at what pace, on what clock."""

    transport: Transport
    sender: Mailbox
    reply_to: Mailbox | None
    pacer: Pacer
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    rng: Random = field(default_factory=Random)
    unsubscribe_mailto: str = ""
    worker: str = field(default_factory=worker_name)

    @property
    def default_sender(self) -> Sender:
        """The workspace's sender, for campaigns without their own."""
        return Sender(self.sender, "", self.reply_to)


def drain_outbox(
    sessions: sessionmaker[Session],
    sending: Sending,
    *,
    campaign: str | None = None,
    limit: int | None = None,
    progress: Callable[[SendReport], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Send what is due until nothing is (burst mode, like rq's `work(burst=True)`), or `limit` were tried."""
    report = SendReport(recovered=recover(sessions, sending.clock()))
    tried = 0
    while (limit is None or tried < limit) and not stop():
        now = sending.clock()
        claimed = _claim(sessions, sending.worker, now, campaign, sending.default_sender)
        if claimed is None:
            break
        message, sender = claimed
        domain = message.recipient.rpartition("@")[2].lower()
        wait = sending.pacer.wait(domain, sending.monotonic())
        if wait > 0:
            # Not now for this domain: give the message back with its time, and go on with other domains.
            _move(sessions, message.id, "sending", now, state="queued", claimed_by=None, lease_until=None,
                  next_attempt_at=now + timedelta(seconds=wait))  # fmt: skip
            continue
        sending.pacer.take(domain, sending.monotonic())
        tried += 1
        _send_one(sessions, sending, message, report, sender)
        if progress:
            progress(report)
    return report


def _wire_bytes(sending: Sending, message: OutboxMessage, now: datetime, sender: Sender) -> bytes:
    """The message as it goes on the wire, with the Message-ID it was queued with."""
    headers: list[tuple[str, str]] = []
    if sending.unsubscribe_mailto:
        headers.append(("List-Unsubscribe", f"<mailto:{sending.unsubscribe_mailto}?subject=unsubscribe>"))
    return build_message(
        Message(sender.mailbox or sending.sender, Mailbox(message.recipient, message.recipient_name),
                message.subject, message.text_body, message.message_id, now, html=message.html_body,
                reply_to=sender.reply_to,
                headers=headers)
    )  # fmt: skip


def _send_one(
    sessions: sessionmaker[Session], sending: Sending, message: OutboxMessage, report: SendReport, sender: Sender
) -> None:
    now = sending.clock()
    data = _wire_bytes(sending, message, now, sender)

    def before_commit() -> None:
        _move(sessions, message.id, "sending", sending.clock(), state="committing")

    reply = sending.transport.send(
        (sender.mailbox or sending.sender).address,
        message.recipient,
        data,
        before_commit,
        smtputf8=not message.recipient.isascii(),
    )
    verdict = classify_reply(reply.code, reply.text, after_data_mark=reply.after_data_mark)
    source = "committing" if reply.after_data_mark else "sending"
    said = f"{reply.code or '-'} {reply.text}".strip()
    now = sending.clock()
    done = {"claimed_by": None, "lease_until": None, "last_reply": said[:2000]}
    if verdict is Verdict.SENT:
        _move(sessions, message.id, source, now, state="sent", sent_at=now, attempts=message.attempts + 1, **done)
        report.sent += 1
    elif verdict is Verdict.UNKNOWN:
        _move(sessions, message.id, source, now, state="unknown", attempts=message.attempts + 1, **done)
        report.unknown += 1
    elif verdict in (Verdict.RETRY, Verdict.SLOW_DOWN):
        if verdict is Verdict.SLOW_DOWN:
            sending.pacer.slow_down(message.recipient.rpartition("@")[2], sending.monotonic(), 300)
        later = next_attempt_at(message.attempts + 1, now, sending.rng)
        if later is None:
            _move(sessions, message.id, source, now, state="failed", attempts=message.attempts + 1, **done)
            report.failed += 1
            report.failures.append((message.recipient, said))
        else:
            _move(sessions, message.id, source, now, state="queued", next_attempt_at=later,
                  attempts=message.attempts + 1, **done)  # fmt: skip
            report.retried += 1
    else:
        _move(sessions, message.id, source, now, state="failed", attempts=message.attempts + 1, **done)
        report.failed += 1
        report.failures.append((message.recipient, said))
        if verdict is Verdict.BAD_ADDRESS:
            with sessions.begin() as session:
                contact = session.get(Contact, message.contact_id)
                if contact is not None and contact.email:
                    suppress_address(session, parse_address(contact.email).key, "bounced", said[:500], now=now)


def retry_unknown(sessions: sessionmaker[Session], now: datetime, campaign: str | None = None) -> int:
    """Queue the messages of unknown fate again, because the campaigner asked (they may arrive twice)."""
    with sessions.begin() as session:
        query = update(OutboxMessage).where(OutboxMessage.state == "unknown")
        if campaign:
            ids = select(Campaign.id).where(Campaign.name == campaign).scalar_subquery()
            query = query.where(OutboxMessage.campaign_id == ids)
        moved = session.execute(query.values(state="queued", next_attempt_at=now, updated_at=now)).rowcount  # type: ignore[attr-defined]
    return moved or 0


def write_due_as_eml(
    sessions: sessionmaker[Session], sending: Sending, folder: Path, *, campaign: str | None = None,
    limit: int | None = None,
) -> list[Path]:  # fmt: skip
    """A dry run: write what is due as .eml files, exactly as it would be sent, and leave the outbox as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    now = sending.clock()
    query = (
        select(OutboxMessage, Campaign).join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .where(OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= now, Campaign.status == "active")
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
    )  # fmt: skip
    if campaign:
        query = query.where(Campaign.name == campaign)
    if limit:
        query = query.limit(limit)
    written = []
    with sessions() as session:
        for message, owner in session.execute(query):
            path = folder / f"{message.id:06d}-{message.recipient.replace('@', '_at_')}.eml"
            path.write_bytes(_wire_bytes(sending, message, now, campaign_sender(owner, sending.default_sender)))
            written.append(path)
    return written
