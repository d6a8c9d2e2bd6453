"""What one inbound message says, from its raw bytes: its identity, its kind, its clues and its new text.

Pure: the caller reads the bytes (outreach/responses/sources.py) and records what this returns
(outreach/responses/polling.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from outreach.responses.classify import Classification, classify
from outreach.responses.inbound import addresses, body_text, header_text, read_message
from outreach.responses.matching import Clues, clues
from outreach.responses.replies import new_text

# Kinds whose text is a person's own words, worth separating from the quoted original.
_WRITTEN = ("reply", "unsubscribe", "auto_reply")


@dataclass(frozen=True)
class Understood:
    """One inbound message as the response log keeps it."""

    fingerprint: str  # SHA-256 of the raw bytes: the same message read twice is recorded once
    message_id: str | None
    sender: str | None
    subject: str
    date_header: datetime | None  # what its Date header says (the sender's clock); None when none parses
    classification: Classification
    clues: Clues
    text: str  # a reply's new text; for a bounce, the remote server's words


@dataclass(frozen=True)
class Unreadable:
    """A message that could not be read (a bug, or mail stranger than the parser's leniency covers): recorded as
    such, with the error, so that it stops neither the poll nor the messages after it."""

    fingerprint: str
    error: str


def fingerprint(raw: bytes) -> str:
    """The identity of a message's bytes."""
    return hashlib.sha256(raw).hexdigest()


def understand(
    raw: bytes, *, unsubscribe_addresses: Collection[str] = (), token_address: str | None = None
) -> Understood:
    """Read, classify and search one raw message for what it answers; never raises for malformed mail."""
    message = read_message(raw)
    classification = classify(message, unsubscribe_addresses=unsubscribe_addresses)
    # A reply's new text; for a bounce, what the remote server said.
    if classification.text is not None:  # the classifier separated the new text already
        text = classification.text
    else:
        text = new_text(body_text(message)) if classification.kind in _WRITTEN else classification.diagnostic or ""
    senders = addresses(message, "From")
    return Understood(
        fingerprint=fingerprint(raw),
        message_id=header_text(message, "Message-ID")[:500] or None,
        sender=senders[0][:320] if senders else None,
        subject=header_text(message, "Subject"),
        date_header=_date(header_text(message, "Date")),
        classification=classification,
        clues=clues(message, token_address=token_address),
        text=text,
    )


def understand_all(
    raws: list[bytes], *, unsubscribe_addresses: Collection[str] = (), token_address: str | None = None
) -> list[Understood | Unreadable]:
    """`understand` for a batch of messages (what a second process runs for a large inbox); a message it fails on
    is Unreadable, and the others are read all the same."""
    found: list[Understood | Unreadable] = []
    for raw in raws:
        try:
            found.append(understand(raw, unsubscribe_addresses=unsubscribe_addresses, token_address=token_address))
        except Exception as error:  # whatever it is, one message must not cost the batch: it is kept to look at
            found.append(Unreadable(fingerprint(raw), describe(error)))
    return found


def describe(error: BaseException) -> str:
    """An error in a line for the response's reason: its type and what it says."""
    return f"{type(error).__name__}: {error}"[:2000]


def _date(value: str) -> datetime | None:
    """A Date header as an aware UTC datetime, or None (missing, garbled, or without a zone)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)
