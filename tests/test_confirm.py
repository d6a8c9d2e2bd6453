"""A look before anything irreversible: `campaigns cancel` and the first letters of `send` and `run` show what
will happen and ask; without a terminal they refuse unless given --yes, and change nothing."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import cancellation, create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.db.models import Campaign, OutboxMessage
from outreach.errors import NotConfirmedError
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox

from .conftest import RUNS, Env, on_a_terminal
from .smtp_server import FaultyHandler
from .test_import import do_import
from .test_sending import configure, server, states

__all__ = ["server"]  # fixtures

SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine")
# 16 members of one parliament (one mail server), 8 heads of state; 10 letters in French, 8 in German, 6 in English.
MEPS = [
    (f"mep{n}@parliament.example.eu", "mep", country, language)
    for n, (country, language) in enumerate([("FR", "fr")] * 6 + [("DE", "de")] * 6 + [("IE", "en")] * 4)
]
HEADS = [
    (f"office@president{n}.example.org", "head_of_state", country, language)
    for n, (country, language) in enumerate([("FR", "fr")] * 4 + [("AT", "de")] * 2 + [("MT", "en")] * 2)
]
PACE = "OUTREACH_RATE_LIMIT=100/second\nOUTREACH_DOMAIN_RATE_LIMIT=5/hour\n"  # 16 to one domain: three hours


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def wave(env: Env) -> Env:
    """A campaign whose 24 first letters are queued, due a minute ago, none sent."""
    rows = "".join(f"{email},Person {n},{role},{country},{language}\n"
                   for n, (email, role, country, language) in enumerate(MEPS + HEADS))  # fmt: skip
    do_import(env, env.write("list.csv", "email,name,role,country,language\n" + rows))
    create_campaign(env.sessions, "wave", "appeal", "", sender=None, reply_to=None, now=now())
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=now() - timedelta(minutes=1))
    return env


def answered(env: Env, args: list[str], answer: str) -> tuple[int, str]:
    """Run `outreach ARGS` on a terminal that types `answer` to its question: the exit code and what it said."""
    controller, terminal = pty.openpty()
    try:
        process = RUNS.popen(args, cwd=env.root, env=env.environ(), stdin=terminal, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
        os.write(controller, f"{answer}\n".encode())
        _, stderr = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, stderr


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a command that would not go ahead without a yes."""
    assert result.returncode == NotConfirmedError.exit_code, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith('error: nothing was changed: there is no terminal to ask "')
    assert line.endswith('" (pass --yes to go ahead without being asked)')
    assert result.stdout == ""
    return line


def test_a_first_send_without_a_terminal_refuses_and_sends_nothing_with_yes_it_goes(
    wave: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    configure(wave, port, PACE)
    for args in (("send",), ("send", "--json")):
        result = wave.run(*args, check=False)
        assert "Send these first letters now?" in refused(result)
        assert handler.received == [] and states(wave) == {"queued": 24}, "nothing reached the server or changed"
    summary = result.stderr
    assert "Campaign 'wave' has sent nothing yet: 24 first letters, the first now, the last in about 3 hours at " \
           "the configured pace (5/hour to parliament.example.eu)." in summary  # fmt: skip
    assert "  by language: 10 fr, 8 de, 6 en\n" in summary
    assert "  by role: 16 mep, 8 head_of_state\n" in summary
    assert "  by country: 10 FR, 6 DE, 4 IE, 2 AT, 2 MT\n" in summary

    assert wave.run("send", "--dry-run").returncode == 0, "a dry run changes nothing, so it never asks"
    assert handler.received == [] and states(wave) == {"queued": 24}

    sent = wave.run("send", "--yes")
    assert "Campaign 'wave' has sent nothing yet: 24 first letters" in sent.stderr, "the summary is shown anyway"
    assert "13 sent, 0 to retry later, 0 failed, 0 unknown." in sent.stderr, "5 to the parliament, 8 presidents"
    assert len(handler.received) == 13
    # The parliament's first five fill its hour: the next five go an hour later, the last one an hour after that.
    waiting = re.search(r"11 letters wait: the next at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC, the last in about 3 hours"
                        r" at the configured pace \(5/hour to parliament.example.eu\)\.", sent.stderr)  # fmt: skip
    assert waiting, sent.stderr
    assert "held back by the per-domain limit" not in sent.stderr

    later = json.loads(wave.run("send", "--json").stdout)  # the campaign has begun: no more questions
    assert (later["sent"], later["waiting"]) == (0, 11)
    next_due, last = datetime.fromisoformat(later["next_due"]), datetime.fromisoformat(later["estimated_last"])
    assert f"{next_due:%Y-%m-%d %H:%M}" == waiting[1]
    assert timedelta(hours=2) <= last - next_due <= timedelta(hours=2, seconds=1), "three windows: 5, 5 and 1"


def test_nothing_waiting_says_nothing_of_waiting(wave: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    configure(wave, port, "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n")
    result = wave.run("send", "--yes")
    assert "the first now, the last now too." in result.stderr, "no limit: they all go at once"
    assert len(handler.received) == 24 and "letters wait" not in result.stderr
    document = json.loads(wave.run("send", "--json").stdout)
    assert (document["waiting"], document["next_due"], document["estimated_last"]) == (0, None, None)


def test_run_asks_once_at_the_start_about_first_letters_due_later_too(
    wave: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    configure(wave, port, PACE)
    later = now() + timedelta(days=1)
    with wave.sessions.begin() as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=later))
        session.execute(update(Campaign).values(time_zone="Europe/Paris"))
    result = wave.run("run", "--once", check=False)
    assert "Start, and send these first letters as they fall due?" in refused(result)
    assert f"the first at {later.astimezone(ZoneInfo('Europe/Paris')):%Y-%m-%d %H:%M} Europe/Paris" in result.stderr
    assert handler.received == [] and states(wave) == {"queued": 24}
    started = json.loads(wave.run("run", "--once", "--yes", "--json").stdout)
    assert started["sent"] == 0 and states(wave) == {"queued": 24}, "asked, and nothing is due yet"


def test_cancel_without_a_terminal_refuses_and_changes_nothing_with_yes_it_withdraws(wave: Env) -> None:
    with wave.sessions.begin() as session:
        ids = list(session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids[:3])).values(state="sent"))
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids[3:5])).values(state="held"))
    before = cancellation(wave.sessions, "wave")
    assert (before.withdrawn, before.sent, before.in_flight) == ({"queued": 19, "held": 2}, 3, 0)

    result = wave.run("campaigns", "cancel", "wave", check=False)
    assert "Cancel campaign 'wave'?" in refused(result)
    assert ("Cancelling 'wave' withdraws 21 unsent copies (19 queued, 2 held); 3 sent already stay sent. It cannot "
            "be resumed.") in result.stderr  # fmt: skip
    assert states(wave) == {"sent": 3, "held": 2, "queued": 19}
    with wave.sessions() as session:
        assert session.scalars(select(Campaign.status)).one() == "active"

    done = wave.run("campaigns", "cancel", "wave", "-y")
    assert "Campaign 'wave' cancelled." in done.stderr
    assert states(wave) == {"sent": 3, "cancelled": 21}
    again = wave.run("campaigns", "cancel", "wave")  # cancelled already: nothing is left to lose, nothing to ask
    assert again.returncode == 0 and "withdraws" not in again.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, {"queued": 24}), ("y", 0, {"cancelled": 24})])
def test_on_a_terminal_cancel_asks_and_a_no_changes_nothing(
    wave: Env, answer: str, code: int, left: dict[str, int]
) -> None:
    returncode, stderr = answered(wave, ["campaigns", "cancel", "wave"], answer)
    assert returncode == code, stderr
    assert "Cancel campaign 'wave'? [y/N]" in stderr
    assert ("No: nothing was changed." in stderr) == (answer == "n")
    assert states(wave) == left


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("answer", "code", "queued"), [("n", 1, 0), ("y", 0, 24)])
def test_on_a_terminal_queue_shows_the_letters_it_made_asks_and_queues_them_on_a_yes(
    env: Env, answer: str, code: int, queued: int
) -> None:
    rows = "".join(f"{email},Person {n},{role},{country},{language}\n"
                   for n, (email, role, country, language) in enumerate(MEPS + HEADS))  # fmt: skip
    do_import(env, env.write("list.csv", "email,name,role,country,language\n" + rows))
    env.run("campaigns", "create", "wave", "--template", "appeal", "--from", "European Appeal <appeal@example.org>")
    returncode, stderr = answered(env, ["campaigns", "queue", "wave"], answer)
    assert returncode == code, stderr
    assert "wave step 0: 24 letters would be queued" in stderr and "in 10 fr, 8 de, 6 en" in stderr
    assert "Queue these 24 letters? [y/N]" in stderr
    assert ("wave step 0: 24 letters queued" in stderr) == (answer == "y")
    with env.sessions() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == queued


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_a_terminal_queueing_checking_refreshing_and_sending_show_their_progress(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    configure(env, port, "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n")
    rows = "".join(f"{email},Person {n},{role},{country},{language}\n"
                   for n, (email, role, country, language) in enumerate(MEPS + HEADS))  # fmt: skip
    do_import(env, env.write("list.csv", "email,name,role,country,language\n" + rows))
    env.run("campaigns", "create", "wave", "--template", "appeal")
    queued = on_a_terminal(env, "campaigns", "queue", "wave", "--yes", stream="stderr").decode()
    assert "Queueing" in queued and "24/24" in queued
    assert "wave step 0: 24 letters queued" in queued
    checked = on_a_terminal(env, "templates", "check", "appeal", stream="stderr").decode()
    assert "Checking appeal" in checked and "24/24" in checked
    refreshed = on_a_terminal(env, "campaigns", "refresh", "wave", stream="stderr").decode()
    assert "Refreshing" in refreshed and "24/24" in refreshed and "wave: 0 changed, 24 already current" in refreshed
    sent = on_a_terminal(env, "send", "--yes", stream="stderr").decode()
    assert "Sending" in sent and "24/24" in sent and "24 sent, 0 failed" in sent
    assert len(handler.received) == 24


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, 24), ("y", 0, 23)])
def test_on_a_terminal_forget_says_what_it_erases_and_asks(wave: Env, answer: str, code: int, left: int) -> None:
    returncode, stderr = answered(wave, ["contacts", "forget", "mep0@parliament.example.eu"], answer)
    assert returncode == code, stderr
    erases = "erases these rows: contacts 1, outbox_messages 1, outbox_bodies 1."
    assert "Its letters not sent yet are withdrawn: 1." in stderr
    assert f"Forgetting mep0@parliament.example.eu {erases}" in stderr
    assert "Forget mep0@parliament.example.eu? This cannot be undone. [y/N]" in stderr
    assert ("No: nothing was changed." in stderr) == (answer == "n")
    assert states(wave).get("queued") == left
