"""Follow-ups and schedules, on a controlled clock: each follow-up falls due its delay after the contact's first
letter, in the campaign's hours in the contact's zone, threads under that letter, and is skipped once and for good
for a contact who replied, bounced or unsubscribed meanwhile."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import add_follow_up, schedule_campaign, show_campaign
from outreach.campaigns.queueing import queue_followups, queue_step
from outreach.contacts.directory import suppress_contact
from outreach.db.models import Contact, OutboxMessage, StepSkip
from outreach.errors import InvalidValueError
from outreach.responses.recording import add_response

from .conftest import Env
from .smtp_server import FaultyHandler
from .test_responses import sent
from .test_sending import NOW, SENDER, Clock, drain, queued, sending, server

__all__ = ["queued", "sent", "server"]  # fixtures: the first letters of `queued`, sent at NOW
WEEK = timedelta(days=7)


def follow_up(env: Env, now: datetime) -> tuple[int, dict[str, int], int]:
    report = queue_followups(env.sessions, env.root / "templates", SENDER, now=now)
    return report.queued, report.skipped, report.waiting


def test_a_follow_up_falls_due_after_its_delay_and_threads_under_the_first_letter(
    queued: Env, sent: dict[str, str], server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    add_follow_up(queued.sessions, "wave", "appeal-reminder", "7d", "replied,bounced,unsubscribed", now=NOW)
    assert follow_up(queued, NOW + WEEK - timedelta(minutes=1)) == (0, {}, 12), "not yet: a minute early"
    steps = show_campaign(queued.sessions, "wave", now=NOW + timedelta(days=1)).steps
    assert (steps[1]["waiting"], steps[1]["next_send"]) == (12, (NOW + WEEK).isoformat())
    assert follow_up(queued, NOW + WEEK) == (12, {}, 0)
    assert follow_up(queued, NOW + WEEK) == (0, {}, 0), "queued once"
    handler.received.clear()
    clock = Clock()
    clock.now = NOW + WEEK
    assert drain(queued, sending(port, clock)).sent == 12
    for received in handler.received:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        first = sent[received.recipients[0]]
        assert (parsed["In-Reply-To"], parsed["References"]) == (first, first)
        assert parsed["Message-ID"] != first
    shown = show_campaign(queued.sessions, "wave", now=NOW + WEEK).steps[1]
    assert (shown["sent"], shown["waiting"], shown["skipped"], shown["next_send"]) == (12, 0, {}, None)


def test_a_reply_a_bounce_or_an_unsubscribe_meanwhile_skips_the_follow_up_once(
    queued: Env, sent: dict[str, str]
) -> None:
    add_follow_up(queued.sessions, "wave", "appeal-reminder", "7d", "replied,bounced,unsubscribed", now=NOW)
    mp = sorted(sent)
    add_response(queued.sessions, mp[0], "phone", "Will sign.", now=NOW + timedelta(days=2))
    add_response(queued.sessions, mp[1], "email", "Thank you.", now=NOW + timedelta(days=2))
    suppress_contact(queued.sessions, mp[2], "bounced", None, now=NOW + timedelta(days=3))
    suppress_contact(queued.sessions, mp[3], "unsubscribed", None, now=NOW + timedelta(days=3))
    queued_now, skipped, waiting = follow_up(queued, NOW + WEEK)
    assert (queued_now, skipped, waiting) == (8, {"replied": 2, "bounced": 1, "unsubscribed": 1}, 0)
    assert follow_up(queued, NOW + WEEK + timedelta(days=1)) == (0, {}, 0), "decided once, recorded"
    with queued.sessions() as session:
        assert len(session.scalars(select(StepSkip)).all()) == 4
        recipients = set(session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.thread_id.is_not(None))))
    assert recipients == set(mp[4:])
    shown = show_campaign(queued.sessions, "wave", now=NOW + WEEK).steps[1]
    assert shown["skipped"] == {"replied": 2, "bounced": 1, "unsubscribed": 1} and shown["due"] == 8


def test_an_auto_reply_does_not_skip_and_unless_can_leave_replies_out(queued: Env, sent: dict[str, str]) -> None:
    add_follow_up(queued.sessions, "wave", "appeal-reminder", "36h", "bounced,unsubscribed", now=NOW)
    add_response(queued.sessions, sorted(sent)[0], "email", "Yes.", now=NOW + timedelta(hours=2))
    assert follow_up(queued, NOW + timedelta(hours=36)) == (12, {}, 0), "replies do not hold this one back"
    with pytest.raises(InvalidValueError, match="--unless 'opened'"):
        add_follow_up(queued.sessions, "wave", "appeal-reminder", "7d", "opened", now=NOW)
    with pytest.raises(InvalidValueError, match="7x"):
        add_follow_up(queued.sessions, "wave", "appeal-reminder", "7x", "replied", now=NOW)


def test_follow_ups_keep_to_office_hours_on_weekdays_in_each_contacts_zone(queued: Env, sent: dict[str, str]) -> None:
    mp = sorted(sent)
    with queued.sessions.begin() as session:  # one contact in Tokyo, the rest in France
        session.execute(update(Contact).where(Contact.email == mp[0]).values(time_zone="Asia/Tokyo"))
    add_follow_up(queued.sessions, "wave", "appeal-reminder", "7d", "replied", now=NOW)
    schedule_campaign(queued.sessions, "wave", at=None, tz=None, local_time=None, weekdays_only=True,
                      window="09:00-17:00", now=NOW)  # fmt: skip
    # Sent on Sunday 29 November 09:30 UTC; seven days on is a Sunday again: Monday 7 December 09:00, their time.
    assert follow_up(queued, datetime(2026, 12, 7, 0, 30, tzinfo=UTC)) == (1, {}, 11), "Tokyo's Monday comes first"
    assert follow_up(queued, datetime(2026, 12, 7, 8, 0, tzinfo=UTC)) == (11, {}, 0)
    with queued.sessions() as session:
        due = {r: as_aware(d) for r, d in session.execute(select(OutboxMessage.recipient, OutboxMessage.next_attempt_at)
                                                          .where(OutboxMessage.thread_id.is_not(None)))}  # fmt: skip
    assert due[mp[0]].astimezone(ZoneInfo("Asia/Tokyo")) == datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert due[mp[1]].astimezone(ZoneInfo("Europe/Paris")) == datetime(
        2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/Paris")
    )


def as_aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_schedule_places_each_first_letter_at_its_recipients_local_time_across_a_dst_change(env: Env) -> None:
    from .test_import import do_import

    do_import(env, env.write("list.csv", "email,name,country,language,role,time_zone\n"
                             "pm@gov.example.fr,PM,FR,fr,head_of_government,\n"
                             "pm@gov.example.pt,PM,PT,en,head_of_government,\n"
                             "pm@gov.example.jp,PM,JP,en,head_of_government,Asia/Tokyo\n"))  # fmt: skip
    from outreach.campaigns.catalog import create_campaign

    now = datetime(2027, 3, 25, 12, 0, tzinfo=UTC)  # Paris changes to summer time on Sunday 28 March 2027
    create_campaign(env.sessions, "spring", "appeal", "", sender=None, reply_to=None, now=now)
    schedule_campaign(env.sessions, "spring", at="2027-03-27 12:00", tz="Europe/Paris", local_time="09:30",
                      weekdays_only=True, window=None, now=now)  # fmt: skip
    report = queue_step(env.sessions, env.root / "templates", "spring", SENDER, now=now)
    assert report.queued == 3
    with env.sessions() as session:
        due = {
            r: as_aware(d) for r, d in session.execute(select(OutboxMessage.recipient, OutboxMessage.next_attempt_at))
        }
    # Not before Saturday noon in Paris; weekdays only: Monday 29 March, 09:30 their time (CEST, WEST, JST).
    assert due["pm@gov.example.fr"] == datetime(2027, 3, 29, 7, 30, tzinfo=UTC)
    assert due["pm@gov.example.pt"] == datetime(2027, 3, 29, 8, 30, tzinfo=UTC)
    assert due["pm@gov.example.jp"] == datetime(2027, 3, 29, 0, 30, tzinfo=UTC)
    # Scheduling again places what is queued again.
    schedule_campaign(env.sessions, "spring", at=None, tz=None, local_time=None, weekdays_only=False, window=None,
                      now=now)  # fmt: skip
    with env.sessions() as session:
        assert {as_aware(d) for d in session.scalars(select(OutboxMessage.next_attempt_at))} == {now}


def test_the_commands_add_a_follow_up_schedule_and_show_the_steps(queued: Env, sent: dict[str, str]) -> None:
    added = json.loads(queued.run("campaigns", "followup", "wave", "--after", "7d", "--template", "appeal-reminder",
                                  "--json").stdout)  # fmt: skip
    assert added["steps"][1]["after"] == "7d" and added["steps"][1]["unless"] == ["replied", "bounced", "unsubscribed"]
    scheduled = queued.run("campaigns", "schedule", "wave", "--local-time", "09:30", "--weekdays")
    assert "at 09:30 in each recipient's zone" in scheduled.stderr and "on weekdays" in scheduled.stderr
    shown = json.loads(queued.run("campaigns", "show", "wave", "--json").stdout)
    assert [(s["position"], s["sent"], s["waiting"]) for s in shown["steps"]] == [(0, 12, 0), (1, 0, 12)]
    assert shown["steps"][1]["next_send"] is not None
    table = queued.run("campaigns", "show", "wave").stdout
    assert "appeal-reminder" in table and "7d after" in table
    bad = queued.run("campaigns", "followup", "wave", "--after", "soon", "--template", "appeal-reminder", check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "soon" in bad.stderr
    bad = queued.run("campaigns", "schedule", "wave", "--tz", "Mars/Base", check=False)
    assert bad.returncode != 0 and "Mars/Base" in bad.stderr


def test_show_gives_times_in_the_campaigns_zone_to_the_minute_and_json_keeps_instants(queued: Env) -> None:
    assert "2026-11-29 09:30 UTC" in queued.run("campaigns", "show", "wave").stdout, "UTC without a zone of its own"
    schedule_campaign(queued.sessions, "wave", at="2031-12-04 09:30", tz="Europe/Paris", local_time=None,
                      weekdays_only=False, window=None, now=NOW)  # fmt: skip
    table = queued.run("campaigns", "show", "wave").stdout
    assert "sends from 2031-12-04 09:30 Europe/Paris (zone Europe/Paris where theirs is unknown)" in table
    assert table.count("2031-12-04 09:30 Europe/Paris") == 2, "the schedule and the step's next send"
    shown = json.loads(queued.run("campaigns", "show", "wave", "--json").stdout)
    assert shown["schedule"]["send_at"] == shown["steps"][0]["next_send"] == "2031-12-04T08:30:00+00:00"
