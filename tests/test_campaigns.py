"""Campaigns and queueing on SQLite and PostgreSQL: every copy rendered once, queued once, or none at all."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from outreach.campaigns.catalog import create_campaign, set_status, show_campaign
from outreach.campaigns.queueing import queue_step
from outreach.contacts import directory
from outreach.db.models import OutboxBody, OutboxMessage
from outreach.errors import InvalidValueError
from outreach.rendering.copies import TemplateRenderError
from outreach.rendering.mime import Mailbox
from outreach.rendering.previewing import Sender

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
    assert first.languages == {"de": 4, "en": 51, "fr": 4}
    again = queue_step(ws.sessions, ws.root / "templates", "heads", SENDER, now=NOW)
    assert (again.queued, again.already_queued) == (0, 59)
    messages = outbox(ws)
    assert len(messages) == 59 and len({m.message_id for m in messages}) == 59
    assert all(m.state == "queued" and m.message_id.endswith("@example.org>") for m in messages)
    elysee = next(m for m in messages if m.recipient == "elysee@example.org")
    assert elysee.subject.startswith("Lettre ouverte")
    with ws.sessions() as session:
        assert "Monsieur le Président de la République," in session.get_one(OutboxBody, elysee.message_id).text_body
    assert show_campaign(ws.sessions, "heads").status == "active"


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
    queued = json.loads(env.run("campaigns", "queue", "fr-de", "--json").stdout)
    assert (queued["queued"], queued["languages"]) == (4, {"de": 2, "fr": 2})
    shown = json.loads(env.run("campaigns", "show", "fr-de", "--json").stdout)
    assert shown["outbox"]["queued"] == 4 and shown["steps"][0]["template"] == "appeal"
    env.run("campaigns", "preview", "fr-de", "--limit", "1", "-o", "preview")
    [path] = sorted((env.root / "preview").iterdir())
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["From"] == "European Appeal <appeal@example.org>"
