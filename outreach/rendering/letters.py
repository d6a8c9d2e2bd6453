"""A rendered copy made into a letter: everything the wire carries but Date and the DKIM signature, decided once.

Who sends (From, Reply-To), where bounces go (the envelope sender, VERP), how to unsubscribe (List-Unsubscribe) and
what a follow-up answers (In-Reply-To, References) are decided here, when a copy is queued, and kept with it in the
outbox. Sending then adds only Date and the signature of the From domain's key, and the .eml files of a preview,
of `templates render -f eml` and of `send --dry-run` add only Date: what a campaigner looks at is what the server
receives.

The one-click unsubscribe URL is `OUTREACH_PUBLIC_URL/u/TOKEN`, where `outreach serve` answers; its token, signed
with the workspace's secret and naming the contact and the campaign (outreach/contacts/tokens.py), comes from the
caller: this module knows no secret.

References: RFC 2369 (List-Unsubscribe: URLs in angle brackets, comma separated), RFC 8058 (one-click
unsubscribe: an https URL and `List-Unsubscribe-Post`), RFC 5322 3.6.4 (threading), RFC 5321 4.1.2 (paths).
The settings these come from are checked when they are loaded (outreach/config.py), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

from outreach.contacts.addresses import InvalidAddressError, ascii_domain_form, parse_address
from outreach.errors import ConfigError
from outreach.rendering.mime import Mailbox, Message, build_message, make_message_id

if TYPE_CHECKING:  # a letter is made from a copy, but sending and reading the outbox need no template engine
    from outreach.rendering.copies import CompiledTemplate, Copy, Letterhead, Recipient

PROOF_PREFIX = "[proof] "


@dataclass(frozen=True)
class Sender:
    """Who the letters come from, and where what they cause goes: replies, bounces, unsubscribe requests."""

    mailbox: Mailbox | None
    organization: str = ""
    reply_to: Mailbox | None = None
    return_path: str = ""  # the envelope sender, `{token}` in it replaced (VERP); empty: the From address
    unsubscribe_mailto: str = ""
    public_url: str = ""  # where `outreach serve` answers (no trailing slash); empty: no one-click unsubscribe

    @property
    def name(self) -> str:
        """The name printed under the letter."""
        return (self.mailbox.name or self.mailbox.address) if self.mailbox else ""

    @property
    def domain(self) -> str:
        """The From address's domain: Message-IDs are made under it, and its DKIM key signs."""
        return domain_of(self.mailbox.address) if self.mailbox else ""


def parse_mailbox(text: str, setting: str) -> Mailbox | None:
    """Read `Name <address>` from a setting; empty means not set."""
    if not text.strip():
        return None
    name, address = parseaddr(text)
    try:
        checked = parse_address(address)
    except InvalidAddressError as error:
        raise ConfigError(f"{setting}: {error}", hint='write it as "Name <address@example.org>"') from None
    return Mailbox(ascii_domain_form(checked.email), name or None)


@dataclass(frozen=True)
class Letter:
    """A copy as the outbox keeps it: the envelope, and the message's bytes less Date and DKIM-Signature."""

    message_id: str
    sender: str  # the From address
    envelope_sender: str  # MAIL FROM
    recipient: str  # RCPT TO
    language: str
    subject: str
    data: bytes


def domain_of(address: str) -> str:
    """The domain of an address, lower case."""
    return address.rpartition("@")[2].lower()


def token_of(message_id: str) -> str:
    """What names a message in a VERP address: the local part of its Message-ID."""
    return message_id.strip("<>").rpartition("@")[0]


def compose(
    copy: Copy, recipient: Mailbox, sender: Sender, message_id: str | None = None, *, unsubscribe_token: str,
    thread_id: str | None = None, proof: bool = False,
) -> Letter:  # fmt: skip
    """Make the letter of one copy, under `message_id` (None: a fresh one under the sender's domain, for a letter
    outside the outbox); `unsubscribe_token` is the signed token of its one-click URL (contacts/tokens.py),
    `thread_id` the first letter a follow-up answers, `proof` marks a copy sent to the campaigner before the real
    send."""
    if sender.mailbox is None:
        raise ConfigError("no sender: OUTREACH_FROM is not set", hint='add OUTREACH_FROM="Name <address>" to .env')
    message_id = message_id or make_message_id(sender.domain)
    token = token_of(message_id)
    headers: list[tuple[str, str]] = []
    if thread_id:  # a follow-up threads under the first letter (RFC 5322 3.6.4)
        headers += [("In-Reply-To", thread_id), ("References", thread_id)]
    one_click = one_click_url(sender.public_url, unsubscribe_token) if sender.public_url else ""
    headers += unsubscribe_headers(sender.unsubscribe_mailto, one_click)
    if proof:
        copy = replace(copy, subject=PROOF_PREFIX + copy.subject)
    data = build_message(
        Message(sender.mailbox, recipient, copy.subject, copy.text, message_id, None, html=copy.html,
                reply_to=sender.reply_to, headers=headers)
    )  # fmt: skip
    envelope = sender.return_path.replace("{token}", token) if sender.return_path else sender.mailbox.address
    return Letter(message_id, sender.mailbox.address, envelope, recipient.address, copy.language, copy.subject, data)


def dated(data: bytes, when: datetime) -> bytes:
    """A letter's bytes with its Date header (RFC 5322 3.6.1), as they leave: the only header added on the way."""
    return f"Date: {format_datetime(when)}\r\n".encode("ascii") + data


def one_click_url(public_url: str, token: str) -> str:
    """The one-click unsubscribe URL of a token, where `outreach serve` answers it: PUBLIC_URL/u/TOKEN (the token
    is URL-safe base64, nothing in it needs quoting)."""
    return f"{public_url}/u/{token}"


def unsubscribe_headers(mailto: str, url: str) -> list[tuple[str, str]]:
    """Return the List-Unsubscribe headers for one message: the one-click URL first, then the mailto."""
    links: list[str] = []
    if url:
        links.append(f"<{url}>")
    if mailto:
        links.append(f"<mailto:{mailto}?subject=unsubscribe>")
    if not links:
        return []
    # Unfolded: build_message folds at the blank after each comma, never inside the brackets.
    headers = [("List-Unsubscribe", ", ".join(links))]
    if url:
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # RFC 8058 3.1
    return headers


def mailbox_of(recipient: Recipient) -> Mailbox:
    """Where a recipient's letter goes: their address (its domain in the IDNA form) and name."""
    return Mailbox(ascii_domain_form(recipient.email), recipient.name)


def letter_for(
    template: CompiledTemplate, recipient: Recipient, head: Letterhead, sender: Sender, message_id: str | None, *,
    unsubscribe_token: str, thread_id: str | None = None, extra: Mapping[str, Any] | None = None,
    proof_to: Mailbox | None = None,
) -> Letter:  # fmt: skip
    """Render one recipient's copy and make it into their letter: the one way every letter is made. With
    `proof_to`, the letter goes there instead, marked as a proof."""
    copy = template.render(recipient, head, extra)
    to = proof_to or mailbox_of(recipient)
    return compose(copy, to, sender, message_id, unsubscribe_token=unsubscribe_token, thread_id=thread_id,
                   proof=proof_to is not None)  # fmt: skip
