"""The parts every copy of a language prints alike are rendered once, and no copy reads differently for it."""

from __future__ import annotations

import csv
import itertools
from datetime import date
from pathlib import Path

import pytest

from outreach.rendering.copies import CompiledTemplate, Letterhead, Recipient, Signatory
from outreach.rendering.environment import make_environment
from outreach.rendering.salutations import shipped_forms

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = [
    ("Κυριάκος Μητσοτάκης", "head_of_government", "GR", "el", "m"),
    ("Emmanuel Macron", "head_of_state", "FR", "fr", "m"),
    ("Jürgen Müller", "head_of_government", "DE", "de", "m"),
    ("Olena <Kovalenko> & Co", "mp", "UA", "uk", None),
    ("Markéta Gregorová", "mep", "CZ", "fr", "f"),
    ("Ada Lovelace", None, "GB", "en", "f"),
]


def shipped_letterhead() -> Letterhead:
    groups: dict[str, list[Signatory]] = {}
    with (ROOT / "contacts" / "signatories.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            groups.setdefault(row["group"], []).append(Signatory(row["name"], row["line"]))
    return Letterhead("European Appeal", "European Surge", date(2026, 12, 3), groups,
                      extra={"first_subject": "An appeal"})  # fmt: skip


def people(count: int) -> list[Recipient]:
    found = []
    for number, (name, role, country, language, gender) in zip(range(count), itertools.cycle(PEOPLE), strict=False):
        found.append(Recipient(f"p{number}@example.org", name=name, role=role, country=country, language=language,
                               gender=gender, attributes={"party": f"<b>{number}</b>"}))  # fmt: skip
    return found


def each_alone(root: Path, name: str, recipients: list[Recipient], head: Letterhead, **extra: str) -> list[tuple]:
    """The reference: every copy rendered by a template of its own, so nothing is kept from one copy to the next."""
    return [
        astuple(CompiledTemplate(make_environment(root), root, name, shipped_forms()).render(person, head, extra))
        for person in recipients
    ]


def together(root: Path, name: str, recipients: list[Recipient], head: Letterhead, **extra: str) -> list[tuple]:
    template = CompiledTemplate(make_environment(root), root, name, shipped_forms())
    return [astuple(template.render(person, head, extra)) for person in recipients]


def compiled(root: Path, body: str, file: str = "body.txt") -> CompiledTemplate:
    """A template `t` of one English file besides its subject, compiled."""
    (root / "t" / "en").mkdir(parents=True)
    (root / "t" / "en" / "subject.txt").write_text("Hello", encoding="utf-8")
    (root / "t" / "en" / file).write_text(body, encoding="utf-8")
    return CompiledTemplate(make_environment(root), root, "t", shipped_forms())


def astuple(copy: object) -> tuple:
    return (copy.language, copy.subject, copy.text, copy.html)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["appeal", "appeal-reminder"])
def test_the_shipped_letters_read_the_same_whether_their_parts_are_kept_or_not(name: str) -> None:
    recipients, head = people(24), shipped_letterhead()
    extra = {"first_sent_on": "1 December 2026"} if name.endswith("reminder") else {}
    assert together(ROOT / "templates", name, recipients, head, **extra) == each_alone(
        ROOT / "templates", name, recipients, head, **extra
    )


def test_the_signatory_list_is_rendered_once_a_language(tmp_path: Path) -> None:
    # `signatory_groups` is read through a counting object: how many times the list is rendered shows.
    template = compiled(
        tmp_path,
        "{{ greeting.salutation }}\n{% for group in signatory_groups %}{{ group.title }}\n"
        "{% for person in group.people %}{{ person.name }}\n{% endfor %}{% endfor %}",
    )
    head = shipped_letterhead()
    reads = 0
    real = template._shared("en", head)["signatory_groups"]

    class Counting(list):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            nonlocal reads
            reads += 1
            return super().__iter__()

    template._labels["en"]["signatory_groups"] = Counting(real)
    copies = [template.render(person, head) for person in people(5)]
    assert reads == 1
    assert len({copy.text.split("\n", 1)[1] for copy in copies}) == 1
    assert len({copy.text.split("\n", 1)[0] for copy in copies}) > 1  # the greeting is each contact's own


@pytest.mark.parametrize(
    "body",
    [
        # A part that reads the contact is each copy's own, wherever in it the contact is read.
        "{% for group in signatory_groups %}{{ contact.email }}{% endfor %}",
        "{% for group in signatory_groups %}{% if contact.email == 'p1@example.org' %}{{ group.title }}{% endif %}"
        "{% endfor %}",
        # The contact read before a loop binds a name `contact` further in.
        "{% for group in signatory_groups %}{{ contact.email }}{% for contact in group.people %}{% endfor %}"
        "{% endfor %}",
        # A loop over the letterhead filtered by the contact's own value.
        "{% for group in signatory_groups if group.key != contact.email %}{{ group.title }}{{ contact.email }}"
        "{% endfor %}",
        # An included template that reads the contact.
        '{% include "_part.txt" %}',
        # What a follow-up gives each copy.
        "{{ date }} {{ first_sent_on }}",
        # A name the template set from the contact.
        "{% set n = contact.email %}{% for group in signatory_groups %}{{ n }}{% endfor %}",
    ],
)
def test_a_part_that_reads_anything_of_the_copy_is_rendered_for_each_copy(tmp_path: Path, body: str) -> None:
    template = compiled(tmp_path, body)
    (tmp_path / "_part.txt").write_text("{{ signatory_count }} {{ contact.email }}", encoding="utf-8")
    recipients, head = people(4), shipped_letterhead()
    extras = [{"first_sent_on": f"day {number}"} for number in range(4)]
    mixed = [astuple(template.render(person, head, extra)) for person, extra in zip(recipients, extras, strict=True)]
    alone = [
        astuple(CompiledTemplate(make_environment(tmp_path), tmp_path, "t", shipped_forms()).render(person, head, x))
        for person, x in zip(recipients, extras, strict=True)
    ]
    assert mixed == alone
    assert len({copy[2] for copy in mixed}) > 1


def test_a_copy_given_its_own_date_is_not_given_the_languages_kept_parts(tmp_path: Path) -> None:
    template = compiled(tmp_path, "On {{ date }}")
    head = shipped_letterhead()
    first, second, third = (template.render(person, head, extra) for person, extra in
                            zip(people(3), [{}, {"date": "yesterday"}, {}], strict=True))  # fmt: skip
    assert (first.text, second.text, third.text) == ("On December 3, 2026", "On yesterday", "On December 3, 2026")


def test_random_choices_are_made_for_each_copy(tmp_path: Path) -> None:
    template = compiled(tmp_path, "{% for n in signatory_groups %}{{ range(100000) | random }}{% endfor %}")
    texts = {template.render(person, shipped_letterhead()).text for person in people(5)}
    assert len(texts) > 1


def test_html_kept_once_is_escaped_once(tmp_path: Path) -> None:
    template = compiled(
        tmp_path,
        "<p>{{ contact.name }}</p>{% for group in signatory_groups %}"
        "{% for person in group.people %}<li>{{ person.name }}</li>{% endfor %}{% endfor %}",
        "body.html",
    )
    head = Letterhead("A & B", "", date(2026, 12, 3), {"signatories": [Signatory("Tom <&> Jerry")]})
    copies = [template.render(person, head) for person in people(3)]
    assert all(copy.html and copy.html.endswith("<li>Tom &lt;&amp;&gt; Jerry</li>") for copy in copies)
    assert copies[0].html and copies[0].html.startswith("<p>Κυριάκος")


def test_a_template_that_includes_itself_is_refused_as_before(tmp_path: Path) -> None:
    template = compiled(tmp_path, '{{ date }}{% include "t/en/body.txt" %}')
    with pytest.raises(Exception) as raised:
        template.render(people(1)[0], shipped_letterhead())
    assert "t/en/body.txt" in str(raised.value) or "calls itself" in str(raised.value)
