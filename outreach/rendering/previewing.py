"""Rendering for people to look at: one copy for one contact, and a check of a template against a segment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.directory import count_contacts, find_contact
from outreach.contacts.segments import Segment
from outreach.contacts.selecting import streamed_contacts
from outreach.db.models import Contact, Signatory
from outreach.errors import NotFoundError, OutreachError
from outreach.parallel import in_order
from outreach.rendering.copies import CompiledTemplate, Copy, Letterhead, Recipient, TemplateRenderError
from outreach.rendering.copies import Signatory as PrintedSignatory
from outreach.rendering.environment import RenderLimits, make_environment
from outreach.rendering.folders import FALLBACK_LANGUAGE, template_names
from outreach.rendering.letters import Sender
from outreach.rendering.salutations import Form, forms_used, greeting, shipped_forms


def compile_template(root: Path, name: str, limits: RenderLimits | None = None) -> CompiledTemplate:
    """Load and compile one template of the workspace, to render copies within `limits` (the defaults if None)."""
    if name not in template_names(root):
        known = ", ".join(template_names(root)) or "none"
        raise NotFoundError(f"no template {name!r} in {root}", hint=f"templates: {known}")
    return CompiledTemplate(make_environment(root, limits), root, name, shipped_forms())


def recipient_of(contact: Contact) -> Recipient:
    """The contact as templates see it."""
    return Recipient(
        email=contact.email or "", name=contact.name, first_name=contact.first_name, last_name=contact.last_name,
        honorific=contact.honorific, gender=contact.gender, position=contact.position, role=contact.role,
        organization=contact.organization, country=contact.country, language=contact.language,
        time_zone=contact.time_zone, attributes=dict(contact.attributes or {}),
    )  # fmt: skip


def letterhead(session: Session, sender: Sender, now: datetime) -> Letterhead:
    """What every copy shares, with the signatories as they stand in the database now."""
    groups: dict[str, list[PrintedSignatory]] = {}
    for row in session.scalars(select(Signatory).order_by(Signatory.id)):
        groups.setdefault(row.group, []).append(PrintedSignatory(row.name, row.line))
    return Letterhead(sender.name, sender.organization, now.date(), groups)


def _follow_up(first: CompiledTemplate | None, recipient: Recipient, head: Letterhead) -> dict[str, str]:
    """What a follow-up says of the first letter, as if that letter had gone out today (for previews)."""
    if first is None:
        return {}
    language, subject = first.subject(recipient, head)
    return {"first_subject": subject, "first_sent_on": format_date(head.date, "long", locale=language)}


def render_for(
    sessions: sessionmaker[Session],
    root: Path,
    name: str,
    address: str,
    sender: Sender,
    *,
    now: datetime,
    follows: str | None = None,
    limits: RenderLimits | None = None,
) -> tuple[Copy, Recipient]:
    """Render one template for one contact (`follows`: the template of the first letter, for a follow-up)."""
    template = compile_template(root, name, limits)
    first = compile_template(root, follows, limits) if follows else None
    with sessions() as session:
        contact = find_contact(session, address)
        recipient = recipient_of(contact)
        head = letterhead(session, sender, now)
    return template.render(recipient, head, _follow_up(first, recipient, head)), recipient


# What of a copy can be in another language than the contact's own: the whole letter, when the template has no
# folder for their language, or only its form of address, when the forms have none for them in the letter's language.
TEMPLATE, FORMS = "template", "forms of address"


def fallback_of(recipient: Recipient, copy: Copy, forms: Sequence[Form]) -> tuple[str, str] | None:
    """What of a contact's copy fell back from their own language, and to which: (`TEMPLATE` or `FORMS`, the
    language it is in), or None when the copy is all in their language (or they have none)."""
    wanted = recipient.language
    if not wanted:
        return None
    if copy.language != wanted:
        return TEMPLATE, copy.language
    if wanted == FALLBACK_LANGUAGE:
        return None
    # The greeting the copy would have from the forms of its own language alone: where it differs, a part of the
    # copy's greeting came from the fallback language (salutations.greeting tries the letter's language, then it).
    own = greeting(replace(recipient.addressee(), language=wanted), [f for f in forms if f.language == wanted])
    return (FORMS, FALLBACK_LANGUAGE) if own != copy.greeting else None


def unchecked_forms(recipient: Recipient, copy: Copy, forms: Sequence[Form]) -> tuple[Form, ...]:
    """The forms of address a copy's greeting was taken from that no protocol source was read for (`Form.checked`)."""
    person = replace(recipient.addressee(), language=copy.language)  # the greeting follows the letter
    return tuple(form for form in forms_used(person, forms) if not form.checked)


@dataclass
class Unchecked:
    """A form of address not checked against a protocol source, and the contacts whose copies open with it."""

    form: Form
    contacts: list[str] = field(default_factory=list)


@dataclass
class Fallback:
    """The contacts of one language whose copies have one part (`TEMPLATE` or `FORMS`) in another language."""

    language: str  # the contacts' own
    written_in: str
    part: str
    contacts: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """How a template fared against every contact of a segment."""

    template: str
    checked: int = 0
    failures: list[tuple[str, TemplateRenderError]] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)
    fallbacks: list[Fallback] = field(default_factory=list)  # in the order first met
    unchecked: dict[Form, Unchecked] = field(default_factory=dict)  # in the order first met

    def used_unchecked(self, email: str, forms: Sequence[Form]) -> None:
        """Count a contact whose greeting comes from forms not checked against a protocol source."""
        for form in forms:
            self.unchecked.setdefault(form, Unchecked(form)).contacts.append(email)

    def fell_back(self, email: str, language: str, part: str, written_in: str) -> None:
        """Count a contact whose copy has `part` in `written_in` instead of their own `language`."""
        for known in self.fallbacks:
            if (known.language, known.part, known.written_in) == (language, part, written_in):
                known.contacts.append(email)
                return
        self.fallbacks.append(Fallback(language, written_in, part, [email]))

    def grouped(self) -> list[tuple[str, list[str]]]:
        """The failures grouped by what went wrong where, each with the contacts it happened for."""
        groups: dict[str, list[str]] = {}
        for email, error in self.failures:
            groups.setdefault(OutreachError.format_message(error), []).append(email)
        return list(groups.items())


class _Checked(NamedTuple):
    """What the check of one contact's copy found, when it rendered."""

    language: str
    fallback: tuple[str, str] | None
    unchecked: tuple[Form, ...]


def check_template(
    sessions: sessionmaker[Session],
    root: Path,
    name: str,
    segment: Segment,
    sender: Sender,
    *,
    now: datetime,
    follows: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    limits: RenderLimits | None = None,
) -> CheckReport:
    """Render the template for every contact of the segment; collect every failure instead of stopping.
    `progress(checked, total)` hears how many contacts are checked, of how many."""
    template = compile_template(root, name, limits)
    first = compile_template(root, follows, limits) if follows else None
    forms = shipped_forms()  # the forms compile_template gives the template
    report = CheckReport(name)
    total = count_contacts(sessions, segment) if progress else 0
    with sessions() as session:
        head = letterhead(session, sender, now)

        def check(recipient: Recipient) -> _Checked | TemplateRenderError:
            """One contact's copy, as the report counts it (what a worker process runs, and sends back)."""
            try:
                copy = template.render(recipient, head, _follow_up(first, recipient, head))
            except TemplateRenderError as error:
                return error
            return _Checked(copy.language, fallback_of(recipient, copy, forms), unchecked_forms(recipient, copy, forms))

        with streamed_contacts(session, segment) as contacts:
            for recipient, checked in in_order(check, map(recipient_of, contacts)):  # on both cores, when many
                if isinstance(checked, TemplateRenderError):
                    report.failures.append((recipient.email, checked))
                else:
                    report.languages[checked.language] = report.languages.get(checked.language, 0) + 1
                    if checked.fallback:
                        report.fell_back(recipient.email, recipient.language or "", *checked.fallback)
                    report.used_unchecked(recipient.email, checked.unchecked)
                report.checked += 1
                if progress:
                    progress(report.checked, total)
    return report
