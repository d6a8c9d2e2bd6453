"""The demo's pretend world: an SMTP sink on loopback that keeps what it is sent, and the answers a campaign to
heads of state gets back (replies quoting the letter, an out-of-office, a bounce report, an unsubscribe request),
built from the letters as they arrived. `outreach demo` runs the real sending and reading code against it.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, getaddresses, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.dates import format_datetime as local_datetime

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller


UNSUBSCRIBE_MAILBOX = "unsubscribe@example.org"  # the demo's List-Unsubscribe mailbox


# The SMTP sink.


@dataclass
class _Keeper:
    """An aiosmtpd handler that accepts every message and keeps it, as it arrived."""

    messages: list[tuple[tuple[str, ...], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message with its envelope recipients."""
        self.messages.append((tuple(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK: kept by the outreach demo"


class SmtpSink:
    """An SMTP server on 127.0.0.1 and a free port, run by aiosmtpd in a thread of this process."""

    def __init__(self) -> None:
        self._keeper = _Keeper()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[tuple[tuple[str, ...], bytes]]:
        """What it received: (envelope recipients, bytes)."""
        return self._keeper.messages

    def start(self) -> int:
        """Listen, and return the port."""
        from aiosmtpd.controller import Controller  # asyncio and aiosmtpd: only the demo needs them

        with socket.socket() as probe:  # a free port: aiosmtpd checks the server by connecting, so not port 0
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        controller = Controller(self._keeper, hostname="127.0.0.1", port=port, server_hostname="sink.localhost",
                                enable_SMTPUTF8=True)  # fmt: skip
        controller.start()
        self._controller = controller
        return port

    def stop(self) -> None:
        """Close the port and end the thread (again: nothing)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# The world's answers: what heads of state's offices, their mail servers and their out-of-office rules send back.

SIGNER = "hofburg@example.org"  # the reply the demo marks as signed

_REPLIES = {  # recipient: (language, subject prefix, text)
    "elysee@example.org": ("fr", "RE :", (
        "Madame, Monsieur,\n\nLe Président de la République a bien reçu votre lettre ouverte et m'a chargé de vous "
        "en remercier. Elle a été transmise à sa cellule diplomatique, qui l'étudiera avec attention.\n\n"
        "Je vous prie d'agréer, Madame, Monsieur, l'expression de ma considération distinguée.\n\n"
        "Le chef de cabinet du Président de la République"
    )),
    SIGNER: ("de", "AW:", (
        "Sehr geehrte Damen und Herren,\n\nder Herr Bundespräsident unterstützt Ihren Aufruf und ist damit "
        "einverstanden, dass sein Name unter den Unterzeichnern genannt wird.\n\nMit freundlichen Grüßen\n"
        "Im Auftrag\nPräsidentschaftskanzlei, Bürgerservice"
    )),
    "taoiseach@example.org": ("en", "RE:", (
        "Dear Sir or Madam,\n\nThank you for your letter to the Taoiseach, which he has asked me to acknowledge. "
        "It has been passed to the Department of Foreign Affairs for consideration.\n\nYours sincerely,\n"
        "Private Secretary to the Taoiseach"
    )),
}  # fmt: skip
_OUT_OF_OFFICE = "number10@example.org"
_BOUNCES = "statsministeriet@example.org"
_UNSUBSCRIBES = "rosenbad@example.org"
# "On ... wrote:" as each language's mail program writes it (Gmail's forms), in babel's date patterns.
_ATTRIBUTION = {
    "en": ("EEE, d MMM y 'at' HH:mm", "On {date}, {sender} wrote:"),
    "fr": ("EEE d MMM y 'à' HH:mm", "Le {date}, {sender} a écrit :"),
    "de": ("EEE, d. MMM y 'um' HH:mm 'Uhr'", "Am {date} schrieb {sender}:"),
}


def answer(folder: Path, received: list[tuple[tuple[str, ...], bytes]], now: datetime) -> str:
    """Write the world's answers to the received messages into a Maildir, and say what they are."""
    letters = {}
    for recipients, data in received:
        letter = email.message_from_bytes(data, policy=email.policy.default)
        for recipient in recipients:
            letters[recipient.lower()] = letter
    answers: list[Message] = [_bounce(letters[_BOUNCES], _BOUNCES, now)]
    answers.append(_out_of_office(letters[_OUT_OF_OFFICE], now + timedelta(seconds=1)))
    for n, (recipient, (language, prefix, text)) in enumerate(_REPLIES.items(), start=2):
        answers.append(_reply(letters[recipient], language, prefix, text, now + timedelta(seconds=n)))
    answers.append(_unsubscribe(_UNSUBSCRIBES, now + timedelta(seconds=len(answers) + 1)))
    inbox = mailbox.Maildir(folder, create=True)
    for answer in answers:
        inbox.add(answer.as_bytes())
    languages = ", ".join(language for language, _, _ in _REPLIES.values())
    return f"{len(_REPLIES)} replies ({languages}), an out-of-office, a bounce and an unsubscribe request"


def _headers(sender: str, to: str, subject: str, when: datetime, message: Message) -> None:
    """The header fields every answer has."""
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=getaddresses([sender])[0][1].rpartition("@")[2] or "example.org")


def _threaded(message: Message, letter: EmailMessage) -> None:
    """In-Reply-To and References under the letter answered (RFC 5322 3.6.4)."""
    message["In-Reply-To"] = letter["Message-ID"]
    message["References"] = " ".join(filter(None, [letter.get("References"), letter["Message-ID"]]))


def _reply(letter: EmailMessage, language: str, prefix: str, text: str, when: datetime) -> EmailMessage:
    """A person's reply, top-posted above the quoted letter, as their mail program writes it."""
    reply = EmailMessage()
    _headers(str(letter["To"]), str(letter.get("Reply-To") or letter["From"]), f"{prefix} {letter['Subject']}",
             when, reply)  # fmt: skip
    _threaded(reply, letter)
    pattern, line = _ATTRIBUTION[language]
    sent = local_datetime(parsedate_to_datetime(str(letter["Date"])), pattern, locale=language)
    body = letter.get_body(preferencelist=("plain",))
    original = body.get_content() if body is not None else ""
    quoted = "\n".join(f"> {row}".rstrip() for row in original.splitlines())
    reply.set_content(f"{text}\n\n{line.format(date=sent, sender=letter['From'])}\n\n{quoted}\n")
    return reply


def _out_of_office(letter: EmailMessage, when: datetime) -> EmailMessage:
    """An automatic reply (RFC 3834), as Exchange sends one."""
    reply = EmailMessage()
    _headers(str(letter["To"]), str(letter["From"]), f"Automatic reply: {letter['Subject']}", when, reply)
    _threaded(reply, letter)
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply.set_content("Thank you for your email. This mailbox is not monitored over the weekend; your message will "
                      "be read on Monday.\n\nFor urgent matters, please call the switchboard.\n")  # fmt: skip
    return reply


def _bounce(letter: EmailMessage, recipient: str, when: datetime) -> Message:
    """A hard bounce: an RFC 3464 delivery status notification from the recipient's server, with the original's
    header fields (as Postfix sends one)."""
    mta = "mx1.example.org"
    said = f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in virtual mailbox table"
    report = MIMEMultipart("report", report_type="delivery-status")
    _headers(f"Mail Delivery System <MAILER-DAEMON@{mta}>", str(letter["From"]),
             "Undelivered Mail Returned to Sender", when, report)  # fmt: skip
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText(
        f"This is the mail system at host {mta}.\n\nI'm sorry to have to inform you that your message could not\n"
        f"be delivered to one or more recipients. It's attached below.\n\n<{recipient}>: host {mta}[192.0.2.25] "
        f"said: {said} (in reply to RCPT TO command)\n"
    ))  # fmt: skip
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = f"dns; {mta}"
    per_message["Arrival-Date"] = format_datetime(when)
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Remote-MTA"] = f"dns; {mta}"
    per_recipient["Diagnostic-Code"] = f"smtp; {said}"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    header_fields = letter.as_bytes().split(b"\n\n", 1)[0].decode("ascii", "replace")
    report.attach(MIMEText(header_fields + "\n", "rfc822-headers"))
    return report


def _unsubscribe(sender: str, when: datetime) -> EmailMessage:
    """What a mail program sends for the List-Unsubscribe mailto link (RFC 2369): subject "unsubscribe"."""
    request = EmailMessage()
    _headers(sender, UNSUBSCRIBE_MAILBOX, "unsubscribe", when, request)
    request.set_content("unsubscribe\n")
    return request
