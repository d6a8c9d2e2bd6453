"""What kind of response an inbound message is: a person's reply, an automatic reply, a bounce (hard, soft or a
delay warning), a request to unsubscribe, or an abuse complaint.

The rules run in the order of what each signal is worth: machine-readable reports first (RFC 5965 feedback
reports, RFC 3464 delivery status notifications), then bounces in older free-text formats (flufl.bounce knows
dozens), then the headers (RFC 3834 and vendors' own) and subjects of automatic replies, then requests to
unsubscribe; what is left is a person's reply. Kinds are those of `outreach.vocabulary.RESPONSE_KINDS`.

Hard or soft (RFC 3463): a 5.x.x status is permanent and flags the address; a 4.x.x in a report whose Action is
`failed` means the remote server gave up after retrying, so the letter was lost but the address may be fine; an
Action of `delayed` is a warning that delivery is still being tried.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, replace
from email.message import Message

from flufl.bounce import all_failures

from outreach.outbox.states import enhanced_status
from outreach.responses.inbound import (
    addresses,
    body_text,
    field_blocks,
    header_text,
    own_parts,
    part_text,
    parts_of_type,
    read_message,
)
from outreach.responses.replies import new_text


@dataclass(frozen=True)
class Classification:
    """What a message is, why we think so, and for a bounce what the remote server said and about whom."""

    kind: str  # one of RESPONSE_KINDS
    reason: str  # short words on why, for the response log: "DSN Action failed, Status 5.1.1"
    status: str | None = None  # the RFC 3463 enhanced status code of a bounce, "5.1.1"
    diagnostic: str | None = None  # the remote server's text, on one line
    recipients: tuple[str, ...] = ()  # the addresses that bounced or complained, lower-cased
    text: str | None = None  # a person's own words, apart from the quote, where the classifier read them
    # How the kind was told: dsn, free-text, arf, mdn, rfc3834, header, exchange, subject, mailbox, short-reply.
    sub_kind: str | None = None
    bounced: tuple[BouncedRecipient, ...] = ()  # each recipient a bounce names, with what it says of them


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient of a bounce: the address, the DSN Action (failed, delayed) and Status, and the remote server's
    words, as the report gives them for this recipient (a free-text bounce gives one status for all)."""

    address: str
    action: str | None
    status: str | None
    diagnostic: str | None


# Tables are written in normalized text (see `_normalized`): case folded, accents stripped, `ł` as `l`.

# Senders and subjects of delivery reports in the languages we write to. Only messages that look like one are
# searched for a free-text bounce, because running flufl.bounce's detectors costs more than the rest together.
_BOUNCE_SENDER = re.compile(
    r"mailer-daemon|postmaster|mail delivery (subsystem|system|service)|delivery subsystem|microsoftexchange|mdaemon"
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery (has )?failed|delivery failure|failure notice|returned mail"
    r"|mail delivery failed|could not send message|delayed mail|delivery delayed|unzustellbar|nicht zustellbar"
    r"|non remis|non distribuable|no se puede entregar|no entregado|non recapitat|niedostarczon|nedorucitel"
    r"|could not be delivered|not (been )?delivered|non-delivery|mail error|failed mail|automatically rejected"
    r"|user unknown|olevererbar|onbestelbaar|niet bezorgd|nao (pode ser )?entregue|kan ikke leveres"
    r"|konnte nicht zugestellt|nedoruceno|nedorucena|не доставлен|недоставлен"
)
_DELAY_SUBJECT = re.compile(r"\(delay\)|delayed|could not send message for past|still being retried")
# What a free-text bounce says when it names no SMTP code: that a letter was not delivered (in the report's own
# words, before the copy of the original), and, for a soft bounce, that the server gave up on a temporary failure
# after retrying (RFC 3463 4.x.x reached its time limit) rather than being refused. Written in normalized text.
_FAILURE_TEXT = re.compile(
    r"could not be delivered|cannot be delivered|can ?not deliver|was not delivered|not been delivered|undeliverable"
    r"|unable to deliver|did not reach the following|delivery (to the following recipients? )?failed|has failed"
    r"|failed permanently|permanent (fatal )?error|not a valid (user|address)|(user|mailbox|recipient) (not found"
    r"|unknown|unavailable)|no such (user|mailbox|address)|does not exist|address rejected|not listed in"
    r"|ne peut pas etre remis|n'a pas pu etre (remis|delivre)|konnte nicht zugestellt|nicht zugestellt werden"
    r"|no (pudo|se pudo|puede) ser entregado|non (e stato|puo essere) (recapitato|consegnato)|nie (mog|moz)\w* "
    r"dostarcz|nelze dorucit|nebylo doruceno|nao pode ser (enviada|entregue)|kon niet worden bezorgd"
    r"|не может быть доставлено|невозможно доставить"
)
_GAVE_UP_TEXT = re.compile(
    r"temp_failure|failed \d+ attempts|maximum (number of )?delivery attempts|after \d+ attempt|numerous attempts"
    r"|not reachable within|queue period|not delivered within|in the queue too long|aborted after"
    r"|(hosts? ha(ve|s) been|all hosts) (failing|unreachable)|connection (was )?(dropped|timed out|refused)"
    r"|timed out|delivery time expired"
)
# A free-text bounce names the failed addresses in its report, before the copy: `<jane@example.org>:` (qmail),
# `  jane@example.org` on a line of its own, `Recipient: [SMTP:jane@example.org]` (MailEnable) ...
_QUOTED_HEADERS = re.compile(r"^(received|return-path|message-id|delivered-to):", re.I | re.M)
_SENDER_LINE = re.compile(r"^\W*(from|sender|reply-to|return-path|envelope-from)\s*:|.*\bmail from\s*:", re.I)
_ADDRESS_IN_TEXT = re.compile(r"(?<![\w.+=-])([\w.+=-]+@[\w-]+(?:\.[\w-]+)+)")
# Where the copy of the original begins inside a free-text bounce: codes after this point are not the report's.
_COPY_MARKER = re.compile(
    r"^.*(copy of (the|your) message|original message|returned message|message headers follow|returned mail follows"
    r"|original-nachricht|message d'origine|(header|copy) of the (source|original) (mail|message)"
    r"|mensaje original|original message follows)",
    re.I | re.M,
)
# RFC 3463 enhanced status codes and RFC 5321 reply codes of failures, not parts of addresses, numbers or dates.
_STATUS_IN_TEXT = re.compile(r"(?<![\w.])([45])\.\d{1,3}\.\d{1,3}(?!\.?\d)")
_SMTP_CODE = re.compile(r"(?<![\w.+-])([45][0-5]\d)(?:[ -]|$)", re.M)

# Header fields of automatic messages: RFC 3834 5 (Auto-Submitted), then what clients and servers send instead.
# The pattern says which values mark an automatic message.
_NOT_NO = re.compile(r"(?!(no|false|0)\b)\S", re.I)
_AUTO_REPLY_HEADERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Auto-Submitted", _NOT_NO),  # RFC 3834 5: anything but "no"
    ("X-Autoreply", _NOT_NO),
    ("X-Autorespond", _NOT_NO),
    ("Precedence", re.compile(r"(bulk|junk|auto_reply)\b", re.I)),  # vacation(1), many autoresponders
    ("X-Autogenerated", re.compile(r"reply\b", re.I)),
    ("X-MS-Exchange-Generated-Message-Source", _NOT_NO),  # Exchange: made by a mailbox rule or an agent
    ("X-MS-Exchange-Inbox-Rules-Loop", _NOT_NO),  # Exchange: sent by an inbox rule
)
# Subjects of automatic replies by language. Words a person's subject could begin with too ("absence") count
# only at the very start, where a client puts them.
_AUTO_REPLY_SUBJECTS = {
    "en": r"out of (the )?office|auto(matic)?[ -]?(reply|response)|^auto:|away from (the|my) (office|desk)"
    r"|on (vacation|holiday|leave)\b|^(absence|away|vacation)\b",
    "fr": r"reponse automatique|absente? du bureau|message d'absence|^absen(ce|te?)\b|en conges?\b",
    "de": r"abwesenheitsnotiz|automatische (antwort|ruckantwort)|nicht im buro|^abwesen(d|heit)|^(im )?urlaub\b",
    "es": r"respuesta automatica|fuera de (la )?oficina|^ausen(cia|te)\b|de vacaciones",
    "it": r"risposta automatica|fuori (sede|ufficio)|^assen(te|za)\b|in ferie\b",
    "pl": r"odpowiedz automatyczna|autoodpowiedz|nieobecnosc|poza biurem|^urlop\b",
    "cs": r"automaticka odpoved|nepritomnost|mimo (kancelar|urad)|^dovolena\b",
    "nl": r"automatisch antwoord|afwezigheidsbericht|niet (aanwezig|op kantoor)|^afwezig\b",
    "pt": r"resposta automatica|fora do escritorio|^ausente\b",
    "sv": r"autosvar|fravarande|franvaro|inte pa kontoret",
    "da": r"automatisk svar|fravaersbesked|ikke pa kontoret",
    "fi": r"automaattinen vastaus|poissaoloviesti|^poissa\b",
    "hu": r"automatikus valasz|hazon kivul|^szabadsag",
    "ro": r"raspuns automat|in afara biroului|^concediu\b",
    "sk": r"automaticka odpoved|mimo kancelarie|^neprit",
    "lv": r"automatiska atbilde|arpus biroja|^atvalinajum",
    "lt": r"automatinis atsakymas|ne biure|^atostog",
    "et": r"automaatne vastus|kontorist eemal|^puhkusel\b",
    "sl": r"samodejni odgovor|odsotnost|izven pisarne",
    "hr": r"automatski odgovor|izvan ureda|^odsutan\b",
    "el": r"αυτοματη απαντηση|εκτος γραφειου",
    "bg": r"автоматичен отговор|извън офиса",
}
# Requests to be taken off the list by language.
_UNSUBSCRIBE_PHRASES = {
    "en": r"\bunsubscribe|(remove|take) me (off|from) (your|the|this) (mailing |e-?mail )?list"
    r"|stop (e-?mailing|sending|writing to) me|do not (e-?mail|contact|write to) me|\bopt[ -]?out\b",
    "fr": r"desabonn|desinscri|ne (\w+ )?plus recevoir|retirez-moi|supprimez-moi de",
    "de": r"ab(zu)?melden|aus(zu)?tragen|tragen sie mich\b.{0,40}\baus\b|keine weiteren (e-?mails|nachrichten)"
    r"|abbestellen|entfernen sie mich",
    "es": r"dar(se|me)? de baja|cancelar (la|mi) suscripcion|no (quiero )?recibir mas|eliminen?me de",
    "it": r"annullare (l'|la )?iscrizione|disiscriver|cancellarmi|rimuover(mi|e) dalla|non (voglio )?ricevere piu",
    "pl": r"wypisac|wypiszcie|wypisz mnie|rezygnuje z|usuncie mnie|nie chce (juz )?otrzymywac",
    "cs": r"odhlasit|odhlaste|odhlaseni|nechci (uz )?dostavat|vyradte me",
}
# A reply asking to unsubscribe is a line or two with a greeting and a signature; a longer letter that mentions
# unsubscribing is a letter, for a person to read. 400 characters of new text is some 60 words.
_SHORT_REPLY = 400
_SHORT_SUBJECT = 60
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fw|fwd|tr|sv|odp|r|rif|res|enc)\s*:\s*)+", re.I)  # Re:, AW:, TR: ...
_COMBINING = re.compile(r"[\u0300-\u036f]")
_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "\u2019": "'"})  # letters NFKD keeps whole; typographic '


def _alternation(table: dict[str, str]) -> re.Pattern[str]:
    """One pattern of a language table, each language a named group; every phrase begins a word."""
    # The leading \b lets the engine drop most positions before trying the branches: three times faster.
    return re.compile(r"\b(?:" + "|".join(f"(?P<{language}>{pattern})" for language, pattern in table.items()) + ")")


_AUTO_REPLY_SUBJECT = _alternation(_AUTO_REPLY_SUBJECTS)
_UNSUBSCRIBE = _alternation(_UNSUBSCRIBE_PHRASES)


def _normalized(text: str) -> str:
    """Text as the tables are written: case folded, accents stripped, white space single."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    return " ".join(_COMBINING.sub("", folded).split())


# Delivery reports.


def _address_field(value: str) -> str:
    """The address of an RFC 3464 recipient field (`rfc822; <Jane@Example.org>`), lower-cased; "" if none."""
    kind, _, address = value.rpartition(";")
    if kind.strip().lower() not in ("rfc822", "utf-8", ""):
        return ""
    address = address.strip().strip("<>").strip().lower()
    return address if "@" in address else ""


def _one_line(text: str, limit: int = 500) -> str:
    """Text on one line, trimmed; the first `limit` characters of a longer one."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Recipient:
    """One per-recipient block of a delivery status notification (RFC 3464 2.3)."""

    address: str
    action: str
    status: str | None
    diagnostic: str | None

    @property
    def status_class(self) -> str:
        """2, 4 or 5: from the status, else the SMTP reply in the diagnostic, else 5 (the Action said failed)."""
        if self.status:
            return self.status[0]
        code = _SMTP_CODE.search(self.diagnostic or "")
        return code.group(1)[0] if code else "5"


def _recipient(block: Message) -> _Recipient:
    """Read one per-recipient block: who, what happened, and what the remote server said."""
    diagnostic = re.sub(r"^[\w-]+\s*;\s*", "", header_text(block, "Diagnostic-Code")) or None  # "smtp; 550 ..."
    status = enhanced_status(header_text(block, "Status"))
    detail = found.group(0) if (found := _STATUS_IN_TEXT.search(diagnostic or "")) else None
    if detail and (status is None or (status.endswith(".0.0") and detail[0] == status[0])):
        status = detail  # Exim and others report 5.0.0 and give the precise code in the diagnostic only
    action = header_text(block, "Action").lower().split(" ", 1)[0].strip(";(")
    address = _address_field(header_text(block, "Original-Recipient")) or _address_field(
        header_text(block, "Final-Recipient")
    )
    return _Recipient(address, action, status, _one_line(diagnostic) if diagnostic else None)


def _returned_original(message: Message) -> Message | None:
    """The original a report returns: attached whole, as its headers only, or quoted after a marker in its text."""
    for part in own_parts(message):
        if part.get_content_type() in ("message/rfc822", "message/global", "message/rfc822-headers"):
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
            return original if isinstance(original, Message) else None
        if part.get_content_type() == "text/rfc822-headers":
            return read_message(part_text(part).encode(errors="replace"))
    text = body_text(message)
    marker = _COPY_MARKER.search(text)
    if marker is None:
        return None
    return read_message(text[marker.end() :].split("\n", 1)[-1].lstrip().encode(errors="replace"))


def _original_recipients(message: Message) -> tuple[str, ...]:
    """The To addresses of the original a report returns, lower-cased."""
    original = _returned_original(message)
    return tuple(address.lower() for address in addresses(original, "To")) if original is not None else ()


def _from_delivery_status(message: Message, reports: list[Message]) -> Classification | None:
    """Read RFC 3464 reports: the worst outcome among their recipients decides; None when they name none."""
    blocks = [_recipient(block) for report in reports for block in field_blocks(report)]
    blocks = [block for block in blocks if block.action or block.address]  # the per-message block has neither
    if not blocks:
        return None
    # Some reporters (Boxbe) put the Action in the per-message block and leave it out of the recipient's: the
    # recipient then takes it, and the stray block, which names nobody, goes.
    stray = [block for block in blocks if block.action and not block.address]
    if stray and (named := [block for block in blocks if block.address]) and not any(b.action for b in named):
        blocks = [replace(block, action=stray[0].action) for block in named]
    failed = [block for block in blocks if block.action in ("failed", "failure", "error")]  # opensmtpd: `error`
    hard = [block for block in failed if block.status_class != "4"]
    if hard:
        kind, chosen = "hard_bounce", hard
    elif failed:
        kind, chosen = "soft_bounce", failed  # the remote gave up after retrying a temporary failure
    elif delayed := [block for block in blocks if block.action == "delayed"]:
        kind, chosen = "delayed", delayed
    else:  # relayed, delivered, expanded: a success notice
        actions = ", ".join(sorted({block.action or "none" for block in blocks}))
        return Classification("unknown", f"DSN Action {actions}: a notice of success, not a failure", sub_kind="dsn")
    first = chosen[0]
    recipients = tuple(dict.fromkeys(block.address for block in chosen if block.address))
    reason = f"DSN Action {first.action}, Status {first.status}" if first.status else f"DSN Action {first.action}"
    first_blocks = {block.address: block for block in reversed(chosen) if block.address}  # one per address
    bounced = tuple(
        BouncedRecipient(address, first_blocks[address].action, first_blocks[address].status,
                         first_blocks[address].diagnostic)
        for address in recipients
    )  # fmt: skip
    if not recipients:  # a report that names no recipient: the original's To, as a free-text bounce gives them
        recipients = _original_recipients(message)
        bounced = tuple(BouncedRecipient(a, first.action, first.status, first.diagnostic) for a in recipients)
    return Classification(kind, reason, first.status, first.diagnostic, recipients, sub_kind="dsn", bounced=bounced)


def _failures(message: Message) -> tuple[frozenset[str], frozenset[str]]:
    """flufl.bounce's temporary and permanent failures, as lower-cased text; none if a detector trips."""
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # its detectors assume well-formed mail; a malformed bounce must not stop the inbox
        return frozenset(), frozenset()
    return (
        frozenset(address.decode("ascii", "replace").lower() for address in temporary),
        frozenset(address.decode("ascii", "replace").lower() for address in permanent),
    )


def _reply_code(report: str) -> tuple[str, str | None, str] | None:
    """The class (4 or 5), enhanced status and line of the first failure quoted in a free-text report."""
    if found := _STATUS_IN_TEXT.search(report):
        status: str | None = found.group(0)
    elif found := _SMTP_CODE.search(report):
        status = None
    else:
        return None
    start = report.rfind("\n", 0, found.start()) + 1
    end = report.find("\n", found.start())
    return found.group(1)[0], status, _one_line(report[start : end if end >= 0 else None])


def _from_free_text(message: Message) -> Classification | None:
    """Read a bounce without a delivery-status part (qmail, old Exim, Exchange, Yahoo ...); None if it is none."""
    temporary, permanent = _failures(message)
    text = body_text(message)
    marker = _COPY_MARKER.search(text)
    found = _reply_code(text[: marker.start()] if marker else text)
    status_class, status, diagnostic = found if found else ("", None, None)
    delay_subject = _DELAY_SUBJECT.search(header_text(message, "Subject").lower())
    report = _normalized(text[: marker.start()] if marker else text)
    gave_up = status_class != "5" and _GAVE_UP_TEXT.search(report)
    if status_class == "5":
        kind, reason = "hard_bounce", f"free-text bounce, SMTP {status or 'reply 5xx'}"
    elif (temporary and not permanent) or (delay_subject and not permanent):
        kind, reason = "delayed", "free-text warning: delivery still being tried"
    elif status_class == "4":
        kind, reason = "soft_bounce", f"free-text bounce, SMTP {status or 'reply 4xx'}"
    elif gave_up and (permanent or _FAILURE_TEXT.search(report) or _looks_like_bounce(message)):
        kind, reason = "soft_bounce", f"free-text bounce: gave up on a temporary failure ({gave_up.group(0)})"
    elif permanent:
        kind, reason = "hard_bounce", "free-text bounce, permanent failure (flufl.bounce)"
    elif failure := _FAILURE_TEXT.search(report):
        kind, reason = "hard_bounce", f"free-text bounce: {failure.group(0)}"
    else:
        return None
    recipients = tuple(sorted(permanent | temporary)) or _named_in_report(
        message, text[: marker.start()] if marker else text
    )
    action = "delayed" if kind == "delayed" else "failed"
    bounced = tuple(BouncedRecipient(address, action, status, diagnostic) for address in recipients)
    return Classification(kind, reason, status, diagnostic, recipients, sub_kind="free-text", bounced=bounced)


def _named_in_report(message: Message, report: str) -> tuple[str, ...]:
    """The addresses a free-text report names, less the sender's and ours; else the To of the original it returns."""
    ours = {address.lower() for address in addresses(message, "From", "To", "Reply-To", "Return-Path", "Sender")}
    original = _returned_original(message)
    if original is not None:
        ours |= {address.lower() for address in addresses(original, "From", "Sender", "Reply-To", "Return-Path")}
    report = _QUOTED_HEADERS.split(report, 1)[0]  # a header block quoted without a marker starts the copy
    lines = (line for line in report.splitlines() if not _SENDER_LINE.match(line))  # "From: ...", "mail from: ..."
    named = (found.group(1).lower().rstrip(".") for line in lines for found in _ADDRESS_IN_TEXT.finditer(line))
    found = tuple(dict.fromkeys(address for address in named if address not in ours and "postmaster" not in address
                                and "mailer-daemon" not in address))  # fmt: skip
    return found or _original_recipients(message)


def _complaint(message: Message) -> Classification:
    """Read an RFC 5965 abuse report: its feedback type, and whom the reported message was sent to."""
    fields = [block for report in parts_of_type(message, "message/feedback-report") for block in field_blocks(report)]
    feedback_type = next((header_text(block, "Feedback-Type") for block in fields if "Feedback-Type" in block), "")
    reported = [address.lower() for block in fields for address in addresses(block, "Original-Rcpt-To")]
    if feedback_type.lower() in ("opt-out", "opt-out-list"):  # RFC 6650 / ARF: the reader asks to be taken off
        removal = [address.lower() for block in fields for address in addresses(block, "Removal-Recipient")]
        recipients = tuple(dict.fromkeys(removal or reported)) or _original_recipients(message)
        return Classification("unsubscribe", f"ARF feedback report: {feedback_type}", recipients=recipients,
                              sub_kind="arf")  # fmt: skip
    recipients = tuple(dict.fromkeys(reported)) or _original_recipients(message)
    return Classification("complaint", f"ARF feedback report: {feedback_type or 'abuse'}", recipients=recipients,
                          sub_kind="arf")  # fmt: skip


def _looks_like_bounce(message: Message) -> bool:
    """True when sender, subject or headers say delivery report, which makes searching the text worth it."""
    sender = header_text(message, "From").lower()
    return bool(
        message.get_content_type() == "multipart/report"
        or "X-Failed-Recipients" in message
        or (bool(sender) and not addresses(message, "From"))  # `From: "Jetmail System" <>`: a report's null sender
        or _from_delivery_system(message)
    )


def _from_delivery_system(message: Message) -> bool:
    """True when the sender (a mailer daemon, a postmaster) or the subject ("Undeliverable") names a delivery
    report."""
    return bool(
        _BOUNCE_SENDER.search(header_text(message, "From").lower())
        or _BOUNCE_SUBJECT.search(_normalized(header_text(message, "Subject")))
    )


def _null_return_path(message: Message) -> bool:
    """True for an empty envelope sender (`Return-Path: <>`), which bounces and automatic replies use."""
    return header_text(message, "Return-Path").replace(" ", "") == "<>"


# Automatic replies and requests to unsubscribe.


def _auto_reply_reason(message: Message) -> tuple[str, str] | None:
    """Why the message is an automatic reply (a header or its subject) and how that was told, or None."""
    for name, automatic in _AUTO_REPLY_HEADERS:
        value = header_text(message, name)
        if value and automatic.match(value):
            return f"{name}: {value}", "rfc3834" if name.lower() == "auto-submitted" else "header"
    found = _AUTO_REPLY_SUBJECT.search(_normalized(header_text(message, "Subject")))
    if found is None:
        return None
    if "X-Auto-Response-Suppress" in message:  # Exchange marks its automatic replies so
        return f"X-Auto-Response-Suppress and an automatic reply's subject ({found.lastgroup})", "exchange"
    return f"an automatic reply's subject ({found.lastgroup})", "subject"


def _unsubscribe_reason(message: Message, wanted: Collection[str], own: str) -> tuple[str, str] | None:
    """Why the message asks to unsubscribe (where it went, its subject or its short new text `own`) and how that
    was told, or None."""
    mailboxes = {address.strip().lower() for address in wanted}
    fields = ("To", "Cc", "Delivered-To", "X-Original-To")
    seen = " ".join(str(value) for name in fields for value in message.get_all(name, [])).lower()
    if any(mailbox in seen for mailbox in mailboxes):  # parsing the address lists costs more than looking first
        for address in addresses(message, *fields):
            if address.lower() in mailboxes:
                return f"sent to {address.lower()}", "mailbox"
    subject = _normalized(_REPLY_PREFIX.sub("", header_text(message, "Subject")))
    if len(subject) <= _SHORT_SUBJECT and (found := _UNSUBSCRIBE.search(subject)):
        return f"the subject asks to unsubscribe ({found.lastgroup})", "subject"
    if len(own) <= _SHORT_REPLY and (found := _UNSUBSCRIBE.search(_normalized(own))):
        return f"a short reply asks to unsubscribe ({found.lastgroup})", "short-reply"
    return None


def classify(message: Message, *, unsubscribe_addresses: Collection[str] = ()) -> Classification:
    """Say what an inbound message is; `unsubscribe_addresses` are the mailboxes of our List-Unsubscribe headers."""
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "")).lower() if content_type == "multipart/report" else ""
    if report_type == "feedback-report":
        return _complaint(message)
    if report_type == "disposition-notification":  # a read receipt (RFC 8098): sent by software, not a person
        # Some servers send their refusals in this form ("Automatically rejected mail" from a mail delivery
        # subsystem, "Quota exceeded"): a receipt from a delivery system that says so is a bounce.
        if _from_delivery_system(message) and (found := _from_free_text(message)):
            return found
        return Classification("auto_reply", "disposition notification (read receipt)", sub_kind="mdn")
    auto_reply = _auto_reply_reason(message)
    looks_like_bounce = _looks_like_bounce(message)
    # RFC 3834 3.3 asks automatic replies to use an empty envelope sender too: that alone is no reason to search.
    if looks_like_bounce or (auto_reply is None and _null_return_path(message)):
        reports = parts_of_type(message, "message/delivery-status")
        found = (_from_delivery_status(message, reports) if reports else None) or _from_free_text(message)
        if found is not None:
            return found
    if auto_reply is not None:
        return Classification("auto_reply", auto_reply[0], sub_kind=auto_reply[1])
    if looks_like_bounce:
        return Classification("unknown", "looks like a delivery report, but names no failure")
    text = body_text(message)
    own = new_text(text)  # kept with the classification: the response log records these words
    unsubscribe = _unsubscribe_reason(message, unsubscribe_addresses, own)
    if unsubscribe is not None:
        return Classification("unsubscribe", unsubscribe[0], text=own, sub_kind=unsubscribe[1])
    if not addresses(message, "From"):
        return Classification("unknown", "no sender address")
    if not text.strip():
        return Classification("unknown", "no readable text")
    return Classification("reply", "a person's reply", text=own)
