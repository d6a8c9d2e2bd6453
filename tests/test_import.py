"""`contacts import` on SQLite and PostgreSQL: what a campaigner's real files do to the contact list."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from outreach.contacts import directory
from outreach.contacts.erasing import forget_contact
from outreach.contacts.importer import ImportOptions, ImportSummary, import_contacts
from outreach.contacts.segments import parse_segment
from outreach.db.models import Contact, Import, Suppression
from outreach.errors import InputError, RejectedRowsError

from .conftest import Env

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def do_import(env: Env, path: Path, **options: Any) -> ImportSummary:
    return import_contacts(env.sessions, path, ImportOptions(**options), now=NOW)


def contacts(env: Env) -> dict[str, Contact]:
    with env.sessions() as session:
        return {c.email_key or f"#{c.id}": c for c in session.scalars(select(Contact))}


def test_bom_semicolons_and_loose_headers(env: Env) -> None:
    path = env.write(
        "de.csv",
        "\ufeffE-Mail Address;Vorname;Nachname;Anrede;Land;Sprache;Position;Partei\r\n"
        "kanzler@example.org;Friedrich;Merz;Herr;Deutschland;Deutsch;Bundeskanzler;CDU\r\n",
    )
    summary = do_import(env, path, role="head_of_government")
    assert (summary.encoding, summary.delimiter, summary.imported) == ("utf-8-sig", ";", 1)
    merz = contacts(env)["kanzler@example.org"]
    assert (merz.name, merz.first_name, merz.last_name) == ("Friedrich Merz", "Friedrich", "Merz")
    assert (merz.honorific, merz.gender, merz.country, merz.language) == ("Herr", "m", "DE", "de")
    assert merz.role == "head_of_government"
    assert merz.position == "Bundeskanzler"
    assert merz.attributes == {"partei": "CDU"}


def test_comma_file_role_column_wins_over_the_option(env: Env) -> None:
    path = env.write(
        "mixed.csv",
        "email,name,role\na@example.org,Anna A,mp\nb@example.org,Bert B,\n",
    )
    summary = do_import(env, path, role="prospect")
    assert summary.delimiter == ","
    found = contacts(env)
    assert found["a@example.org"].role == "mp"
    assert found["b@example.org"].role == "prospect"


def test_prefixed_columns_and_mailto_addresses(env: Env) -> None:
    path = env.write(
        "meps.csv",
        "mep_email,mep_name,mep_country\n"
        "mailto:Jane.Doe@EP.Example.org,Jane Doe,FR\n"
        "<john@ep.example.org>,John Roe,Ireland\n",
    )
    summary = do_import(env, path, role="mep")
    assert summary.imported == 2
    found = contacts(env)
    assert found["jane.doe@ep.example.org"].email == "Jane.Doe@ep.example.org"
    assert found["john@ep.example.org"].country == "IE"


def test_invalid_rows_are_rejected_with_line_and_reason_and_written_beside_the_file(env: Env) -> None:
    path = env.write(
        "list.csv",
        "email,name,country,role\n"
        "good@example.org,Good,FR,mp\n"
        "not-an-address,Bad Address,FR,mp\n"
        "\n"
        "x@nodot,No Dot,FR,mp\n"
        "c@example.org,Atlantis,Atlantis,mp\n"
        "d@example.org,Wrong Role,FR,emperor\n"
        '"multi\nline@example.org",Split,FR,mp\n'
        "e@example.org,Too,FR,mp,extra\n",
    )
    summary = do_import(env, path)
    assert (summary.imported, summary.rejected, summary.blank) == (1, 6, 1)
    assert summary.rejects_path == env.root / "list.rejects.csv"
    with summary.rejects_path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", "email", "name", "country", "role"]
    lines = [int(row[0]) for row in rows[1:]]
    assert lines == [3, 5, 6, 7, 8, 10]
    reasons = {int(row[0]): row[1] for row in rows[1:]}
    assert "not-an-address" in reasons[3]
    assert "x@nodot" in reasons[5]
    assert "country 'Atlantis'" in reasons[6]
    assert "role 'emperor'" in reasons[7]
    assert "5 fields" in reasons[10]
    assert rows[1][2:] == ["not-an-address", "Bad Address", "FR", "mp"]


def test_strict_imports_nothing_when_a_row_is_rejected(env: Env) -> None:
    path = env.write("list.csv", "email\ngood@example.org\nbad@\n")
    with pytest.raises(RejectedRowsError, match="1 rows rejected"):
        do_import(env, path, strict=True)
    assert contacts(env) == {}
    assert (env.root / "list.rejects.csv").exists()


@pytest.mark.parametrize("worker", [False, True], ids=["here", "in-a-worker"])
def test_an_unclosed_quote_is_one_reject_and_the_rows_after_it_are_imported(
    env: Env, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    if worker:
        monkeypatch.setattr("outreach.contacts.reading.WORKER_THRESHOLD", 0)
    path = env.write(
        "list.csv",
        'email,name,country\na@example.org,A,FR\nb@example.org,"B,DE\nc@example.org,C,FR\nd@example.org,"D, Sr",DE\n',
    )
    summary = do_import(env, path)
    assert (summary.rows, summary.imported, summary.rejected) == (4, 3, 1)
    assert sorted(contacts(env)) == ["a@example.org", "c@example.org", "d@example.org"]
    assert summary.rejects_path is not None
    with summary.rejects_path.open(encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1:] == [["3", "a quote opened here is never closed", "b@example.org", "B,DE"]]


def test_strict_refuses_a_file_with_an_unclosed_quote_in_one_line_naming_file_and_line(env: Env) -> None:
    path = env.write("list.csv", 'email,name\na@example.org,A\nb@example.org,"B\nc@example.org,C\n')
    result = env.run("contacts", "import", str(path), "--strict", check=False)
    assert result.returncode == 4 and result.stderr.count("\n") == 1, result.stderr
    assert f"{path}: 1 rows rejected; nothing was imported (--strict)" in result.stderr
    assert "line 3: a quote opened here is never closed" in result.stderr
    assert contacts(env) == {}


def test_duplicates_within_a_file_merge_into_one_contact(env: Env) -> None:
    path = env.write(
        "dups.csv",
        "email,name,position,tags\n"
        "PM@Example.org,Ana Silva,,wave-1\n"
        "pm@example.org,,Prime Minister,academics\n"
        "other@example.org,Other,,\n",
    )
    summary = do_import(env, path)
    assert (summary.imported, summary.merged) == (2, 1)
    pm = directory.show_contact(env.sessions, "pm@example.org")
    assert (pm.name, pm.position) == ("Ana Silva", "Prime Minister")
    assert pm.tags == ["academics", "wave-1"]


def test_duplicates_across_batches_merge_too(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("outreach.contacts.reading.BATCH", 2)
    path = env.write("dups.csv", "email,name\na@example.org,A\nb@example.org,B\nc@example.org,C\nA@example.org,A2\n")
    summary = do_import(env, path)
    assert (summary.imported, summary.merged, summary.unchanged) == (3, 1, 0)
    assert contacts(env)["a@example.org"].name == "A2"


def test_existing_contacts_are_kept_unless_update_is_asked(env: Env) -> None:
    first = env.write("v1.csv", "email,name,country\nmp@example.org,Old Name,FR\nkeep@example.org,Keep,FR\n")
    do_import(env, first)
    second = env.write(
        "v2.csv", "email,name,country,tags\nmp@example.org,New Name,BE,wave-2\nkeep@example.org,Keep,FR,\n"
    )
    summary = do_import(env, second)
    assert (summary.imported, summary.updated, summary.unchanged) == (0, 0, 2)
    assert contacts(env)["mp@example.org"].name == "Old Name"
    summary = do_import(env, second, update=True)
    assert (summary.imported, summary.updated, summary.unchanged) == (0, 1, 1)
    mp = directory.show_contact(env.sessions, "mp@example.org")
    assert (mp.name, mp.country, mp.tags) == ("New Name", "BE", ["wave-2"])


def test_non_latin_names_are_kept_exactly(env: Env) -> None:
    names = {
        "uk@example.org": "Олена Зеленська",
        "gr@example.org": "Κυριάκος Μητσοτάκης",
        "ge@example.org": "სალომე ზურაბიშვილი",
        "am@example.org": "Նիկոլ Փաշինյան",
        "look@example.org": "Andrej \u0410. Piontkovsky",  # a Cyrillic A among Latin letters
    }
    body = "email,name\n" + "".join(f"{email},{name}\n" for email, name in names.items())
    do_import(env, env.write("scripts.csv", body))
    found = contacts(env)
    assert {key: found[key].name for key in names} == names


def test_country_names_and_codes(env: Env) -> None:
    given = {"a": "France", "b": "DEU", "c": "EL", "d": "Ελλάδα", "e": "UK", "f": "the Netherlands",
             "g": "Česko", "h": "pl", "i": "Sverige"}  # fmt: skip
    body = "email,country\n" + "".join(f"{k}@example.org,{v}\n" for k, v in given.items())
    do_import(env, env.write("countries.csv", body))
    found = contacts(env)
    assert [found[f"{k}@example.org"].country for k in given] == [
        "FR",
        "DE",
        "GR",
        "GR",
        "GB",
        "NL",
        "CZ",
        "PL",
        "SE",
    ]


def test_control_characters_never_reach_the_database(env: Env) -> None:
    path = env.write(
        "hostile.csv",
        "email,name,organization,motto\n"
        'pm@example.org,"Jane\r\nBcc: victim@example.net","Office\x00\x1b[31m","a\u2028b"\n',
    )
    do_import(env, path)
    jane = contacts(env)["pm@example.org"]
    assert jane.name == "Jane Bcc: victim@example.net"
    assert jane.organization == "Office [31m"
    assert jane.attributes == {"motto": "a b"}


def test_dry_run_writes_nothing(env: Env) -> None:
    path = env.write("list.csv", "email,name\na@example.org,A\nbad,B\na@example.org,A again\n")
    summary = do_import(env, path, dry_run=True)
    assert (summary.imported, summary.merged, summary.rejected, summary.dry_run) == (1, 1, 1, True)
    assert contacts(env) == {}
    assert not (env.root / "list.rejects.csv").exists()
    with env.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Import)) == 0


def test_a_forgotten_address_is_not_brought_back_by_an_import(env: Env) -> None:
    path = env.write(
        "list.csv", "email,name,role\nformer@example.org,Former Minister,minister\nstay@example.org,Stay,mp\n"
    )
    do_import(env, path)
    forget_contact(env.sessions, "Former@Example.org", now=NOW)
    with env.sessions() as session:
        forgotten = session.scalars(select(Contact).where(Contact.forgotten_at.is_not(None))).one()
        assert (forgotten.email, forgotten.name, forgotten.status, forgotten.role) == (
            None, None, "do_not_contact", "minister")  # fmt: skip
        assert session.scalar(select(Suppression.reason)) == "forgotten"
    summary = do_import(env, path, update=True)
    assert (summary.imported, summary.suppressed, summary.unchanged) == (0, 1, 1)
    assert "former@example.org" not in contacts(env)
    assert [c.email for c in directory.list_contacts(env.sessions, parse_segment(""))] == ["stay@example.org"]


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("cp1252", "Hélène Lefèvre"), ("cp1250", "Łucja Żak-Dvořáková"), ("cp1251", "Олена Зеленська")],
)
def test_spreadsheet_code_pages_are_detected_not_turned_into_mojibake(env: Env, encoding: str, name: str) -> None:
    path = env.write("excel.csv", f"email;name;country\nelysee@example.org;{name};France\n", encoding=encoding)
    summary = do_import(env, path)
    assert (summary.encoding, summary.encoding_guessed) == (encoding, True)
    assert contacts(env)["elysee@example.org"].name == name


def test_an_explicit_encoding_is_used_as_given(env: Env) -> None:
    path = env.write("excel.csv", "email;name\nelysee@example.org;Gaëlle Mère\n", encoding="cp1252")
    summary = do_import(env, path, encoding="cp1252")
    assert (summary.encoding, summary.encoding_guessed) == ("cp1252", False)
    assert contacts(env)["elysee@example.org"].name == "Gaëlle Mère"


def test_utf16_with_bom_as_spreadsheets_save_it(env: Env) -> None:
    path = env.write("sheet.csv", "\ufeffemail\tname\nms@example.org\tŁucja Żak\n", encoding="utf-16-le")
    summary = do_import(env, path)
    assert (summary.encoding, summary.delimiter, summary.imported) == ("utf-16", "\t", 1)
    assert contacts(env)["ms@example.org"].name == "Łucja Żak"


def test_bytes_that_are_not_the_declared_encoding_stop_the_import_naming_the_line(env: Env) -> None:
    path = env.write("bad.csv", b"email,name\na@example.org,A\n" + b"b@example.org,B\xff\xfe\n")
    with pytest.raises(InputError, match=r"bad.csv:3: not valid utf-8"):
        do_import(env, path, encoding="utf-8")
    assert contacts(env) == {}


def test_a_file_without_an_email_column_is_refused(env: Env) -> None:
    path = env.write("names.csv", "name,country\nA,FR\n")
    with pytest.raises(InputError, match="no email column among: name, country"):
        do_import(env, path)


def test_cli_import_prints_the_summary_and_json(env: Env) -> None:
    path = env.write("list.csv", "email,name\na@example.org,A\nbroken,B\n")
    shown = env.run("contacts", "import", str(path), "--tag", "wave-1")
    assert "2 rows: 1 imported, 0 updated, 0 unchanged, 0 merged duplicates, 0 suppressed, 1 rejected" in shown.stderr
    assert "line 3:" in shown.stderr
    assert shown.stdout == ""
    again = env.run("contacts", "import", str(path), "--json")
    report = json.loads(again.stdout)
    assert (report["rows"], report["unchanged"], report["rejected"]) == (2, 1, 1)
    listed = json.loads(env.run("contacts", "list", "--segment", "tag:wave-1", "--json").stdout)
    assert [c["email"] for c in listed["contacts"]] == ["a@example.org"] and listed["total"] == 1


def test_cli_errors_are_one_line(env: Env) -> None:
    path = env.write("list.csv", "email\nbad\n")
    result = env.run("contacts", "import", str(path), "--strict", check=False)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and "list.csv: 1 rows rejected" in result.stderr


def test_a_large_file_is_read_in_a_worker_process_with_the_same_result(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "email;name;country;tags\n" + "".join(
        f"p{i}@example.org;Πέτρος {i};{'GR' if i % 2 else 'Ελλάδα'};wave-{i % 3}\n" for i in range(5000)
    )
    body += "broken;Nobody;GR;\nP7@Example.org;Πέτρος Seven;GR;late\n"
    path = env.write("large.csv", body)
    monkeypatch.setattr("outreach.contacts.reading.WORKER_THRESHOLD", 0)
    seen: list[int] = []
    summary = import_contacts(env.sessions, path, ImportOptions(), now=NOW, progress=seen.append)
    assert (summary.imported, summary.merged, summary.rejected, summary.delimiter) == (5000, 1, 1, ";")
    assert summary.first_rejects[0].line == 5002
    assert seen[-1] == path.stat().st_size and seen == sorted(seen)
    p7 = directory.show_contact(env.sessions, "p7@example.org")
    assert (p7.name, p7.country, p7.tags) == ("Πέτρος Seven", "GR", ["late", "wave-1"])


def test_an_error_in_the_worker_process_names_the_line(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    path = env.write("bad.csv", b"email,name\n" + b"a@example.org,A\n" * 3000 + b"b@example.org,B\xff\n")
    monkeypatch.setattr("outreach.contacts.reading.WORKER_THRESHOLD", 0)
    with pytest.raises(InputError, match=r"bad.csv:3002: not valid utf-8"):
        do_import(env, path, encoding="utf-8")
    assert contacts(env) == {}
