"""Secrets kept out of what is shown: one scrubber for every password, in every form a protocol may echo it.

A server that refuses a login may quote the command it refused, and a library may put that reply into an exception
as a Python repr of its bytes: the password then appears escaped, not as it was typed. So a secret is hidden in
each form it can take on the way out: as it is; as an IMAP quoted string (RFC 3501 4.3: `"` and `\\` escaped with a
backslash); backslash-escaped as Python's repr, ascii() and unicode_escape write it; as a JSON string; URL-quoted;
as the repr of its UTF-8 bytes; and in base64, alone (AUTH LOGIN) or inside a SASL PLAIN message (RFC 4616:
`authzid NUL user NUL password`). Each of these is applied to the raw secret and to its IMAP-quoted form, since a
library's repr of a server's echo escapes the quoting again.

Pure: no environment, no network, no terminal. The adapters, the CLI's error boundary, the doctor and the scheduler's
log apply it at the edges; settings know which secrets there are.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import quote, quote_plus, unquote

from outreach.errors import OutreachError

MASK = "***"

E = TypeVar("E", bound=OutreachError)


def _utf8(text: str) -> bytes:
    """The text's UTF-8 bytes; a secret read from a badly encoded environment (lone surrogates) too."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _imap_quoted(text: str) -> str:
    """The inside of an IMAP quoted string holding `text` (RFC 3501 4.3, as imaplib's `_quote` writes it)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _escaped(text: str) -> set[str]:
    """`text` as the usual escapes write it inside a larger string: Python repr, ascii() and unicode_escape, with
    and without `'` escaped (repr escapes it only where the whole string also holds a `"`), and JSON."""
    as_repr = "".join(repr(character)[1:-1] for character in text)
    as_ascii = "".join(ascii(character)[1:-1] for character in text)
    forms = {as_repr, as_ascii, text.encode("unicode_escape").decode("ascii")}
    forms |= {form.replace("'", "\\'") for form in forms}
    forms |= {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    return forms


def _bytes_reprs(text: str) -> set[str]:
    """The inside of the repr of `text`'s UTF-8 bytes (`b'P\\xc3\\xa4ss'`), as `str()` of a server's reply shows it."""
    as_repr = "".join(repr(bytes([byte]))[2:-1] for byte in _utf8(text))
    return {as_repr, as_repr.replace("'", "\\'")}


def _url_quoted(text: str) -> set[str]:
    """`text` percent-encoded (RFC 3986 2.1), as urllib writes it and with lower-case hex digits (equivalent)."""
    raw = _utf8(text)
    forms = {quote(raw, safe=""), quote(raw), quote_plus(raw)}
    return forms | {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), form) for form in forms}


def _base64(data: bytes) -> set[str]:
    """`data` in base64, standard and URL-safe alphabets, without the padding (a server may echo it without)."""
    return {encode(data).decode("ascii").rstrip("=") for encode in (base64.b64encode, base64.urlsafe_b64encode)}


def echoes(secret: str, user: str = "") -> set[str]:
    """Every form of `secret` that may be echoed back, `user` being the name it is sent with in SASL PLAIN."""
    if not secret:
        return set()
    forms: set[str] = set()
    for text in (secret, _imap_quoted(secret)):
        forms |= {text} | _escaped(text) | _bytes_reprs(text) | _url_quoted(text)
    password = _utf8(secret)
    for sent in (password, b"\0" + password, b"\0" + _utf8(user) + b"\0" + password,
                 _utf8(user) + b"\0" + _utf8(user) + b"\0" + password):  # fmt: skip
        forms |= _base64(sent)
    return {form for form in forms if form}


class Scrubber:
    """Hides each secret it was given, in each of its forms (`echoes`), wherever it appears in a text."""

    def __init__(self, credentials: Iterable[tuple[str, str]] = ()) -> None:
        """`credentials` are (user, secret) pairs; an empty secret hides nothing."""
        forms: set[str] = set()
        for user, secret in credentials:
            forms |= echoes(secret, user)
        # Longest first: where two forms start at the same place, the longer one is hidden whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """The text with every form of every secret replaced by `***`.

        Replacing can join what surrounds a form into a new one (a secret ending in `*`, followed by the mask), so
        it is repeated while it shrinks the text; every form of a secret of four characters or more is longer than
        the mask, so that ends with none left."""
        if self._pattern is None:
            return text
        while True:
            scrubbed = self._pattern.sub(MASK, text)
            if scrubbed == text or len(scrubbed) >= len(text):
                return scrubbed
            text = scrubbed

    def optional(self, text: str | None) -> str | None:
        """`self(text)`, passing None through (an error's hint or where)."""
        return None if text is None else self(text)

    def error(self, error: E) -> E:
        """The same error with its message, where and hint scrubbed, to be raised again."""
        error.message = self(error.message)
        error.args = (error.message,)
        error.where, error.hint = self.optional(error.where), self.optional(error.hint)
        return error


def url_password(url: str) -> str:
    """The password in a URL such as `postgresql+psycopg://user:password@host/db`, decoded; empty when none."""
    _, sep, rest = url.partition("://")
    credentials = rest.rpartition("@")[0] if sep else ""
    if "/" in credentials:  # a path that holds an @ (sqlite:////tmp/a:b@c.db), not user:password
        return ""
    _, colon, password = credentials.partition(":")
    return unquote(password) if colon else ""


def redact_url(url: str) -> str:
    """Hide the password in a database URL: `scheme://user:***@host/...`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host}" if ":" in credentials else url
