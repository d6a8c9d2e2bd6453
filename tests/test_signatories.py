"""Signatories: the shipped list of the April 2025 appeal, kept exactly as printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outreach.contacts.signatories import add_signatory, import_signatories, list_signatories
from outreach.errors import InvalidValueError
from outreach.workspace import shipped_files

from .conftest import Env

NOW = datetime(2026, 11, 29, tzinfo=UTC)
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "appeal-2025-04.txt"


def load(env: Env, path: Path) -> tuple[int, int, int]:
    with path.open("rb") as binary:
        summary = import_signatories(env.sessions, binary, path, now=NOW)
    return summary.imported, summary.unchanged, summary.rejected


def test_the_shipped_signatories_import_once_and_keep_their_names_exactly(env: Env) -> None:
    path = env.root / "contacts" / "signatories.csv"
    assert load(env, path) == (35, 0, 0)
    assert load(env, path) == (0, 35, 0)
    found = list_signatories(env.sessions)
    assert [s.group for s in found][:1] == ["signatories"] and found[-1].group == "military_officials"
    counts = {group: sum(1 for s in found if s.group == group) for group in {s.group for s in found}}
    assert counts == {"signatories": 25, "parliamentarians": 4, "military_officials": 6}
    look_alike = [s.name for s in found if "\u0410" in s.name]  # CYRILLIC CAPITAL LETTER A
    assert look_alike == ["Andrej \u0410. Piontkovsky"]
    if SEED.exists():
        seed = SEED.read_text(encoding="utf-8")
        assert all(f"{s.name}, {s.line}" in seed for s in found)


def test_a_bad_row_is_rejected_and_the_rest_imported(env: Env) -> None:
    path = env.write(
        "more.csv", "name,line,group\nAnna Example,Professor,signatories\n,No name,signatories\nB,X,choir\n"
    )
    assert load(env, path) == (1, 0, 2)
    assert (env.root / "more.rejects.csv").read_text(encoding="utf-8").count("\n") == 3


def test_an_unclosed_quote_is_a_reject_and_the_signatories_after_it_are_imported(env: Env) -> None:
    text = 'name,line,group\nAnna Example,Professor,signatories\n"Ben Open,Poet,signatories\nCe,X,signatories\n'
    path = env.write("more.csv", text)
    assert load(env, path) == (2, 0, 1)
    assert "3,a quote opened here is never closed" in (env.root / "more.rejects.csv").read_text(encoding="utf-8")


def test_add_refuses_the_same_signatory_twice(env: Env) -> None:
    added = add_signatory(env.sessions, "Zoë Example", "Member of Parliament, Belgium", "Parliamentarians", "BE", "",
                          now=NOW)  # fmt: skip
    assert (added.group, added.country) == ("parliamentarians", "BE")
    with pytest.raises(InvalidValueError, match="already a signatory"):
        add_signatory(env.sessions, "Zoë Example", "Member of Parliament, Belgium", "parliamentarians", "", "", now=NOW)


def test_cli_list_json(env: Env) -> None:
    env.run("signatories", "import", "contacts/signatories.csv")
    listed = json.loads(env.run("signatories", "list", "--group", "military officials", "--json").stdout)
    assert len(listed) == 6 and listed[0]["line"].endswith("France")


def test_the_shipped_files_are_package_data() -> None:
    assert (shipped_files() / "contacts" / "signatories.csv").is_file()
    assert (shipped_files() / ".env.example").is_file()
