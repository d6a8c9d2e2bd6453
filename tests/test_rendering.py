"""Copies of the appeal for real contacts: the message a recipient would open, in their language, and the
template errors a campaigner would see."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from outreach import parallel
from outreach.contacts import directory
from outreach.contacts.segments import parse_segment
from outreach.contacts.signatories import import_signatories
from outreach.rendering.copies import CompiledTemplate, Letterhead, Recipient, Signatory, TemplateRenderError
from outreach.rendering.environment import RenderLimits, make_environment
from outreach.rendering.letters import Sender, compose, dated, mailbox_of
from outreach.rendering.mime import Mailbox
from outreach.rendering.previewing import check_template, render_for
from outreach.rendering.salutations import shipped_forms

from .conftest import Env
from .test_import import do_import

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine")


@pytest.fixture
def ws(env: Env) -> Env:
    path = env.root / "contacts" / "signatories.csv"
    with path.open("rb") as binary:
        import_signatories(env.sessions, binary, path, now=NOW)
    people = [
        ("elysee@example.org", {"name": "Emmanuel Macron", "role": "head_of_state", "country": "FR", "gender": "m",
                                "language": "fr"}),
        ("kanzleramt@example.org", {"name": "Jürgen Müller-Lüdenscheidt", "role": "head_of_government",
                                    "country": "DE", "gender": "m", "language": "de"}),
        ("rada@example.org", {"name": "Олена Коваленко", "role": "mp", "country": "UA", "language": "uk"}),
        ("vouli@example.org", {"name": "Κυριάκος Μητσοτάκης", "role": "head_of_government", "country": "GR",
                               "language": "el", "gender": "m"}),
        ("azgayin@example.org", {"name": "Նիկոլ Փաշինյան", "role": "head_of_government", "country": "AM",
                                 "language": "hy"}),
    ]  # fmt: skip
    for address, fields in people:
        directory.add_contact(env.sessions, address, fields, (), {}, now=NOW)
    return env


def eml(ws: Env, address: str, name: str = "appeal") -> EmailMessage:
    copy, recipient = render_for(ws.sessions, ws.root / "templates", name, address, SENDER, now=NOW)
    data = dated(compose(copy, mailbox_of(recipient), SENDER, unsubscribe_token="unused").data, NOW)  # no public URL
    assert all(len(line) <= 78 for line in data.split(b"\r\n")) and b"\n" not in data.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("address", "subject_start", "salutation", "count"),
    [
        ("elysee@example.org", "Lettre ouverte", "Monsieur le Président de la République,", "Signé par 35 personnes"),
        ("kanzleramt@example.org", "Offener Appell", "Sehr geehrter Herr Bundeskanzler,", "Unterzeichnet von 35"),
        ("rada@example.org", "Open appeal", "Dear Member of Parliament,", "Signed by 35 people"),  # uk: English
        ("vouli@example.org", "Open appeal", "Dear Prime Minister,", "Signed by 35 people"),
        ("azgayin@example.org", "Open appeal", "Dear Prime Minister,", "Signed by 35 people"),
    ],
)
def test_each_contact_gets_their_language_and_form_of_address(
    ws: Env, address: str, subject_start: str, salutation: str, count: str
) -> None:
    message = eml(ws, address)
    assert message["Subject"].startswith(subject_start)
    assert message["To"].addresses[0].addr_spec == address
    assert message["From"] == "European Appeal <appeal@example.org>"
    text = text_of(message)
    assert f"\n{salutation}\n" in text
    assert "Andrej \u0410. Piontkovsky" in text
    assert count in text
    assert "500" not in text
    assert "Andrej \u0410. Piontkovsky" in text_of(message, "html")


def test_the_subject_alone_is_the_subject_of_the_whole_copy(ws: Env) -> None:
    root = ws.root / "templates"
    template = CompiledTemplate(make_environment(root), root, "appeal", shipped_forms())
    head = Letterhead("European Appeal", "European Surge for Ukraine", NOW.date(), {})
    for language in ("fr", "de", "uk", None):
        recipient = Recipient("someone@example.org", name="Anna Nowak", role="mp", language=language)
        copy = template.render(recipient, head)
        assert template.subject(recipient, head) == (copy.language, copy.subject)


def test_non_latin_names_reach_the_to_header_intact(ws: Env) -> None:
    for address, name in [("rada@example.org", "Олена Коваленко"), ("vouli@example.org", "Κυριάκος Μητσοτάκης"),
                          ("azgayin@example.org", "Նիկոլ Փաշինյան"),
                          ("kanzleramt@example.org", "Jürgen Müller-Lüdenscheidt")]:  # fmt: skip
        assert eml(ws, address)["To"].addresses[0].display_name == name


def test_an_international_domain_goes_on_the_wire_in_ascii(ws: Env) -> None:
    directory.add_contact(ws.sessions, "info@bücher.example.org", {"name": "Zoë Bücher"}, (), {}, now=NOW)
    message = eml(ws, "info@bücher.example.org")
    assert message["To"].addresses[0].addr_spec == "info@xn--bcher-kva.example.org"
    assert message["To"].addresses[0].display_name == "Zoë Bücher"


def test_the_contacts_own_salutation_wins(ws: Env) -> None:
    directory.edit_contact(ws.sessions, "elysee@example.org", {}, {"salutation": "Cher Emmanuel,"}, (), now=NOW)
    assert "\nCher Emmanuel,\n" in text_of(eml(ws, "elysee@example.org"))


def write_template(ws: Env, name: str, body: str, *, html: str | None = None) -> Path:
    folder = ws.root / "templates" / name / "en"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("Test letter", encoding="utf-8")
    if body:
        (folder / "body.txt").write_text(body, encoding="utf-8")
    if html is not None:
        (folder / "body.html").write_text(html, encoding="utf-8")
    return folder


def test_jinja_syntax_in_a_custom_attribute_is_printed_not_run(ws: Env) -> None:
    directory.edit_contact(ws.sessions, "rada@example.org", {}, {"party": "{{ 7 * 7 }} {% raw %}"}, (), now=NOW)
    write_template(ws, "note", "{{ greeting.salutation }}\nParty: {{ contact.attributes.party }}\n")
    copy, _ = render_for(ws.sessions, ws.root / "templates", "note", "rada@example.org", SENDER, now=NOW)
    assert "Party: {{ 7 * 7 }} {% raw %}" in copy.text


def test_a_template_cannot_reach_python_internals(ws: Env) -> None:
    write_template(ws, "evil", "Hello\n{{ contact.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(TemplateRenderError, match=r"evil/en/body.txt:2: .*unsafe") as caught:
        render_for(ws.sessions, ws.root / "templates", "evil", "rada@example.org", SENDER, now=NOW)
    assert caught.value.contact == "rada@example.org"


@pytest.mark.parametrize(
    "expression",
    ["greeting.__class__.__mro__", "signatory_groups[0].__class__", "signatory_groups[0].people[0]._fields",
     "greeting.salutation.__class__.__base__.__subclasses__()"],
)  # fmt: skip
def test_the_fast_path_for_plain_data_keeps_the_sandbox_closed(ws: Env, expression: str) -> None:
    write_template(ws, "probe", f"{{{{ {expression} }}}}\n")
    with pytest.raises(TemplateRenderError):
        render_for(ws.sessions, ws.root / "templates", "probe", "rada@example.org", SENDER, now=NOW)


def test_an_html_only_template_gets_a_plain_text_part(ws: Env) -> None:
    write_template(ws, "card", "", html="<p>{{ greeting.salutation }}</p><p>Thank you &amp; goodbye.</p>")
    message = eml(ws, "rada@example.org", "card")
    assert text_of(message) == "Dear Member of Parliament,\n\nThank you & goodbye.\n"
    assert "<p>Dear Member of Parliament,</p>" in text_of(message, "html")


def test_check_reports_every_failing_contact_with_file_and_line(ws: Env) -> None:
    write_template(ws, "broken", "{{ greeting.salutation }}\n\n{{ contact.attributes.party }}\n")
    directory.edit_contact(ws.sessions, "elysee@example.org", {}, {"party": "Renaissance"}, (), now=NOW)
    report = check_template(ws.sessions, ws.root / "templates", "broken", parse_segment(""), SENDER, now=NOW)
    assert report.checked == 5
    assert sorted(email for email, _ in report.failures) == [
        "azgayin@example.org", "kanzleramt@example.org", "rada@example.org", "vouli@example.org"]  # fmt: skip
    assert all(e.where and e.where.endswith("broken/en/body.txt:3") for _, e in report.failures)
    problem, contacts = report.grouped()[0]
    assert "'dict object' has no attribute 'party'" in problem and len(contacts) == 4


def test_a_check_on_both_cores_finds_what_one_core_finds(env: Env, two_cores: None) -> None:
    do_import(env, env.root / "contacts" / "heads-of-state.csv")
    write_template(env, "broken", "{{ greeting.salutation }}\n\n{{ contact.attributes.party }}\n")
    directory.edit_contact(env.sessions, "elysee@example.org", {}, {"party": "Renaissance"}, (), now=NOW)
    reports = []
    for second_core in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parallel, "second_core", lambda second_core=second_core: second_core)
            for name in ("broken", "appeal"):
                report = check_template(env.sessions, env.root / "templates", name, parse_segment(""), SENDER, now=NOW)
                reports.append((report.checked, report.languages, [(email, error.format_message())
                                for email, error in report.failures], report.fallbacks, report.unchecked))  # fmt: skip
    assert reports[:2] == reports[2:]
    assert reports[0][0] == 60 and len(reports[0][2]) == 59, "every contact checked, the one with a party passes"


def test_cli_check_and_render(ws: Env) -> None:
    (ws.root / ".env").write_text('OUTREACH_FROM="European Appeal <appeal@example.org>"\n', encoding="utf-8")
    checked = json.loads(ws.run("templates", "check", "--json").stdout)
    assert [(r["template"], r["checked"], r["failures"]) for r in checked] == [
        ("appeal", 5, []), ("appeal-reminder", 5, [])]  # fmt: skip
    out = ws.root / "elysee.eml"
    ws.run("templates", "render", "appeal", "--contact", "elysee@example.org", "--format", "eml", "-o", str(out))
    parsed = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"].endswith("@example.org>")
    text = ws.run("templates", "render", "appeal-reminder", "--contact", "kanzleramt@example.org").stdout
    assert "Offener Appell" in text and "35 Personen" in text
    write_template(ws, "broken", "{{ nothing }}\n")
    failed = ws.run("templates", "check", "broken", check=False)
    assert failed.returncode == 1 and "broken/en/body.txt:1: 'nothing' is undefined: 5 contacts" in failed.stderr


# Templates that would hang or crash the renderer: each ends in one line naming the file, its line and the contact.
HOSTILE = {
    "nested-loops": "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    "repetition": "{{ 'x' * 3000000000 }}",
    "200-mb": "{% for a in range(10000) %}{% for b in range(2000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "huge-range": "{{ range(10**9)|list }}",
}
MORE = {  # loops with no output to count, values that grow in place, and plain template bugs
    "silent-loops": "{% set r = range(100000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}",
    "power": "{{ 2 ** 100000 }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in [1] * 64 %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "wide-filter": "{{ 'x'|center(3000000000) }}",
    "binary-recursion": "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}",
    "division-by-zero": "{{ 1 / 0 }}",
}


@pytest.mark.parametrize("body", [*HOSTILE.values(), *MORE.values()], ids=[*HOSTILE, *MORE])
def test_a_hostile_template_ends_in_seconds_in_one_line_naming_file_line_and_contact(ws: Env, body: str) -> None:
    write_template(ws, "evil", "Dear {{ greeting.salutation }}\n" + body + "\n")
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as caught:
        render_for(ws.sessions, ws.root / "templates", "evil", "rada@example.org", SENDER, now=NOW)
    assert time.monotonic() - started < 10
    said = caught.value.format_message()
    assert "\n" not in said and said.endswith("(for rada@example.org)"), said
    assert f"{ws.root / 'templates' / 'evil' / 'en' / 'body.txt'}:2: " in said


def test_the_cli_renders_a_hostile_template_into_one_line_and_no_traceback(ws: Env) -> None:
    for name, body in HOSTILE.items():
        write_template(ws, name, "Dear {{ greeting.salutation }}\n" + body + "\n")
        started = time.monotonic()
        result = ws.run("templates", "render", name, "--contact", "rada@example.org", check=False)
        assert time.monotonic() - started < 30, name
        assert result.returncode != 0 and result.stdout == "", name
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"templates/{name}/en/body.txt:2: " in result.stderr and "(for rada@example.org)" in result.stderr


def test_the_limits_are_settings_and_the_appeal_renders_within_the_defaults(ws: Env) -> None:
    copy, _ = render_for(ws.sessions, ws.root / "templates", "appeal", "elysee@example.org", SENDER, now=NOW)
    assert "Signé par 35 personnes" in copy.text
    (ws.root / ".env").write_text("OUTREACH_RENDER_BYTES=4096\n", encoding="utf-8")
    result = ws.run("templates", "render", "appeal", "--contact", "elysee@example.org", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "appeal/fr/body.html:" in result.stderr, result.stderr
    assert "the copy passes 4,096 bytes (OUTREACH_RENDER_BYTES)" in result.stderr


def test_the_deadline_is_per_copy_and_looked_at_in_every_loop() -> None:
    ticks = itertools.count()  # a clock that moves one second each time it is read
    limits = RenderLimits(seconds=5, clock=lambda: float(next(ticks)))
    root = Path(__file__).resolve().parents[1] / "templates"
    template = CompiledTemplate(make_environment(root, limits), root, "appeal", shipped_forms())
    person = Recipient("rada@example.org", name="Олена Коваленко", role="mp", language="en")
    head = Letterhead("Jane Doe", "European Surge", NOW.date(), {"signatories": [Signatory("A")] * 30})
    with pytest.raises(TemplateRenderError, match=r"appeal/en/body.txt:\d+: rendering took longer than 5 s"):
        template.render(person, head)
    relaxed = RenderLimits(seconds=1000, clock=lambda: float(next(ticks)))
    template = CompiledTemplate(make_environment(root, relaxed), root, "appeal", shipped_forms())
    for _ in range(3):  # each copy has its own seconds
        assert "Dear Member of Parliament," in template.render(person, head).text
