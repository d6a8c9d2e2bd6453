"""The shipped templates render under the documented contract (templates/README.md) in every language.

The renderer that will use them is not built yet; this renders them the way templates/README.md says it will
(sandboxed, StrictUndefined, autoescaped HTML), so that a template and its contract cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from outreach.rendering.salutations import Addressee, greeting
from outreach.workspace import shipped_files

TEMPLATES = shipped_files() / "templates"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "appeal-2025-04.txt"
PEOPLE = {
    "signatories": [("Harvey J. Alter", "2020, Nobel Prize in Medicine, USA"), ("Andrej \u0410. Piontkovsky", "")],
    "parliamentarians": [("Markéta Gregorova", "Member of the European Parliament, Czech Republic")],
}


def render(name: str, language: str, file: str, person: Addressee) -> str:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=lambda filename: bool(filename and filename.endswith(".html")),
    )
    groups = [
        SimpleNamespace(title=title.capitalize(), people=[SimpleNamespace(name=n, line=line) for n, line in people])
        for title, people in PEOPLE.items()
    ]
    return env.get_template(f"{name}/{language}/{file}").render(
        greeting=greeting(person),
        contact=SimpleNamespace(name=person.name, country=person.country, language=language, attributes={}),
        signatory_groups=groups,
        signatory_count=3,
        sender=SimpleNamespace(name="Jane Doe", organization="European Surge for Ukraine"),
        date="29 November 2026",
        first_subject="Open appeal",
        first_sent_on="20 November 2026",
    )


PERSONS = {
    "en": Addressee(role="head_of_state", language="en", country="PL", name="Karol Nawrocki"),
    "fr": Addressee(role="head_of_state", language="fr", country="FR", gender="m", name="Emmanuel Macron"),
    "de": Addressee(role="head_of_government", language="de", country="DE", gender="f", name="Angela Merkel"),
    "it": Addressee(role="head_of_state", language="it", country="IT", gender="m", name="Sergio Mattarella"),
    "es": Addressee(role="monarch", language="es", country="ES", gender="m", name="Felipe VI"),
    "nl": Addressee(role="head_of_government", language="nl", country="NL", gender="m", name="Dick Schoof"),
    "pl": Addressee(role="head_of_state", language="pl", country="PL", gender="m", name="Karol Nawrocki"),
    "pt": Addressee(role="head_of_government", language="pt", country="PT", gender="m", name="Luís Montenegro"),
}


@pytest.mark.parametrize("language", list(PERSONS))
@pytest.mark.parametrize(("name", "files"), [("appeal", ["body.txt", "body.html"]), ("appeal-reminder", ["body.txt"])])
def test_every_template_renders_with_the_salutation_and_the_signatories(
    name: str, files: list[str], language: str
) -> None:
    person = PERSONS[language]
    for file in files:
        text = render(name, language, file, person)
        salutation = greeting(person).salutation
        assert str(escape(salutation) if file.endswith(".html") else salutation) in text
        assert "500" not in text
        assert "\n\n\n" not in text
        if name == "appeal":
            assert "Andrej \u0410. Piontkovsky" in text and "Harvey J. Alter" in text
    subject = (TEMPLATES / name / language / "subject.txt").read_text(encoding="utf-8")
    assert "\n" not in subject.strip() and "{" not in subject


def test_the_english_appeal_is_the_seed_letter_word_for_word() -> None:
    if not SEED.exists():
        pytest.skip(f"the seed is not beside the repository ({SEED})")
    letter = SEED.read_text(encoding="utf-8").split("\n\nSignatories\n", 1)[0]
    paragraphs = [p for p in letter.split("\n\n")[1:] if p.strip()]  # the first paragraph is the press summary
    text = render("appeal", "en", "body.txt", PERSONS["en"])
    assert all(paragraph.strip() in text for paragraph in paragraphs)


def test_html_escapes_what_the_data_holds() -> None:
    person = Addressee(role="mp", language="en", name="<script>alert(1)</script>")
    html = render("appeal", "en", "body.html", person)
    assert "<script>" not in html and "&lt;script&gt;" in html
