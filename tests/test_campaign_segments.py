"""Segments by what happened in a campaign (`campaign:NAME=STATE`), on SQLite and PostgreSQL: the events of
tests/test_report.py (letters sent through a real SMTP server, responses read from a Maildir, a reply logged by
phone), then which contacts each state selects, through the service, the command line and the report."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.contacts import directory
from outreach.contacts.segments import CAMPAIGN_STATES, Clause, parse_segment
from outreach.db.models import Campaign, Contact, OutboxMessage
from outreach.errors import InvalidValueError, NotFoundError
from outreach.reports.collect import collect_records, collect_report
from outreach.reports.figures import build_report
from outreach.reports.html import render_html

from .conftest import Env
from .smtp_server import FaultyHandler
from .test_report import REPORTED_AT, Page, events
from .test_sending import NOW, SENDER, Clock, drain, sending, server

__all__ = ["events", "server"]  # fixtures

P = [f"p{n:02d}@mail{n % 3}.example.org" for n in range(12)]  # as in tests/test_report.py
STATES = "sent, replied, no-reply, bounced, auto-replied, unsubscribed"
# What happened in `wave` (tests/test_report.py, `events`): the first letter went to all but p07 (refused: failed);
# p00 and p04 replied by mail, p06 by phone; p01 and p08 sent out-of-office notes; p02 bounced hard, p05 soft; p09
# unsubscribed; p10's provider reported a complaint. Heads of state: p00, p03, p06, p09; the rest are MPs.
SENT = [P[n] for n in (0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11)]
NO_REPLY = [P[1], P[3], P[8], P[11]]


def emails(env: Env, segment: str) -> list[str | None]:
    return [c.email for c in directory.list_contacts(env.sessions, parse_segment(segment))]


@pytest.fixture
def happened(events: Env, server: tuple[FaultyHandler, int]) -> Env:
    """The events, and a week after the follow-up the campaign `later` (country:DE) sent to the Germans still
    active: p06, p08 and p11 (p07 bounced, p09 unsubscribed, p10 complained)."""
    _, port = server
    queued = queue_step(events.sessions, events.root / "templates", "later", SENDER, now=NOW, allow_repeat=True)
    assert queued.queued == 3
    assert drain(events, sending(port, Clock())).sent == 3
    return events


def test_each_state_selects_exactly_the_contacts_it_says(happened: Env) -> None:
    assert emails(happened, "campaign:wave=sent") == SENT, "all but p07, whose letter was refused"
    assert emails(happened, "campaign:wave=replied") == [P[0], P[4], P[6]], "p06 by phone"
    assert emails(happened, "campaign:wave=no-reply") == NO_REPLY, "an out-of-office is no answer"
    assert emails(happened, "campaign:wave=bounced") == [P[2], P[5]], "hard and soft"
    assert emails(happened, "campaign:wave=auto-replied") == [P[1], P[8]]
    assert emails(happened, "campaign:wave=unsubscribed") == [P[9]]
    assert emails(happened, "campaign:wave=replied,bounced") == [P[0], P[2], P[4], P[5], P[6]], "either"

    # Negated: everyone else, those never written to (p07) included.
    assert emails(happened, "-campaign:wave=sent") == [P[7]]
    assert emails(happened, "-campaign:wave=no-reply") == [p for p in P if p not in NO_REPLY]
    # Combined with other clauses, and with each other.
    assert emails(happened, "campaign:wave=no-reply role:head_of_state") == [P[3]]
    assert emails(happened, "campaign:wave=no-reply -role:head_of_state country:DE") == [P[8], P[11]]
    assert emails(happened, "campaign:wave=sent -campaign:wave=replied,bounced,unsubscribed") == [
        P[1], P[3], P[8], P[10], P[11]]  # fmt: skip

    # Each campaign its own: p06 answered `wave` by phone, not `later`; nothing was sent for `wave` to be answered.
    assert emails(happened, "campaign:later=sent") == [P[6], P[8], P[11]]
    assert emails(happened, "campaign:later=no-reply") == [P[6], P[8], P[11]]
    assert emails(happened, "campaign:later=replied,bounced,auto-replied,unsubscribed") == []
    assert emails(happened, "campaign:wave=replied campaign:later=no-reply") == [P[6]]

    # A letter whose fate is unknown (the line dropped after the end of data) is not sent, so not no-reply either.
    with happened.sessions.begin() as session:
        p11 = session.scalars(select(Contact.id).where(Contact.email == P[11])).one()
        session.execute(update(OutboxMessage).where(OutboxMessage.contact_id == p11, OutboxMessage.state == "sent")
                        .values(state="unknown"))  # fmt: skip
    assert emails(happened, "campaign:wave=no-reply") == [P[1], P[3], P[8]]
    assert P[11] not in emails(happened, "campaign:wave=sent") + emails(happened, "campaign:later=sent")


def test_a_campaign_can_be_sent_to_those_who_did_not_answer_another(happened: Env) -> None:
    create_campaign(happened.sessions, "recall", "appeal", "campaign:wave=no-reply role:head_of_state",
                    sender=None, reply_to=None, now=NOW)  # fmt: skip
    queued = queue_step(happened.sessions, happened.root / "templates", "recall", SENDER, now=NOW, allow_repeat=True)
    assert (queued.queued, queued.roles) == (1, {"head_of_state": 1}), "p03"
    with happened.sessions() as session:
        recall = select(OutboxMessage.recipient).join(Campaign).where(Campaign.name == "recall")
        assert session.scalars(recall).all() == [P[3]]


def test_a_clause_is_read_and_written_back_the_same() -> None:
    segment = parse_segment("-campaign:wave=No_Reply,bounced,no-reply role:mp")
    assert segment.clauses[0] == Clause("campaign", ("no-reply", "bounced"), negated=True, campaign="wave")
    assert str(segment) == "-campaign:wave=no-reply,bounced role:mp"
    assert parse_segment(str(segment)) == segment
    assert segment.campaigns() == ("wave",)
    assert tuple(CAMPAIGN_STATES) == tuple(STATES.split(", "))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("campaign:wave=answered", f"segment clause 'campaign:wave=answered': campaign state 'answered' is not one "
                                   f"of {STATES}"),
        ("campaign:wave", f"segment clause 'campaign:wave' is not campaign:NAME=STATE[,STATE], STATE one of {STATES}"),
        ("campaign:=sent", "segment clause 'campaign:=sent' is not campaign:NAME=STATE"),
        ("campaign:wave=", "segment clause 'campaign:wave=' is not campaign:NAME=STATE"),
        ("campaign:wave=,", "segment clause 'campaign:wave=,' is not campaign:NAME=STATE"),
        ("campaign:Wave=sent", "segment clause 'campaign:Wave=sent': no campaign 'Wave'"),
    ],
)  # fmt: skip
def test_a_bad_campaign_clause_says_what_is_wrong_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidValueError) as raised:
        parse_segment(text)
    assert raised.value.message.startswith(message) and "\n" not in raised.value.message


def test_the_export_writes_who_did_not_answer_and_an_unknown_campaign_is_one_line_everywhere(happened: Env) -> None:
    exported = happened.run("contacts", "export", "--segment", "campaign:wave=no-reply")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["email"], r["name"], r["role"], r["country"]) for r in rows] == [
        (P[1], "Person 01", "mp", "FR"), (P[3], "Person 03", "head_of_state", "FR"),
        (P[8], "Person 08", "mp", "DE"), (P[11], "Person 11", "mp", "DE"),
    ]  # fmt: skip
    assert exported.stderr.strip() == "Exported 4 contacts."
    happened.run("contacts", "export", "-s", "campaign:wave=no-reply role:head_of_state", "-o", "heads.csv")
    with (happened.root / "heads.csv").open(encoding="utf-8", newline="") as handle:
        assert [r["email"] for r in csv.DictReader(handle)] == [P[3]]

    unknown = (
        "error: segment clause 'campaign:nope=no-reply': no campaign 'nope' (`outreach campaigns list` shows them)"
    )
    for command in (
        ("contacts", "export", "--segment", "campaign:nope=no-reply"),
        ("contacts", "list", "--segment", "role:mp campaign:nope=no-reply"),
        ("contacts", "tag", "call", "--segment", "campaign:nope=no-reply"),
        ("templates", "check", "appeal", "--segment", "campaign:nope=no-reply"),
        ("campaigns", "create", "recall", "--template", "appeal", "--segment", "campaign:nope=no-reply"),
    ):
        done = happened.run(*command, check=False)
        assert (done.returncode, done.stdout, done.stderr.splitlines()) == (5, "", [unknown]), command
    listed = happened.run("campaigns", "list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["wave", "later"], "no campaign `recall`"

    bad = happened.run("contacts", "export", "--segment", "campaign:wave=ignored", check=False)
    assert (bad.returncode, bad.stdout, len(bad.stderr.splitlines())) == (2, "", 1)
    assert f"campaign state 'ignored' is not one of {STATES}" in bad.stderr
    with pytest.raises(NotFoundError, match="no campaign 'nope'"):
        directory.count_contacts(happened.sessions, parse_segment("campaign:nope=sent"))


def test_the_report_lists_who_did_not_answer_heads_first(happened: Env) -> None:
    happened.run("report", "wave", "--html", "report.html")
    page = Page()
    page.feed((happened.root / "report.html").read_text(encoding="utf-8"))
    page.close()
    assert page.tables["unanswered"] == [
        ["name", "position", "role", "country", "email", "sent"],
        ["Person 03", "-", "head of state", "FR", P[3], "2026-11-29"],
        ["Person 08", "-", "mp", "DE", P[8], "2026-11-29"],
        ["Person 11", "-", "mp", "DE", P[11], "2026-11-29"],
        ["Person 01", "-", "mp", "FR", P[1], "2026-11-29"],
    ]
    assert "Not answered (4)" in "".join(page.text) and "more, export with" not in "".join(page.text)

    document = json.loads(happened.run("report", "wave", "--json").stdout)
    unanswered = document["campaigns"][0]["unanswered"]
    assert (unanswered["total"], unanswered["more"], [c["email"] for c in unanswered["contacts"]]) == (
        4, 0, [P[3], P[8], P[11], P[1]])  # fmt: skip
    assert unanswered["contacts"][0] == {
        "name": "Person 03", "position": None, "role": "head_of_state", "country": "FR", "email": P[3],
        "sent_at": "2026-11-29T09:30:00+00:00",
    }  # fmt: skip
    terminal = happened.run("report", "wave").stdout
    assert "Not answered (4)" in terminal
    assert terminal.index(P[3]) < terminal.index(P[8]) < terminal.index(P[1]), "heads first, as in the page"
    everything = collect_report(happened.sessions, now=REPORTED_AT)
    assert [(c.name, c.unanswered.total) for c in everything.campaigns] == [("wave", 4), ("later", 3)]

    # A long list stops, heads first, and says how to get the rest.
    capped = build_report(collect_records(happened.sessions, "wave"), now=REPORTED_AT, unanswered_limit=2)
    [wave] = capped.campaigns
    assert ([c.email for c in wave.unanswered.contacts], wave.unanswered.total, wave.unanswered.more) == (
        [P[3], P[8]], 4, 2)  # fmt: skip
    page = Page()
    page.feed(render_html(capped))
    assert len(page.tables["unanswered"]) == 1 + 2
    assert "and 2 more, export with outreach contacts export --segment campaign:wave=no-reply" in "".join(page.text)
