"""A rendered copy turned into the bytes that go on the wire: headers, MIME structure, transfer encoding.

Built by hand because the stdlib's `EmailMessage` costs more than rendering the letter itself; the tests parse
every message back with the stdlib parser and compare. References: RFC 5322 (message format, 2.1.1 line
limits), RFC 2045 (quoted-printable, 6.7: lines of at most 76 characters), RFC 2046 (multipart), RFC 2047
(encoded words in headers, at most 75 characters each), RFC 6532 (UTF-8 addresses, which need SMTPUTF8).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache

CRLF = "\r\n"
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # C0, C1, line and paragraph separators
# Characters that force a display name into a quoted string (RFC 5322 3.2.3 `specials`).
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 2.2: printable ASCII except colon
_MAX_LINE = 998  # RFC 5322 2.1.1: octets per line, CRLF not counted
_ENCODED_WORD_CHUNK = 42  # bytes of UTF-8 per encoded word: 56 base64 characters + 12 of =?utf-8?b??= = 68


class MessageError(ValueError):
    """A message cannot be built as asked (an address or header that would break the message)."""


@dataclass(frozen=True)
class Mailbox:
    """A display name and an address (already validated; IDNA domains in ASCII)."""

    address: str
    name: str | None = None

    @property
    def needs_smtputf8(self) -> bool:
        """True when the address itself is not ASCII: only a server offering SMTPUTF8 may carry it."""
        return not self.address.isascii()


@dataclass(frozen=True)
class Message:
    """Everything a message is made of, in plain values."""

    sender: Mailbox
    recipient: Mailbox
    subject: str
    text: str
    message_id: str
    date: datetime | None  # None: no Date header (the outbox keeps letters without one; sending adds it)
    html: str | None = None
    reply_to: Mailbox | None = None
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)  # In-Reply-To, List-Unsubscribe ...

    @property
    def needs_smtputf8(self) -> bool:
        """True when an address in the message is not ASCII."""
        boxes = [self.sender, self.recipient, *([self.reply_to] if self.reply_to else [])]
        return any(box.needs_smtputf8 for box in boxes)


def make_message_id(domain: str, token: str | None = None) -> str:
    """Return a Message-ID under the sender's domain: `<token@domain>` with a random token unless given."""
    token = token or secrets.token_hex(16)
    if not re.fullmatch(r"[A-Za-z0-9.-]+", domain) or not re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+", token):
        raise MessageError(f"cannot make a Message-ID from {token!r} and {domain!r}")
    return f"<{token}@{domain.lower()}>"


def one_line(text: str) -> str:
    """Collapse CR, LF and other controls into single blanks: nothing a template or a contact field holds may
    start a new header line."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def encode_words(text: str) -> str:
    """Encode text as RFC 2047 base64 encoded words on continuation lines, split after a blank where possible.

    RFC 2047 6.2 says readers drop the white space between encoded words; some (Python's own address parser
    among them) show a blank there instead. Splitting after the name's own blanks, never inside a word when
    the word fits, keeps such readers from cutting a name in two.
    """
    chunks: list[bytes] = []
    chunk = b""
    for token in re.findall(r"\S+\s*|\s+", text):
        encoded = token.encode("utf-8")
        if len(chunk) + len(encoded) <= _ENCODED_WORD_CHUNK:
            chunk += encoded
            continue
        if chunk:
            chunks.append(chunk)
            chunk = b""
        for char in token:  # a token longer than a whole encoded word is split between characters
            piece = char.encode("utf-8")
            if len(chunk) + len(piece) > _ENCODED_WORD_CHUNK:
                chunks.append(chunk)
                chunk = b""
            chunk += piece
    chunks.append(chunk)
    return (CRLF + " ").join(f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks)


def _fold_ascii(prefix: int, text: str) -> str:
    """Fold an ASCII header value at blanks so that lines stay within 78 characters where words allow."""
    lines: list[str] = []
    current = ""
    width = prefix
    for word in text.split(" "):
        if current and width + 1 + len(word) > 78:
            lines.append(current)
            current, width = word, 1 + len(word)
        else:
            current = f"{current} {word}" if current else word
            width += len(word) + (1 if current != word else 0)
    lines.append(current)
    return (CRLF + " ").join(lines)


def _plain_enough(text: str, longest: int) -> bool:
    """True when text can stand in a header as it is: ASCII, no encoded-word look-alike, no unfoldable word."""
    return text.isascii() and "=?" not in text and all(len(word) <= longest for word in text.split(" "))


@lru_cache(maxsize=1024)  # the copies of one letter share their subject
def unstructured(name: str, value: str) -> str:
    """Return a header line (without its CRLF) for free text such as the subject."""
    value = one_line(value)
    if _plain_enough(value, 78 - len(name) - 2):
        return f"{name}: {_fold_ascii(len(name) + 2, value)}"
    return f"{name}: {encode_words(value)}"


def extra_header(name: str, value: str) -> str:
    """Return a header line (without its CRLF) for a caller's header such as List-Unsubscribe or In-Reply-To.

    These fields are structured: RFC 2047 5 allows no encoded word inside a URL (RFC 2369) or a msg-id, and
    RFC 2369 2 forbids blanks inside the angle brackets. So an ASCII value is only folded at its own blanks, and
    a word too long for 78 characters (a one-click unsubscribe URL with its token) stays whole on a line of its
    own, within SMTP's 998 (RFC 5322 2.1.1). Anything else is free text and encoded as the subject is.
    """
    value = one_line(value)
    if _plain_enough(value, _MAX_LINE - len(name) - 2):
        return f"{name}: {_fold_ascii(len(name) + 2, value)}"
    return unstructured(name, value)


@lru_cache(maxsize=1024)  # and their sender
def mailbox(box: Mailbox) -> str:
    """Return a mailbox as it appears in From, To or Reply-To: the name encoded or quoted, the address bare."""
    if any(ch in box.address for ch in "\r\n<>, \t") or "@" not in box.address:
        raise MessageError(f"{box.address!r} cannot stand in a header as an address")
    name = one_line(box.name or "")
    if not name:
        return box.address
    if not _plain_enough(name, 40) or len(name) > 40:
        # RFC 2047 5(3): an encoded word may stand for the display name, never for the address, which goes on
        # a line of its own so that no line passes 78 characters.
        return f"{encode_words(name)}{CRLF} <{box.address}>"
    if _SPECIALS.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        name = f'"{escaped}"'
    return f"{name}{CRLF} <{box.address}>" if len(name) + len(box.address) > 60 else f"{name} <{box.address}>"


@lru_cache(maxsize=4096)
def _quoted_printable(line: str) -> str:
    """One line (without its line break) as quoted-printable, soft breaks included (RFC 2045 6.7)."""
    # With its CRLF, so that b2a_qp makes CRLF soft breaks and treats blanks at the end as it does mid-text.
    return binascii.b2a_qp(f"{line}{CRLF}".encode(), istext=True).decode("ascii").removesuffix(CRLF)


def _text_part(content: str, subtype: str) -> list[str]:
    # Most bodies have only LF: str.replace is many times faster than the regex on a 15 kB letter.
    normalized = content.replace("\n", CRLF) if "\r" not in content else _LINE_BREAKS.sub(CRLF, content)
    if not normalized.endswith(CRLF):
        normalized += CRLF
    # Quoted-printable keeps every line within 76 characters (the appeal's paragraphs are single lines of up
    # to 2,666 characters, over SMTP's 998) and plain text readable. It encodes each line on its own, so lines
    # are encoded one by one and remembered: copies of one letter share all but a few lines.
    body = CRLF.join(map(_quoted_printable, normalized.split(CRLF)))
    return [
        f"Content-Type: text/{subtype}; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        body.removesuffix(CRLF),  # the line break before a boundary belongs to the boundary (RFC 2046 5.1.1)
    ]


def build_message(message: Message) -> bytes:
    """Return the message as bytes with CRLF line ends, every line within SMTP's limits."""
    lines = [
        f"From: {mailbox(message.sender)}",
        f"To: {mailbox(message.recipient)}",
    ]
    if message.reply_to:
        lines.append(f"Reply-To: {mailbox(message.reply_to)}")
    lines += [
        unstructured("Subject", message.subject),
        *([f"Date: {format_datetime(message.date)}"] if message.date else []),
        f"Message-ID: {_checked_id(message.message_id)}",
    ]
    for name, value in message.headers:
        if not _HEADER_NAME.fullmatch(name):
            raise MessageError(f"{name!r} is not a header name")
        lines.append(extra_header(name, value))
    lines.append("MIME-Version: 1.0")
    if message.html is None:
        lines += _text_part(message.text, "plain")
    else:
        boundary = f"=_outreach_{secrets.token_hex(12)}"
        plain = _text_part(message.text, "plain")
        html = _text_part(message.html, "html")
        if any(boundary in part for part in (*plain, *html)):  # pragma: no cover - 96 random bits
            raise MessageError("the MIME boundary occurs in the message")
        lines += [
            f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"',
            "",
            f"--{boundary}",
            *plain,
            "",
            f"--{boundary}",
            *html,
            "",
            f"--{boundary}--",
        ]
    return (CRLF.join(lines) + CRLF).encode("utf-8")


def _checked_id(message_id: str) -> str:
    if not re.fullmatch(r"<[^\s<>@]+@[^\s<>@]+>", message_id):
        raise MessageError(f"{message_id!r} is not a Message-ID")
    return message_id
