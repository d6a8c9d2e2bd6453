"""A template and a contact make a copy: subject, plain text and optional HTML, in the contact's language."""

from __future__ import annotations

import traceback
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, cast

from babel.dates import format_date
from jinja2 import Template, TemplateError, TemplateNotFound, TemplateSyntaxError

from outreach.errors import OutreachError
from outreach.rendering.environment import TemplateEnvironment
from outreach.rendering.folders import FALLBACK_LANGUAGE, HTML_BODY, SUBJECT, TEXT_BODY, template_languages
from outreach.rendering.plaintext import text_from_html
from outreach.rendering.salutations import Addressee, Form, Greeting, greeting
from outreach.rendering.sharing import CACHE, LETTERHEAD_NAMES
from outreach.vocabulary import GROUPS

# Headings of the signatory groups, by language; a language without its own falls back to English.
GROUP_TITLES = {
    "en": {"signatories": "Signatories", "parliamentarians": "Parliamentarians",
           "military_officials": "Military officials"},
    "fr": {"signatories": "Signataires", "parliamentarians": "Parlementaires",
           "military_officials": "Officiers militaires"},
    "de": {"signatories": "Unterzeichnende", "parliamentarians": "Parlamentarier",
           "military_officials": "Militärs"},
    "it": {"signatories": "Firmatari", "parliamentarians": "Parlamentari",
           "military_officials": "Militari"},
    "es": {"signatories": "Firmantes", "parliamentarians": "Parlamentarios",
           "military_officials": "Militares"},
    "nl": {"signatories": "Ondertekenaars", "parliamentarians": "Parlementariërs",
           "military_officials": "Militairen"},
    "pl": {"signatories": "Sygnatariusze", "parliamentarians": "Parlamentarzyści",
           "military_officials": "Wojskowi"},
    "pt": {"signatories": "Signatários", "parliamentarians": "Parlamentares",
           "military_officials": "Militares"},
}  # fmt: skip


# Pieces of output rendered between two looks at a copy's deadline and size: a file of the appeal fits in one
# batch (64 made rendering 2.5% slower). A piece is a run of the template's text or one value, and the environment
# refuses the ways of making a value past the size limit, so a batch holds at most some 256 times that (512 MB at
# the default 2 MB, for a template written to do so), briefly, before the copy is refused.
_PIECES = 256


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
    """A template loaded and compiled once, in each of its languages, ready to render many copies (one at a time,
    each within the limits of its environment)."""

    def __init__(self, env: TemplateEnvironment, root: Path, name: str, forms: Sequence[Form]) -> None:
        self.name = name
        self.root = root
        self._env = env
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

    def _load(self, env: TemplateEnvironment, language: str) -> _Files:
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
            except RecursionError:  # the parser recurses once for each level of brackets
                raise TemplateRenderError("nested too deeply to compile", where=str(self.root / path)) from None

        subject, text, html = load(SUBJECT), load(TEXT_BODY), load(HTML_BODY)
        assert subject is not None  # template_languages only lists folders with a subject
        if text is None and html is None:
            raise TemplateRenderError(
                f"neither {TEXT_BODY} nor {HTML_BODY}", where=str(self.root / self.name / language)
            )
        return _Files(subject, text, html)

    def _shared(self, language: str, head: Letterhead) -> dict[str, Any]:
        """The variables that are the same for every contact of a language (computed once): the letterhead's
        (`sharing.LETTERHEAD_NAMES`), and the parts of the template they alone print, once rendered."""
        if language not in self._labels:
            titles = GROUP_TITLES.get(language, GROUP_TITLES[FALLBACK_LANGUAGE])
            groups = [
                SignatoryGroup(key, titles[key], tuple(head.signatories.get(key, ())))
                for key in GROUPS
                if head.signatories.get(key)
            ]
            letterhead = {
                "signatory_groups": groups,
                "signatory_count": sum(len(group.people) for group in groups),
                "sender": {"name": head.sender_name, "organization": head.sender_organization},
                "date": format_date(head.date, format="long", locale=language),
            }
            assert letterhead.keys() == LETTERHEAD_NAMES
            self._labels[language] = {**letterhead, **head.extra, CACHE: {}}
        return self._labels[language]

    def _prepare(
        self, recipient: Recipient, head: Letterhead, extra: Mapping[str, Any] | None
    ) -> tuple[str, _Files, Greeting, dict[str, Any]]:
        """A recipient's copy about to be rendered: its language (theirs or the fallback), its files, its greeting
        and the variables its templates see; the limits start counting for it."""
        language = recipient.language if recipient.language in self._files else FALLBACK_LANGUAGE
        person = recipient.addressee()
        if recipient.language != language:
            person = Addressee(**{**person.__dict__, "language": language})  # the greeting follows the letter
        hello = greeting(person, self._forms)
        variables = {**self._shared(language, head), **(extra or {}), "greeting": hello, "contact": recipient}
        if extra and not LETTERHEAD_NAMES.isdisjoint(extra):  # this copy's own letterhead: its parts are its own
            variables[CACHE] = {}
        self._env.budget.begin()  # the limits are for the copy: its files together
        return language, self._files[language], hello, variables

    def subject(self, recipient: Recipient, head: Letterhead) -> tuple[str, str]:
        """The language and subject of one recipient's copy, its subject file alone rendered (what a follow-up's
        preview says of the first letter)."""
        language, files, _, variables = self._prepare(recipient, head, None)
        return language, _subject_line(self._run(files.subject, variables, recipient, 0))

    def render(self, recipient: Recipient, head: Letterhead, extra: Mapping[str, Any] | None = None) -> Copy:
        """Render the copy for one recipient, in their language or the fallback; `extra` adds variables for
        this recipient alone (a follow-up's `first_subject`)."""
        language, files, hello, variables = self._prepare(recipient, head, extra)
        subject = self._run(files.subject, variables, recipient, 0)
        html = self._run(files.html, variables, recipient, len(subject)) if files.html else None
        text = self._run(files.text, variables, recipient, len(subject) + len(html or "")) if files.text else None
        if (len(subject) + len(html or "") + len(text or "")) * 4 > self._env.budget.limits.size:
            self._check_bytes([subject, html or "", text or ""], recipient, language)
        subject = _subject_line(subject)
        return Copy(self.name, language, subject, text_from_html(html or "") if text is None else text, html, hello)

    def _run(self, template: Template, variables: Mapping[str, Any], recipient: Recipient, used: int) -> str:
        """Render one file of a copy, piece by piece: between two pieces, the copy's deadline and size (`used`
        characters so far) are checked, and a limit passed is raised inside the template, at the line it is on."""
        env, budget = self._env, self._env.budget
        clock, deadline, size = budget.limits.clock, budget.deadline, budget.limits.size
        pieces: list[str] = []
        try:
            # As Template.generate does it, less one generator the pieces would pass through.
            chunks = cast(Generator[str, None, None], template.root_render_func(template.new_context(dict(variables))))
            try:
                # A batch of pieces at a time, joined in C: a file of the appeal is some 250 pieces.
                while batch := list(islice(chunks, _PIECES)):
                    piece = "".join(batch)
                    pieces.append(piece)
                    used += len(piece)  # characters: never more than the bytes they take
                    if used > size:
                        chunks.throw(budget.too_large(used))
                    if clock() > deadline:
                        chunks.throw(budget.too_slow())
            except Exception:
                env.handle_exception()  # raises it again, its traceback pointing into the template's lines
            return pieces[0] if len(pieces) == 1 else "".join(pieces)
        except TemplateError as error:
            raise self._failure(template, recipient, str(error), error) from None
        except RecursionError as error:
            message = "the template calls itself without end (a macro, or a recursive loop)"
            raise self._failure(template, recipient, message, error) from None
        except (OverflowError, MemoryError) as error:
            message = f"a number, a range or a text too large ({type(error).__name__}: {error or 'out of memory'})"
            raise self._failure(template, recipient, message, error) from None
        except (ArithmeticError, TypeError, ValueError) as error:  # `{{ 1 / 0 }}`, `{{ 'a' + 1 }}`
            raise self._failure(template, recipient, f"{type(error).__name__}: {error}", error) from None

    def _failure(
        self, template: Template, recipient: Recipient, message: str, error: BaseException
    ) -> TemplateRenderError:
        """The one-line error of a file that failed to render: the file, its line if known, the contact."""
        where = template.filename or template.name or self.name
        line = _template_line(error, where)
        failure = TemplateRenderError(message, where=f"{where}:{line}" if line else where)
        failure.contact = recipient.email
        return failure

    def _check_bytes(self, outputs: list[str], recipient: Recipient, language: str) -> None:
        """Refuse a copy whose characters stayed within the size limit but whose UTF-8 bytes do not (looked at only
        when they might: a character takes at most 4 bytes)."""
        used = sum(len(text.encode("utf-8", "surrogatepass")) for text in outputs)
        if used > self._env.budget.limits.size:
            failure = TemplateRenderError(
                str(self._env.budget.too_large(used)), where=str(self.root / self.name / language)
            )
            failure.contact = recipient.email
            raise failure


def _subject_line(rendered: str) -> str:
    """A rendered subject file as the Subject a copy carries: one line, its blanks and line breaks collapsed."""
    return " ".join(rendered.split())


def _template_line(error: BaseException, filename: str) -> int | None:
    """The line of the template where rendering failed (Jinja puts template frames into the traceback)."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return lines[-1] if lines else None
