"""The Jinja2 environment templates run in: sandboxed, strict about undefined names, HTML autoescaped."""

from __future__ import annotations

from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

FALLBACK_LANGUAGE = "en"
TEXT_BODY, HTML_BODY, SUBJECT = "body.txt", "body.html", "subject.txt"


def make_environment(root: Path) -> ImmutableSandboxedEnvironment:
    """Return the environment for the templates under `root` (one folder per template, one per language).

    Immutable sandbox: a template can neither reach Python internals nor change the data it is given.
    StrictUndefined: a misspelt variable is an error, never an empty place in a letter to a president.
    """
    return ImmutableSandboxedEnvironment(
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


def template_languages(root: Path, name: str) -> list[str]:
    """Return the languages a template has, the fallback first."""
    folder = root / name
    found = (
        sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / SUBJECT).is_file()) if folder.is_dir() else []
    )
    return sorted(found, key=lambda language: language != FALLBACK_LANGUAGE)
