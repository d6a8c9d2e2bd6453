"""One inbound message read robustly: parsed without ever failing, its headers, addresses and readable text.

Real mail is often malformed: bounces declare charsets such as `uft-8`, `unicode-1-1-utf-7` or none at all on
8-bit text, cut MIME boundaries short, or begin with an mbox `From ` line. Everything here returns what can be
read and never raises, so that no message is lost. The stdlib parser with the `compat32` policy is lenient (it
records defects instead of raising) and about five times faster than `email.policy.default` (~0.3 ms against
~1.6 ms a message), which matters when a whole inbox is read at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesParser, Parser
from email.policy import compat32
from email.utils import getaddresses
from html.parser import HTMLParser

import charset_normalizer

_BYTES_PARSER = BytesParser(policy=compat32)
_WHITESPACE = re.compile(r"\s+")
_HEADERS_PARSER = Parser(policy=compat32)

# Charset names real mail declares that Python's codecs do not know, or know as something narrower than what the
# sender meant; the WHATWG Encoding Standard (encoding.spec.whatwg.org) maps Latin-1 and GB2312 to the same
# supersets, because Windows clients label Windows text with the ISO names. An empty name means "not a charset".
_CHARSET_ALIASES = {
    "uft-8": "utf-8",
    "utf8mb4": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "unknown-8bit": "",
    "x-unknown": "",
    "unknown": "",
    "x-user-defined": "",
}


def read_message(raw: bytes) -> Message:
    """Parse the raw bytes of one message; malformed mail yields whatever could be read, never an exception."""
    # Blank lines before the headers (seen in mbox exports) would make the whole message a body. A leading mbox
    # `From ` line is kept by the parser as the message's unixfrom.
    raw = raw.lstrip(b"\r\n\t ")
    try:
        return _BYTES_PARSER.parsebytes(raw)
    except Exception:  # compat32 records defects rather than raising: this only guards against a parser bug
        message = Message()
        message.set_payload(raw.decode("utf-8", "replace"))
        return message


def _codec(charset: str | None) -> str:
    """The codec to try for a declared charset name, "" when there is none worth trying."""
    if not charset:
        return ""
    name = charset.strip().strip("\"'").split("*")[0].lower()  # RFC 2231 5: `utf-8*en` carries a language
    return _CHARSET_ALIASES.get(name, name)


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes as text: in their declared charset, else UTF-8, else the charset they look like; never raises."""
    codec = _codec(charset)
    for candidate in (codec, "utf-8") if codec else ("utf-8",):
        try:
            return data.decode(candidate)
        # An unknown or non-text codec, bytes that are not in it, or a charset name with a NUL in it (ValueError:
        # "embedded null character", found by tests/test_fuzz.py; UnicodeError is a ValueError too).
        except (LookupError, ValueError):
            continue
    best = charset_normalizer.from_bytes(data).best()
    return str(best) if best is not None else data.decode("utf-8", "replace")


def _header_value(value: str | Header) -> str:
    """A header value decoded (RFC 2047 encoded words, raw 8-bit text) and unfolded to one line."""
    if isinstance(value, Header):  # raw 8-bit bytes in a header, which compat32 hands back as unknown-8bit
        value = "".join(decode_text(chunk) if isinstance(chunk, bytes) else chunk for chunk, _ in decode_header(value))
    elif "=?" in value:  # only in ASCII values: decode_header would garble the text around the encoded words
        try:
            pieces = decode_header(value)
        except HeaderParseError:  # an encoded word with broken base64: show it as it came
            pieces = [(value, None)]
        value = "".join(decode_text(piece, charset) if isinstance(piece, bytes) else piece for piece, charset in pieces)
    return " ".join(value.split())


def header_text(message: Message, name: str) -> str:
    """The first `name` header as text on one line, encoded words decoded; "" when absent."""
    value = message.get(name)
    return "" if value is None else _header_value(value)


def addresses(message: Message, *names: str) -> list[str]:
    """The bare addresses in the named headers, in order and without repeats, each domain lower-cased."""
    values = [str(value) for name in names for value in message.get_all(name, [])]
    found: dict[str, None] = {}
    for _, address in getaddresses(values):
        local, at, domain = address.strip().rpartition("@")
        if at and local and domain:
            found[f"{local}@{domain.lower()}"] = None
    return list(found)


def own_parts(message: Message) -> Iterator[Message]:
    """The message and its parts, depth first, without going inside attached messages (message/rfc822 ...)."""
    yield message
    if message.is_multipart():
        for part in message.get_payload():
            if not isinstance(part, Message):
                continue
            if part.get_content_maintype() == "message":
                yield part  # a returned original, a delivery-status or feedback report: its own fields are inside
            else:
                yield from own_parts(part)


def parts_of_type(message: Message, content_type: str) -> list[Message]:
    """The message's own parts of one content type, such as message/delivery-status."""
    return [part for part in own_parts(message) if part.get_content_type() == content_type]


def field_blocks(part: Message) -> list[Message]:
    """The header blocks of a report part (message/delivery-status, message/feedback-report), in order."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser has read the blocks already (RFC 3464 2.1, RFC 5965 3.1)
        return [block for block in payload if isinstance(block, Message)]
    # Sent with a transfer encoding, or cut short: read the blocks, separated by blank lines, from the text.
    text = part_text(part).replace("\r\n", "\n")
    return [_HEADERS_PARSER.parsestr(block, headersonly=True) for block in re.split(r"\n\s*\n", text) if block.strip()]


def part_text(part: Message) -> str:
    """A single part's content as text, transfer encoding undone and charset decoded."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_text(payload, part.get_content_charset())


def _is_attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment")


def body_text(message: Message) -> str:
    """The message's readable text: its first own text/plain part, else its HTML as plain text, else ""."""
    html: Message | None = None
    for part in own_parts(message):
        if part.is_multipart() or _is_attachment(part):
            continue
        content_type = part.get_content_type()
        # A multipart whose boundary never appears stays one unparsed text: still the message, so read it as such.
        if content_type == "text/plain" or part.get_content_maintype() == "multipart":
            text = part_text(part)
            if text.strip():  # some clients send an empty text/plain beside the HTML they mean
                return text
        if content_type == "text/html" and html is None:
            html = part
    return html_to_text(part_text(html)) if html is not None else ""


class _HtmlText(HTMLParser):
    """Collects the readable text of an HTML document: no scripts or styles, line breaks where blocks end."""

    _HIDDEN = frozenset({"script", "style", "title", "template", "noscript"})
    _BREAK_BEFORE = frozenset({"br", "p", "div", "tr", "li", "blockquote", "table", "ul", "ol", "hr", "pre"})
    _BREAK_AFTER = frozenset({"p", "div", "tr", "li", "blockquote", "table", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAK_BEFORE or tag in self._BREAK_AFTER:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(self._hidden - 1, 0)
        elif tag in self._BREAK_AFTER:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.pieces.append(_WHITESPACE.sub(" ", data))  # HTML shows any run of white space as one blank


def html_to_text(html: str) -> str:
    """HTML as plain text: scripts and styles dropped, one line per block or <br>, at most one blank line."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # _markupbase gives up on some malformed declarations: keep what was read
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.pieces).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
