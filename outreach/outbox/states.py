"""The outbox as a state machine: the states a message passes through, the moves allowed between them, what an
SMTP reply means for a message, and when to try again.

The one ambiguous moment of SMTP (RFC 5321 4.1.1.4, RFC 1047) is between sending the end-of-data mark and
recording the server's answer: a message whose state says `committing` when the sender died may or may not
have been delivered, so it becomes `unknown` and is resent only when the campaigner asks.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from random import Random


class State(StrEnum):
    """Where a message of the outbox stands."""

    QUEUED = "queued"  # waiting for its time (next_attempt_at) and a sender
    SENDING = "sending"  # claimed by a sender (with a lease); no data sent yet, safe to take over after the lease
    COMMITTING = "committing"  # the end-of-data mark is about to go or has gone; the server's answer is pending
    SENT = "sent"  # the server answered 250 to the end of data: it has taken responsibility
    FAILED = "failed"  # a permanent failure, or temporary ones until the attempts ran out
    UNKNOWN = "unknown"  # the sender stopped while committing: delivered or not, nobody knows
    HELD = "held"  # kept back (missed its time by more than the grace period, or paused)
    CANCELLED = "cancelled"  # withdrawn before it was sent


MOVES: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SENDING, State.HELD, State.CANCELLED}),
    State.SENDING: frozenset({State.COMMITTING, State.QUEUED, State.FAILED}),
    State.COMMITTING: frozenset({State.SENT, State.QUEUED, State.FAILED, State.UNKNOWN}),
    State.UNKNOWN: frozenset({State.QUEUED, State.CANCELLED, State.SENT}),
    State.HELD: frozenset({State.QUEUED, State.CANCELLED}),
    State.FAILED: frozenset({State.QUEUED, State.CANCELLED}),
    State.SENT: frozenset(),
    State.CANCELLED: frozenset(),
}


def can_move(current: State, target: State) -> bool:
    """True when a message may go from `current` to `target`; a sent message never moves again."""
    return target in MOVES[current]


class Verdict(StrEnum):
    """What an SMTP reply (or its absence) means for the message."""

    SENT = "sent"
    RETRY = "retry"  # temporary: try again later
    SLOW_DOWN = "slow_down"  # temporary, and the server asks us to send less (421, 452, 4.7.x)
    PERMANENT = "permanent"  # will not succeed as it is
    BAD_ADDRESS = "bad_address"  # the mailbox does not exist (5.1.1 to 5.1.3): flag the contact
    UNKNOWN = "unknown"  # the connection died after the end-of-data mark


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 enhanced status code in a reply's text (`5.1.1`), if any."""
    found = _ENHANCED.search(text)
    return ".".join(found.groups()) if found else None


def classify_reply(code: int | None, text: str = "", *, after_data_mark: bool = False) -> Verdict:
    """Say what an SMTP reply means; `code` None is a dropped connection or a timeout.

    RFC 5321 3.8: a connection closed before the end-of-data mark cancels the transaction, so that message can
    safely be tried again; after the mark, only the server knows.
    """
    if code is None:
        return Verdict.UNKNOWN if after_data_mark else Verdict.RETRY
    status = enhanced_status(text)
    if 200 <= code < 300:
        return Verdict.SENT
    if 400 <= code < 500:
        if code in (421, 452) or (status or "").startswith("4.7."):
            return Verdict.SLOW_DOWN
        return Verdict.RETRY
    if status in ("5.1.1", "5.1.2", "5.1.3") or (status is None and code in (550, 551, 553) and "user" in text.lower()):
        return Verdict.BAD_ADDRESS
    return Verdict.PERMANENT


def next_attempt_at(
    attempts: int,
    now: datetime,
    rng: Random,
    *,
    first_delay: timedelta = timedelta(minutes=1),
    longest_delay: timedelta = timedelta(hours=6),
    max_attempts: int = 8,
) -> datetime | None:
    """When to try a temporarily failed message again after `attempts` tries, or None to give up.

    Exponential backoff (1, 2, 4 ... minutes, at most 6 hours) with "full jitter" on the second half, so that
    messages that failed together do not all come back at the same moment.
    """
    if attempts >= max_attempts:
        return None
    delay = min(first_delay * (1 << max(attempts - 1, 0)), longest_delay)
    return now + delay / 2 + delay / 2 * rng.random()
