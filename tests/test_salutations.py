"""Forms of address: a formal, correct salutation for every role, language, country and gender."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from outreach.cli import output
from outreach.cli.main import app
from outreach.rendering.salutations import (
    Addressee,
    Form,
    FormsError,
    Greeting,
    greeting,
    parse_forms,
    review_forms,
    shipped_forms,
)
from outreach.vocabulary import ROLES

LANGUAGES = ("en", "fr", "de", "it", "es", "nl", "pl", "pt")  # the languages the appeal ships in
HEADS = ("head_of_state", "monarch", "head_of_government")

# The heads of state and government the appeal writes to: the EU 27, the EEA, the UK, Switzerland, Ukraine and the
# candidate countries; for each, the roles of its head of state and of its head of government and a plausible
# gender (the tests try an unknown gender too). Cyprus and Türkiye have a president who also heads the government;
# in Switzerland the President of the Confederation stands for both.
COUNTRIES = {
    "AT": {"head_of_state": "m", "head_of_government": "m"},
    "BE": {"monarch": "m", "head_of_government": "m"},
    "BG": {"head_of_state": "m", "head_of_government": "m"},
    "HR": {"head_of_state": "m", "head_of_government": "m"},
    "CY": {"head_of_state": "m"},
    "CZ": {"head_of_state": "m", "head_of_government": "m"},
    "DK": {"monarch": "m", "head_of_government": "f"},
    "EE": {"head_of_state": "m", "head_of_government": "m"},
    "FI": {"head_of_state": "m", "head_of_government": "m"},
    "FR": {"head_of_state": "m", "head_of_government": "m"},
    "DE": {"head_of_state": "m", "head_of_government": "m"},
    "GR": {"head_of_state": "m", "head_of_government": "m"},
    "HU": {"head_of_state": "m", "head_of_government": "m"},
    "IE": {"head_of_state": "f", "head_of_government": "m"},
    "IT": {"head_of_state": "m", "head_of_government": "f"},
    "LV": {"head_of_state": "m", "head_of_government": "f"},
    "LT": {"head_of_state": "m", "head_of_government": "f"},
    "LU": {"monarch": "m", "head_of_government": "m"},
    "MT": {"head_of_state": "f", "head_of_government": "m"},
    "NL": {"monarch": "m", "head_of_government": "m"},
    "PL": {"head_of_state": "m", "head_of_government": "m"},
    "PT": {"head_of_state": "m", "head_of_government": "m"},
    "RO": {"head_of_state": "m", "head_of_government": "m"},
    "SK": {"head_of_state": "m", "head_of_government": "m"},
    "SI": {"head_of_state": "f", "head_of_government": "m"},
    "ES": {"monarch": "m", "head_of_government": "m"},
    "SE": {"monarch": "m", "head_of_government": "m"},
    "IS": {"head_of_state": "f", "head_of_government": "f"},
    "LI": {"monarch": "m", "head_of_government": "f"},
    "NO": {"monarch": "m", "head_of_government": "m"},
    "GB": {"monarch": "m", "head_of_government": "m"},
    "CH": {"head_of_state": "m", "head_of_government": "m"},
    "UA": {"head_of_state": "m", "head_of_government": "f"},
    "AL": {"head_of_state": "m", "head_of_government": "m"},
    "BA": {"head_of_state": "m", "head_of_government": "m"},
    "GE": {"head_of_state": "m", "head_of_government": "m"},
    "MD": {"head_of_state": "f", "head_of_government": "m"},
    "ME": {"head_of_state": "m", "head_of_government": "m"},
    "MK": {"head_of_state": "m", "head_of_government": "m"},
    "RS": {"head_of_state": "m", "head_of_government": "m"},
    "TR": {"head_of_state": "m"},
    "XK": {"head_of_state": "f", "head_of_government": "m"},
}
HEADS_OF = [(country, role, gender) for country, roles in COUNTRIES.items() for role, gender in roles.items()]

CASES = [
    (Addressee(role="head_of_state", language="fr", country="FR", gender="m", name="Emmanuel Macron"),
     Greeting("Monsieur le Président de la République,", "Monsieur le Président de la République")),
    (Addressee(role="head_of_government", language="de", country="DE", gender="f", name="Angela Merkel"),
     Greeting("Sehr geehrte Frau Bundeskanzlerin,", "Frau Bundeskanzlerin Angela Merkel")),
    (Addressee(role="head_of_state", language="de", country="AT", gender="m", name="Alexander Van der Bellen"),
     Greeting("Sehr geehrter Herr Bundespräsident,", "Herrn Bundespräsidenten Alexander Van der Bellen")),
    (Addressee(role="monarch", language="fr", country="BE", gender="m", name="Philippe"),
     Greeting("Sire,", "Sa Majesté le Roi Philippe")),
    (Addressee(role="monarch", language="en", country="LU", gender="m", name="Guillaume"),
     Greeting("Your Royal Highness,", "His Royal Highness Grand Duke Guillaume")),
    (Addressee(role="head_of_government", language="en", country="IE", name="Micheál Martin", position="Taoiseach"),
     Greeting("Dear Taoiseach,", "Micheál Martin, Taoiseach")),
    (Addressee(role="mep", language="fr", gender="f", name="Markéta Gregorová"),
     Greeting("Madame la Députée,", "Madame Markéta Gregorová, députée européenne")),
    (Addressee(role="mp", language="en", name="Jan Novák", last_name="Novák", honorific="Mr"),
     Greeting("Dear Mr Novák,", "Mr Jan Novák")),
    (Addressee(role="prospect", language="de", gender="f", name="Eva Lind", last_name="Lind"),
     Greeting("Sehr geehrte Frau Lind,", "Frau Eva Lind")),
]  # fmt: skip


@pytest.mark.parametrize(("person", "expected"), CASES)
def test_forms_by_role_language_country_and_gender(person: Addressee, expected: Greeting) -> None:
    assert greeting(person) == expected


@pytest.mark.parametrize("role", ["head_of_state", "monarch", "head_of_government"])
def test_the_highest_offices_are_never_dear_mr(role: str) -> None:
    person = Addressee(role=role, language="en", gender="m", name="John Smith", last_name="Smith", honorific="Mr")
    assert "Smith" not in greeting(person).salutation


def test_an_unknown_gender_gets_a_form_that_needs_none() -> None:
    person = Addressee(role="head_of_government", language="de", country="DE", name="Friedrich Merz")
    assert greeting(person).salutation == "Exzellenz,"
    assert greeting(Addressee(role="mp", language="fr", name="Camille Martin")).salutation == "Madame, Monsieur,"


def test_a_language_without_forms_falls_back_to_english() -> None:
    person = Addressee(role="head_of_state", language="fi", country="FI", gender="m", name="Alexander Stubb")
    assert greeting(person) == Greeting("Your Excellency,", "H.E. Alexander Stubb")


def test_the_contacts_own_salutation_and_address_line_win() -> None:
    person = Addressee(role="head_of_state", language="en", salutation="Dear Mr President,", address_line="The Elysée")
    assert greeting(person) == Greeting("Dear Mr President,", "The Elysée")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_role_has_a_salutation_that_needs_nothing_but_the_role(role: str | None, language: str) -> None:
    assert greeting(Addressee(role=role, language=language)).salutation.endswith(":" if language == "es" else ",")


def test_a_broken_forms_file_names_the_form() -> None:
    with pytest.raises(FormsError, match="form 1: unknown placeholder 'surname'"):
        parse_forms({"form": [{"language": "en", "role": "mp", "salutation": "Dear {surname},", "address": ""}]})
    with pytest.raises(FormsError, match=r"form 1: .*unexpected keyword argument 'sex'"):
        parse_forms({"form": [{"language": "en", "role": "mp", "salutation": "", "address": "", "sex": "f"}]})
    assert len(shipped_forms()) > 50


@pytest.mark.parametrize(("country", "role", "gender"), HEADS_OF)
def test_every_head_is_addressed_in_every_shipped_language_from_a_form_with_a_source(
    country: str, role: str, gender: str
) -> None:
    forms = shipped_forms()
    for language in LANGUAGES:
        for known in (gender, None):
            person = Addressee(role=role, language=language, country=country, gender=known, name="Alex Example",
                               first_name="Alex", last_name="Example", position="Head")  # fmt: skip
            hello = greeting(person)
            own = greeting(person, [form for form in forms if form.language == language])
            assert hello.salutation and hello.address_line, (country, role, language, known)
            assert hello == own, f"{country} {role} ({known}) is addressed in English, not {language}: {hello}"
    assert all(form.source.strip() for form in forms)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", HEADS)
def test_no_head_is_ever_addressed_by_courtesy_and_surname(role: str, language: str) -> None:
    """Never "Dear Mr Kowalczyk", "Sehr geehrter Herr Kowalczyk", "Monsieur Kowalczyk", "Egregio Signor ..." ..."""
    for country in [*COUNTRIES, None]:
        for gender, honorific in ((None, None), ("f", "Ms"), ("m", "Mr")):
            person = Addressee(role=role, language=language, country=country, gender=gender, honorific=honorific,
                               name="Jan Kowalczyk", first_name="Jan", last_name="Kowalczyk", position="Head",
                               organization="Office")  # fmt: skip
            salutation = greeting(person).salutation
            assert salutation and "Kowalczyk" not in salutation, (country, gender, salutation)


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Addressee(role="head_of_government", language="fr", country="IT", gender="f", name="Giorgia Meloni"),
         "Madame la Présidente du Conseil,"),
        (Addressee(role="head_of_government", language="es", country="ES", gender="m", name="Pedro Sánchez"),
         "Señor Presidente del Gobierno:"),
        (Addressee(role="head_of_government", language="fr", country="ES", gender="m", name="Pedro Sánchez"),
         "Monsieur le Président du Gouvernement,"),
        (Addressee(role="head_of_state", language="fr", country="AT", gender="m", name="Alexander Van der Bellen"),
         "Monsieur le Président fédéral,"),
        (Addressee(role="head_of_state", language="de", country="FR", gender="m", name="Emmanuel Macron"),
         "Sehr geehrter Herr Staatspräsident,"),
        (Addressee(role="head_of_state", language="de", country="FR", name="Emmanuel Macron"), "Exzellenz,"),
        (Addressee(role="head_of_government", language="fr", country="CH", gender="f", name="Karin Keller-Sutter"),
         "Madame la Présidente de la Confédération,"),
        (Addressee(role="head_of_government", language="en", country="CH", name="Karin Keller-Sutter"),
         "Your Excellency,"),
        (Addressee(role="monarch", language="fr", country="LU", gender="m", name="Guillaume"), "Monseigneur,"),
        (Addressee(role="monarch", language="de", country="LI", gender="m", name="Hans-Adam II"), "Durchlaucht,"),
        (Addressee(role="monarch", language="it", country="SE", gender="m", name="Carl XVI Gustaf"), "Maestà,"),
        (Addressee(role="monarch", language="es", country="ES", gender="m", name="Felipe VI"), "Majestad:"),
        (Addressee(role="monarch", language="nl", country="NL", gender="m", name="Willem-Alexander"), "Majesteit,"),
        (Addressee(role="monarch", language="nl", country="BE", gender="m", name="Philippe"), "Sire,"),
        (Addressee(role="monarch", language="pl", country="DK", gender="m", name="Frederik X"),
         "Wasza Królewska Mość,"),
        (Addressee(role="monarch", language="pt", country="GB", gender="m", name="Charles III"), "Vossa Majestade,"),
        (Addressee(role="head_of_government", language="it", country="IE", gender="m", name="Micheál Martin"),
         "Signor Taoiseach,"),
        (Addressee(role="head_of_government", language="pl", country="PL", gender="m", name="Donald Tusk"),
         "Szanowny Panie Premierze,"),
        (Addressee(role="head_of_state", language="pt", country="PT", gender="m", name="Marcelo Rebelo de Sousa"),
         "Senhor Presidente da República,"),
        (Addressee(role="head_of_state", language="it", country="IT", gender="m", name="Sergio Mattarella"),
         "Signor Presidente della Repubblica,"),
    ],
)  # fmt: skip
def test_an_office_is_addressed_as_the_language_addresses_it_at_home(person: Addressee, expected: str) -> None:
    assert greeting(person).salutation == expected


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", ["mp", "mep"])
def test_members_of_parliament_have_forms_in_every_shipped_language(role: str, language: str) -> None:
    forms = shipped_forms()
    for gender in (None, "f", "m"):
        person = Addressee(role=role, language=language, gender=gender, name="Eva Lind", last_name="Lind")
        assert greeting(person) == greeting(person, [f for f in forms if f.language == language]) != Greeting("", "")


def test_a_form_without_a_source_is_refused_naming_it() -> None:
    good = {"language": "en", "role": "mp", "salutation": "Dear Member,", "address": "{name}", "source": "Debrett's"}
    assert parse_forms({"form": [good]})[0].source == "Debrett's"
    for missing in ({}, {"source": ""}, {"source": "   "}):
        entry = {k: v for k, v in good.items() if k != "source"} | missing
        with pytest.raises(FormsError, match=r"forms: form 2: no source"):
            parse_forms({"form": [good, entry]})


def test_the_review_marks_generic_forms_and_which_one_each_gender_gets() -> None:
    reviewed = review_forms(shipped_forms(), country="DE", role="head_of_government", language="fr")
    shown = {(r.applies_to, r.form.gender, r.form.salutation): r.chosen_for for r in reviewed}
    assert shown == {
        ("generic", None, "Excellence,"): (None,),
        ("generic", "m", "Monsieur le Premier ministre,"): (),
        ("generic", "f", "Madame la Première ministre,"): (),
        ("DE", "m", "Monsieur le Chancelier fédéral,"): ("m",),
        ("DE", "f", "Madame la Chancelière fédérale,"): ("f",),
    }
    assert all(r.chosen_for is None for r in review_forms(shipped_forms(), language="fr"))


def test_templates_salutations_shows_the_forms_for_review(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.out, "width", 400)  # the table's rows on one line each
    runner = CliRunner()
    shown = runner.invoke(app, ["templates", "salutations", "--country", "Germany", "--language", "fr", "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    assert found["total"] == len(found["forms"]) > 10
    chancellor = [f for f in found["forms"] if "Chancelier fédéral" in f["salutation"]]
    assert chancellor == [{
        "language": "fr", "role": "head_of_government", "country": "DE", "applies_to": "DE", "gender": "m",
        "salutation": "Monsieur le Chancelier fédéral,", "address": "Monsieur {name}, Chancelier fédéral",
        "source": chancellor[0]["source"], "checked": False, "chosen_for": ["m"],
    }]  # fmt: skip
    assert "Grundgesetz" in chancellor[0]["source"]
    assert {f["applies_to"] for f in found["forms"]} == {"DE", "generic"}
    table = runner.invoke(app, ["templates", "salutations", "--country", "DE", "--language", "fr"])
    assert table.exit_code == 0, table.output
    assert "25 forms of address for a contact in DE" in table.stdout
    assert re.search(r"│ fr +│ head_of_government +│ DE +│ m +│ Monsieur le Chancelier fédéral, +│", table.stdout)
    everything = json.loads(runner.invoke(app, ["templates", "salutations", "--json"]).stdout)
    assert everything["total"] == len(shipped_forms())
    wrong = runner.invoke(app, ["templates", "salutations", "--role", "emperor"])
    assert wrong.exit_code != 0 and "emperor" in str(wrong.exception)


def test_a_form_is_checked_unless_its_source_says_it_was_not() -> None:
    form = Form(language="fr", role="head_of_state", salutation="Monsieur le Président,", address="{name}")
    assert replace(form, source="Canadian Heritage, Protocol, 'Styles of address'").checked
    assert not replace(form, source="French usage ('Monsieur le Président') [form not verified]").checked
    assert not replace(form, source="English business-letter usage [no protocol source checked]").checked
    assert not replace(form, source="pattern of BMI 'Anschriften und Anreden'; this office not verified)").checked
    unchecked = json.loads(CliRunner().invoke(app, ["templates", "salutations", "--unchecked", "--json"]).stdout)
    assert unchecked["total"] == sum(not f.checked for f in shipped_forms()) > 0
    assert not any(f["checked"] for f in unchecked["forms"])
    assert any(f.checked for f in shipped_forms()), "some forms rest on a source read"
