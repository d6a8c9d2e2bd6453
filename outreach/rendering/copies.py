"""A template and a contact make a copy: subject, plain text and optional HTML, in the contact's language."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from babel.dates import format_date
from jinja2 import Template, TemplateError, TemplateNotFound, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from outreach.errors import OutreachError
from outreach.rendering.environment import (
    FALLBACK_LANGUAGE,
    HTML_BODY,
    SUBJECT,
    TEXT_BODY,
    template_languages,
)
from outreach.rendering.plaintext import text_from_html
from outreach.rendering.salutations import Addressee, Form, Greeting, greeting
from outreach.vocabulary import GROUPS

# Headings of the signatory groups, by language; a language without its own falls back to English.
GROUP_TITLES = {
    "en": {"signatories": "Signatories", "parliamentarians": "Parliamentarians",
           "military_officials": "Military officials"},
    "fr": {"signatories": "Signataires", "parliamentarians": "Parlementaires",
           "military_officials": "Officiers militaires"},
    "de": {"signatories": "Unterzeichnende", "parliamentarians": "Parlamentarier",
           "military_officials": "Militärs"},
}  # fmt: skip


class TemplateRenderError(OutreachError):
    """A template cannot be loaded or rendered; `where` is the template file and line, `contact` the address
    it was rendered for (when it was)."""

    contact: str | None = None

    def format_message(self) -> str:
        """The line shown to the user, naming the contact."""
        text = super().format_message()
        return f"{text} (for {self.contact})" if self.contact else text


@dataclass(frozen=True)
class Signatory:
    """A name and the line printed after it."""

    template_data: ClassVar[bool] = True  # plain values: templates read them without sandbox checks

    name: str
    line: str = ""


@dataclass(frozen=True)
class SignatoryGroup:
    """A group as the templates print it: its heading in the letter's language, and its people."""

    template_data: ClassVar[bool] = True  # plain values: templates read them without sandbox checks

    key: str
    title: str
    people: tuple[Signatory, ...]


@dataclass(frozen=True)
class Recipient:
    """The contact as templates see it: plain values, custom attributes included."""

    email: str
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    honorific: str | None = None
    gender: str | None = None
    position: str | None = None
    role: str | None = None
    organization: str | None = None
    country: str | None = None
    language: str | None = None
    time_zone: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def addressee(self) -> Addressee:
        """What the forms of address need, with the contact's own overrides."""
        own = {key: str(self.attributes[key]) for key in ("salutation", "address_line") if self.attributes.get(key)}
        return Addressee(
            role=self.role, language=self.language, country=self.country, gender=self.gender, name=self.name,
            first_name=self.first_name, last_name=self.last_name, honorific=self.honorific,
            position=self.position, organization=self.organization, **own,
        )  # fmt: skip


@dataclass(frozen=True)
class Letterhead:
    """What every copy of a mailing shares: the sender, the date, the signatories."""

    sender_name: str
    sender_organization: str
    date: date
    signatories: Mapping[str, Sequence[Signatory]]  # by group key
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. first_subject for a reminder


@dataclass(frozen=True)
class Copy:
    """One rendered copy."""

    template: str
    language: str
    subject: str
    text: str
    html: str | None
    greeting: Greeting


@dataclass
class _Files:
    subject: Template
    text: Template | None
    html: Template | None


class CompiledTemplate:
    """A template loaded and compiled once, in each of its languages, ready to render many copies."""

    def __init__(self, env: ImmutableSandboxedEnvironment, root: Path, name: str, forms: Sequence[Form]) -> None:
        self.name = name
        self.root = root
        self._forms = forms
        languages = template_languages(root, name)
        if FALLBACK_LANGUAGE not in languages:
            raise TemplateRenderError(
                f"template {name!r} has no {FALLBACK_LANGUAGE}/{SUBJECT}", where=str(root / name),
                hint="every template needs the fallback language",
            )  # fmt: skip
        self.languages = languages
        self._files = {language: self._load(env, language) for language in languages}
        self._labels: dict[str, dict[str, Any]] = {}

    def _load(self, env: ImmutableSandboxedEnvironment, language: str) -> _Files:
        def load(file: str) -> Template | None:
            path = f"{self.name}/{language}/{file}"
            try:
                return env.get_template(path)
            except TemplateNotFound:
                return None
            except TemplateSyntaxError as error:
                raise TemplateRenderError(
                    f"template syntax: {error.message}", where=f"{self.root / path}:{error.lineno}"
                ) from None

        subject, text, html = load(SUBJECT), load(TEXT_BODY), load(HTML_BODY)
        assert subject is not None  # template_languages only lists folders with a subject
        if text is None and html is None:
            raise TemplateRenderError(
                f"neither {TEXT_BODY} nor {HTML_BODY}", where=str(self.root / self.name / language)
            )
        return _Files(subject, text, html)

    def _shared(self, language: str, head: Letterhead) -> dict[str, Any]:
        """The variables that are the same for every contact of a language (computed once)."""
        if language not in self._labels:
            titles = GROUP_TITLES.get(language, GROUP_TITLES[FALLBACK_LANGUAGE])
            groups = [
                SignatoryGroup(key, titles[key], tuple(head.signatories.get(key, ())))
                for key in GROUPS
                if head.signatories.get(key)
            ]
            self._labels[language] = {
                "signatory_groups": groups,
                "signatory_count": sum(len(group.people) for group in groups),
                "sender": {"name": head.sender_name, "organization": head.sender_organization},
                "date": format_date(head.date, format="long", locale=language),
                **head.extra,
            }
        return self._labels[language]

    def render(self, recipient: Recipient, head: Letterhead, extra: Mapping[str, Any] | None = None) -> Copy:
        """Render the copy for one recipient, in their language or the fallback; `extra` adds variables for
        this recipient alone (a follow-up's `first_subject`)."""
        language = recipient.language if recipient.language in self._files else FALLBACK_LANGUAGE
        files = self._files[language]
        person = recipient.addressee()
        if recipient.language != language:
            person = Addressee(**{**person.__dict__, "language": language})  # the greeting follows the letter
        hello = greeting(person, self._forms)
        variables = {**self._shared(language, head), **(extra or {}), "greeting": hello, "contact": recipient}
        subject = " ".join(self._run(files.subject, variables, recipient).split())
        html = self._run(files.html, variables, recipient) if files.html else None
        text = self._run(files.text, variables, recipient) if files.text else text_from_html(html or "")
        return Copy(self.name, language, subject, text, html, hello)

    def _run(self, template: Template, variables: Mapping[str, Any], recipient: Recipient) -> str:
        try:
            return template.render(variables)
        except TemplateError as error:
            where = template.filename or template.name or self.name
            line = _template_line(error, where)
            failure = TemplateRenderError(f"{error}", where=f"{where}:{line}" if line else where)
            failure.contact = recipient.email
            raise failure from None


def _template_line(error: BaseException, filename: str) -> int | None:
    """The line of the template where rendering failed (Jinja puts template frames into the traceback)."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return lines[-1] if lines else None
