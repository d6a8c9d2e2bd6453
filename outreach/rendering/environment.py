"""The Jinja2 environment templates run in: sandboxed, strict about undefined names, HTML autoescaped."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

FALLBACK_LANGUAGE = "en"
TEXT_BODY, HTML_BODY, SUBJECT = "body.txt", "body.html", "subject.txt"
REMINDER_SUFFIX = "-reminder"


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with a fast path for the plain, frozen data classes outreach hands to templates.

    The sandbox checks every attribute a template reads; for the signatory list that is 70 checks a copy and
    most of the rendering time. Classes marked `template_data = True` hold only plain values, so their public
    attributes are read directly; everything else, and every name starting with `_`, goes through the sandbox.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if getattr(type(obj), "template_data", False) and not attribute.startswith("_"):
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return super().getattr(obj, attribute)


def make_environment(root: Path) -> ImmutableSandboxedEnvironment:
    """Return the environment for the templates under `root` (one folder per template, one per language).

    Immutable sandbox: a template can neither reach Python internals nor change the data it is given.
    StrictUndefined: a misspelt variable is an error, never an empty place in a letter to a president.
    """
    return _Environment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html")),
        keep_trailing_newline=True,
        auto_reload=False,
    )


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
