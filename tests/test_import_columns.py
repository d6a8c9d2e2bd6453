"""`contacts import` of open-data lists: Popolo and prefixed column names, French and German headers, columns whose
values do not fit the field their name matched, and the language a contact's country implies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from outreach.contacts import reading
from outreach.contacts.rows import Demoted
from outreach.contacts.values import has_several_languages, language_of_country
from outreach.db.models import Contact

from .conftest import Env
from .test_import import contacts, do_import

# The columns of the European Parliament's open-data list of MEPs, as its CSV export names them.
MEPS = (
    "mep_identifier,mep_honorific_prefix,mep_given_name,mep_family_name,mep_sort_name,mep_citizenship,mep_email\n"
    '1,Mr,Jean,Dupont,"DUPONT, Jean",France,jean.dupont@ep.example.org\n'
    '2,Ms,Anna,Schmidt,"SCHMIDT, Anna",Germany,anna.schmidt@ep.example.org\n'
    '3,Ms,Ewa,Nowak,"NOWAK, Ewa",Poland,ewa.nowak@ep.example.org\n'
    '4,Mr,Jan,Peeters,"PEETERS, Jan",Belgium,jan.peeters@ep.example.org\n'
)


def test_the_parliament_s_popolo_columns_fill_the_fields(env: Env) -> None:
    summary = do_import(env, env.write("meps.csv", MEPS), role="mep")
    assert (summary.imported, summary.rejected) == (4, 0)
    assert dict(summary.columns)["mep_sort_name"] == "attr:mep_sort_name"
    assert summary.attributes == ["mep_identifier", "mep_sort_name"]
    anna = contacts(env)["anna.schmidt@ep.example.org"]
    assert (anna.honorific, anna.gender, anna.first_name, anna.last_name) == ("Ms", "f", "Anna", "Schmidt")
    # The name is made from the given and family names, not taken from the sort name ("SCHMIDT, Anna").
    assert (anna.name, anna.country, anna.role) == ("Anna Schmidt", "DE", "mep")
    assert anna.attributes == {"mep_identifier": "2", "mep_sort_name": "SCHMIDT, Anna"}


def test_a_known_prefix_is_dropped_even_from_one_column(env: Env) -> None:
    path = env.write(
        "people.csv",
        "Email,Person Given Name,Member Citizenship,Contact Organisation,Notes\n"
        "a@example.org,Ada,Ireland,Dáil Éireann,met in May\n",
    )
    summary = do_import(env, path)
    targets = dict(summary.columns)
    assert targets["Person Given Name"] == "first_name"
    assert targets["Member Citizenship"] == "country"
    assert targets["Contact Organisation"] == "organization"
    ada = contacts(env)["a@example.org"]
    assert (ada.first_name, ada.country, ada.organization) == ("Ada", "IE", "Dáil Éireann")


def test_french_headers(env: Env) -> None:
    path = env.write(
        "deputes.csv",
        "Civilité;Prénom;Nom de famille;Adresse électronique;Nationalité;Fonction;Organisme\n"
        "Madame;Claire;Martin;claire.martin@example.fr;France;Députée;Assemblée nationale\n",
    )
    summary = do_import(env, path)
    assert summary.attributes == []
    claire = contacts(env)["claire.martin@example.fr"]
    assert (claire.honorific, claire.gender, claire.first_name, claire.last_name) == ("Madame", "f", "Claire", "Martin")
    assert (claire.country, claire.language) == ("FR", "fr")
    assert (claire.position, claire.organization) == ("Députée", "Assemblée nationale")


def test_german_headers(env: Env) -> None:
    path = env.write(
        "abgeordnete.csv",
        "Anrede;Vorname;Familienname;E-Mail-Adresse;Staatsangehörigkeit;Sprache;Funktion;Organisation\n"
        "Herr;Karl;Huber;karl.huber@example.at;Österreich;Deutsch;Abgeordneter;Nationalrat\n",
        encoding="cp1252",
    )
    summary = do_import(env, path)
    assert summary.attributes == []
    karl = contacts(env)["karl.huber@example.at"]
    assert (karl.honorific, karl.first_name, karl.last_name) == ("Herr", "Karl", "Huber")
    assert (karl.country, karl.language) == ("AT", "de")
    assert (karl.position, karl.organization) == ("Abgeordneter", "Nationalrat")


def test_mitgliedstaat_and_etat_membre_name_the_country(env: Env) -> None:
    de = do_import(env, env.write("de.csv", "email,Mitgliedstaat\na@example.org,Italien\n"))
    fr = do_import(env, env.write("fr.csv", "email,État membre\nb@example.org,Espagne\n"))
    assert (dict(de.columns)["Mitgliedstaat"], dict(fr.columns)["État membre"]) == ("country", "country")
    found = contacts(env)
    assert (found["a@example.org"].country, found["b@example.org"].country) == ("IT", "ES")


def test_an_office_of_room_numbers_is_kept_as_an_attribute_and_named(env: Env) -> None:
    path = env.write(
        "meps.csv",
        "email,name,Office\n"
        "a@ep.example.org,Ann A,ASP 08G205\n"
        "b@ep.example.org,Bob B,WIC 100\n"
        "c@ep.example.org,Cy C,12.3\n",
    )
    summary = do_import(env, path)
    assert (summary.imported, summary.rejected) == (3, 0)
    assert summary.demoted == [Demoted("Office", "position", "ASP 08G205")]
    assert dict(summary.columns)["Office"] == "attr:office"
    ann = contacts(env)["a@ep.example.org"]
    assert (ann.position, ann.attributes) == (None, {"office": "ASP 08G205"})


def test_a_column_named_for_a_field_by_the_user_is_not_second_guessed(env: Env) -> None:
    path = env.write("rooms.csv", "email,Office\na@example.org,ASP 08G205\nb@example.org,WIC 100\n")
    summary = do_import(env, path, mapping={"Office": "position"})
    assert summary.demoted == []
    assert contacts(env)["a@example.org"].position == "ASP 08G205"


def test_a_column_named_exactly_for_a_text_field_is_taken_at_its_word(env: Env) -> None:
    # As `contacts export` writes them: whatever it exported comes back as it was.
    path = env.write("export.csv", "email,position\na@example.org,ASP 08G205\nb@example.org,WIC 100\n")
    summary = do_import(env, path)
    assert summary.demoted == []
    assert contacts(env)["b@example.org"].position == "WIC 100"


def test_a_country_of_numbers_rejects_no_row_and_lets_another_column_be_the_country(env: Env) -> None:
    path = env.write(
        "list.csv",
        "email,Country,Member State\na@example.org,12,Germany\nb@example.org,7,France\nc@example.org,31,Poland\n",
    )
    summary = do_import(env, path)
    assert (summary.imported, summary.rejected) == (3, 0)
    assert summary.demoted == [Demoted("Country", "country", "12")]
    assert dict(summary.columns) == {"email": "email", "Country": "attr:country", "Member State": "country"}
    a = contacts(env)["a@example.org"]
    assert (a.country, a.language, a.attributes) == ("DE", "de", {"country": "12"})


def test_a_few_wrong_countries_are_still_rejects(env: Env) -> None:
    path = env.write(
        "list.csv", "email,country\na@example.org,FR\nb@example.org,Atlantis\nc@example.org,DE\nd@example.org,IT\n"
    )
    summary = do_import(env, path)
    assert (summary.imported, summary.rejected, summary.demoted) == (3, 1, [])


def test_language_comes_from_a_country_with_one_official_language(env: Env) -> None:
    path = env.write(
        "list.csv",
        "email,country,language\n"
        "de@example.org,Germany,\n"
        "fr@example.org,FR,\n"
        "pl@example.org,Polska,\n"
        "be@example.org,Belgium,\n"
        "ch@example.org,Switzerland,\n"
        "be.fr@example.org,BE,French\n"
        "de.en@example.org,DE,English\n",
    )
    summary = do_import(env, path)
    found = {key: contact.language for key, contact in contacts(env).items()}
    assert found == {
        "de@example.org": "de",
        "fr@example.org": "fr",
        "pl@example.org": "pl",
        "be@example.org": None,
        "ch@example.org": None,
        "be.fr@example.org": "fr",
        "de.en@example.org": "en",
    }
    assert (summary.no_language, summary.no_language_countries) == (2, ["BE", "CH"])


def test_the_language_option_fills_empty_languages_before_the_country_does(env: Env) -> None:
    path = env.write(
        "list.csv", "email,country,language\nde@example.org,DE,\nbe@example.org,BE,\nx@example.org,BE,nl\n"
    )
    summary = do_import(env, path, language="en")
    found = {key: contact.language for key, contact in contacts(env).items()}
    assert found == {"de@example.org": "en", "be@example.org": "en", "x@example.org": "nl"}
    assert summary.no_language == 0


@pytest.mark.parametrize(
    ("country", "expected"),
    [("DE", "de"), ("AT", "de"), ("FR", "fr"), ("IT", "it"), ("ES", "es"), ("PL", "pl"), ("PT", "pt"),
     ("NL", "nl"), ("GB", "en"), ("US", "en"), ("GR", "el"), ("UA", "uk"), ("SE", "sv"), ("DK", "da")],
)  # fmt: skip
def test_the_language_of_a_country(country: str, expected: str) -> None:
    assert (language_of_country(country), has_several_languages(country)) == (expected, False)


@pytest.mark.parametrize("country", ["BE", "CH", "LU", "FI", "IE", "MT", "CY"])
def test_countries_of_several_official_languages_imply_none(country: str) -> None:
    assert (language_of_country(country), has_several_languages(country)) == (None, True)


def test_the_worker_process_carries_the_columns_it_kept_as_attributes(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "WORKER_THRESHOLD", 0)  # read in the second process, as large files are
    path = env.write("rooms.csv", "email,country,Office\na@example.org,DE,ASP 08G205\nb@example.org,BE,WIC 100\n")
    summary = do_import(env, path)
    assert summary.demoted == [Demoted("Office", "position", "ASP 08G205")]
    assert (summary.imported, summary.no_language) == (2, 1)
    assert contacts(env)["a@example.org"].language == "de"


def test_cli_names_attributes_suggests_maps_and_reports_languages(env: Env) -> None:
    path = env.write(
        "meps.csv",
        "E-mail,Given name,Family name,Nationality of the member,Office\n"
        "a@ep.example.org,Ann,Aa,Belgium,ASP 08G205\n"
        "b@ep.example.org,Bob,Bb,Belgium,WIC 100\n",
    )
    shown = env.run("contacts", "import", str(path), "--dry-run").stderr
    assert "Kept as custom attributes: Nationality of the member, Office" in shown
    assert "'Nationality of the member' looks like country: --map 'Nationality of the member=country'" in shown
    assert "'Office' holds values that do not look like position (e.g. 'ASP 08G205'): kept as a custom attribute" in (
        shown
    )
    assert "no language" not in shown
    # The suggestion, taken: the countries are read, and Belgium has three official languages.
    mapped = env.run("contacts", "import", str(path), "--map", "Nationality of the member=country").stderr
    assert "2 contacts have no language: BE has several official languages (CLDR)" in mapped
    assert "looks like" not in mapped


def test_cli_json_carries_attributes_suggestions_demoted_columns_and_languages(env: Env) -> None:
    path = env.write(
        "list.csv",
        "email,Member State,Office,Sprachen der Person\na@example.org,Belgium,ASP 08G205,\nb@example.org,CH,WIC 100,\n",
    )
    report = json.loads(env.run("contacts", "import", str(path), "--json").stdout)
    assert report["attributes"] == ["Office", "Sprachen der Person"]
    assert report["suggestions"] == []  # `sprachen` is not `sprache`: whole words only
    assert report["demoted"] == [{"column": "Office", "field": "position", "example": "ASP 08G205"}]
    assert (report["no_language"], report["no_language_countries"]) == (2, ["BE", "CH"])
    assert report["imported"] == 2
    path = env.write("other.csv", "email,Preferred language of the member\nc@example.org,fr\n")
    report = json.loads(env.run("contacts", "import", str(path), "--json", "--language", "German").stdout)
    assert report["suggestions"] == [
        {
            "column": "Preferred language of the member",
            "field": "language",
            "map": "Preferred language of the member=language",
        }
    ]
    with env.sessions() as session:
        assert session.scalar(select(Contact.language).where(Contact.email_key == "c@example.org")) == "de"
