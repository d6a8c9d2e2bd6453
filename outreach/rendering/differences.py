"""Two letters compared as a reader sees them: equal but for the MIME boundary, and a diff of their decoded text.

A letter's bytes differ from build to build even when nothing in it changed: the boundary between its text and its
HTML part is random (outreach/rendering/mime.py), so that no body can contain it by chance (RFC 2046 5.1.1).
"""

from __future__ import annotations

import difflib
import email
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesHeaderParser

# The top-level Content-Type of a letter with an HTML part, as outreach/rendering/mime.py writes it.
_OUR_BOUNDARY = re.compile(rb'^Content-Type: multipart/alternative;\r\n boundary="(=_outreach_[0-9a-f]+)"', re.M)
# The headers a reader would notice changing; Message-ID is kept by whoever compares, Date is not in a letter yet.
SHOWN_HEADERS = ("From", "Reply-To", "To", "Subject", "In-Reply-To", "References", "List-Unsubscribe")


def without_boundary(data: bytes) -> bytes:
    """A letter's bytes with its MIME boundary taken out, wherever it occurs: what two builds of one letter share.

    The boundary is a parameter of the top-level Content-Type, so only the header section is parsed (up to the
    first blank line): parsing the whole letter made comparing 10,000 of them take seconds."""
    headers = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    ours = _OUR_BOUNDARY.search(headers)  # as outreach/rendering/mime.py writes it; anything else is parsed
    boundary = ours[1].decode("ascii") if ours else BytesHeaderParser().parsebytes(headers).get_boundary()
    return data.replace(boundary.encode("ascii"), b"") if boundary else data


def same_letter(old: bytes, new: bytes) -> bool:
    """True when two letters are the same but for their MIME boundary."""
    return old == new or without_boundary(old) == without_boundary(new)


def readable_lines(data: bytes) -> list[str]:
    """A letter as a reader sees it: the headers that show, a blank line, its plain text, and its HTML (decoded)."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the default policy makes EmailMessage objects
    lines = [f"{name}: {message[name]}" for name in SHOWN_HEADERS if message[name] is not None]
    for subtype, heading in (("plain", []), ("html", ["[HTML]"])):
        part = message.get_body(preferencelist=(subtype,))
        if part is not None and part.get_content_subtype() == subtype:
            lines += ["", *heading, *str(part.get_content()).splitlines()]
    return lines


def letter_diff(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    """A unified diff of two letters' decoded headers and text, empty when a reader would see no difference."""
    lines = difflib.unified_diff(readable_lines(old), readable_lines(new), old_label, new_label, lineterm="")
    return "".join(f"{line}\n" for line in lines)
