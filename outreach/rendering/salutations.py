"""Forms of address as data: the salutation and address line for a contact's role, language, country, gender."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

FORMS_FILE = Path(__file__).with_name("salutations.toml")
# How the forms file marks a source whose wording could not be read there: "[this office not verified]", "[no
# protocol source checked]", "(...; this office not verified)".
UNCHECKED_MARK = re.compile(r"not verified|no protocol source checked")
FALLBACK_LANGUAGE = "en"
PLACEHOLDERS = ("name", "first_name", "last_name", "honorific", "position", "organization")


class FormsError(ValueError):
    """The forms file is not what this module expects; the message names the form."""


@dataclass(frozen=True)
class Form:
    """One entry of the forms file."""

    language: str
    role: str
    salutation: str
    address: str
    country: str | None = None
    gender: str | None = None
    # Where the form comes from: a publication or office a reviewer can check it against. The forms file must name
    # one for every form (parse_forms refuses it otherwise); forms built in code for tests may leave it empty.
    source: str = ""

    @property
    def checked(self) -> bool:
        """Whether the form rests on a source its wording was read in: its source carries no mark such as
        "[not verified]" or "[no protocol source checked]" (the forms file's header says how rows are marked)."""
        return not UNCHECKED_MARK.search(self.source)


@dataclass(frozen=True)
class Addressee:
    """What the forms need to know about a contact: plain values, no database object."""

    role: str | None = None
    language: str | None = None
    country: str | None = None
    gender: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    honorific: str | None = None
    position: str | None = None
    organization: str | None = None
    salutation: str | None = None  # the contact's own override
    address_line: str | None = None  # the contact's own override


@dataclass(frozen=True)
class Greeting:
    """The salutation that opens the letter and the line that names the addressee."""

    template_data: ClassVar[bool] = True  # plain values: templates read them without sandbox checks

    salutation: str
    address_line: str


def parse_forms(data: Mapping[str, object], source: str = "forms") -> tuple[Form, ...]:
    """Check the forms of a parsed TOML document and return them in file order."""
    entries = data.get("form")
    if not isinstance(entries, list) or not entries:
        raise FormsError(f"{source}: no [[form]] entries")
    forms = []
    for number, entry in enumerate(entries, start=1):
        try:
            form = Form(**entry)
        except TypeError as error:
            raise FormsError(f"{source}: form {number}: {error}") from None
        for text in (form.salutation, form.address):
            unknown = {field for _, field, _, _ in string.Formatter().parse(text) if field} - set(PLACEHOLDERS)
            if unknown:
                raise FormsError(f"{source}: form {number}: unknown placeholder {sorted(unknown)[0]!r}")
        if not isinstance(form.source, str) or not form.source.strip():
            raise FormsError(f"{source}: form {number}: no source (name the publication or office it follows)")
        forms.append(form)
    return tuple(forms)


@cache
def shipped_forms() -> tuple[Form, ...]:
    """The forms shipped with the package."""
    return parse_forms(tomllib.loads(FORMS_FILE.read_text(encoding="utf-8")), str(FORMS_FILE))


def _fill(text: str, values: Mapping[str, str]) -> str | None:
    """Fill the placeholders of a form, or return None when one of them has no value."""
    fields = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    if any(not values.get(field) for field in fields):
        return None
    return text.format_map(values)


def _candidates(forms: Sequence[Form], person: Addressee, language: str) -> list[Form]:
    """The forms that apply to the person in a language: the role's first, then `any`, most specific first."""

    def applies(form: Form) -> bool:
        return (form.country in (None, person.country)) and (form.gender in (None, person.gender))

    def specificity(form: Form) -> int:
        return (2 if form.country else 0) + (1 if form.gender else 0)

    ordered: list[Form] = []
    index = _by_language_and_role(forms)
    for role in (person.role, "any"):
        matching = [f for f in index.get((language, role), ()) if applies(f)]
        ordered += sorted(matching, key=specificity, reverse=True)  # sorted is stable: file order among equals
    return ordered


# The last tuples of forms indexed, by id (each kept with its index, so the id stays its own): a template's forms
# are indexed once, not scanned whole for each part of each copy's greeting.
_INDEXES: dict[int, tuple[tuple[Form, ...], dict[tuple[str, str | None], list[Form]]]] = {}


def _by_language_and_role(forms: Sequence[Form]) -> dict[tuple[str, str | None], list[Form]]:
    """The forms by (language, role), in file order; a tuple's index is kept (a list may change, so is not)."""
    kept = _INDEXES.get(id(forms))
    if kept is not None and kept[0] is forms:
        return kept[1]
    index: dict[tuple[str, str | None], list[Form]] = {}
    for form in forms:
        index.setdefault((form.language, form.role), []).append(form)
    if isinstance(forms, tuple):
        if len(_INDEXES) >= 8:
            _INDEXES.clear()
        _INDEXES[id(forms)] = (forms, index)
    return index


def greeting(person: Addressee, forms: Sequence[Form] | None = None) -> Greeting:
    """Choose the salutation and address line for a person; their own overrides win."""
    salutation, address = _chosen(person, shipped_forms() if forms is None else forms)
    return Greeting(
        person.salutation or (salutation[1] if salutation else ""),
        person.address_line or (address[1] if address else ""),
    )


def forms_used(person: Addressee, forms: Sequence[Form] | None = None) -> tuple[Form, ...]:
    """The forms a person's greeting is taken from (the salutation's, then the address line's if another), leaving
    out the parts their own `salutation` or `address_line` gives."""
    chosen = _chosen(person, shipped_forms() if forms is None else forms)
    return tuple(dict.fromkeys(found[0] for found in chosen if found))


def _chosen(person: Addressee, forms: Sequence[Form]) -> tuple[tuple[Form, str] | None, tuple[Form, str] | None]:
    """The form and filled text of the salutation and of the address line: None where the person's own one wins
    (no form is looked for) or no form fits."""
    values = {field: value for field in PLACEHOLDERS if (value := getattr(person, field))}
    languages = dict.fromkeys([person.language or FALLBACK_LANGUAGE, FALLBACK_LANGUAGE])
    # The candidates of each language, found once for both parts (the fallback's only if a part needs it).
    found: dict[str, list[Form]] = {}

    def candidates(language: str) -> list[Form]:
        if language not in found:
            found[language] = _candidates(forms, person, language)
        return found[language]

    return (
        None if person.salutation else _first_filled(candidates, languages, values, "salutation"),
        None if person.address_line else _first_filled(candidates, languages, values, "address"),
    )


def _first_filled(
    candidates: Callable[[str], list[Form]], languages: Iterable[str], values: Mapping[str, str], part: str
) -> tuple[Form, str] | None:
    for language in languages:
        for form in candidates(language):
            filled = _fill(getattr(form, part), values)
            if filled is not None:
                return form, filled
    return None


GENDERS = (None, "f", "m")  # None: the contact's gender is not known


@dataclass(frozen=True)
class ReviewedForm:
    """A form as a reviewer sees it: which countries it applies to and, for one country, whom it is chosen for."""

    form: Form
    applies_to: str  # the form's country, or "generic" for a form that serves every country without one of its own
    chosen_for: tuple[str | None, ...] | None  # with a country: the genders (None: unknown) it is the first choice for


def review_forms(
    forms: Sequence[Form], *, country: str | None = None, role: str | None = None, language: str | None = None
) -> list[ReviewedForm]:
    """The forms of a role and language that apply to a country (its own and the generic ones), in file order.

    With a country, each form says for which genders it is the first choice of a contact of that country, assuming
    its placeholders can be filled: a generic form that a form of the country overrides is chosen for none.
    """
    shown = [
        form
        for form in forms
        if (role is None or form.role == role)
        and (language is None or form.language == language)
        and (country is None or form.country in (None, country))
    ]
    reviewed = []
    for form in shown:
        chosen: tuple[str | None, ...] | None = None
        if country is not None:
            chosen = tuple(
                gender
                for gender in GENDERS
                if next(iter(_candidates(forms, Addressee(role=form.role, country=country, gender=gender),
                                         form.language)), None) is form
            )  # fmt: skip
        reviewed.append(ReviewedForm(form, form.country or "generic", chosen))
    return reviewed
