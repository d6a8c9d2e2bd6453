"""The one writer of .eml files, for `campaigns preview`, `templates render -f eml` and `send --dry-run`: a letter's
bytes as the server receives them, with the Date sending would add (only the DKIM signature is missing)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from outreach.rendering.letters import dated

_UNSAFE = re.compile(r"[^\w.@+-]+")  # a `/`, a blank or a control in an address is no part of a file name


def eml_name(number: int, address: str) -> str:
    """A file name for letter `number` (a preview's place, an outbox message's id) to `address`: safe on every file
    system, in order when sorted."""
    stem = _UNSAFE.sub("_", address.replace("@", "_at_")).strip("._") or "letter"
    return f"{number:06d}-{stem[:80]}.eml"


def write_eml(path: Path, data: bytes, now: datetime) -> Path:
    """Write a letter (bytes less Date) to `path` as it would leave now; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dated(data, now))
    return path
