"""Draining the outbox: each connection takes the next letter from the feed and runs its SMTP transaction.

Short transactions, none held across the network (STYLE 6, outreach/outbox/claims.py): the claim of a small batch,
then for each message the commit point (`sending` -> `committing`, written just before its end-of-data mark
leaves) and its outcome (`sent`, back to `queued` with a later attempt, `failed`, or `unknown`), written in the same
transaction as the next message's commit point. A message left in `committing` by a sender that died is `unknown`:
it may have been delivered, and is resent only on request.

The outbox row holds the whole letter (outreach/rendering/letters.py): sending adds Date, signs it with the key of
its From address's domain, and decides nothing else about it. `OUTREACH_SMTP_CONNECTIONS` connections send side by
side, one thread each, fed by one `Feed` (outreach/outbox/feed.py) that claims, paces and hands out messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.addresses import parse_address
from outreach.contacts.directory import suppress_address
from outreach.db.models import Contact
from outreach.outbox.claims import (
    LEASE,
    Claimed,
    due_letters,
    give_back,
    move,
    recent_sends,
    recover,
    transaction,
    worker_name,
)
from outreach.outbox.feed import Feed
from outreach.outbox.pacing import Pacer
from outreach.outbox.smtp import Reply
from outreach.outbox.states import Verdict, classify_reply, next_attempt_at
from outreach.rendering.eml import eml_name, write_eml
from outreach.rendering.letters import dated, domain_of


class Transport(Protocol):
    """What sending (and a proof) needs from the SMTP server: one transaction at a time on one connection."""

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_commit: Callable[[], None],
        *,
        smtputf8: bool = False,
        while_waiting: Callable[[], None] | None = None,
    ) -> Reply: ...

    def close(self) -> None: ...


@dataclass
class SendReport:
    """What one drain of the outbox did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0  # held back by a recipient domain's limit, queued again for later
    paused_until: datetime | None = None  # the global rate stopped the drain until then
    recovered: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (recipient, reply)

    @property
    def tried(self) -> int:
        """Messages that went through an SMTP transaction."""
        return self.sent + self.retried + self.failed + self.unknown

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        values = dict(self.__dict__)
        values["paused_until"] = self.paused_until.isoformat() if self.paused_until else None
        return values


@dataclass
class Sending:
    """Everything a drain needs besides the database: how to connect, how to sign, at what pace, on what clock."""

    connect: Callable[[], Transport]  # a new connection to the server (it may open lazily)
    pacer: Pacer
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    rng: Random = field(default_factory=Random)
    connections: int = 1
    signers: Mapping[str, Callable[[bytes], bytes]] = field(default_factory=dict)  # DKIM, by the From's domain
    server_pause: float = 30.0  # seconds to hold everything back after a 421
    sleep: Callable[[float], None] = time.sleep
    worker: str = field(default_factory=lambda: worker_name())

    def wire_bytes(self, message: Claimed, now: datetime) -> bytes:
        """The message as it leaves now."""
        return wire(message.stored_letter(), message.sender or "", now, self.signers)


def wire(letter: bytes, sender: str, now: datetime, signers: Mapping[str, Callable[[bytes], bytes]]) -> bytes:
    """A letter as it leaves: with Date, and signed by the key of its From address's domain where there is one."""
    data = dated(letter, now)
    sign = signer_for(domain_of(sender), signers)
    return sign(data) if sign else data


def signer_for(domain: str, signers: Mapping[str, Callable[[bytes], bytes]]) -> Callable[[bytes], bytes] | None:
    """The key of the From domain, else of the nearest domain above it (news.example.org: example.org), which
    DMARC's relaxed alignment accepts (RFC 7489 3.1.1); None when no key is for it."""
    labels = domain.split(".")
    return next((signers[name] for i in range(len(labels) - 1) if (name := ".".join(labels[i:])) in signers), None)


def drain_outbox(
    sessions: sessionmaker[Session],
    sending: Sending,
    *,
    campaign: str | None = None,
    limit: int | None = None,
    progress: Callable[[SendReport], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> SendReport:
    """Send what is due until nothing is (burst mode, like rq's `work(burst=True)`), or `limit` were tried.

    A stop request (SIGTERM, Ctrl-C through `stop`) lets every transaction in flight finish first.
    """
    now = sending.clock()
    report = SendReport(recovered=recover(sessions, now))
    sending.pacer.seed(sending.monotonic(), recent_sends(sessions, now, sending.pacer.window))
    feed = Feed(sessions, sending, report, campaign, limit, stop)
    transports = [sending.connect() for _ in range(sending.connections)]
    try:
        if len(transports) == 1:
            _work(sessions, sending, feed, transports[0], progress)
        else:
            threads = [
                threading.Thread(target=_work, args=(sessions, sending, feed, transport, progress), name=f"smtp-{n}",
                                 daemon=True)
                for n, transport in enumerate(transports)
            ]  # fmt: skip
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    while thread.is_alive():
                        thread.join(0.2)  # short joins, so that Ctrl-C reaches the main thread
            except BaseException:
                feed.fail(KeyboardInterrupt())  # stop handing out; the threads finish what is in flight
                for thread in threads:
                    thread.join()
                raise
    finally:
        feed.close()
        for transport in transports:
            transport.close()
    if feed.error is not None:
        raise feed.error
    return report


class _Ready(NamedTuple):
    """A message taken from the feed, with the bytes that go on the wire."""

    message: Claimed
    data: bytes


def _work(sessions: sessionmaker[Session], sending: Sending, feed: Feed, transport: Transport,
          progress: Callable[[SendReport], None] | None) -> None:  # fmt: skip
    """One connection's loop: take the next message from the feed and send it, until the feed runs dry.

    A message's outcome is written in the same transaction as the next message's commit point, one transaction
    a message instead of two; when no next message is ready at once, it is written on its own. So at most one
    message of a connection is ever between its end-of-data mark and its recorded outcome, and a kill leaves
    at most that one unknown.

    While the server digests a message's data, the next message is taken and built (`ahead`): time the
    connection would otherwise spend waiting. It goes back to the queue if the drain stops or the server asks
    for a pause instead.
    """
    pending: list[tuple[int, _Outcome]] = []  # the outcome not yet written, at most one
    ahead: list[_Ready] = []  # the next message, at most one

    def flush() -> None:
        if pending:
            with transaction(sessions) as connection:
                _write_outcomes(connection, sending.worker, pending)
            pending.clear()

    def take_ahead() -> None:
        if (item := feed.next(block=False)) is not None:
            ahead.append(_ready(sending, item))

    def put_back(ready: list[_Ready]) -> None:
        give_back(sessions, sending.worker, [(r.message.id, r.message.next_attempt_at) for r in ready],
                  sending.clock())  # fmt: skip
        ready.clear()

    current: list[_Ready] = []
    try:
        while True:
            if ahead and not feed.stop():
                current.append(ahead.pop())
            else:
                put_back(ahead)
                flush()  # the next message may be a while: do not leave this outcome unwritten meanwhile
                if (item := feed.next()) is None:
                    break
                current.append(_ready(sending, item))
            outcome = _send_one(sessions, sending, transport, current[0], pending, take_ahead)
            message = current.pop().message
            pending.append((message.id, outcome))
            if outcome.slow_down:
                put_back(ahead)  # the server asked for a pause: the message taken ahead waits its turn
            if outcome.bad_address:
                flush()
                _flag_bad_address(sessions, message, outcome)
            feed.record(outcome.count, progress, outcome.slow_down)
        flush()
    except BaseException as error:
        feed.fail(error)  # the error the drain reports, even if the tidying below fails too
        # Nothing went out for a message still `sending`: it goes back to the queue, due as it was. One
        # `committing` stays so (the move finds nothing): recovery makes it unknown, as it may have been delivered.
        # Should the database itself have failed, the leases run out and recovery does the same later.
        with suppress(Exception):
            flush()
            put_back(current + ahead)


def _ready(sending: Sending, message: Claimed) -> _Ready:
    """The message with its wire bytes."""
    return _Ready(message, sending.wire_bytes(message, sending.clock()))


@dataclass(frozen=True)
class _Outcome:
    """What became of one message: the guarded move to record, and what the report and the pace make of it."""

    recipient: str
    source: str
    values: dict[str, Any]
    said: str
    bad_address: bool = False
    slow_down: Callable[[Pacer, float], None] | None = None

    def count(self, report: SendReport) -> None:
        """Add this outcome to the report."""
        counter = {"sent": "sent", "unknown": "unknown", "queued": "retried", "failed": "failed"}[self.values["state"]]
        setattr(report, counter, getattr(report, counter) + 1)
        if counter == "failed":
            report.failures.append((self.recipient, self.said))


def _send_one(sessions: sessionmaker[Session], sending: Sending, transport: Transport, ready: _Ready,
              pending: list[tuple[int, _Outcome]], while_waiting: Callable[[], None]) -> _Outcome:  # fmt: skip
    """Run one SMTP transaction (the commit point, with the `pending` outcome of the message before, written just
    before the end-of-data mark) and say what became of the message; the caller records it."""
    message, data = ready

    def before_commit() -> None:
        with transaction(sessions) as connection:
            _write_outcomes(connection, sending.worker, pending)
            now = sending.clock()  # a fresh lease for the one ambiguous moment
            move(connection, message.id, "sending", sending.worker, state="committing", lease_until=now + LEASE,
                  updated_at=now)  # fmt: skip
        pending.clear()

    reply = transport.send(
        message.envelope_sender or message.sender or "", message.recipient, data, before_commit,
        smtputf8=not (message.recipient.isascii() and (message.envelope_sender or "").isascii()),
        while_waiting=while_waiting,
    )  # fmt: skip
    verdict = classify_reply(reply.code, reply.text, after_data_mark=reply.after_data_mark)
    said = f"{reply.code or '-'} {reply.text}".strip()
    now = sending.clock()
    values: dict[str, Any] = {"claimed_by": None, "lease_until": None, "last_reply": said[:2000],
                              "attempts": message.attempts + 1, "updated_at": now}  # fmt: skip
    slow_down = None
    if verdict is Verdict.SENT:
        values |= {"state": "sent", "sent_at": now}
    elif verdict is Verdict.UNKNOWN:
        values["state"] = "unknown"
    elif verdict in (Verdict.RETRY, Verdict.SLOW_DOWN):
        if verdict is Verdict.SLOW_DOWN:
            slow_down = _slow_down(reply, message.recipient, sending.server_pause)
        later = next_attempt_at(message.attempts + 1, now, sending.rng)
        values |= {"state": "failed"} if later is None else {"state": "queued", "next_attempt_at": later}
    else:
        values["state"] = "failed"
    source = "committing" if reply.after_data_mark else "sending"
    return _Outcome(message.recipient, source, values, said, verdict is Verdict.BAD_ADDRESS, slow_down)


def _write_outcomes(connection: Connection, holder: str, outcomes: list[tuple[int, _Outcome]]) -> None:
    """Write what became of messages, each with its guarded move."""
    for message_id, outcome in outcomes:
        move(connection, message_id, outcome.source, holder, **outcome.values)


def _flag_bad_address(sessions: sessionmaker[Session], message: Claimed, outcome: _Outcome) -> None:
    """The server says the mailbox does not exist: the address is suppressed as bounced."""
    with sessions.begin() as session:
        contact = session.get(Contact, message.contact_id)
        if contact is not None and contact.email:
            suppress_address(session, parse_address(contact.email).key, "bounced", outcome.said[:500],
                             now=outcome.values["updated_at"])  # fmt: skip


def _slow_down(reply: Reply, recipient: str, server_pause: float) -> Callable[[Pacer, float], None]:
    """421: the server is closing the connection, so hold everything back a while (RFC 5321 3.8); 452 and
    4.7.x: too many or too fast for that recipient's domain, so hold that domain back five minutes."""
    if reply.code == 421:
        return lambda pacer, now: pacer.pause(now, server_pause)
    domain = domain_of(recipient)
    return lambda pacer, now: pacer.slow_down(domain, now, 300)


def write_due_letters(sessions: sessionmaker[Session], folder: Path, now: datetime, *, campaign: str | None = None,
                      limit: int | None = None) -> list[Path]:  # fmt: skip
    """A dry run: write what is due as .eml files, the bytes the server would receive but for the DKIM signature;
    the outbox stays as it was."""
    due = due_letters(sessions, now, campaign=campaign, limit=limit)
    return [write_eml(folder / eml_name(message.id, message.recipient), message.stored_letter(), now)
            for message in due]  # fmt: skip
