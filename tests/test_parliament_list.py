"""A list shaped like the European Parliament's open-data export of its members: Windows-1252, `mep_`-prefixed
Popolo column names, English country names, `mailto:` addresses, cells holding two or three addresses, members with
no address. Every row is accounted for, and the people come out with their country, honorific, language and every
address they gave; the other addresses are shown, exported, switched to and erased with them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from outreach.contacts.addresses import InvalidAddressError, parse_addresses, split_addresses

from .conftest import Env

HEADER = (
    "mep_identifier,mep_honorific_prefix,mep_given_name,mep_family_name,mep_citizenship,mep_political_group,mep_email"
)
MEMBERS = [
    "1001,Mr,Jürgen,Müller,Germany,EPP,mailto:juergen.mueller@europarl.europa.eu",
    '1002,Ms,Éléonore,Dupré,France,Renew,"mailto:eleonore.dupre@europarl.europa.eu; mailto:e.dupre@senat.example.fr"',
    "1003,Mr,Manfred,Weber,Germany,EPP,"
    '"mailto:manfred.weber@europarl.europa.eu;mailto:weber@ep.example.eu;mailto:buero@weber.example.de"',
    "1004,Ms,Hilde,Vautmans,Belgium,Renew,mailto:hilde.vautmans@europarl.europa.eu",
    "1005,Mr,Andrzej,Halicki,Poland,EPP,mailto:andrzej.halicki@europarl.europa.eu",
    "1006,Ms,Ana,Sánchez,Spain,S&D,",
    '1007,Mr,Søren,Gade,Denmark,Renew,"mailto:soren@@gade; mailto:soren.gade@europarl.europa.eu"',
    '1008,Ms,Maria,Walsh,Ireland,EPP,"<maria.walsh@europarl.europa.eu>\n<maria.walsh@oireachtas.example.ie>"',
]
WEBER = "manfred.weber@europarl.europa.eu"


def import_meps(env: Env) -> dict[str, Any]:
    """Import the list as MEPs; return the summary's JSON."""
    path = env.write("meps.csv", "\r\n".join([HEADER, *MEMBERS]) + "\r\n", encoding="cp1252")
    return json.loads(env.run("contacts", "import", str(path), "--role", "mep", "--json").stdout)


@pytest.fixture
def meps(env: Env) -> Env:
    """A workspace with the list imported as MEPs."""
    import_meps(env)
    return env


def shown(env: Env, address: str) -> dict[str, object]:
    return json.loads(env.run("contacts", "show", address, "--json").stdout)


def test_every_member_is_accounted_for_with_country_honorific_and_language(env: Env) -> None:
    summary, meps = import_meps(env), env
    assert summary["encoding"] == "cp1252" and summary["encoding_guessed"]
    assert summary["rows"] == len(MEMBERS) == summary["imported"] + summary["rejected"]
    assert (summary["imported"], summary["rejected"]) == (7, 1)
    assert [r["line"] for r in summary["rejects"]] == [7], "the member with no address is rejected, by line"
    assert summary["several_addresses"] == 4 and summary["unusable_addresses"] == 1
    mueller = shown(meps, "juergen.mueller@europarl.europa.eu")
    assert (mueller["name"], mueller["honorific"], mueller["gender"]) == ("Jürgen Müller", "Mr", "m")
    assert (mueller["country"], mueller["language"], mueller["role"]) == ("DE", "de", "mep")
    assert mueller["attributes"] == {"mep_identifier": "1001", "mep_political_group": "EPP"}
    languages = {a: shown(meps, a)["language"] for a in (
        "eleonore.dupre@europarl.europa.eu", "andrzej.halicki@europarl.europa.eu", "hilde.vautmans@europarl.europa.eu",
        "maria.walsh@europarl.europa.eu", "soren.gade@europarl.europa.eu")}  # fmt: skip
    assert languages == {
        "eleonore.dupre@europarl.europa.eu": "fr", "andrzej.halicki@europarl.europa.eu": "pl",
        "hilde.vautmans@europarl.europa.eu": None, "maria.walsh@europarl.europa.eu": None,
        "soren.gade@europarl.europa.eu": "da",
    }, "one official language gives it; Belgium's and Ireland's several leave it to the campaigner"  # fmt: skip
    german = json.loads(meps.run("contacts", "list", "--segment", "role:mep country:DE", "--json").stdout)
    assert sorted(c["email"] for c in german["contacts"]) == ["juergen.mueller@europarl.europa.eu", WEBER]


def test_the_other_addresses_of_a_cell_are_kept_as_alternates(meps: Env) -> None:
    weber = shown(meps, WEBER)
    assert weber["email"] == WEBER
    assert weber["alternates"] == ["weber@ep.example.eu", "buero@weber.example.de"]
    assert shown(meps, "maria.walsh@europarl.europa.eu")["alternates"] == ["maria.walsh@oireachtas.example.ie"]
    gade = shown(meps, "soren.gade@europarl.europa.eu")
    assert gade["alternates"] == [], "the part that was not an address is left out, and the valid one is his"
    said = meps.run("contacts", "show", WEBER).stdout
    assert "weber@ep.example.eu, buero@weber.example.de" in said
    # An alternate finds its contact too.
    assert shown(meps, "buero@weber.example.de")["id"] == weber["id"]


def test_the_import_says_what_it_did_with_several_addresses(env: Env) -> None:
    path = env.write("meps.csv", "\r\n".join([HEADER, *MEMBERS]) + "\r\n", encoding="cp1252")
    said = env.run("contacts", "import", str(path), "--role", "mep").stderr
    assert "4 rows held several addresses" in said
    assert "1 parts of such cells were not addresses and were left out" in said
    assert "line 8: 'soren@@gade'" in said


def test_export_writes_the_alternates_and_import_reads_them_back(meps: Env) -> None:
    exported = meps.run("contacts", "export", "--segment", "country:DE").stdout
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert rows[WEBER]["alternates"] == "weber@ep.example.eu; buero@weber.example.de"
    assert rows["juergen.mueller@europarl.europa.eu"]["alternates"] == ""
    again = meps.write("again.csv", exported)
    meps.run("contacts", "forget", "juergen.mueller@europarl.europa.eu", "--yes")
    summary = json.loads(meps.run("contacts", "import", str(again), "--update", "--json").stdout)
    assert (summary["unchanged"], summary["suppressed"], summary["several_addresses"]) == (1, 1, 1)
    assert shown(meps, WEBER)["alternates"] == ["weber@ep.example.eu", "buero@weber.example.de"]


def test_edit_address_switches_to_an_alternate_and_keeps_the_old_one(meps: Env) -> None:
    edited = json.loads(meps.run("contacts", "edit", WEBER, "--address", "Buero@weber.example.de", "--json").stdout)
    assert edited["email"] == "Buero@weber.example.de"
    assert edited["alternates"] == [WEBER, "weber@ep.example.eu"]
    assert edited["letters_to_old_address"] == {}
    assert shown(meps, WEBER)["email"] == "Buero@weber.example.de", "the old address still finds him"
    taken = meps.run("contacts", "edit", WEBER, "--address", "andrzej.halicki@europarl.europa.eu", check=False)
    assert taken.returncode != 0 and "is the address of another contact" in taken.stderr
    bad = meps.run("contacts", "edit", WEBER, "--address", "weber at ep", check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) <= 2


def test_forgetting_by_an_alternate_erases_the_person_and_all_their_addresses(meps: Env) -> None:
    forgotten = json.loads(meps.run("contacts", "forget", "weber@ep.example.eu", "--yes", "--json").stdout)
    assert forgotten["erased"]["contacts"] == 1
    gone = meps.run("contacts", "show", WEBER, check=False)
    assert gone.returncode != 0
    exported = meps.run("contacts", "export").stdout
    assert "weber" not in exported.lower()
    # None of his addresses comes back with a new list.
    back = "email,name\nbuero@weber.example.de,Manfred Weber\nmanfred.weber@europarl.europa.eu,M W\n"
    path = meps.write("back.csv", back)
    summary = json.loads(meps.run("contacts", "import", str(path), "--json").stdout)
    assert (summary["imported"], summary["suppressed"]) == (0, 2)


def test_an_alternate_with_letters_beyond_ascii_finds_its_contact(env: Env) -> None:
    path = env.write("intl.csv", 'email,name\n"büro@europarl.europa.eu; jörg@bücher.example",Jörg Büro\n')
    env.run("contacts", "import", str(path))
    assert shown(env, "JÖRG@xn--bcher-kva.example")["email"] == "büro@europarl.europa.eu"
    forgotten = json.loads(env.run("contacts", "forget", "jörg@bücher.example", "--yes", "--json").stdout)
    assert forgotten["erased"]["contacts"] == 1


def test_cells_of_several_addresses_are_split_as_lists_write_them() -> None:
    assert split_addresses("a@x.eu; mailto:b@y.eu") == ["a@x.eu", "b@y.eu"]
    assert split_addresses("a@x.eu / b@y.eu,c@z.eu") == ["a@x.eu", "b@y.eu", "c@z.eu"]
    assert split_addresses("Jean <a@x.eu>, Marie <b@y.eu>") == ["a@x.eu", "b@y.eu"]
    assert split_addresses("a@x.eu\nb@y.eu") == ["a@x.eu", "b@y.eu"]
    assert split_addresses("Dupont, Jean <a@x.eu>") == ["Dupont, Jean <a@x.eu>"], "one address, decorated"
    assert split_addresses("mailto:a@x.eu; ") == ["mailto:a@x.eu"], "a separator left at the end"
    with pytest.raises(InvalidAddressError, match="more than one address or a blank inside"):
        parse_addresses("a@x.eu; n/a")
    cell = parse_addresses("mailto:A@x.eu; a@X.eu; b@y.eu")
    assert (cell.address.email, [a.email for a in cell.alternates]) == ("A@x.eu", ["b@y.eu"]), "each once"
    with pytest.raises(InvalidAddressError):
        parse_addresses("nobody; at all")
