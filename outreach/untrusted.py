"""Text from outside (replies, bounces, CSV files, server answers): what it may not do on its way through.

Pure. Two edges, two functions: `storable` for the database, which cannot hold everything a string can, and
`visible` for a terminal or a page, which obey some characters instead of showing them. Both keep every letter,
digit, mark, symbol and space as it came.
"""

from __future__ import annotations

import re
import unicodedata

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]+")

# What a reader must see rather than have obeyed: C0 and C1 controls (ESC starts the sequences that move the cursor,
# clear the screen or retitle the window; CR writes over a line), format characters (the bidi embeddings, overrides
# and isolates U+202A-202E and U+2066-2069 that reorder a line, as in CVE-2021-42574 "Trojan Source"; the zero-width
# space, joiners and marks U+200B-200F, the word joiner U+2060, the byte order mark U+FEFF, the invisible tag
# characters), the line and paragraph separators, and lone surrogates.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def storable(text: str) -> str:
    """Text as a database can hold it: a NUL becomes U+FFFD (PostgreSQL refuses NUL in text), and lone
    surrogates (undecodable bytes that `surrogateescape` kept, PEP 383) are read as UTF-8 where they are, else
    become U+FFFD (no codec can write them). Everything else is left as it came."""
    if not _UNSTORABLE.search(text):  # the common case, in C
        return text
    return _UNSTORABLE.sub(_stored, text)


def _stored(found: re.Match[str]) -> str:
    data = b"".join(
        b"\xef\xbf\xbd" if ch == "\x00" else bytes([ord(ch) - 0xDC00]) if 0xDC80 <= ord(ch) <= 0xDCFF else b"\xff"
        for ch in found.group()
    )  # fmt: skip
    return data.decode("utf-8", "replace")  # b"\xff" is never UTF-8: a surrogate no byte stands for is one U+FFFD


def visible(text: str, *, lines: bool = False) -> str:
    """Text as a terminal or a page may show it: each control, format (bidi, zero-width), separator or surrogate
    character written as its escape (`\\x1b`, `\\u202e`), everything else unchanged; with `lines`, for multi-line
    text such as a reply's body, line ends (LF, CRLF) and tabs are kept."""
    if text.isprintable():  # the common case, in C: no character of the kinds above (nor any blank but the space)
        return text
    if lines:
        text = text.replace("\r\n", "\n")
    return "".join(
        _escape(ch) if unicodedata.category(ch) in _HIDDEN and not (lines and ch in "\n\t") else ch for ch in text
    )


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
