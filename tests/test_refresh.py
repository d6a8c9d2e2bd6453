"""Refreshing a campaign on SQLite and PostgreSQL: after an edit, every copy no sender has handed to the server is
made again under its Message-ID; a copy that may have reached the server is never touched; one broken copy
refreshes none."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select, text, update

from outreach.campaigns import refreshing
from outreach.campaigns.catalog import add_follow_up, create_campaign
from outreach.campaigns.queueing import queue_followups, queue_step
from outreach.campaigns.refreshing import RefreshReport, refresh_campaign
from outreach.campaigns.staleness import StaleStep, stale_steps
from outreach.contacts.erasing import forget_contact
from outreach.contacts.signatories import add_signatory
from outreach.db.models import Campaign, Contact, OutboxBody, OutboxMessage
from outreach.errors import InvalidValueError
from outreach.outbox.records import requeue
from outreach.rendering.copies import TemplateRenderError
from outreach.rendering.letters import Letter, Sender, letter_for
from outreach.rendering.mime import Mailbox

from .conftest import Env
from .test_import import do_import

# What migration 0006 writes on the copies it holds for want of a letter.
OLDER_VERSION_NOTE = (
    "queued by an older version, without its letter: `outreach campaigns refresh CAMPAIGN` makes it again"
)

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(days=2)  # a refresh on another day: each letter keeps the date it was made on
SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine",
                unsubscribe_mailto="unsubscribe@example.org")  # fmt: skip
OLD_LINE = "We also urge the governments of European countries to be ready to compensate"
NEW_LINE = "We also call on the governments of European countries to stand ready to compensate"
# Where a copy stands after the SQL moves of `moved`: the first three may have reached the server.
UNTOUCHED = ("committing", "sent", "unknown", "cancelled")
REFRESHED = ("held", "failed")


@pytest.fixture
def ws(env: Env) -> Env:
    do_import(env, env.root / "contacts" / "heads-of-state.csv")
    create_campaign(env.sessions, "heads", "appeal", "role:head_of_state,head_of_government,monarch",
                    sender=None, reply_to=None, now=NOW)  # fmt: skip
    queue_step(env.sessions, env.root / "templates", "heads", SENDER, now=NOW)
    return env


def stored(env: Env) -> dict[str, tuple[str, str, str, datetime, bytes | None]]:
    """Each copy by Message-ID: its state, language, recipient, due time and letter."""
    with env.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.message_id, OutboxMessage.state, OutboxMessage.language, OutboxMessage.recipient,
                   OutboxMessage.next_attempt_at, OutboxBody.letter)
            .join(OutboxBody, OutboxBody.message_id == OutboxMessage.message_id)
        )  # fmt: skip
        return {row[0]: tuple(row[1:]) for row in rows}


def plain_text(letter: bytes | None) -> str:
    parsed = email.message_from_bytes(letter or b"", policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def edit_english_body(env: Env) -> None:
    body = env.root / "templates" / "appeal" / "en" / "body.txt"
    content = body.read_text(encoding="utf-8")
    assert OLD_LINE in content
    body.write_text(content.replace(OLD_LINE, NEW_LINE), encoding="utf-8")


def moved(env: Env) -> dict[str, str]:
    """Move one English copy into each state of UNTOUCHED and REFRESHED by SQL; return them by Message-ID."""
    english = sorted(mid for mid, (_, language, *_) in stored(env).items() if language == "en")
    states = dict(zip(english, (*UNTOUCHED, *REFRESHED), strict=False))
    with env.sessions.begin() as session:
        for message_id, state in states.items():
            session.execute(update(OutboxMessage).where(OutboxMessage.message_id == message_id).values(state=state))
    return states


@pytest.mark.parametrize("cores", ["one core", "two cores"])
def test_waiting_copies_are_made_again_and_those_that_may_have_reached_the_server_are_not(
    ws: Env, cores: str, request: pytest.FixtureRequest
) -> None:
    if cores == "two cores":
        request.getfixturevalue("two_cores")  # the letters made by a forked worker too
    states = moved(ws)
    before = stored(ws)
    english = sum(1 for _, language, *_ in before.values() if language == "en")
    assert stale_steps(ws.sessions, ws.root / "templates") == [], "nothing edited yet"
    edit_english_body(ws)
    waiting = sum(1 for state, *_ in before.values() if state in ("queued", "held"))
    assert stale_steps(ws.sessions, ws.root / "templates", "heads") == [StaleStep("heads", 0, "appeal", waiting)]
    assert stale_steps(ws.sessions, ws.root / "templates", "another") == []

    report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=LATER)

    assert (report.changed, report.current) == (english - len(UNTOUCHED), len(before) - english)
    assert (report.made, report.taken, report.diff) == (0, 0, None)
    after = stored(ws)
    assert after.keys() == before.keys(), "every copy keeps its Message-ID"
    for message_id, (state, language, recipient, due, letter) in after.items():
        old_state, _, old_recipient, old_due, old_letter = before[message_id]
        assert (state, recipient, due) == (old_state, old_recipient, old_due)
        if state in UNTOUCHED:
            assert letter == old_letter, f"a {state} copy is never touched"
            assert OLD_LINE in plain_text(letter)
        elif language == "en":
            assert NEW_LINE in plain_text(letter) and OLD_LINE not in plain_text(letter)
            parsed = email.message_from_bytes(letter or b"", policy=email.policy.default)
            assert parsed["Message-ID"] == message_id and parsed["Date"] is None
            assert "\nNovember 29, 2026\r\n" in plain_text(letter), "the date it was made on, not that of the refresh"
        else:
            assert letter == old_letter, "a copy that reads the same is left as it was"
    assert {after[mid][0] for mid in states} == set(states.values())
    assert stale_steps(ws.sessions, ws.root / "templates") == []

    again = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=LATER + timedelta(days=1),
                             diff=True)  # fmt: skip
    assert (again.changed, again.current, again.diff) == (0, len(before) - len(UNTOUCHED), None)
    assert stored(ws) == after


def test_each_copy_is_made_once_and_one_whose_contact_changed_meanwhile_is_made_again(
    ws: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_english_body(ws)
    before = stored(ws)
    waiting = len(before)
    made: list[Letter] = []

    def making(*args: Any, **kwargs: Any) -> Letter:
        made.append(letter_for(*args, **kwargs))
        if len(made) == waiting:  # the last letter the pass that checks makes: a contact is renamed before the writes
            with ws.sessions.begin() as session:
                session.execute(update(Contact).where(Contact.email == "elysee@example.org")
                                .values(name="Emmanuel Renommé"))  # fmt: skip
        return made[-1]

    monkeypatch.setattr(refreshing, "letter_for", making)
    report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=LATER)
    assert report.changed == sum(1 for _, language, *_ in stored(ws).values() if language == "en") + 1
    assert len(made) == waiting + 1, "each copy made once, and the renamed contact's a second time"
    assert made[-1].recipient == "elysee@example.org"
    checked = {letter.message_id: letter.data for letter in made[:waiting]}
    for message_id, (_, language, recipient, _, letter) in stored(ws).items():
        if recipient == "elysee@example.org":
            parsed = email.message_from_bytes(letter or b"", policy=email.policy.default)
            assert "Emmanuel Renommé" in str(parsed["To"]), "made again for the contact as they are now"
        elif language == "en":
            assert letter == checked[message_id], "the letter written is the one checked"
        else:
            assert letter == before[message_id][-1], "a copy that reads the same is left as it was"


def test_only_the_copies_found_different_are_read_again_and_written(ws: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh with nothing to change writes nothing; a contact renamed before it changes that contact's copy alone,
    and only that copy is read again, locked, and written. One renamed after the check found its copy current is left
    for the next refresh: this one reports what it found, as if it had run a moment earlier."""
    before = stored(ws)
    made: list[Letter] = []
    renamed_late = ""

    def making(*args: Any, **kwargs: Any) -> Letter:
        made.append(letter_for(*args, **kwargs))
        if renamed_late and len(made) == len(before):  # the check's last letter: renamed before the writes
            with ws.sessions.begin() as session:
                session.execute(update(Contact).where(Contact.email == renamed_late).values(name="Late Renommé"))
        return made[-1]

    monkeypatch.setattr(refreshing, "letter_for", making)

    def refresh() -> tuple[RefreshReport, list[tuple[int, int, str]]]:
        made.clear()
        steps: list[tuple[int, int, str]] = []
        report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW,
                                  progress=lambda done, total, what: steps.append((done, total, what)))  # fmt: skip
        return report, [step for step in steps if step[2] == "written"]

    report, written = refresh()
    assert (report.changed, report.current, written) == (0, len(before), [])
    assert len(made) == len(before) and stored(ws) == before

    with ws.sessions.begin() as session:
        session.execute(update(Contact).where(Contact.email == "elysee@example.org").values(name="Emmanuel Renommé"))
    report, written = refresh()
    assert (report.changed, report.current, written) == (1, len(before) - 1, [(1, 1, "written")])
    assert len(made) == len(before), "the renamed contact's letter was made once, by the check, and written"
    changed = {mid for mid, copy in stored(ws).items() if copy != before[mid]}
    assert [before[mid][2] for mid in changed] == ["elysee@example.org"]

    renamed_late = "matignon@example.org"
    after = stored(ws)
    report, written = refresh()
    assert (report.changed, report.current, written) == (0, len(before), [])
    assert stored(ws) == after, "found current by the check: left as it was"
    renamed_late = ""
    report, _ = refresh()
    assert report.changed == 1, "the next refresh makes it again"


def test_the_diff_shows_the_edited_line_of_one_changed_copy(ws: Env) -> None:
    edit_english_body(ws)
    report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW, diff=True)
    assert report.diff is not None and report.diff_of is not None
    lines = report.diff.splitlines()
    assert lines[0] == f"--- {report.diff_of} as it was" and lines[1] == "+++ as refreshed"
    changed = [line for line in lines[2:] if line[:1] in "+-"]
    assert changed == [f"-{OLD_LINE} for any possible interruption in US military aid for Ukraine.",
                       f"+{NEW_LINE} for any possible interruption in US military aid for Ukraine."]  # fmt: skip


def test_one_broken_copy_refreshes_none_and_names_contact_file_and_line(ws: Env) -> None:
    before = stored(ws)
    edit_english_body(ws)
    body = ws.root / "templates" / "appeal" / "fr" / "body.txt"
    body.write_text(body.read_text(encoding="utf-8") + "{{ contact.attributes.party }}\n", encoding="utf-8")
    with pytest.raises(TemplateRenderError) as caught:
        refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert caught.value.where and "appeal/fr/body.txt:" in caught.value.where
    assert caught.value.contact in {"elysee@example.org", "matignon@example.org", "palais-grand-ducal@example.org",
                                    "ministere-etat@example.org"}  # fmt: skip
    assert stored(ws) == before


def test_a_new_sender_and_letters_an_older_version_queued_are_made_and_left_held(ws: Env) -> None:
    older = sorted(stored(ws))[:3]
    with ws.sessions.begin() as session:  # as migration 0006 leaves copies queued before it
        session.execute(update(OutboxMessage).where(OutboxMessage.message_id.in_(older))
                        .values(state="held", last_reply=OLDER_VERSION_NOTE, sender=None, envelope_sender=None,
                                template_digest=None))  # fmt: skip
        session.execute(update(OutboxBody).where(OutboxBody.message_id.in_(older)).values(letter=None))
        session.execute(update(Campaign).where(Campaign.name == "heads")
                        .values(sender="Appeal Office <office@appeal.example.net>"))  # fmt: skip
    [stale] = stale_steps(ws.sessions, ws.root / "templates")
    assert stale.copies == 3, "a copy without a digest was made before the templates were known"
    with ws.sessions() as session:
        first = session.scalars(select(OutboxMessage.id).where(OutboxMessage.message_id == older[0])).one()
    with pytest.raises(InvalidValueError, match=f"outbox message {first} has no letter"):
        requeue(ws.sessions, NOW, ids=[first])
    assert requeue(ws.sessions, NOW, states=("held",)) == 0, "nothing without its letter is released"

    report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)

    assert (report.made, report.releasable, report.changed, report.current) == (3, 3, len(stored(ws)) - 3, 0)
    with ws.sessions() as session:
        rows = session.execute(select(OutboxMessage, OutboxBody.letter)
                               .join(OutboxBody, OutboxBody.message_id == OutboxMessage.message_id)).all()  # fmt: skip
    for message, letter in rows:
        parsed = email.message_from_bytes(letter, policy=email.policy.default)
        assert parsed["From"] == "Appeal Office <office@appeal.example.net>"
        assert (message.sender, message.envelope_sender) == ("office@appeal.example.net",) * 2
        assert parsed["Message-ID"] == message.message_id, "the Message-ID stays, under the old domain"
        if message.message_id in older:
            assert (message.state, message.last_reply) == ("held", None), "released by `outreach outbox release`"
    assert stale_steps(ws.sessions, ws.root / "templates") == []


def test_a_copy_a_sender_claims_meanwhile_keeps_its_letter(ws: Env) -> None:
    """The refresh waits for the sender's claim; then the claimed copy is no longer its to make."""
    before = stored(ws)
    claimed = sorted(before)[0]
    edit_english_body(ws)
    engine = ws.sessions.kw["bind"]
    with engine.connect() as sender:
        sender.execute(text("UPDATE outbox_messages SET state = 'sending' WHERE message_id = :m"), {"m": claimed})
        done: list[RefreshReport] = []
        refresh = threading.Thread(target=lambda: done.append(
            refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)))  # fmt: skip
        refresh.start()
        time.sleep(1)
        assert not done, "the refresh waits for the claim's transaction"
        sender.commit()
        refresh.join(30)
    [report] = done
    after = stored(ws)
    assert after[claimed] == ("sending", *before[claimed][1:]), "the sender sends the letter it read"
    english = sum(1 for _, language, *_ in before.values() if language == "en")
    assert report.changed == english - (before[claimed][1] == "en")
    # PostgreSQL's FOR UPDATE waited and dropped the claimed row; SQLite's guarded UPDATE found it claimed.
    assert report.taken == (1 if ws.url.startswith("sqlite") else 0)


def test_a_follow_up_keeps_what_it_says_of_its_first_letter_and_its_thread(env: Env) -> None:
    do_import(env, env.write("list.csv", "email,name,country,language,role\n" + "".join(
        f"mp{n}@parliament.example.org,Member {n},FR,fr,mp\n" for n in range(3))))  # fmt: skip
    create_campaign(env.sessions, "wave", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=NOW)
    with env.sessions.begin() as session:  # the first letters went
        session.execute(update(OutboxMessage).values(state="sent", sent_at=NOW))
        first_subject = session.scalars(select(OutboxMessage.subject)).first()
    add_follow_up(env.sessions, "wave", "appeal-reminder", "7d", "replied", now=NOW)
    assert queue_followups(env.sessions, env.root / "templates", SENDER, now=NOW + timedelta(days=7)).queued == 3
    before = {mid: letter for mid, (state, *_, letter) in stored(env).items() if state == "queued"}
    add_signatory(env.sessions, "Anna Example", "Professor", "signatories", "FR", "", now=NOW)

    report = refresh_campaign(env.sessions, env.root / "templates", "wave", SENDER, now=LATER)

    assert (report.changed, report.current) == (3, 0)
    after = {mid: letter for mid, (state, *_, letter) in stored(env).items() if state == "queued"}
    assert after.keys() == before.keys()
    for message_id, letter in after.items():
        parsed = email.message_from_bytes(letter or b"", policy=email.policy.default)
        text_now, text_before = plain_text(letter), plain_text(before[message_id])
        assert parsed["In-Reply-To"] and parsed["In-Reply-To"] == parsed["References"]
        assert "Le 29 novembre 2026, nous avons eu" in text_now, "when the first letter went"
        assert first_subject and f"\xa0{first_subject}\xa0»" in text_now, "what the first letter was called"
        assert "signé par 0 personnes." in text_before and "signé par 1 personne." in text_now, "the signatories now"
        assert "\n6 décembre 2026\r\n" in text_now, "the date it was queued on"


def test_cli_refresh_with_diff_and_json(ws: Env) -> None:
    (ws.root / ".env").write_text(
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\nOUTREACH_ORGANIZATION="European Surge for Ukraine"\n'
        "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n",
        encoding="utf-8",
    )
    total = len(stored(ws))
    edit_english_body(ws)
    shown = ws.run("campaigns", "refresh", "heads", "--diff")
    assert f"-{OLD_LINE}" in shown.stdout and f"+{NEW_LINE}" in shown.stdout
    english = sum(1 for _, language, *_ in stored(ws).values() if language == "en")
    assert f"heads: {english} changed, {total - english} already current." in shown.stderr
    again = json.loads(ws.run("campaigns", "refresh", "heads", "--json").stdout)
    assert (again["changed"], again["current"], again["diff"]) == (0, total, None)
    missing = ws.run("campaigns", "refresh", "nope", check=False)
    assert missing.returncode == 5 and "no campaign 'nope'" in missing.stderr


def test_a_contact_erased_since_has_no_copy_left_to_refresh(ws: Env) -> None:
    total = len(stored(ws))
    assert forget_contact(ws.sessions, "elysee@example.org", now=NOW).cancelled == 1
    report = refresh_campaign(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert (report.skipped, report.changed, report.current) == ({}, 0, total - 1), "cancelled, its letter gone"
