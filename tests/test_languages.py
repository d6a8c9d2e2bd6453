"""The appeal and its reminder in Italian, Spanish, Dutch, Polish and Portuguese, as the sample heads of state and
government would receive them: their language, their form of address, the signatories under headings of their
language, the count and the date as their language writes them, and `templates check` naming every fallback.

The tests that say "addressed in their language" need the forms of address of these languages
(outreach/rendering/salutations.toml); until a language has them, its contacts are addressed in English and
those tests fail, naming the fallback.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import re
from datetime import UTC, date, datetime
from email.message import EmailMessage

import pytest
from babel import Locale
from babel.numbers import format_decimal
from jinja2 import Environment, meta

from outreach.contacts import directory
from outreach.contacts.segments import parse_segment
from outreach.rendering.copies import CompiledTemplate, Copy, Letterhead, Recipient, Signatory
from outreach.rendering.environment import make_environment
from outreach.rendering.letters import Sender, compose, mailbox_of
from outreach.rendering.mime import Mailbox
from outreach.rendering.previewing import FORMS, TEMPLATE, check_template, fallback_of
from outreach.rendering.salutations import Form, shipped_forms
from outreach.vocabulary import GROUPS
from outreach.workspace import shipped_files

from .conftest import Env
from .test_import import do_import

NEW = ("it", "es", "nl", "pl", "pt")
TEMPLATES = shipped_files() / "templates"
HEADS = shipped_files() / "contacts" / "heads-of-state.csv"
DAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine")
FOLLOW = {"first_subject": "Open appeal", "first_sent_on": "20 November 2026"}
LOCALES = {"it": "it", "es": "es", "nl": "nl", "pl": "pl", "pt": "pt_PT"}  # pt: European Portuguese

# What a reader sees: the headings of the signatory groups (in GROUPS order), and the date of the letter.
TITLES = {
    "it": ("Firmatari", "Parlamentari", "Militari"),
    "es": ("Firmantes", "Parlamentarios", "Militares"),
    "nl": ("Ondertekenaars", "Parlementariërs", "Militairen"),
    "pl": ("Sygnatariusze", "Parlamentarzyści", "Wojskowi"),
    "pt": ("Signatários", "Parlamentares", "Militares"),
}
DATES = {
    "it": "29 novembre 2026",
    "es": "29 de noviembre de 2026",
    "nl": "29 november 2026",
    "pl": "29 listopada 2026",
    "pt": "29 de novembro de 2026",
}
# The appeal's figures (30,000, 50,000 and 100,000 soldiers; 1,000 km) in the language's digit grouping.
FIGURES = {
    "it": ("30.000 soldati", "50.000 soldati", "100.000 soldati", "1.000 km"),
    "es": ("30.000 soldados", "50.000 soldados", "100.000 soldados", "1.000 km"),
    "nl": ("30.000 soldaten", "50.000 soldaten", "100.000 soldaten", "1.000 km"),
    "pl": ("30\u00a0000 żołnierzy", "50\u00a0000 żołnierzy", "100\u00a0000 żołnierzy", "1\u00a0000 km"),
    "pt": ("30\u00a0000 soldados", "50\u00a0000 soldados", "100\u00a0000 soldados", "1\u00a0000 km"),
}
# The place names of the appeal, as each language writes them.
PLACES = {
    "it": ("Bielorussia", "Sumy", "Kharkiv", "Luhansk", "Donetsk"),
    "es": ("Bielorrusia", "Sumy", "Járkov", "Lugansk", "Donetsk"),
    "nl": ("Wit-Rusland", "Soemy", "Charkiv", "Loehansk", "Donetsk"),
    "pl": ("Białorusią", "sumskim", "charkowskim", "ługańskim", "donieckim"),
    "pt": ("Bielorrússia", "Sumy", "Kharkiv", "Lugansk", "Donetsk"),
}
POLISH = {"one": ("podpisała", "osoba"), "few": ("podpisały", "osoby"), "many": ("podpisało", "osób")}


def compiled(name: str, forms: tuple[Form, ...] | None = None) -> CompiledTemplate:
    return CompiledTemplate(make_environment(TEMPLATES), TEMPLATES, name, shipped_forms() if forms is None else forms)


def heads(language: str) -> list[Recipient]:
    """The sample heads of state and government of contacts/heads-of-state.csv who read `language`."""
    with HEADS.open(encoding="utf-8", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["language"] == language]
    fields = ("honorific", "first_name", "last_name", "gender", "position", "role", "organization", "country")
    return [
        Recipient(email=row["email"], name=" ".join(filter(None, (row["first_name"], row["last_name"]))),
                  language=language, **{field: row[field] or None for field in fields})
        for row in rows
    ]  # fmt: skip


def letterhead(count: int) -> Letterhead:
    """A letterhead with `count` signatories, dealt out over the groups in turn."""
    groups: dict[str, list[Signatory]] = {}
    for number in range(count):
        groups.setdefault(GROUPS[number % len(GROUPS)], []).append(Signatory(f"Person {number}", "Somewhere"))
    return Letterhead("Jane Doe", "European Surge for Ukraine", DAY, groups)


def copies(language: str, count: int = 35) -> tuple[Copy, Copy]:
    """The appeal and the reminder for the first sample head of `language`."""
    recipient = heads(language)[0]
    head = letterhead(count)
    return compiled("appeal").render(recipient, head), compiled("appeal-reminder").render(recipient, head, FOLLOW)


def shape(text: str) -> list[bool]:
    """Which lines of a file are blank: the same shape means the same paragraphs, each on one line."""
    return [not line.strip() for line in text.split("\n")]


def test_the_sample_contacts_include_two_heads_for_each_new_language() -> None:
    assert {language: len(heads(language)) for language in NEW} == {"it": 2, "es": 2, "nl": 4, "pl": 2, "pt": 2}


@pytest.mark.parametrize("language", NEW)
@pytest.mark.parametrize(
    ("name", "files"),
    [("appeal", ["subject.txt", "body.txt", "body.html"]), ("appeal-reminder", ["subject.txt", "body.txt"])],
)
def test_each_translation_has_the_files_lines_and_variables_of_the_english(
    name: str, files: list[str], language: str
) -> None:
    parse = Environment().parse
    for file in files:
        english = (TEMPLATES / name / "en" / file).read_text(encoding="utf-8")
        translated = (TEMPLATES / name / language / file).read_text(encoding="utf-8")
        assert shape(translated) == shape(english), f"{name}/{language}/{file}: paragraphs, lines and blank lines"
        assert translated.endswith("\n") == english.endswith("\n")
        assert meta.find_undeclared_variables(parse(translated)) == meta.find_undeclared_variables(parse(english))
        assert not re.search(r"\d,\d", translated), "no number grouped the English way"
        if file == "body.html":
            assert f'<html lang="{language}">' in translated
    subject = (TEMPLATES / name / language / "subject.txt").read_text(encoding="utf-8")
    assert "\n" not in subject and "{" not in subject and subject.strip() == subject


@pytest.mark.parametrize("language", NEW)
def test_the_sample_heads_get_every_template_in_their_language(language: str) -> None:
    appeal, reminder = compiled("appeal"), compiled("appeal-reminder")
    for recipient in heads(language):
        head = letterhead(35)
        for copy in (appeal.render(recipient, head), reminder.render(recipient, head, FOLLOW)):
            assert copy.language == language
            assert fallback_of(recipient, copy, shipped_forms()) in (None, (FORMS, "en")), "never a template fallback"
            assert f"{copy.greeting.salutation}\n\n" in copy.text and "\n\n\n" not in copy.text
            assert "500" not in copy.text and "{" not in copy.text
        letter = appeal.render(recipient, head)
        assert all(figure in letter.text for figure in FIGURES[language])
        assert all(place in letter.text for place in PLACES[language])
        assert "30,000" not in letter.text and "Belarus" not in letter.text.replace("Wit-Rusland", "")
        assert letter.html is not None and all(figure in letter.html for figure in FIGURES[language])


@pytest.mark.parametrize("language", NEW)
def test_the_sample_heads_are_addressed_in_their_language(language: str) -> None:
    """Needs the language's forms of address in salutations.toml (see the module's docstring)."""
    forms = shipped_forms()
    for recipient in heads(language):
        copy = compiled("appeal").render(recipient, letterhead(3))
        assert fallback_of(recipient, copy, forms) is None, (
            f"{recipient.email} ({recipient.role}, {language}) is addressed in English: {copy.greeting}"
        )


@pytest.mark.parametrize("language", NEW)
def test_the_signatories_are_listed_under_headings_of_the_language(language: str) -> None:
    appeal, _ = copies(language, count=6)
    assert appeal.html is not None
    for title, key in zip(TITLES[language], GROUPS, strict=True):
        people = [f"Person {n}, Somewhere" for n in range(6) if GROUPS[n % 3] == key]
        assert f"\n\n{title}\n" + "\n".join(people) + "\n" in appeal.text
        assert f">{title}</h3>" in appeal.html
    assert "Signatories" not in appeal.text and "Military officials" not in appeal.html


@pytest.mark.parametrize(
    ("language", "count", "heading", "since"),
    [
        ("it", 1, "Firmato da 1 persona", "è stato firmato da 1 persona."),
        ("it", 3, "Firmato da 3 persone", "è stato firmato da 3 persone."),
        ("it", 1234, "Firmato da 1.234 persone", "è stato firmato da 1.234 persone."),
        ("es", 1, "Firmado por 1 persona", "ha sido firmado por 1 persona."),
        ("es", 35, "Firmado por 35 personas", "ha sido firmado por 35 personas."),
        ("es", 1234, "Firmado por 1.234 personas", "ha sido firmado por 1.234 personas."),
        ("nl", 1, "Ondertekend door 1 persoon", "ondertekend door 1 persoon."),
        ("nl", 1234, "Ondertekend door 1.234 personen", "ondertekend door 1.234 personen."),
        ("pl", 1, "Apel podpisała 1 osoba", "nasz apel podpisała 1 osoba."),
        ("pl", 3, "Apel podpisały 3 osoby", "nasz apel podpisały 3 osoby."),
        ("pl", 5, "Apel podpisało 5 osób", "nasz apel podpisało 5 osób."),
        ("pl", 12, "Apel podpisało 12 osób", "nasz apel podpisało 12 osób."),
        ("pl", 22, "Apel podpisały 22 osoby", "nasz apel podpisały 22 osoby."),
        ("pl", 112, "Apel podpisało 112 osób", "nasz apel podpisało 112 osób."),
        ("pl", 1234, "Apel podpisały 1\u00a0234 osoby", "nasz apel podpisały 1\u00a0234 osoby."),
        ("pt", 1, "Assinado por 1 pessoa", "foi assinado por 1 pessoa."),
        ("pt", 1234, "Assinado por 1\u00a0234 pessoas", "foi assinado por 1\u00a0234 pessoas."),
    ],
)
def test_the_count_of_signatories_is_written_as_the_language_writes_it(
    language: str, count: int, heading: str, since: str
) -> None:
    appeal, reminder = copies(language, count)
    assert f"\n\n{heading}:\n" in appeal.text
    assert appeal.html is not None and f'font-weight:bold;">{heading}</h2>' in appeal.html
    assert since in reminder.text


@pytest.mark.parametrize("language", NEW)
@pytest.mark.parametrize("count", [1, 2, 999, 1000, 12345, 1234567])
def test_the_count_is_grouped_as_babel_groups_it(language: str, count: int) -> None:
    copy = compiled("appeal-reminder").render(heads(language)[0], letterhead(1), {**FOLLOW, "signatory_count": count})
    assert f" {format_decimal(count, locale=LOCALES[language])} " in copy.text


def test_the_polish_count_takes_the_form_cldr_gives_each_number() -> None:
    """1 osoba; 2-4, 22-24, 32-34 ... osoby, but 12-14 osób; every other number osób (CLDR's plural rules)."""
    template = compiled("appeal-reminder")
    recipient = heads("pl")[0]
    polish = Locale("pl")
    for count in range(1, 260):  # the count as a copy's own variable: one compiled template for every count
        copy = template.render(recipient, letterhead(1), {**FOLLOW, "signatory_count": count})
        verb, noun = POLISH[polish.plural_form(count)]
        assert f"nasz apel {verb} {count} {noun}." in copy.text, count


@pytest.mark.parametrize("language", NEW)
def test_the_date_is_written_in_the_language(language: str) -> None:
    appeal, reminder = copies(language)
    assert f"\n{DATES[language]}\n\n" in appeal.text
    assert appeal.html is not None and f"<br>{DATES[language]}</p>" in appeal.html
    assert reminder.text.endswith(f"\n{DATES[language]}\n")


@pytest.mark.parametrize("language", NEW)
def test_the_letter_goes_on_the_wire_within_the_line_limits_and_parses_back(language: str) -> None:
    for copy in copies(language, count=1234):
        recipient = heads(language)[0]
        data = compose(copy, mailbox_of(recipient), SENDER, unsubscribe_token="unused").data  # no OUTREACH_PUBLIC_URL
        lines = data.split(b"\r\n")
        assert all(len(line) <= 78 for line in lines), "every line within RFC 5322's 78 characters"
        assert b"\n" not in data.replace(b"\r\n", b""), "no bare LF"
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert parsed["Subject"] == copy.subject
        plain = parsed.get_body(preferencelist=("plain",))
        assert plain is not None and plain["Content-Transfer-Encoding"] == "quoted-printable"
        assert str(plain.get_content()).replace("\r\n", "\n") == copy.text
        if copy.html is not None:
            html = parsed.get_body(preferencelist=("html",))
            assert html is not None and html["Content-Transfer-Encoding"] == "quoted-printable"
            assert str(html.get_content()).replace("\r\n", "\n") == copy.html


def test_a_fallback_is_named_for_the_template_and_for_the_form_of_address() -> None:
    forms = (
        Form("en", "any", "Dear Sir or Madam,", ""),
        Form("it", "head_of_state", "Signor Presidente,", ""),
    )
    template = compiled("appeal", forms)
    head = letterhead(3)

    def fallback(**fields: str) -> tuple[str, str] | None:
        recipient = Recipient(email="someone@example.org", name="Someone", **fields)
        return fallback_of(recipient, template.render(recipient, head), forms)

    assert fallback(language="fi", role="head_of_state") == (TEMPLATE, "en")
    assert fallback(language="it", role="mp") == (FORMS, "en"), "an Italian letter, an English salutation"
    assert fallback(language="it", role="head_of_state") is None
    assert fallback(language="en", role="mp") is None
    own = Recipient(email="someone@example.org", language="it", role="mp", attributes={"salutation": "Caro Mario,"})
    assert fallback_of(own, template.render(own, head), forms) is None, "the contact's own salutation is theirs"


def test_check_finds_no_failure_and_no_fallback_for_the_sample_heads(env: Env) -> None:
    do_import(env, env.root / "contacts" / "heads-of-state.csv")
    segment = parse_segment("language:" + ",".join(NEW))
    for name in ("appeal", "appeal-reminder"):
        report = check_template(env.sessions, env.root / "templates", name, segment, SENDER, now=NOW,
                                follows="appeal" if name == "appeal-reminder" else None)  # fmt: skip
        assert report.languages == {"it": 2, "es": 2, "nl": 4, "pl": 2, "pt": 2}
        assert report.failures == []
        assert [f for f in report.fallbacks if f.part == TEMPLATE] == []
        fell_back = {(f.language, f.part): sorted(f.contacts) for f in report.fallbacks}
        assert fell_back == {}, "needs the forms of address of it, es, nl, pl, pt in salutations.toml"


def test_templates_check_names_the_contacts_whose_letter_falls_back(env: Env) -> None:
    (env.root / ".env").write_text('OUTREACH_FROM="European Appeal <appeal@example.org>"\n', encoding="utf-8")
    env.run("contacts", "import", "contacts/heads-of-state.csv")
    directory.add_contact(env.sessions, "eduskunta@example.org", {"name": "Jussi Halla-aho", "role": "mp",
                          "country": "FI", "language": "fi"}, (), {}, now=NOW)  # fmt: skip
    shown = env.run("templates", "check", "appeal", "--segment", "country:FI,DE")
    finns = ["presidentinlinna@example.org", "valtioneuvosto@example.org", "eduskunta@example.org"]
    assert "appeal: 5 copies checked, 0 failed (2 in de, 3 in en)" in shown.stderr, shown.stderr
    assert "  3 contacts in fi written in en (no fi template): " in shown.stderr
    assert all(address in shown.stderr for address in finns)
    assert "in de written in" not in shown.stderr
    [report] = json.loads(env.run("templates", "check", "appeal", "--segment", "country:FI,DE", "--json").stdout)
    [fallback] = report["fallbacks"]
    assert {**fallback, "contacts": sorted(fallback["contacts"])} == {
        "language": "fi", "written_in": "en", "part": "template", "count": 3,
        "contacts": ["eduskunta@example.org", "presidentinlinna@example.org", "valtioneuvosto@example.org"],
    }  # fmt: skip


def test_templates_check_names_the_copies_that_open_with_a_form_not_checked_against_protocol(env: Env) -> None:
    (env.root / ".env").write_text('OUTREACH_FROM="European Appeal <appeal@example.org>"\n', encoding="utf-8")
    env.run("contacts", "import", "contacts/heads-of-state.csv")
    shown = env.run("templates", "check", "appeal", "--segment", "country:IT")
    assert "2 copies open with a form of address not yet checked against a protocol source" in shown.stderr
    assert "'Signor Presidente della Repubblica,' (it, head_of_state, IT): 1 contact" in shown.stderr
    [report] = json.loads(env.run("templates", "check", "appeal", "--segment", "country:IT", "--json").stdout)
    assert sum(u["count"] for u in report["unchecked_forms"]) == 2
    assert all("not verified" in u["source"] for u in report["unchecked_forms"])
    # A contact's own salutation and address line are the campaigner's: nothing of the forms is used for them.
    for contact in directory.list_contacts(env.sessions, parse_segment("country:IT")):
        env.run("contacts", "edit", contact.email or "", "--set", "salutation=Gentile Presidente,",
                "--set", "address_line=Al Presidente")  # fmt: skip
    [again] = json.loads(env.run("templates", "check", "appeal", "--segment", "country:IT", "--json").stdout)
    assert again["unchecked_forms"] == []
