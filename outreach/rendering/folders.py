"""Where templates live: one folder a template, one folder a language inside it, found with pathlib alone.

Kept apart from the Jinja2 environment so that what only lists templates (shell completion, `templates list`,
`doctor`) needs no template engine.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

FALLBACK_LANGUAGE = "en"
TEXT_BODY, HTML_BODY, SUBJECT = "body.txt", "body.html", "subject.txt"
REMINDER_SUFFIX = "-reminder"


def template_names(root: Path) -> list[str]:
    """Return the templates under `root`: folders holding at least an English (fallback) subject."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / FALLBACK_LANGUAGE / SUBJECT).is_file())


def first_letter_of(root: Path, name: str) -> str | None:
    """Return the first letter a follow-up refers to, by the naming convention `X` and `X-reminder`."""
    first = name.removesuffix(REMINDER_SUFFIX)
    return first if first != name and first in template_names(root) else None


def template_languages(root: Path, name: str) -> list[str]:
    """Return the languages a template has, the fallback first."""
    folder = root / name
    found = (
        sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / SUBJECT).is_file()) if folder.is_dir() else []
    )
    return sorted(found, key=lambda language: language != FALLBACK_LANGUAGE)


def template_digest(root: Path, name: str) -> str:
    """A digest of a template's files and of the shared pieces templates include (`_*` folders): it changes when
    any of them is edited, so copies made before can be found and made again."""
    digest = hashlib.sha256()
    folders = [root / name, *sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("_"))]
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]
