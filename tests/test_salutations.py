"""Forms of address: a formal, correct salutation for every role, language, country and gender."""

from __future__ import annotations

import pytest

from outreach.rendering.salutations import Addressee, FormsError, Greeting, greeting, parse_forms, shipped_forms
from outreach.vocabulary import ROLES

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
    person = Addressee(role="head_of_state", language="pl", country="PL", gender="m", name="Karol Nawrocki")
    assert greeting(person) == Greeting("Your Excellency,", "H.E. Karol Nawrocki")


def test_the_contacts_own_salutation_and_address_line_win() -> None:
    person = Addressee(role="head_of_state", language="en", salutation="Dear Mr President,", address_line="The Elysée")
    assert greeting(person) == Greeting("Dear Mr President,", "The Elysée")


@pytest.mark.parametrize("language", ["en", "fr", "de"])
@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_role_has_a_salutation_that_needs_nothing_but_the_role(role: str | None, language: str) -> None:
    assert greeting(Addressee(role=role, language=language)).salutation.endswith(",")


def test_a_broken_forms_file_names_the_form() -> None:
    with pytest.raises(FormsError, match="form 1: unknown placeholder 'surname'"):
        parse_forms({"form": [{"language": "en", "role": "mp", "salutation": "Dear {surname},", "address": ""}]})
    with pytest.raises(FormsError, match=r"form 1: .*unexpected keyword argument 'sex'"):
        parse_forms({"form": [{"language": "en", "role": "mp", "salutation": "", "address": "", "sex": "f"}]})
    assert len(shipped_forms()) > 50
