"""Campaigns and queueing on SQLite and PostgreSQL: every copy rendered once, queued once, or none at all."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from outreach import parallel
from outreach.campaigns import queueing
from outreach.campaigns.catalog import create_campaign, set_status, show_campaign
from outreach.campaigns.queueing import queue_step
from outreach.campaigns.refreshing import refresh_campaign
from outreach.campaigns.spool import LetterSpool
from outreach.contacts import directory
from outreach.db.models import Contact, OutboxBody, OutboxMessage
from outreach.errors import InvalidValueError
from outreach.rendering.copies import TemplateRenderError
from outreach.rendering.letters import Letter, Sender, letter_for
from outreach.rendering.mime import Mailbox

from .conftest import Env
from .test_import import do_import

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine")


@pytest.fixture
def ws(env: Env) -> Env:
    do_import(env, env.root / "contacts" / "heads-of-state.csv")
    directory.suppress_contact(env.sessions, "number10@example.org", "bounced", None, now=NOW)
    create_campaign(env.sessions, "heads", "appeal", "role:head_of_state,head_of_government,monarch",
                    sender=None, reply_to=None, now=NOW)  # fmt: skip
    return env


def outbox(env: Env) -> list[OutboxMessage]:
    with env.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_step_is_queued_once_per_contact_and_suppressed_contacts_are_skipped(ws: Env) -> None:
    first = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert (first.queued, first.already_queued, first.skipped) == (59, 0, {"bounced": 1})
    assert first.languages == {"de": 4, "en": 39, "es": 2, "fr": 4, "it": 2, "nl": 4, "pl": 2, "pt": 2}
    again = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert (again.queued, again.already_queued) == (0, 59)
    messages = outbox(ws)
    assert len(messages) == 59 and len({m.message_id for m in messages}) == 59
    assert all(m.state == "queued" and m.message_id.endswith("@example.org>") for m in messages)
    elysee = next(m for m in messages if m.recipient == "elysee@example.org")
    assert elysee.subject.startswith("Lettre ouverte")
    with ws.sessions() as session:
        letter = email.message_from_bytes(session.get_one(OutboxBody, elysee.message_id).letter or b"",
                                          policy=email.policy.default)  # fmt: skip
    body = letter.get_body(preferencelist=("plain",))
    assert body is not None and "Monsieur le Président de la République," in body.get_content()
    assert letter["Message-ID"] == elysee.message_id and letter["Date"] is None, "sending adds the Date"
    assert show_campaign(ws.sessions, "heads").status == "active"


def test_letters_made_on_both_cores_are_the_letters_one_core_makes(ws: Env, two_cores: None) -> None:
    forked = []
    start = parallel._Worker.__init__

    def counted(self: Any, make: Any) -> None:
        forked.append(1)
        start(self, make)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel._Worker, "__init__", counted)
        report = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert forked, "the worker was used"
    assert (report.queued, report.skipped) == (59, {"bounced": 1})
    assert report.languages == {"de": 4, "en": 39, "es": 2, "fr": 4, "it": 2, "nl": 4, "pl": 2, "pt": 2}
    contacts = [message.contact_id for message in outbox(ws)]
    assert contacts == sorted(contacts), "queued in the contacts' order"
    # Each letter is what making it here gives: a refresh makes every copy again (on one core) and compares.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "second_core", lambda: False)
        again = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert (again.current, again.changed) == (59, 0)


def test_a_copy_that_fails_on_the_worker_fails_as_on_one_core(ws: Env, two_cores: None) -> None:
    body = ws.root / "templates" / "appeal" / "de" / "body.txt"
    body.write_text(body.read_text(encoding="utf-8") + "{{ contact.attributes.party }}\n", encoding="utf-8")
    failures = []
    for second_core in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(parallel, "second_core", lambda second_core=second_core: second_core)
            with pytest.raises(TemplateRenderError) as caught:
                queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
        failures.append(caught.value.format_message())
    assert failures[0] == failures[1] and "appeal/de/body.txt:" in failures[0]
    assert outbox(ws) == []


def test_the_database_refuses_a_second_copy_of_a_step_for_a_contact(ws: Env) -> None:
    queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    original = outbox(ws)[0]
    with pytest.raises(IntegrityError), ws.sessions.begin() as session:
        copy = {c.name: getattr(original, c.name) for c in OutboxMessage.__table__.columns if c.name != "id"}
        session.add(OutboxMessage(**{**copy, "message_id": "<another@example.org>"}))


def test_a_dry_run_renders_everything_and_queues_nothing(ws: Env) -> None:
    report = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, dry_run=True)
    assert report.queued == 59 and outbox(ws) == []
    assert show_campaign(ws.sessions, "heads").status == "draft"


def test_one_broken_copy_queues_none_and_names_contact_file_and_line(ws: Env) -> None:
    body = ws.root / "templates" / "appeal" / "fr" / "body.txt"
    body.write_text(body.read_text(encoding="utf-8") + "{{ contact.attributes.party }}\n", encoding="utf-8")
    with pytest.raises(TemplateRenderError) as caught:
        queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert caught.value.where and "appeal/fr/body.txt:" in caught.value.where
    assert caught.value.contact in {"elysee@example.org", "matignon@example.org", "palais-grand-ducal@example.org",
                                    "ministere-etat@example.org"}  # fmt: skip
    assert outbox(ws) == []


def _letters_made(monkeypatch: pytest.MonkeyPatch) -> list[Letter]:
    """Every letter queueing makes from here on (the list fills as they are made)."""
    made: list[Letter] = []

    def making(*args: Any, **kwargs: Any) -> Letter:
        made.append(letter_for(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(queueing, "letter_for", making)
    return made


def queued_letters(env: Env) -> dict[str, bytes]:
    with env.sessions() as session:
        return {body.message_id: body.letter or b"" for body in session.scalars(select(OutboxBody))}


def test_the_letters_checked_before_the_question_are_the_letters_queued(
    ws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _letters_made(monkeypatch)
    with LetterSpool() as spool:
        plan = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, dry_run=True, spool=spool)
        checked = {letter.message_id: letter.data for letter in made}
        made.clear()
        report = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, spool=spool)
    assert plan.queued == report.queued == 59 and plan.languages == report.languages
    assert made == [], "no letter was made a second time"
    assert queued_letters(ws) == checked, "the bytes queued are the bytes checked, Message-IDs included"


def _add_head(env: Env) -> None:
    env.write("new-head.csv", "email,name,role,country,language\nnew-head@example.org,Ana Nova,head_of_state,PT,pt\n")
    do_import(env, env.root / "new-head.csv")


@pytest.mark.parametrize(("change", "made_again"), [
    ("a contact suppressed and another added", 1),
    ("a contact renamed", 1),
    ("the template edited", 59),
    ("a signatory added", 59),
])  # fmt: skip
def test_what_changed_after_the_look_is_decided_and_made_again(
    ws: Env, monkeypatch: pytest.MonkeyPatch, change: str, made_again: int
) -> None:
    made = _letters_made(monkeypatch)
    with LetterSpool() as spool:
        queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, dry_run=True, spool=spool)
        checked = {letter.recipient: letter.data for letter in made}
        made.clear()
        if change == "a contact renamed":
            with ws.sessions.begin() as session:
                session.execute(update(Contact).where(Contact.email == "elysee@example.org")
                                .values(name="Emmanuel Renommé"))  # fmt: skip
        elif change.startswith("a contact"):
            directory.suppress_contact(ws.sessions, "elysee@example.org", "unsubscribed", None, now=NOW)
            _add_head(ws)
        elif change.startswith("the template"):
            body = ws.root / "templates" / "appeal" / "en" / "body.txt"
            body.write_text(body.read_text(encoding="utf-8") + "\nP.S. Edited after the look.\n", encoding="utf-8")
        else:
            ws.run("signatories", "add", "Ada Later", "--line", "Signed after the look")
        report = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, spool=spool)
    assert len(made) == made_again
    letters = {message.recipient: queued_letters(ws)[message.message_id] for message in outbox(ws)}
    assert report.queued == len(letters) == 59
    if change == "a contact renamed":
        assert [letter.recipient for letter in made] == ["elysee@example.org"]
        assert "Emmanuel Renommé".encode() in made[0].data or b"=?utf-8?" in made[0].data
        assert letters["elysee@example.org"] == made[0].data != checked["elysee@example.org"]
        assert all(data == checked[recipient] for recipient, data in letters.items() if recipient != made[0].recipient)
    elif change.startswith("a contact"):
        assert "elysee@example.org" not in letters and b"Ana Nova" not in checked.get("new-head@example.org", b"")
        assert [letter.recipient for letter in made] == ["new-head@example.org"]
        assert all(data == checked[recipient] for recipient, data in letters.items() if recipient in checked)
    else:
        assert all(letters[recipient] != data for recipient, data in checked.items()), "every letter made anew"
        marker = b"Edited after the look" if change.startswith("the template") else b"Ada Later"
        assert sum(marker in data for data in letters.values()) == (39 if marker.startswith(b"Edited") else 59)


def test_cancelling_withdraws_what_has_not_gone_and_refuses_more(ws: Env) -> None:
    queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    view = set_status(ws.sessions, "heads", "cancelled")
    assert view.outbox["cancelled"] == 59 and view.outbox["queued"] == 0
    with pytest.raises(InvalidValueError, match="cancelled"):
        queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    with ws.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 59


def test_cli_create_queue_show_and_preview(env: Env) -> None:
    (env.root / ".env").write_text('OUTREACH_FROM="European Appeal <appeal@example.org>"\n', encoding="utf-8")
    env.run("contacts", "import", "contacts/heads-of-state.csv")
    refused = env.run("campaigns", "create", "x", "--template", "nope", check=False)
    assert refused.returncode == 5 and "no template 'nope'" in refused.stderr
    env.run("campaigns", "create", "fr-de", "--template", "appeal", "--segment", "country:FR,DE")
    queued = json.loads(env.run("campaigns", "queue", "fr-de", "--json", "--yes").stdout)
    assert (queued["queued"], queued["languages"]) == (4, {"de": 2, "fr": 2})
    shown = json.loads(env.run("campaigns", "show", "fr-de", "--json").stdout)
    assert shown["outbox"]["queued"] == 4 and shown["steps"][0]["template"] == "appeal"
    env.run("campaigns", "preview", "fr-de", "--limit", "1", "-o", "preview")
    [path] = sorted((env.root / "preview").iterdir())
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["From"] == "European Appeal <appeal@example.org>"


def test_queue_shows_what_it_will_do_and_refuses_without_a_terminal_or_yes(env: Env) -> None:
    (env.root / ".env").write_text(
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\nOUTREACH_RATE_LIMIT=1/second, 500/day\n'
        "OUTREACH_DOMAIN_RATE_LIMIT=20/hour\n",
        encoding="utf-8",
    )
    env.write("mps.csv", "email,name,role,country,language\n" + "".join(
        f"mp{n}@parliament.example.eu,Member {n},mep,{'FR' if n % 2 else 'DE'},{'fr' if n % 2 else 'de'}\n"
        for n in range(60)))  # fmt: skip
    env.run("contacts", "import", "mps.csv")
    env.run("campaigns", "create", "meps", "--template", "appeal", "--segment", "role:mep")
    env.run("campaigns", "schedule", "meps", "--at", "2030-01-07 09:30", "--tz", "Europe/Paris")
    refused = env.run("campaigns", "queue", "meps", check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].startswith("error: nothing was changed: there is no terminal")
    assert "meps step 0: 60 letters would be queued, from appeal@example.org" in refused.stderr
    assert "in 30 de, 30 fr" in refused.stderr and "to 60 mep" in refused.stderr
    assert "the first goes at 2030-01-07 09:30 Europe/Paris" in refused.stderr
    assert "the pace needs about 2 hours from the first to the last (20/hour to parliament.example.eu)" in (
        refused.stderr
    ), "60 letters to one domain at 20 an hour: the third twenty goes two hours after the first"
    with env.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0, "nothing was queued"
    queued = env.run("campaigns", "queue", "meps", "--yes")
    assert "meps step 0: 60 letters queued" in queued.stderr
    with env.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 60


def test_a_second_campaign_with_the_same_template_skips_who_had_it_unless_asked(ws: Env) -> None:
    queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    create_campaign(ws.sessions, "heads-again", "appeal", "role:head_of_state,monarch,head_of_government",
                    sender=None, reply_to=None, now=NOW)  # fmt: skip
    again = queue_step(ws.sessions, ws.root / "templates", "heads-again", SENDER, now=NOW)
    assert (again.queued, again.repeats) == (0, 59), "nobody is written the same appeal twice by accident"
    shutil.copytree(ws.root / "templates" / "appeal", ws.root / "templates" / "appeal-2027")
    create_campaign(ws.sessions, "next-year", "appeal-2027", "", sender=None, reply_to=None, now=NOW)
    other = queue_step(ws.sessions, ws.root / "templates", "next-year", SENDER, now=NOW, dry_run=True)
    assert other.repeats == 0 and other.queued > 0, "another template is another letter"
    allowed = queue_step(ws.sessions, ws.root / "templates", "heads-again", SENDER, now=NOW, allow_repeat=True)
    assert (allowed.queued, allowed.repeats) == (59, 0)
    set_status(ws.sessions, "heads", "cancelled")
    create_campaign(ws.sessions, "third", "appeal", "", sender=None, reply_to=None, now=NOW)
    third = queue_step(ws.sessions, ws.root / "templates", "third", SENDER, now=NOW)
    assert third.repeats == 59, "the copies of 'heads-again' still wait to be sent: they count"
