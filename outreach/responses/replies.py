"""The new text of a reply: what the person wrote, without the original it quotes and the signature their mail
program adds.

Quote headers come from mail-parser-reply, which knows the Gmail and Apple Mail "On ... wrote:" lines and the
Outlook "From: / Sent: / To:" blocks of a dozen languages; its splitter is not used, because it takes only the
text above the first header and so loses bottom-posted and interleaved answers. What it lacks for the languages
outreach writes in (Spanish "escribió:", Polish "W dniu ... napisał(a):", Czech "napsal:", French with a no-break
space before the colon, "-----Message d'origine-----" and its kin, device lines) is added below as data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from mailparser_reply import EmailMessage  # type: ignore[import-untyped]

LANGUAGES = ("en", "fr", "de", "es", "it", "pl", "cs")  # the languages outreach writes in

# Attribution lines mail-parser-reply 1.36 misses (its Spanish pattern never matches, its Polish one wants
# "Dnia", its Czech one "napsal(a)", its French one no no-break space); matched against one line or two joined.
_ATTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "fr": (r"Le\s.+\sa\s+écrit\s*:",),  # Gmail writes "a écrit\u00a0:"
    "es": (r"El\s.+\sescribió\s*:",),  # Gmail: "El mar, 8 abr 2025 a las 10:00, X (<x@y>) escribió:"
    "pl": (
        r"(?:W dniu|Dnia)\s.+\s(?:napisał|napisała|pisze)(?:\(a\))?\s*:",  # Thunderbird, older Gmail
        r".+\snapisał\(a\)\s*:",  # Gmail: "wt., 8 kwi 2025 o 10:00 X <x@y> napisał(a):"
    ),
    "cs": (r"Dne\s.+\snapsal(?:\(a\)|a)?\s*:",),  # Gmail: "... uživatel X <x@y> napsal:"
}

# Any mail program's attribution, in any language, is one to four lines that name the quoted sender's address or
# the date and end with a colon or with the verb ("Den 24. nov. 2025 kl. 10.00 skrev Peter <p@x>:", "2011/4/7 Nathan
# <n@x>", "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:"): mail clients in dozens of languages write them  # noqa: RUF003
# so, and a table of each one's wording is never complete (tests/corpus/expected-replies.jsonl has the cases).
_WROTE = re.compile(
    r"(?:wrote|writes|sent|schrieb|a\s+écrit|escribió|escribio|ha\s+scritto|schreef|geschreven|napisał(?:\(a\)|a)?"
    r"|pisze|napsal(?:\(a\)|a)?|skrev|kirjoitti|escreveu|írta|написал(?:\(а\)|а)?|пишет|đã viết|写道|wrote)"  # noqa: RUF001
    r"\s*[:：]?\s*-*$",  # noqa: RUF001
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[^\s<>()\[\]\"]+@[^\s<>()\[\]\"]+\.\w|<\s*$|^\s*<|mailto:")
_DIGIT = re.compile(r"\d")
_DATE = re.compile(r"\d{1,2}[:.]\d{2}|\d{4}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")

# Lines under which the original follows: Outlook's separators in each language and forwarding markers.
_SEPARATORS: dict[str, tuple[str, ...]] = {
    "en": (r"-+ ?Original Message ?-+", r"-+ ?Forwarded message ?-+", r"Begin forwarded message:"),
    "fr": (r"-+ ?Message d'origine ?-+", r"-+ ?Message transféré ?-+", r"Début du message réexpédié\s*:"),
    "de": (r"-+ ?Ursprüngliche Nachricht ?-+", r"-+ ?Weitergeleitete Nachricht ?-+"),
    "es": (r"-+ ?Mensaje original ?-+", r"-+ ?Mensaje reenviado ?-+"),
    "it": (r"-+ ?Messaggio originale ?-+", r"-+ ?Messaggio inoltrato ?-+"),
    "pl": (r"-+ ?Wiadomość oryginalna ?-+", r"-+ ?Wiadomość przekazana dalej ?-+"),
    "cs": (r"-+ ?Původní zpráva ?-+", r"-+ ?Přeposlaná zpráva ?-+"),
}
# Outlook's HTML-to-text conversion puts a line of 32 underscores above the quoted headers; mailing lists put "__"
# or a longer rule above their footer. A separator in any language: "-------- Oprindelig besked --------", Zoho's
# "---- On ... wrote ----", Android's "---- John Smith wrote ----".
_RULE = re.compile(r"_{2,}")
_ANY_SEPARATOR = re.compile(r"-{4,} ?[^-\s].{0,120}? ?-{4,}")
# Lines that only draw a line: left behind above an original's header when the text is cut there.
_DRAWN = re.compile(r"[-_=—–~*]{2,}|[—–]")  # noqa: RUF001

# Lines a phone or webmail app appends on its own.
_DEVICE_LINES: dict[str, tuple[str, ...]] = {
    "en": (
        r"Sent from my .{1,40}",
        r"Sent from [^.,;!?<]{1,40}(?:<[^>]*>)?",  # "Sent from TypeApp<http://...>", "Sent from Samsung Mobile"
        r"(?:Get|Download) Outlook for [^<]{1,30}(?:<[^>]*>)?",
        r"Sent with [^.,;!?(]{1,30}(?:\([^)]*\))?",  # "Sent with Sparrow (http://...)"
    ),
    "fr": (
        r"Envoyé de mon .{1,40}",
        r"Envoyé depuis mon .{1,40}",
        r"(?:Obtenir|Télécharger) Outlook pour [^<]{1,30}(?:<[^>]*>)?",
    ),
    "de": (
        r"Von meinem .{1,40} gesendet",
        r"Gesendet von meinem .{1,40}",
        r"Outlook für .{1,40} beziehen",
        r"Gesendet von Outlook für [^<]{1,30}(?:<[^>]*>)?",
    ),
    "es": (r"Enviado desde mi .{1,40}",),
    "it": (r"Inviato da(?:l mio)? .{1,40}",),
    "pl": (r"Wysłane z (?:mojego )?.{1,40}", r"Wysłano z (?:mojego )?.{1,40}"),
    "cs": (r"Odesláno z (?:mého )?.{1,40}",),
}

_FIELD = re.compile(r"[>* \t]*[^\W\d_][^\W\d]*(?:[- ][^\W\d]+){0,2}[ *]*:")  # "From:", "*Von:*", "De :", "Envoyé le :"
_QUOTED = re.compile(r"[ \t]*>")
_INLINE_FIELD = re.compile(r"(?:^|\s)[^\W\d_][\w-]{1,20}:\s")
_SIGNATURE_DELIMITER = ("-- ", "--")  # RFC 3676 4.3; HTML-to-text conversions drop the blank
# Lines that start a signature as well: an em or en dash rule ("—", "—————") and a long rule of hyphens.
_SIGNATURE_RULE = re.compile(r"[—–]+|-{10,}")  # noqa: RUF001
_LINE_BREAKS = re.compile(r"\r\n|\r")
_BLANK_LINES = re.compile(r"\n{3,}")


def new_text(body: str, *, language: str | None = None) -> str:
    """Return what the person wrote in a reply: no quoted original (above, below or between), no signature.

    Kept: the answer lines, including those between quoted lines, and the closing words with the name under them
    ("Kind regards,\\nJohn Smith"), which the person wrote. Dropped: lines quoted with ">", the attribution line
    above them, everything from an unquoted original's header down ("From: ... Sent: ...", "-----Original
    Message-----"), everything under a "-- " signature delimiter, and "Sent from my iPhone" lines. A body that is
    all quotation gives ""; one that is nothing but a signature keeps it, since that is all the person sent.
    `language` (a code such as "nl") is tried first and may add one mail-parser-reply knows beyond outreach's.
    """
    lines = _normalize(body).split("\n")
    patterns = _patterns(_languages(language))
    written = _unquoted(lines, patterns)
    text = _tidy(_unsigned(written, patterns.device))
    return text or _tidy(written)


@dataclass(frozen=True)
class _Patterns:
    """The compiled patterns for a list of languages."""

    library: re.Pattern[str]  # mail-parser-reply's quote headers, written for re.MULTILINE | re.IGNORECASE
    attribution: re.Pattern[str]
    separator: re.Pattern[str]
    device: re.Pattern[str]

    def header_lines(self, lines: Sequence[str], index: int) -> int:
        """How many lines (0 to 4: Gmail and Apple Mail wrap long ones) from `index` form a quote header."""
        for count in (1, 2, 3, 4):
            candidate = lines[index : index + count]
            if len(candidate) < count or not candidate[-1].strip() or _QUOTED.match(candidate[-1]):
                break
            if count <= 2 and (self.attribution.fullmatch(" ".join(candidate)) or self._library_header(candidate)):
                return count
            if _attribution(candidate, quote_follows=_quote_follows(lines, index + count)):
                return count
        return 0

    def _library_header(self, candidate: Sequence[str]) -> bool:
        """True when mail-parser-reply sees a quote header: an attribution, or two lines of header fields.

        Its Polish pattern takes one field line for a header, so that "Data: 5 mln" in a reply would cut it.
        """
        joined = "\n".join(candidate)
        if not self.library.fullmatch(joined):
            return False
        return joined.endswith(":") or (len(candidate) == 2 and all(_FIELD.match(line) for line in candidate))


def _attribution(candidate: Sequence[str], *, quote_follows: bool) -> bool:
    """True when these lines read as any mail program's attribution: the sender's address or a date, then a colon
    or the verb; or, right above a quote, an address and a date ("2011/4/7 Nathan <n@example.com>")."""
    first = candidate[0].strip()
    if not (first[:1].isdigit() or _ADDRESS.search(first) or _DATE.search(first) or first[:1].isupper()):
        return False
    joined = " ".join(line.strip() for line in candidate)
    if len(joined) > 400 or (len(candidate) > 1 and not _DIGIT.search(first) and not _ADDRESS.search(first)):
        return False
    address, date = bool(_ADDRESS.search(joined)), bool(_DATE.search(joined))
    if _WROTE.search(joined):
        return address or date
    if joined.endswith((":", "：")):  # noqa: RUF001
        return address and date
    return quote_follows and address and date


def _header_block(lines: Sequence[str], index: int) -> bool:
    """True when an original's header fields start at `index` ("Fra: ... / Sendt: ... / Til: ... / Emne: ...",
    in whatever language), at least three of them, or two that give an address and a date."""
    if not _FIELD.match(lines[index]):
        return False
    line = lines[index]
    if len(_INLINE_FIELD.findall(line)) >= 3 and _ADDRESS.search(line) and _DATE.search(line):
        return True  # the fields run together on one line: "Date: ... From: ... To: ... Subject: ..."
    block: list[str] = []
    for line in lines[index : index + 8]:
        if not line.strip():
            break
        block.append(line)
    fields = [line for line in block if _FIELD.match(line)]
    text = " ".join(block)
    if len(fields) >= 3:
        return bool(_ADDRESS.search(text) or _DATE.search(text))
    return len(fields) == 2 and bool(_ADDRESS.search(text)) and bool(_DATE.search(text))


def _languages(language: str | None) -> tuple[str, ...]:
    """Outreach's languages, the given one (its primary subtag, lower-cased) first."""
    first = (language or "").split("-")[0].split("_")[0].strip().lower()
    return tuple(dict.fromkeys([first, *LANGUAGES] if first else LANGUAGES))


@lru_cache(maxsize=16)
def _patterns(languages: tuple[str, ...]) -> _Patterns:
    """The patterns for these languages (mail-parser-reply adds English to any list)."""
    library: re.Pattern[str] = EmailMessage(text="", languages=list(languages)).HEADER_REGEX
    return _Patterns(
        library=library,
        attribution=_compiled(_ATTRIBUTIONS, languages),
        separator=_compiled(_SEPARATORS, languages),
        device=_compiled(_DEVICE_LINES, languages),
    )


def _compiled(table: dict[str, tuple[str, ...]], languages: Iterable[str]) -> re.Pattern[str]:
    """One pattern for a table's entries in the given languages, to match whole lines."""
    alternatives = [pattern for language in languages for pattern in table.get(language, ())]
    return re.compile("|".join(f"(?:{pattern})" for pattern in alternatives) or r"(?!)", re.IGNORECASE)


def _normalize(body: str) -> str:
    """LF line ends and no blanks at the ends of lines."""
    return "\n".join(line.rstrip() for line in _LINE_BREAKS.sub("\n", body).split("\n"))


def _unquoted(lines: Sequence[str], patterns: _Patterns) -> list[str]:
    """The lines not quoted: ">" lines and their attribution dropped, nothing kept from an unquoted original."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if _QUOTED.match(line) or _rewrapped(lines, index):
            index += 1
            continue
        if _RULE.fullmatch(stripped) or patterns.separator.fullmatch(stripped) or _ANY_SEPARATOR.fullmatch(stripped):
            break
        if patterns.device.fullmatch(stripped) and any(kept_line.strip() for kept_line in kept):
            break  # a phone's own line ends what the person wrote; what follows is the original
        header = patterns.header_lines(lines, index)
        if header:
            if not _quote_follows(lines, index + header):
                break  # Outlook and most webmails put the original under the header without ">"
            index += header
            continue
        if _header_block(lines, index):
            break
        kept.append(line)
        index += 1
    while kept and (not kept[-1].strip() or _DRAWN.fullmatch(kept[-1].strip())):
        kept.pop()  # the rule drawn above the original's header
    return kept


def _rewrapped(lines: Sequence[str], index: int) -> bool:
    """True for a line with text squeezed between two quoted lines: a quoted line that a mail program wrapped
    without repeating the ">" (an answer between quoted lines is set apart by blank lines)."""
    return (
        0 < index < len(lines) - 1
        and bool(lines[index].strip())
        and bool(_QUOTED.match(lines[index - 1]))
        and bool(_QUOTED.match(lines[index + 1]))
    )


def _quote_follows(lines: Sequence[str], index: int) -> bool:
    """True when the next line with text from `index` on is quoted with ">"."""
    following = next((line for line in lines[index:] if line.strip()), "")
    return bool(_QUOTED.match(following))


def _unsigned(lines: Sequence[str], device: re.Pattern[str]) -> list[str]:
    """The lines above a signature delimiter, without device lines."""
    cut = next(
        (i for i, line in enumerate(lines) if line in _SIGNATURE_DELIMITER or _SIGNATURE_RULE.fullmatch(line.strip())),
        len(lines),
    )
    return [line for line in lines[:cut] if not device.fullmatch(line.strip())]


def _tidy(lines: Sequence[str]) -> str:
    """Join lines, at most one blank line in a row, none at either end."""
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n").rstrip()
