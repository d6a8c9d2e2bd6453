"""The clues that tie an inbound message to a message of ours: the Message-IDs it answers or reports on, the token
in a plus (VERP) address it was sent to, and who sent it.

Replies name what they answer in In-Reply-To and References (RFC 5322 3.6.4); bounces (RFC 3464) and complaints
(RFC 5965) carry the original, or its headers, as a part of the report; qmail and Exim quote the original's
headers in the text instead. Mailers are sloppy about all of these: ids without angle brackets, comments after
them, folds inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from outreach.responses.inbound import own_parts, part_text

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_MESSAGE_ID = re.compile(rf"({_ATOM})@({_ATOM}|\[[^\[\]\\\s]*\])")  # RFC 5322 3.6.4 id-left "@" id-right
_BRACKETED = re.compile(r"<([^<>]*)>")
_BARE = re.compile(r"[^\s<>()\",;]+@[^\s<>()\",;]+")
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")  # innermost first: comments nest (RFC 5322 3.2.2)
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BODY_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:\s*(<[^<>]+>)", re.IGNORECASE | re.MULTILINE)
_TOKEN = r"[A-Za-z0-9._=-]+"

# Where a reply or a bounce to a plus address shows it: the visible recipient and what the receiving MTA records.
_ADDRESSED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc", "Return-Path")
# Parts that carry the original message, or only its headers (RFC 6522, RFC 6532 3.7 and RFC 6533 for UTF-8).
_HEADER_TEXT_TYPES = ("text/rfc822-headers", "message/global-headers")
_REPORT_TYPES = ("message/delivery-status", "message/feedback-report", "message/disposition-notification")


@dataclass(frozen=True)
class Clues:
    """What an inbound message says about the message of ours it answers, most telling first."""

    message_ids: tuple[str, ...]  # candidate Message-IDs of ours as `<local@domain>`, domain lower-cased
    tokens: tuple[str, ...]  # the `{token}` parts of the plus (VERP) addresses it was sent to
    sender: str | None  # the From address, domain lower-cased
    # Where each of `message_ids` was found first: in-reply-to, references, report (an attached original's
    # headers) or quoted-text (a "Message-ID:" line in a bounce's text).
    places: tuple[str, ...] = ()

    def place_of(self, message_id: str) -> str | None:
        """Where a Message-ID of `message_ids` was found."""
        return dict(zip(self.message_ids, self.places, strict=False)).get(message_id)


def normalize_message_id(value: str) -> str | None:
    """Return a Message-ID as `<local@domain>` with the domain lower-cased, or None when it is not one."""
    found = _MESSAGE_ID.fullmatch("".join(value.split()).removeprefix("<").removesuffix(">"))
    return f"<{found[1]}@{found[2].lower()}>" if found else None


def message_id_token(message_id: str) -> str:
    """Return the local part of a Message-ID: the token outreach puts in one-click and VERP addresses."""
    normalized = normalize_message_id(message_id)
    if normalized is None:
        raise ValueError(f"{message_id!r} is not a Message-ID")
    return normalized[1:].rpartition("@")[0]


def message_ids(value: str) -> list[str]:
    """Return the Message-IDs in a header value, in order: bracketed ones, or bare `local@domain` ones if none.

    Comments and quoted strings go first: `<id> (Message from Jane <jane@example.org> of ...)` names one id.
    A fold inside the brackets, which some mailers make, is joined again.
    """
    text = _QUOTED_STRING.sub(" ", value)
    while (uncommented := _COMMENT.sub(" ", text)) != text:
        text = uncommented
    candidates = _BRACKETED.findall(text) or _BARE.findall(text)
    return [found for found in map(normalize_message_id, candidates) if found]


def clues(message: Message, *, token_address: str | None = None) -> Clues:
    """Return the clues in a message: ids from In-Reply-To, References (newest first), a report's original.

    The body of a plain-text bounce is searched for a quoted "Message-ID:" line only when nothing else names one.
    `token_address` is the pattern of our plus address, such as `bounces+{token}@appeal.example.org`.
    """
    found = [
        *((one, "in-reply-to") for value in _values(message, "In-Reply-To") for one in message_ids(value)),
        *((one, "references") for value in _values(message, "References") for one in reversed(message_ids(value))),
        *((one, "report") for headers in _reported_headers(message) for one in _ids_in(headers)),
    ]
    if not found:
        found = [(one, "quoted-text") for text in _texts(message) for one in _quoted_ids(text)]
    places = dict(reversed(found))  # each id with the first place it was found
    ids = _unique(one for one, _ in found)
    tokens = _tokens(message, token_address) if token_address else []
    return Clues(message_ids=ids, tokens=_unique(tokens), sender=_sender(message), places=tuple(places[i] for i in ids))


def _values(message: Message, name: str) -> list[str]:
    """Every value of a header, as text (compat32 gives a Header object for undecodable bytes)."""
    return [str(value) for value in message.get_all(name, [])]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _ids_in(headers: Message) -> list[str]:
    """The Message-IDs of a header block."""
    return [found for value in _values(headers, "Message-ID") for found in message_ids(value)]


def _reported_headers(message: Message) -> Iterator[Message]:
    """The header blocks of originals attached to a report: message/rfc822 parts and text/rfc822-headers parts."""
    for part in own_parts(message):
        if part.get_content_type() in _HEADER_TEXT_TYPES and not part.is_multipart():
            yield HeaderParser().parsestr(part_text(part))
        elif part.get_content_maintype() == "message" and part.get_content_type() not in _REPORT_TYPES:
            # compat32 parses any other message/* part (rfc822, global, the odd rfc822-headers) as a message
            attached = part.get_payload()
            if isinstance(attached, list) and attached and isinstance(attached[0], Message):
                yield attached[0]


def _texts(message: Message) -> Iterator[str]:
    """The text/plain parts of the message itself, decoded."""
    for part in own_parts(message):
        if part.get_content_type() == "text/plain":
            yield part_text(part)


def _quoted_ids(text: str) -> list[str]:
    """Message-IDs on "Message-ID:" lines of a bounce that quotes the original's headers in its text."""
    return [found for value in _BODY_MESSAGE_ID.findall(text) if (found := normalize_message_id(value))]


def _tokens(message: Message, token_address: str) -> list[str]:
    """The tokens of plus addresses the message, or the original it reports on, was addressed to or from."""
    pattern = _token_pattern(token_address)
    blocks = [message, *_reported_headers(message)]
    values = [value for block in blocks for name in _ADDRESSED_TO for value in _values(block, name)]
    return [token for value in values for token in pattern.findall(value)]


def _token_pattern(token_address: str) -> re.Pattern[str]:
    """A pattern that finds the token in addresses made from `token_address` (the domain in any case)."""
    local, at, domain = token_address.rpartition("@")
    before, marker, after = local.partition("{token}")
    if not (at and domain and marker) or "{token}" in after:
        raise ValueError(f"{token_address!r} is no address with one {{token}} in its local part")
    return re.compile(
        rf"(?<![\w.+=-]){re.escape(before)}({_TOKEN}){re.escape(after)}@(?i:{re.escape(domain)})(?![\w.-])"
    )


def _sender(message: Message) -> str | None:
    """The From address with its domain lower-cased, if there is one."""
    addresses = [address for _, address in getaddresses(_values(message, "From")) if "@" in address]
    if not addresses:
        return None
    local, _, domain = addresses[0].rpartition("@")
    return f"{local}@{domain.lower()}"
