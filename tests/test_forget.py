"""`contacts forget` erases a person from every table and stored message, on SQLite down to the bytes of the file:
their letters (sent and queued), their reply with its signature, their signatory line; the report's figures stay;
a keyed hash keeps them from coming back, and the unkeyed hashes of before are still honoured."""

from __future__ import annotations

import hashlib
import hmac
import json
import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, String, Text, func, insert, select, text, update
from sqlalchemy.types import JSON

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.contacts import directory
from outreach.contacts.erasing import forget_contact
from outreach.contacts.signatories import add_signatory
from outreach.db.models import Base, Contact, OutboxMessage, Signatory, Suppression
from outreach.errors import InvalidValueError, NotFoundError
from outreach.responses.polling import Inbox, poll
from outreach.responses.recording import mark_outcome
from outreach.responses.sources import MaildirSource
from outreach.responses.views import list_responses
from outreach.workspace import read_secret

from .conftest import Env
from .smtp_server import FaultyHandler
from .test_import import do_import
from .test_sending import SENDER, Clock, drain, sending, server

__all__ = ["server"]  # fixtures

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
LATER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ADDRESS = "Jeanne.Dupont@assemblee.example.fr"
KEY = ADDRESS.lower()
NAME = "Jeanne Dupont-Ferrand"
PHONE = "+33 6 12 34 56 78"
# What must not be found anywhere once she is forgotten: her address in any case, her name, her phone number.
TRACES = (ADDRESS, KEY, "jeanne.dupont", "Dupont-Ferrand", PHONE, "6 12 34 56 78")
CONTACTS = (
    "email,name,role,country,language,position,organization\n"
    f"{ADDRESS},{NAME},mp,FR,fr,Députée,Assemblée nationale\n"
    "paul.martin@assemblee.example.fr,Paul Martin,mp,FR,fr,Député,Assemblée nationale\n"
    "anna.schmidt@bundestag.example.de,Anna Schmidt,mp,DE,de,Abgeordnete,Bundestag\n"
)
INBOX = Inbox(unsubscribe_addresses=("unsubscribe@example.org",))


def her_reply(answering: str) -> bytes:
    """Her answer to the first letter, with her phone number in what she wrote and in her signature."""
    return (
        f"From: {NAME} <{ADDRESS}>\r\nTo: European Appeal <appeal@example.org>\r\n"
        "Subject: Re: Appel\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\n"
        f"Message-ID: <20261201090000.4711@mail.assemblee.example.fr>\r\nIn-Reply-To: {answering}\r\n"
        f"References: {answering}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Je signe volontiers. Appelez-moi au {PHONE} pour la suite.\r\n\r\n"
        f"-- \r\n{NAME}\r\nDéputée de la 3e circonscription\r\nTél. {PHONE}\r\n"
    ).encode()


@pytest.fixture
def world(env: Env, server: tuple[FaultyHandler, int]) -> Iterator[Env]:
    """Three members: the appeal sent to all (`wave`), a second campaign queued (`later`), her reply read from a
    Maildir and marked signed (which makes her a signatory)."""
    _, port = server
    do_import(env, env.write("list.csv", CONTACTS))
    create_campaign(env.sessions, "wave", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=NOW)
    assert drain(env, sending(port, Clock())).sent == 3
    create_campaign(env.sessions, "later", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "later", SENDER, now=NOW, allow_repeat=True)
    with env.sessions() as session:
        first = session.scalars(select(OutboxMessage.message_id).where(
            func.lower(OutboxMessage.recipient) == KEY, OutboxMessage.state == "sent")).one()  # fmt: skip
    folder = mailbox.Maildir(env.root / "Maildir")
    folder.add(her_reply(first))
    assert poll(env.sessions, MaildirSource(env.root / "Maildir"), INBOX, now=lambda: LATER).recorded == 1
    (reply,) = list_responses(env.sessions, kind="reply")
    assert reply.contact == ADDRESS and PHONE in (reply.text or "")
    mark_outcome(env.sessions, reply.id, "signed", now=LATER)
    with env.sessions() as session:
        assert session.scalars(select(Signatory.name)).all() == [NAME]
    yield env


def report(env: Env, campaign: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(env.run("report", campaign, "--json").stdout)
    del document["generated_at"]
    return document


def traces_in(data: bytes) -> list[str]:
    return [trace for trace in TRACES if trace.encode("utf-8") in data]


def database_files(env: Env) -> bytes:
    """The bytes of the SQLite database and of its WAL, as they are on disk."""
    path = Path(env.url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def every_value(env: Env) -> Iterator[tuple[str, str, Any]]:
    """Every text, binary and JSON value of every table: (table, column, value)."""
    with env.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | LargeBinary | JSON)]
            if not columns:
                continue
            for row in session.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    yield table.name, column.name, value


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


def moved_to_cancelled(figures: dict[str, Any], role: str, country: str) -> dict[str, Any]:
    """The figures, with one contact of `role` and `country` moved from queued to cancelled."""
    moved = json.loads(json.dumps(figures))
    for counts in (moved["total"], moved["by_role"][role], moved["by_country"][country]):
        counts["queued"] -= 1
        counts["cancelled"] += 1
    return moved


def test_forget_erases_her_everywhere_and_keeps_the_figures(world: Env) -> None:
    env = world
    wave, later = report(env, "wave"), report(env, "later")
    holding = {table for table, _, value in every_value(env) if value is not None and traces_in(as_bytes(value))}
    assert holding == {"contacts", "outbox_messages", "outbox_bodies", "responses", "response_messages", "signatories"}
    if env.url.startswith("sqlite"):
        assert set(traces_in(database_files(env))) >= {ADDRESS, NAME.split()[1], PHONE}

    erasure = json.loads(env.run("contacts", "forget", ADDRESS, "--yes", "--json").stdout)
    assert erasure["erased"] == {
        "contacts": 1, "contact_tags": 0, "outbox_messages": 2, "outbox_bodies": 2, "responses": 1,
        "response_messages": 1, "signatories": 1, "proofs": 0,
    }  # fmt: skip
    assert (erasure["cancelled"], erasure["refresh"]) == (1, ["later"])
    assert erasure["checkpointed"] is (True if env.url.startswith("sqlite") else None)

    # Nothing of her in any column of any table, nor (SQLite) in the bytes of the database file and its WAL.
    found = [(table, column) for table, column, value in every_value(env)
             if value is not None and traces_in(as_bytes(value))]  # fmt: skip
    assert found == []
    if env.url.startswith("sqlite"):
        with env.sessions() as session:  # freed space is overwritten on every connection, not only the erasure's
            assert session.execute(text("PRAGMA secure_delete")).scalar() == 1
        assert traces_in(database_files(env)) == []

    # The figures are what they were: only her copy of `later`, not sent, is now cancelled. Her reply is still
    # counted, shown as erased; the signatory list is one name shorter.
    after_wave, after_later = report(env, "wave"), report(env, "later")
    (before,), (now,) = wave["campaigns"], after_wave["campaigns"]
    for part in ("figures", "steps", "outcomes", "responses_by_day"):
        assert now[part] == before[part], part
    (reply,) = now["replies"]
    assert (reply["contact"], reply["text"], reply["kind"], reply["outcome"]) == ("erased", "erased", "reply", "signed")
    assert {**reply, "contact": None, "text": None} == {**before["replies"][0], "contact": None, "text": None}
    assert wave["signatories"][-1]["total"] == 1 and after_wave["signatories"] == []
    (before,), (now,) = later["campaigns"], after_later["campaigns"]
    assert now["figures"] == moved_to_cancelled(before["figures"], "mp", "FR")
    assert now["steps"][0]["figures"] == moved_to_cancelled(before["steps"][0]["figures"], "mp", "FR")

    # Where a list shows a person, she is "erased".
    html = env.root / "report.html"
    env.run("report", "wave", "--html", str(html))
    page = html.read_text(encoding="utf-8")
    assert "erased" in page and traces_in(page.encode()) == []
    (listed,) = json.loads(env.run("responses", "list", "--json").stdout)["responses"]
    assert (listed["sender"], listed["subject"], listed["text"], listed["kind"]) == ("erased",) * 3 + ("reply",)
    shown = env.run("responses", "show", str(listed["id"])).stdout
    assert "from: erased" in shown and traces_in(shown.encode()) == []
    raw = env.run("responses", "show", str(listed["id"]), "--raw", check=False)
    assert raw.returncode == 2 and "was erased" in raw.stderr
    outbox = json.loads(env.run("outbox", "list", "--json").stdout)
    hers = [m for m in outbox["messages"] if m["recipient"] == "erased"]
    assert sorted(m["state"] for m in hers) == ["cancelled", "sent"]
    assert next(m for m in hers if m["state"] == "cancelled")["last_reply"].startswith("cancelled: its contact was")

    # Her cancelled copy can never go: it is not due, cannot be queued again, and has no letter to send.
    again = env.run("outbox", "retry", str(next(m for m in hers if m["state"] == "cancelled")["id"]), check=False)
    assert again.returncode != 0
    with env.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "queued")) == 2
        )

    # A re-import brings her back under no spelling; the hash kept is keyed, not the plain SHA-256.
    summary = do_import(env, env.write("again.csv", f"email,name\n{ADDRESS.upper()},{NAME}\n"))
    assert (summary.imported, summary.suppressed) == (0, 1)
    with env.sessions() as session:
        (kept,) = session.execute(select(Suppression.address_hash, Suppression.reason, Suppression.response_id)).all()
    assert kept == (hmac.new(read_secret(env.root), KEY.encode(), hashlib.sha256).hexdigest(), "forgotten", None)
    assert kept[0] != hashlib.sha256(KEY.encode()).hexdigest()
    with pytest.raises(InvalidValueError, match="suppression list"):
        directory.add_contact(env.sessions, ADDRESS, {}, (), {}, now=LATER)
    assert env.run("contacts", "forget", ADDRESS, "--yes", check=False).returncode == 5, "nothing left to forget"


def test_a_dry_run_counts_what_forget_erases_and_changes_nothing(world: Env) -> None:
    before = sorted(every_value(world), key=repr)
    ahead = forget_contact(world.sessions, ADDRESS, now=datetime.now(UTC), dry_run=True)
    assert sorted(every_value(world), key=repr) == before, "nothing changed"
    done = forget_contact(world.sessions, ADDRESS, now=datetime.now(UTC))
    assert (ahead.rows, ahead.cancelled, ahead.refresh) == (done.rows, done.cancelled, done.refresh)
    assert ahead.rows["contacts"] == 1 and ahead.checkpointed is None


def test_the_cli_says_what_was_erased_and_what_it_cannot_reach(world: Env) -> None:
    said = world.run("contacts", "forget", ADDRESS, "--yes").stderr
    assert (
        "Forgot contact 1. Rows erased: contacts 1, outbox_messages 2, outbox_bodies 2, responses 1, "
        "response_messages 1, signatories 1. The address stays only as a keyed hash." in said
    )
    assert "1 letter not sent yet was cancelled." in said
    assert "`outreach campaigns refresh later`" in said
    assert ("VACUUM" in said) is world.url.startswith("postgresql")
    assert "the messages in the inbox" in said


def test_an_address_that_is_no_contact_is_erased_from_responses_and_signatories(env: Env) -> None:
    stranger = "Writer@Elsewhere.example"
    folder = mailbox.Maildir(env.root / "Maildir")
    folder.add(her_reply("<nothing@nowhere.example>").replace(ADDRESS.encode(), stranger.encode()))
    poll(env.sessions, MaildirSource(env.root / "Maildir"), INBOX, now=lambda: LATER)
    add_signatory(env.sessions, "A Writer", "novelist", "signatories", "", stranger.lower(), now=LATER)
    add_signatory(env.sessions, "Someone Else", "", "signatories", "", "", now=LATER)
    erasure = forget_contact(env.sessions, stranger, now=LATER)
    assert erasure.contact_id is None
    assert (erasure.rows["responses"], erasure.rows["response_messages"], erasure.rows["signatories"]) == (1, 1, 1)
    with env.sessions() as session:
        assert session.scalars(select(Signatory.name)).all() == ["Someone Else"], "only hers"
        assert session.scalar(select(Suppression.reason)) == "forgotten"
    assert [(v.sender, v.text) for v in list_responses(env.sessions)] == [("erased", "erased")]
    with pytest.raises(NotFoundError, match="nothing else names that address"):
        forget_contact(env.sessions, "nobody@nowhere.example", now=LATER)


def test_a_suppression_hashed_before_hashes_were_keyed_is_still_honoured(env: Env) -> None:
    old = hashlib.sha256(b"former@example.org").hexdigest()
    with env.sessions.begin() as session:
        session.execute(insert(Suppression).values(address_hash=old, reason="forgotten", created_at=NOW))
    summary = do_import(env, env.write("list.csv", "email,name\nFormer@Example.org,Former\nnew@example.org,New\n"))
    assert (summary.imported, summary.suppressed) == (1, 1)
    with pytest.raises(InvalidValueError, match=r"on the suppression list \(forgotten\)"):
        directory.add_contact(env.sessions, "former@example.org", {}, (), {}, now=NOW)
    directory.suppress_contact(env.sessions, "former@example.org", "bounced", None, now=NOW)
    with env.sessions() as session:
        assert session.scalars(select(Suppression.address_hash)).all() == [old], "suppressed once, as it was"


def test_a_reply_reclassified_after_forget_does_not_lift_her_suppression(world: Env) -> None:
    from outreach.responses.recording import reclassify

    (reply,) = list_responses(world.sessions, kind="reply")
    reclassify(world.sessions, reply.id, "unsubscribe", now=LATER)  # suppressed by this response
    forget_contact(world.sessions, ADDRESS, now=LATER)
    reclassify(world.sessions, reply.id, "reply", now=LATER)  # would lift a suppression that response caused
    summary = do_import(world, world.write("again.csv", f"email\n{ADDRESS}\n"))
    assert (summary.imported, summary.suppressed) == (0, 1)


def test_a_letter_a_sender_holds_this_moment_stops_the_erasure_unchanged(world: Env) -> None:
    with world.sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.state == "queued").values(
            state="sending", claimed_by="elsewhere:1", lease_until=datetime(2100, 1, 1, tzinfo=UTC)))  # fmt: skip
    refused = world.run("contacts", "forget", ADDRESS, "--yes", check=False)
    assert refused.returncode == 6 and "being sent this moment" in refused.stderr
    with world.sessions() as session:
        assert session.scalar(select(Contact.name).where(Contact.email_key == KEY)) == NAME, "nothing changed"


def test_a_workspace_from_before_the_key_gets_it_from_db_upgrade_and_keeps_its_suppressions(env: Env) -> None:
    old = hashlib.sha256(b"former@example.org").hexdigest()
    with env.sessions.begin() as session:
        session.execute(insert(Suppression).values(address_hash=old, reason="unsubscribed", created_at=NOW))
    (env.root / "secret.key").unlink()
    refused = env.run("contacts", "list", check=False)
    assert refused.returncode == 2 and "has no secret.key" in refused.stderr, "refused before any work"
    upgraded = env.run("db", "upgrade").stderr
    assert "Made secret.key" in upgraded and "holds 1 suppressions from before" in upgraded
    assert (env.root / "secret.key").stat().st_mode & 0o777 == 0o600
    key = read_secret(env.root)
    assert json.loads(env.run("db", "upgrade", "--json").stdout)["secret_made"] is False
    assert read_secret(env.root) == key, "never made twice"
    added = env.run("contacts", "add", "Former@Example.org", check=False)
    assert added.returncode == 2 and "on the suppression list (unsubscribed)" in added.stderr
