"""The contact list as a campaigner edits it, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from outreach.contacts import directory
from outreach.contacts.segments import parse_segment
from outreach.errors import InvalidValueError, NotFoundError

from .conftest import Env
from .test_import import do_import

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)

LIST = (
    "email,name,role,country,language,tags\n"
    "elysee@example.org,Emmanuel Macron,head_of_state,FR,fr,\n"
    "matignon@example.org,Premier ministre,head_of_government,FR,fr,\n"
    "mp1@example.org,Marie Curie-Skłodowska,mp,PL,pl,wave-1\n"
    "mep1@example.org,Jan Novák,mep,CZ,cs,wave-1|academics\n"
    "mep2@example.org,Eva Lind,mep,SE,sv,wave-2\n"
    "prospect@example.org,Anonymous Prospect,,DE,de,wave-1\n"
)


def emails(env: Env, segment: str) -> list[str | None]:
    return [c.email for c in directory.list_contacts(env.sessions, parse_segment(segment))]


@pytest.fixture
def listed(env: Env) -> Env:
    do_import(env, env.write("list.csv", LIST))
    directory.suppress_contact(env.sessions, "mep2@example.org", "bounced", "550 5.1.1", now=NOW)
    return env


def test_segments_select_by_role_country_tag_status_and_negation(listed: Env) -> None:
    assert emails(listed, "role:mp,mep") == ["mp1@example.org", "mep1@example.org", "mep2@example.org"]
    assert emails(listed, "country:France") == ["elysee@example.org", "matignon@example.org"]
    assert emails(listed, "tag:wave-1 -role:mep") == ["mp1@example.org", "prospect@example.org"]
    assert emails(listed, "role:mep -status:bounced") == ["mep1@example.org"]
    assert emails(listed, "status:bounced") == ["mep2@example.org"]
    assert emails(listed, "language:cs,sv tag:academics") == ["mep1@example.org"]
    assert directory.count_contacts(listed.sessions, parse_segment("")) == 6


def test_a_bad_segment_names_the_clause() -> None:
    with pytest.raises(InvalidValueError, match="segment clause 'colour:red'"):
        parse_segment("colour:red")
    with pytest.raises(InvalidValueError, match="role 'king-of-pop'"):
        parse_segment("role:king-of-pop")
    with pytest.raises(InvalidValueError, match="segment clause 'role:,' is not FIELD:VALUE"):
        parse_segment("role:,")


def test_add_edit_and_show(env: Env) -> None:
    view = directory.add_contact(
        env.sessions, "Kanzler@Example.org",
        {"first_name": "Friedrich", "last_name": "Merz", "honorific": "Herr", "role": "Prime Minister",
         "country": "Deutschland"},
        ("wave-1",), {"party": "CDU"}, now=NOW,
    )  # fmt: skip
    assert (view.email, view.name, view.gender, view.role, view.country) == (
        "Kanzler@example.org", "Friedrich Merz", "m", "head_of_government", "DE")  # fmt: skip
    with pytest.raises(InvalidValueError, match="already a contact"):
        directory.add_contact(env.sessions, "kanzler@example.org", {}, (), {}, now=NOW)
    edited = directory.edit_contact(
        env.sessions, "kanzler@example.org", {"position": "Bundeskanzler", "time_zone": "europe/berlin"},
        {"salutation": "Sehr geehrter Herr Bundeskanzler"}, ("party",), now=NOW,
    )  # fmt: skip
    assert edited.position == "Bundeskanzler" and edited.time_zone == "Europe/Berlin"
    assert edited.attributes == {"salutation": "Sehr geehrter Herr Bundeskanzler"}
    assert directory.show_contact(env.sessions, "KANZLER@example.org").tags == ["wave-1"]
    with pytest.raises(InvalidValueError, match="time zone 'Mars/Olympus'"):
        directory.edit_contact(env.sessions, "kanzler@example.org", {"time_zone": "Mars/Olympus"}, {}, (), now=NOW)
    with pytest.raises(NotFoundError, match=r"no contact nobody@example\.org"):
        directory.show_contact(env.sessions, "nobody@example.org")


def test_tag_by_segment_and_remove(listed: Env) -> None:
    assert directory.tag_contacts(listed.sessions, "press", parse_segment("country:FR"), []).contacts == 2
    assert emails(listed, "tag:press") == ["elysee@example.org", "matignon@example.org"]
    removed = directory.tag_contacts(listed.sessions, "press", parse_segment(""), ["elysee@example.org"], remove=True)
    assert removed.contacts == 1
    assert emails(listed, "tag:press") == ["matignon@example.org"]


def test_a_suppressed_address_cannot_be_added_back(env: Env) -> None:
    directory.suppress_contact(env.sessions, "gone@example.org", "unsubscribed", None, now=NOW)
    with pytest.raises(InvalidValueError, match="suppression list"):
        directory.add_contact(env.sessions, "Gone@example.org", {}, (), {}, now=NOW)


def test_export_reads_back_as_the_same_contacts(listed: Env) -> None:
    exported = io.StringIO()
    assert directory.export_contacts(listed.sessions, parse_segment("-status:bounced"), exported) == 5
    path = listed.write("export.csv", exported.getvalue())
    summary = do_import(listed, path, update=True)
    assert (summary.rows, summary.unchanged, summary.rejected) == (5, 5, 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_listing_shows_part_and_says_so_and_how_to_see_all(listed: Env) -> None:
    two = listed.run("contacts", "list", "--limit", "2")
    assert "elysee@example.org" in two.stdout and "matignon@example.org" in two.stdout
    assert "mp1@example.org" not in two.stdout and "6 contacts (all contacts)" in two.stdout
    assert "2 of 6 shown, in the order they were added: --limit 0 shows all." in two.stderr
    page = json.loads(listed.run("contacts", "list", "--limit", "2", "--segment", "tag:wave-1", "--json").stdout)
    assert ([c["email"] for c in page["contacts"]], page["shown"], page["total"]) == (
        ["mp1@example.org", "mep1@example.org"], 2, 3)  # fmt: skip
    every = listed.run("contacts", "list", "--limit", "0")
    assert "prospect@example.org" in every.stdout and "shown" not in every.stderr, "all shown: nothing to say"
    assert json.loads(listed.run("contacts", "list", "--json").stdout)["total"] == 6
    refused = listed.run("contacts", "list", "--limit", "-1", check=False)
    assert refused.returncode != 0 and "--limit -1 is negative (0 shows all)" in refused.stderr


def test_cli_list_show_and_forget(listed: Env) -> None:
    shown = json.loads(listed.run("contacts", "show", "mep1@example.org", "--json").stdout)
    assert (shown["name"], shown["tags"], shown["language"]) == ("Jan Novák", ["academics", "wave-1"], "cs")
    table = listed.run("contacts", "list", "--segment", "role:mep").stdout
    assert "Jan Novák" in table and "Eva Lind" in table and "Macron" not in table
    refused = listed.run("contacts", "forget", "mep1@example.org", check=False)
    assert refused.returncode == 7 and "pass --yes" in refused.stderr
    assert "Forgetting mep1@example.org erases these rows: contacts 1, contact_tags 2. The address stays" in (
        refused.stderr
    ), "what would be erased is said first, counted by the erasure itself"
    assert "mep1@example.org" in listed.run("contacts", "export").stdout, "nothing was erased"
    listed.run("contacts", "forget", "mep1@example.org", "--yes")
    assert "mep1@example.org" not in listed.run("contacts", "export").stdout
    missing = listed.run("contacts", "show", "mep1@example.org", check=False)
    assert (
        missing.returncode == 5
        and missing.stderr == "error: no contact mep1@example.org (`outreach contacts list` shows who is there)\n"
    )


def test_cli_add_and_edit_pass_every_field_through(env: Env) -> None:
    added = json.loads(
        env.run(
            "contacts", "add", "pm@example.org", "--first-name", "Ana", "--last-name", "Silva", "--honorific", "Ms",
            "--role", "head of government", "--country", "Portugal", "--language", "português",
            "--time-zone", "europe/lisbon", "--tag", "wave-1", "--set", "party=PS", "--json",
        ).stdout
    )  # fmt: skip
    assert (added["name"], added["gender"], added["role"], added["country"], added["language"]) == (
        "Ana Silva", "f", "head_of_government", "PT", "pt")  # fmt: skip
    assert (added["time_zone"], added["tags"], added["attributes"]) == ("Europe/Lisbon", ["wave-1"], {"party": "PS"})
    edited = json.loads(
        env.run("contacts", "edit", "pm@example.org", "--position", "", "--unset", "party", "--json").stdout
    )
    assert edited["position"] is None and edited["attributes"] == {}
