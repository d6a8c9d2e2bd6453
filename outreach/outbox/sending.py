"""Draining the outbox: claim messages, run each SMTP transaction, record what became of each.

Short transactions, none held across the network (STYLE 6): the claim of a small batch (`queued` -> `sending`,
with a lease), then for each message the commit point (`sending` -> `committing`, written just before its
end-of-data mark leaves) and its outcome (`sent`, back to `queued` with a later attempt, `failed`, or `unknown`),
written in the same transaction as the next message's commit point. Each move is a guarded UPDATE on the state
and the holder that checks its row count, so two senders can never both own a message. A message left in
`committing` by a sender that died is `unknown`: it may have been delivered, and is resent only on request.

`OUTREACH_SMTP_CONNECTIONS` connections send side by side, one thread each, fed by one `_Feed` that claims, paces
and hands out messages under a lock. The hot path uses prepared Core statements on the outbox table: the ORM's
per-statement work cost more than the SMTP exchange itself.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from random import Random
from typing import Any, NamedTuple, Protocol, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.campaigns.catalog import campaign_sender
from outreach.contacts.addresses import parse_address
from outreach.contacts.directory import suppress_address
from outreach.db.models import Campaign, Contact, OutboxBody, OutboxMessage, as_utc
from outreach.outbox.pacing import Pacer
from outreach.outbox.signing import unsubscribe_headers
from outreach.outbox.smtp import Reply
from outreach.outbox.states import Verdict, classify_reply, next_attempt_at
from outreach.rendering.mime import Mailbox, Message, build_message
from outreach.rendering.previewing import Sender

LEASE = timedelta(minutes=2)
LONGEST_PAUSE = 60.0  # seconds a drain waits for the global rate; past that it stops and says when to come back
_OUTBOX = cast(Table, OutboxMessage.__table__)
_CAMPAIGNS = cast(Table, Campaign.__table__)
_BODIES = cast(Table, OutboxBody.__table__)


class Transport(Protocol):
    """What sending needs from SMTP (or from the .eml writer of a dry run)."""

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


class Claimed(NamedTuple):
    """One claimed message, as plain values."""

    id: int
    campaign_id: int
    contact_id: int
    recipient: str
    recipient_name: str | None
    subject: str
    message_id: str
    attempts: int
    next_attempt_at: datetime
    thread_id: str | None = None  # a follow-up's first letter, which it answers (In-Reply-To, References)
    text_body: str = ""
    html_body: str | None = None


_FIELDS = Claimed._fields[:-2]  # the columns of the outbox row; the bodies come from their own table


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
    """Everything a drain needs besides the database: who sends, how, at what pace, on what clock."""

    connect: Callable[[], Transport]  # a new connection to the server (it may open lazily)
    sender: Mailbox
    reply_to: Mailbox | None
    pacer: Pacer
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    rng: Random = field(default_factory=Random)
    connections: int = 1
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""
    return_path: str = ""  # the envelope sender, `{token}` in it replaced (VERP); empty: the From address
    sign: Callable[[bytes], bytes] | None = None  # DKIM, when a key is configured
    server_pause: float = 30.0  # seconds to hold everything back after a 421
    sleep: Callable[[float], None] = time.sleep
    worker: str = field(default_factory=lambda: worker_name())

    @property
    def default_sender(self) -> Sender:
        """The workspace's sender, for campaigns without their own."""
        return Sender(self.sender, "", self.reply_to)


def domain_of(address: str) -> str:
    """The recipient domain an address's pace is counted under."""
    return address.rpartition("@")[2].lower()


def worker_name() -> str:
    """Who claims: host and process, so that a glance at the outbox says which sender holds what."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str | None) -> bool:
    """True when the worker that claimed a message was a process of this host that no longer runs."""
    host, _, pid = (worker or "").rpartition(":")
    # Only on POSIX: there, signal 0 only asks whether the process exists; on Windows os.kill would end it.
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_SQLITE_WRITERS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()


@contextmanager
def _transaction(sessions: sessionmaker[Session]) -> Iterator[Connection]:
    """One short transaction on a plain connection of the sessions' engine (Core statements, no ORM session).

    On SQLite the connections of one process take turns through a lock of their own: SQLite has one writer at a
    time, and a writer that finds the database busy sleeps 1, 2, 5, 10 ... ms before it looks again, which cost
    four connections about 4 ms a message. (Other processes are kept out by the workspace's lock file.)
    """
    engine: Engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with _SQLITE_WRITERS.setdefault(engine, threading.Lock()), engine.begin() as connection:
        yield connection


def recover(sessions: sessionmaker[Session], now: datetime) -> dict[str, int]:
    """Take back what a stopped sender left (its lease ran out, or its process on this host is gone): a claim
    without data sent is queued again; one that may have sent its end-of-data mark becomes unknown."""
    found = {"queued": 0, "unknown": 0}
    with _transaction(sessions) as connection:
        held = connection.execute(
            select(_OUTBOX.c.id, _OUTBOX.c.state, _OUTBOX.c.claimed_by, _OUTBOX.c.lease_until)
            .where(_OUTBOX.c.state.in_(("sending", "committing")))
        ).all()  # fmt: skip
        for message_id, state, worker, lease_until in held:
            if not (_gone(worker) or (lease_until is not None and as_utc(lease_until) < now)):
                continue
            target = "queued" if state == "sending" else "unknown"
            note = None if target == "queued" else (
                "the sender stopped after the end of data, before the server's answer was recorded")  # fmt: skip
            moved = connection.execute(
                _move_statement(("state", "claimed_by", "lease_until", "updated_at", "last_reply")),
                {"_id": message_id, "_from": state, "_by": worker, "state": target, "claimed_by": None,
                 "lease_until": None, "updated_at": now, "last_reply": note},
            ).rowcount  # fmt: skip
            found[target] += moved or 0
    return found


@lru_cache(maxsize=32)
def _move_statement(columns: tuple[str, ...]) -> Any:
    """`UPDATE outbox SET <columns> WHERE id = :_id AND state = :_from AND claimed_by = :_by`, built once per set
    of columns: a move is made only by the sender that holds the message, in the state it left it in. (Were a
    claim's lease to run out, another sender could take the message back and claim it again: the old holder's
    moves then find nothing, instead of sending it a second time.)"""
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("_id"), _OUTBOX.c.state == bindparam("_from"),
               _OUTBOX.c.claimed_by == bindparam("_by"))
        .values({name: bindparam(name) for name in columns})
    )  # fmt: skip


def _move(connection: Connection, message_id: int, source: str, holder: str, **values: Any) -> None:
    """One guarded move; a row that is no longer where we left it means another sender took it: stop loudly."""
    moved = connection.execute(_move_statement(tuple(values)),
                               {"_id": message_id, "_from": source, "_by": holder, **values})  # fmt: skip
    if moved.rowcount != 1:
        raise RuntimeError(f"outbox message {message_id} left state {source!r} under this sender's feet")


def _due(campaign: str | None) -> Select[Any]:
    """Queued messages of active campaigns due by :now, oldest first."""
    query = (
        select(*(_OUTBOX.c[name] for name in _FIELDS))
        .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _OUTBOX.c.campaign_id)
        .where(_OUTBOX.c.state == "queued", _OUTBOX.c.next_attempt_at <= bindparam("now"),
               _CAMPAIGNS.c.status == "active")
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    )  # fmt: skip
    return query.where(_CAMPAIGNS.c.name == campaign) if campaign else query


def _claim(sessions: sessionmaker[Session], worker: str, now: datetime, due: Select[Any], size: int) -> list[Claimed]:
    """Claim up to `size` due messages in one statement; on PostgreSQL, rows another sender holds are skipped."""
    with _transaction(sessions) as connection:
        chosen = due.with_only_columns(_OUTBOX.c.id).limit(size)
        if connection.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True, of=_OUTBOX)  # other senders skip what we hold
        # A CTE, which PostgreSQL runs once: as a plain `IN (subquery)` it may run again for each row, and with
        # SKIP LOCKED every run skips what the runs before it locked, so one claim took the whole outbox.
        picked = chosen.cte("picked")
        claim = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(select(picked.c.id)), _OUTBOX.c.state == "queued")
            .values(state="sending", claimed_by=worker, lease_until=now + LEASE, updated_at=now)
            .returning(*(_OUTBOX.c[name] for name in _FIELDS))
        )
        rows = connection.execute(claim, {"now": now}).all()
        if not rows:
            return []
        bodies = {message_id: (text, html) for message_id, text, html in connection.execute(
            _BODIES.select().where(_BODIES.c.message_id.in_([row.message_id for row in rows])))}  # fmt: skip
    claimed = [Claimed._make((*row, *bodies[row.message_id])) for row in rows]
    return sorted(claimed, key=lambda message: (message.next_attempt_at, message.id))


def _give_back(
    sessions: sessionmaker[Session], worker: str, messages: list[tuple[int, datetime]], now: datetime
) -> None:
    """Return claimed messages that were not tried to the queue, each with the time it is due."""
    if not messages:
        return
    with _transaction(sessions) as connection:
        connection.execute(
            _move_statement(("state", "claimed_by", "lease_until", "next_attempt_at", "updated_at")),
            [{"_id": message_id, "_from": "sending", "_by": worker, "state": "queued", "claimed_by": None,
              "lease_until": None, "next_attempt_at": due, "updated_at": now} for message_id, due in messages],
        )  # fmt: skip


def _recent_sends(sessions: sessionmaker[Session], now: datetime, window: float) -> dict[str, list[float]]:
    """For each recipient domain, how many seconds ago each message of the last `window` seconds was sent."""
    ages: dict[str, list[float]] = defaultdict(list)
    if window <= 0:
        return ages
    since = now - timedelta(seconds=window)
    query = select(_OUTBOX.c.recipient, _OUTBOX.c.sent_at).where(_OUTBOX.c.state == "sent",
                                                                 _OUTBOX.c.sent_at > since)  # fmt: skip
    with _transaction(sessions) as connection:
        for recipient, sent_at in connection.execute(query):
            ages[domain_of(recipient)].append((now - as_utc(sent_at)).total_seconds())
    return ages


class _Feed:
    """Hands out the next message a connection may send, to any number of connection threads.

    It claims small batches, keeps the pace (a domain over its limit gives the message back for later and goes on
    with other domains; the global rate makes everyone wait, or ends the drain when the wait is long), counts
    towards the limit, and gives back whatever is still claimed when the drain ends.
    """

    def __init__(self, sessions: sessionmaker[Session], sending: Sending, report: SendReport,
                 campaign: str | None, limit: int | None, stop: Callable[[], bool]) -> None:  # fmt: skip
        self.sessions, self.sending, self.report = sessions, sending, report
        self.limit, self.stop = limit, stop
        self.lock = threading.Lock()
        self.buffer: deque[Claimed] = deque()
        self.due = _due(campaign)
        self.handed = 0
        self.finished = False
        self.error: BaseException | None = None
        self.senders: dict[int, Sender] = {}
        self.batch = 16 * sending.connections
        self.claimed_at = sending.clock()

    def next(self, *, block: bool = True) -> tuple[Claimed, Sender] | None:
        """The next message to send and who it is from, or None when the drain is over (or, with `block` False,
        when the global rate would make it wait first, or another connection is busy in the feed)."""
        if not self.lock.acquire(blocking=block):
            return None
        try:
            return self._next(block)
        finally:
            self.lock.release()

    def _next(self, block: bool) -> tuple[Claimed, Sender] | None:
        """`next`, under the lock."""
        while not (self.finished or self.stop() or (self.limit is not None and self.handed >= self.limit)):
            if self.buffer and self.sending.clock() - self.claimed_at > LEASE / 2:
                self._give_back_all()  # a slow pace kept these long: claim afresh rather than outlive the lease
            if not self.buffer and not self._fill():
                self.finished = True
                break
            message = self.buffer[0]
            domain = domain_of(message.recipient)
            pacer, now = self.sending.pacer, self.sending.monotonic()
            wait = pacer.global_wait(now)
            if wait > LONGEST_PAUSE:
                self.report.paused_until = self.sending.clock() + timedelta(seconds=wait)
                self.finished = True
                break
            if wait > 0:
                if not block:
                    return None
                self._pause(wait)  # everyone waits for the global rate: the lock is held on purpose
                continue
            self.buffer.popleft()
            wait = pacer.domain_wait(domain, now)
            if wait > 0:
                # Not now for this domain: give the message back with its time, go on with other domains.
                _give_back(self.sessions, self.sending.worker,
                           [(message.id, self.sending.clock() + timedelta(seconds=wait))],
                           self.sending.clock())  # fmt: skip
                self.report.deferred += 1
                continue
            pacer.take(domain, now)
            self.handed += 1
            return message, self._sender(message.campaign_id)
        return None

    def _fill(self) -> bool:
        room = self.batch if self.limit is None else min(self.batch, self.limit - self.handed)
        self.claimed_at = self.sending.clock()
        claimed = _claim(self.sessions, self.sending.worker, self.claimed_at, self.due, room)
        self.buffer.extend(claimed)
        return bool(claimed)

    def _give_back_all(self) -> None:
        """Give back what was claimed and not tried, due as it was (under the lock)."""
        left = [(message.id, message.next_attempt_at) for message in self.buffer]
        self.buffer.clear()
        _give_back(self.sessions, self.sending.worker, left, self.sending.clock())

    def _pause(self, seconds: float) -> None:
        """Sleep, in short steps so that a stop request is heard."""
        end = self.sending.monotonic() + seconds
        while not self.stop() and (left := end - self.sending.monotonic()) > 0:
            self.sending.sleep(min(left, 0.2))

    def _sender(self, campaign_id: int) -> Sender:
        if campaign_id not in self.senders:
            with self.sessions() as session:
                owner = session.get_one(Campaign, campaign_id)
                self.senders[campaign_id] = campaign_sender(owner, self.sending.default_sender)
        return self.senders[campaign_id]

    def record(self, update_report: Callable[[SendReport], None], progress: Callable[[SendReport], None] | None,
               slow_down: Callable[[Pacer, float], None] | None = None) -> None:  # fmt: skip
        """Update the report (and the pace) under the lock, and tell the progress display."""
        with self.lock:
            update_report(self.report)
            if slow_down:
                slow_down(self.sending.pacer, self.sending.monotonic())
            if progress:
                progress(self.report)

    def fail(self, error: BaseException) -> None:
        """A connection thread hit an error: remember the first, and stop handing out messages."""
        with self.lock:
            self.error = self.error or error
            self.finished = True

    def close(self) -> None:
        """Give back what was claimed and not tried, due as it was."""
        with self.lock:
            self._give_back_all()


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
    sending.pacer.seed(sending.monotonic(), _recent_sends(sessions, now, sending.pacer.window))
    feed = _Feed(sessions, sending, report, campaign, limit, stop)
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
    """A message taken from the feed, with who sends it and the bytes that go on the wire."""

    message: Claimed
    sender: Sender
    data: bytes


def _work(sessions: sessionmaker[Session], sending: Sending, feed: _Feed, transport: Transport,
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
            with _transaction(sessions) as connection:
                _write_outcomes(connection, sending.worker, pending)
            pending.clear()

    def take_ahead() -> None:
        if (item := feed.next(block=False)) is not None:
            ahead.append(_ready(sending, *item))

    def give_back(ready: list[_Ready]) -> None:
        _give_back(sessions, sending.worker, [(r.message.id, r.message.next_attempt_at) for r in ready],
                   sending.clock())  # fmt: skip
        ready.clear()

    current: list[_Ready] = []
    try:
        while True:
            if ahead and not feed.stop():
                current.append(ahead.pop())
            else:
                give_back(ahead)
                flush()  # the next message may be a while: do not leave this outcome unwritten meanwhile
                if (item := feed.next()) is None:
                    break
                current.append(_ready(sending, *item))
            outcome = _send_one(sessions, sending, transport, current[0], pending, take_ahead)
            message = current.pop().message
            pending.append((message.id, outcome))
            if outcome.slow_down:
                give_back(ahead)  # the server asked for a pause: the message taken ahead waits its turn
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
            give_back(current + ahead)


def _ready(sending: Sending, message: Claimed, sender: Sender) -> _Ready:
    """The message with its wire bytes."""
    return _Ready(message, sender, wire_bytes(sending, message, sending.clock(), sender))


def wire_bytes(sending: Sending, message: Claimed, now: datetime, sender: Sender) -> bytes:
    """The message as it goes on the wire, with the Message-ID it was queued with."""
    headers = unsubscribe_headers(sending.unsubscribe_mailto, sending.unsubscribe_url, _token(message))
    if message.thread_id:  # a follow-up threads under the first letter (RFC 5322 3.6.4)
        headers = [("In-Reply-To", message.thread_id), ("References", message.thread_id), *headers]
    data = build_message(
        Message(sender.mailbox or sending.sender, Mailbox(message.recipient, message.recipient_name),
                message.subject, message.text_body, message.message_id, now, html=message.html_body,
                reply_to=sender.reply_to, headers=headers)
    )  # fmt: skip
    return sending.sign(data) if sending.sign else data


def envelope_sender(sending: Sending, message: Claimed, sender: Sender) -> str:
    """MAIL FROM, where bounces go: the return path with the message's token in it (VERP), else the From
    address."""
    if sending.return_path:
        return sending.return_path.replace("{token}", _token(message))
    return (sender.mailbox or sending.sender).address


def _token(message: Claimed) -> str:
    """What names a message in a one-click URL or a VERP address: the local part of its Message-ID."""
    return message.message_id.strip("<>").rpartition("@")[0]


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
    message, sender, data = ready

    def before_commit() -> None:
        with _transaction(sessions) as connection:
            _write_outcomes(connection, sending.worker, pending)
            now = sending.clock()  # a fresh lease for the one ambiguous moment
            _move(connection, message.id, "sending", sending.worker, state="committing", lease_until=now + LEASE,
                  updated_at=now)  # fmt: skip
        pending.clear()

    reply = transport.send(
        envelope_sender(sending, message, sender), message.recipient, data, before_commit,
        smtputf8=not message.recipient.isascii(), while_waiting=while_waiting,
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
        _move(connection, message_id, outcome.source, holder, **outcome.values)


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


def count_due(sessions: sessionmaker[Session], now: datetime, campaign: str | None = None) -> int:
    """How many queued messages of active campaigns are due by `now` (for a progress bar)."""
    with _transaction(sessions) as connection:
        due = _due(campaign).subquery()
        return int(connection.execute(select(func.count()).select_from(due), {"now": now}).scalar_one())


def write_due_as_eml(
    sessions: sessionmaker[Session], sending: Sending, folder: Path, *, campaign: str | None = None,
    limit: int | None = None,
) -> list[Path]:  # fmt: skip
    """A dry run: write what is due as .eml files, exactly as it would be sent, and leave the outbox as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    now = sending.clock()
    query = _due(campaign).add_columns(_BODIES.c.text_body, _BODIES.c.html_body)
    query = query.join(_BODIES, _BODIES.c.message_id == _OUTBOX.c.message_id)
    if limit:
        query = query.limit(limit)
    written = []
    senders: dict[int, Sender] = {}
    with sessions() as session:
        for row in session.connection().execute(query, {"now": now}):
            message = Claimed(*row)
            if message.campaign_id not in senders:
                owner = session.get_one(Campaign, message.campaign_id)
                senders[message.campaign_id] = campaign_sender(owner, sending.default_sender)
            path = folder / f"{message.id:06d}-{message.recipient.replace('@', '_at_')}.eml"
            path.write_bytes(wire_bytes(sending, message, now, senders[message.campaign_id]))
            written.append(path)
    return written
