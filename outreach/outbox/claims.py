"""The outbox's claims and state moves: short transactions, each move a guarded UPDATE that checks its row count.

A sender claims a small batch (`queued` -> `sending`, with a lease), moves each message through `committing` to
its outcome, and gives back what it did not try. Every move names the state it expects and the sender that holds
the message, so two senders can never both own one; a sender whose lease ran out finds its moves refused. What a
stopped sender left is taken back by `recover`. Prepared Core statements on the outbox table: on the hot path the
ORM's per-statement work cost more than the SMTP exchange itself.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import Campaign, OutboxBody, OutboxMessage, as_utc
from outreach.errors import OutreachError
from outreach.rendering.letters import domain_of

LEASE = timedelta(minutes=2)
_OUTBOX = cast(Table, OutboxMessage.__table__)
_CAMPAIGNS = cast(Table, Campaign.__table__)
_BODIES = cast(Table, OutboxBody.__table__)


class TakenOverError(OutreachError):
    """Another sender took a message over after this one's lease ran out."""


class Claimed(NamedTuple):
    """One claimed message, as plain values: its envelope and its letter (bytes less Date and DKIM-Signature)."""

    id: int
    contact_id: int
    recipient: str
    sender: str | None  # the From address: its domain's key signs
    envelope_sender: str | None
    message_id: str
    attempts: int
    next_attempt_at: datetime
    letter: bytes | None = None  # None only for a row queued before the outbox kept letters

    def stored_letter(self) -> bytes:
        """The letter, or an error naming the message when it was queued before the outbox kept letters."""
        if self.letter is None:
            raise OutreachError(
                f"outbox message {self.id} has no letter: it was queued by an older version",
                hint="`outreach campaigns refresh CAMPAIGN` makes its letter again",
            )
        return self.letter


_FIELDS = Claimed._fields[:-1]  # the columns of the outbox row; the letter comes from its own table


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
def transaction(sessions: sessionmaker[Session]) -> Iterator[Connection]:
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
    with transaction(sessions) as connection:
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
                move_statement(("state", "claimed_by", "lease_until", "updated_at", "last_reply")),
                {"_id": message_id, "_from": state, "_by": worker, "state": target, "claimed_by": None,
                 "lease_until": None, "updated_at": now, "last_reply": note},
            ).rowcount  # fmt: skip
            found[target] += moved or 0
    return found


@lru_cache(maxsize=32)
def move_statement(columns: tuple[str, ...]) -> Any:
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


def move(connection: Connection, message_id: int, source: str, holder: str, **values: Any) -> None:
    """One guarded move; a row that is no longer where we left it means another sender took it: stop, saying so."""
    moved = connection.execute(move_statement(tuple(values)),
                               {"_id": message_id, "_from": source, "_by": holder, **values})  # fmt: skip
    if moved.rowcount != 1:
        raise TakenOverError(
            f"another sender took over outbox message {message_id}: this one's claim ran out while it was {source}",
            hint="this sender stops; what it held is sent by the other (see `outreach outbox list`)",
        )


def due_query(campaign: str | None) -> Select[Any]:
    """Queued messages of active campaigns due by :now, oldest first."""
    query = (
        select(*(_OUTBOX.c[name] for name in _FIELDS))
        .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _OUTBOX.c.campaign_id)
        .where(_OUTBOX.c.state == "queued", _OUTBOX.c.next_attempt_at <= bindparam("now"),
               _CAMPAIGNS.c.status == "active")
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    )  # fmt: skip
    return query.where(_CAMPAIGNS.c.name == campaign) if campaign else query


@lru_cache(maxsize=32)
def claim_statement(campaign: str | None, dialect: str) -> Any:
    """`UPDATE outbox SET state = 'sending' ... RETURNING` for up to :size due messages (of one campaign, or of
    all), built once per campaign and dialect: a slow server means a claim every few messages, and building it cost
    more than running it."""
    chosen = due_query(campaign).with_only_columns(_OUTBOX.c.id).limit(bindparam("size"))
    if dialect == "postgresql":
        # In the order of the due index (state, next_attempt_at) alone, so that PostgreSQL reads the first rows
        # of the index and stops: the copies of a campaign fall due at one instant, and with the id as a second
        # key it sorted every due message for each claim (47 ms a claim at 100,000 queued, 0.3 ms this way).
        # Among messages due at one instant, the index's order decides. (SQLite's indexes end in the id: there
        # the index gives both keys.)
        chosen = chosen.order_by(None).order_by(_OUTBOX.c.next_attempt_at)
        chosen = chosen.with_for_update(skip_locked=True, of=_OUTBOX)  # other senders skip what we hold
    # A CTE, which PostgreSQL runs once: as a plain `IN (subquery)` it may run again for each row, and with
    # SKIP LOCKED every run skips what the runs before it locked, so one claim took the whole outbox.
    picked = chosen.cte("picked")
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(select(picked.c.id)), _OUTBOX.c.state == "queued")
        .values(state="sending", claimed_by=bindparam("_by"), lease_until=bindparam("_until"),
                updated_at=bindparam("_at"))
        .returning(*(_OUTBOX.c[name] for name in _FIELDS))
    )  # fmt: skip


_LETTERS = select(_BODIES.c.message_id, _BODIES.c.letter).where(
    _BODIES.c.message_id.in_(bindparam("ids", expanding=True))
)


def claim(sessions: sessionmaker[Session], worker: str, now: datetime, campaign: str | None,
          size: int) -> list[Claimed]:  # fmt: skip
    """Claim up to `size` due messages (of one campaign, or of all) in one statement; on PostgreSQL, rows another
    sender holds are skipped."""
    with transaction(sessions) as connection:
        statement = claim_statement(campaign, connection.dialect.name)
        values = {"now": now, "size": size, "_by": worker, "_until": now + LEASE, "_at": now}
        rows = connection.execute(statement, values).all()
        if not rows:
            return []
        found = connection.execute(_LETTERS, {"ids": [row.message_id for row in rows]})
        letters = {message_id: letter for message_id, letter in found}
    claimed = [Claimed._make((*row, letters.get(row.message_id))) for row in rows]
    return sorted(claimed, key=lambda message: (message.next_attempt_at, message.id))


def give_back(
    sessions: sessionmaker[Session], worker: str, messages: list[tuple[int, datetime]], now: datetime
) -> None:
    """Return claimed messages that were not tried to the queue, each with the time it is due."""
    if not messages:
        return
    with transaction(sessions) as connection:
        connection.execute(
            move_statement(("state", "claimed_by", "lease_until", "next_attempt_at", "updated_at")),
            [{"_id": message_id, "_from": "sending", "_by": worker, "state": "queued", "claimed_by": None,
              "lease_until": None, "next_attempt_at": due, "updated_at": now} for message_id, due in messages],
        )  # fmt: skip


def recent_sends(sessions: sessionmaker[Session], now: datetime, window: float) -> dict[str, list[float]]:
    """For each recipient domain, how many seconds ago each message of the last `window` seconds was sent."""
    ages: dict[str, list[float]] = defaultdict(list)
    if window <= 0:
        return ages
    since = now - timedelta(seconds=window)
    query = select(_OUTBOX.c.recipient, _OUTBOX.c.sent_at).where(_OUTBOX.c.state == "sent",
                                                                 _OUTBOX.c.sent_at > since)  # fmt: skip
    with transaction(sessions) as connection:
        for recipient, sent_at in connection.execute(query):
            ages[domain_of(recipient)].append((now - as_utc(sent_at)).total_seconds())
    return ages


def count_due(sessions: sessionmaker[Session], now: datetime, campaign: str | None = None) -> int:
    """How many queued messages of active campaigns are due by `now` (for a progress bar)."""
    with transaction(sessions) as connection:
        due = due_query(campaign).order_by(None).subquery()  # a count needs no order (PostgreSQL sorted for it)
        return int(connection.execute(select(func.count()).select_from(due), {"now": now}).scalar_one())


def due_letters(sessions: sessionmaker[Session], now: datetime, *, campaign: str | None = None,
                limit: int | None = None) -> list[Claimed]:  # fmt: skip
    """The messages due by `now` with their letters, claiming nothing (a dry run)."""
    query = due_query(campaign).add_columns(_BODIES.c.letter)
    query = query.join(_BODIES, _BODIES.c.message_id == _OUTBOX.c.message_id)
    if limit:
        query = query.limit(limit)
    with transaction(sessions) as connection:
        return [Claimed._make(row) for row in connection.execute(query, {"now": now})]
