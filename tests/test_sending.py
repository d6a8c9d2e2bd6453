"""Draining the outbox into a real SMTP server on loopback: each message once, failures where they belong."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import dkim
import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.contacts.tokens import read_unsubscribe_token
from outreach.db.models import Campaign, Contact, OutboxMessage
from outreach.outbox.claims import TakenOverError, recover
from outreach.outbox.pacing import Pacer
from outreach.outbox.records import requeue
from outreach.outbox.sending import Sending, SendReport, drain_outbox, write_due_letters
from outreach.outbox.smtp import Reply, SmtpSettings, SmtpTransport
from outreach.rates import parse_rates
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox
from outreach.workspace import read_secret

from .conftest import Env
from .smtp_server import FaultyHandler, free_port, start_server
from .test_import import do_import
from .test_signing import SELECTOR, make_key, resolver

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
SENDER = Sender(
    Mailbox("appeal@example.org", "European Appeal"),
    "European Surge for Ukraine",
    unsubscribe_mailto="unsubscribe@example.org",
)
EVERYONE = sorted(f"mp{n}@parliament{n % 3}.example.org" for n in range(12))  # the `queued` fixture's contacts


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = NOW
        self.seconds = 0.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.seconds += seconds


@pytest.fixture
def server() -> Iterator[tuple[FaultyHandler, int]]:
    handler = FaultyHandler()
    controller = start_server(handler)
    yield handler, controller.port
    controller.stop()


def queue_wave(env: Env, sender: Sender = SENDER) -> Env:
    """Twelve members of three parliaments, and the campaign `wave` queued for them, its letters from `sender`."""
    do_import(env, env.write("list.csv", "email,name,country,language,role\n" + "".join(
        f"mp{n}@parliament{n % 3}.example.org,Member {n},FR,fr,mp\n" for n in range(12))))  # fmt: skip
    create_campaign(env.sessions, "wave", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", sender, now=NOW)
    return env


@pytest.fixture
def queued(env: Env) -> Env:
    return queue_wave(env)


def sending(port: int, clock: Clock, *, rate: str = "", domain_rate: str = "", connections: int = 1) -> Sending:
    smtp = SmtpSettings("127.0.0.1", port, security="none", timeout=5)
    pacer = Pacer(parse_rates(rate), parse_rates(domain_rate))
    return Sending(lambda: SmtpTransport(smtp), pacer, clock.wall, clock.monotonic, Random(1), connections=connections,
                   sleep=clock.advance)  # fmt: skip


def drain(env: Env, how: Sending, **options: object) -> SendReport:
    """Drain as `outreach send` does (it says goodbye to the server at the end)."""
    return drain_outbox(env.sessions, how, **options)  # type: ignore[arg-type]


def configure(env: Env, port: int, more: str) -> None:
    """Settings for `outreach send` in the workspace: the sender, the server on loopback, and `more`."""
    (env.root / ".env").write_text(
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\n'
        f"OUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={port}\nOUTREACH_SMTP_SECURITY=none\n" + more,
        encoding="utf-8",
    )


def states(env: Env) -> dict[str, int]:
    with env.sessions() as session:
        found: dict[str, int] = {}
        for state in session.scalars(select(OutboxMessage.state)):
            found[state] = found.get(state, 0) + 1
        return found


def test_every_queued_message_arrives_once_with_its_message_id(queued: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    clock = Clock()
    report = drain(queued, sending(port, clock))
    assert (report.sent, report.failed, report.unknown) == (12, 0, 0)
    assert sorted(r.recipients[0] for r in handler.received) == EVERYONE
    with queued.sessions() as session:
        ids = set(session.scalars(select(OutboxMessage.message_id)))
    parsed = [email.message_from_bytes(r.data, policy=email.policy.default) for r in handler.received]
    assert {p["Message-ID"] for p in parsed} == ids
    assert all(p["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>" for p in parsed)
    assert drain(queued, sending(port, clock)).sent == 0, "nothing is sent twice"
    assert states(queued) == {"sent": 12}


def test_a_bad_address_fails_and_flags_the_contact_a_temporary_failure_comes_back(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.reject["mp0@parliament0.example.org"] = "550 5.1.1 <mp0@parliament0.example.org>: User unknown"
    handler.reject["mp1@parliament1.example.org"] = "451 4.3.0 Try again later"
    clock = Clock()
    report = drain(queued, sending(port, clock))
    assert (report.sent, report.failed, report.retried) == (10, 1, 1)
    with queued.sessions() as session:
        bounced = session.scalars(select(Contact).where(Contact.email == "mp0@parliament0.example.org")).one()
        assert bounced.status == "bounced"
    del handler.reject["mp1@parliament1.example.org"]
    assert drain(queued, sending(port, clock)).sent == 0, "not due yet"
    clock.advance(3600)
    assert drain(queued, sending(port, clock)).sent == 1
    assert states(queued) == {"sent": 11, "failed": 1}


def test_a_line_dropped_after_the_data_leaves_the_message_unknown_and_unsent_again(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.drop_after_data = True
    clock = Clock()
    report = drain(queued, sending(port, clock), limit=1)
    assert report.unknown == 1
    handler.drop_after_data = False
    assert drain(queued, sending(port, clock)).sent == 11
    assert states(queued) == {"sent": 11, "unknown": 1}
    assert requeue(queued.sessions, clock.wall(), states=("unknown",)) == 1
    assert drain(queued, sending(port, clock)).sent == 1


def test_a_sender_that_died_mid_commit_leaves_unknown_and_one_that_died_before_leaves_queued(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    clock = Clock()

    class Dies(SmtpTransport):
        def send(self, sender: str, recipient: str, data: bytes, before_commit: Callable[[], None], *,
                 smtputf8: bool = False, while_waiting: Callable[[], None] | None = None) -> Reply:  # fmt: skip
            before_commit()
            raise KeyboardInterrupt  # the process is killed right after the commit point

    dying = sending(port, clock)
    dying.connect = lambda: Dies(SmtpSettings("127.0.0.1", port, security="none"))
    with pytest.raises(KeyboardInterrupt):
        drain(queued, dying)
    assert states(queued) == {"committing": 1, "queued": 11}
    assert recover(queued.sessions, clock.wall()) == {"queued": 0, "unknown": 0}, "the lease still runs"
    clock.advance(600)
    report = drain(queued, sending(port, clock))
    assert report.recovered == {"queued": 0, "unknown": 1} and report.sent == 11


def test_the_pace_is_kept_per_domain_without_blocking_the_others(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    clock = Clock()
    report = drain(queued, sending(port, clock, domain_rate="2/hour"))
    assert report.sent == 6, "two for each of the three parliaments' servers"
    assert sorted({r.recipients[0].split("@")[1] for r in handler.received}) == [
        "parliament0.example.org", "parliament1.example.org", "parliament2.example.org"]  # fmt: skip
    clock.advance(3600)
    assert drain(queued, sending(port, clock, domain_rate="2/hour")).sent == 6


def test_a_campaigns_own_from_and_reply_to_are_on_what_it_sends(env: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    do_import(env, env.write("one.csv", "email,name,role\npm@example.org,Prime Minister,head_of_government\n"))
    create_campaign(env.sessions, "own", "appeal", "", sender="Coalition <coalition@example.net>",
                    reply_to="Desk <replies@example.net>", now=NOW)  # fmt: skip
    queue_step(env.sessions, env.root / "templates", "own", SENDER, now=NOW)
    how = sending(port, Clock())
    [eml] = write_due_letters(env.sessions, env.root / "outbox", NOW)
    assert drain(env, how).sent == 1
    for data in (eml.read_bytes(), handler.received[0].data):
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert (parsed["From"], parsed["Reply-To"]) == (
            "Coalition <coalition@example.net>",
            "Desk <replies@example.net>",
        )
    assert handler.received[0].sender == "coalition@example.net"
    assert "@example.net>" in parsed["Message-ID"], "Message-IDs are made under the sending domain"


def test_a_dry_run_writes_eml_files_and_changes_nothing(queued: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, _ = server
    written = write_due_letters(queued.sessions, queued.root / "outbox", NOW)
    assert len(written) == 12 and handler.received == []
    assert states(queued) == {"queued": 12}
    parsed = email.message_from_bytes(written[0].read_bytes(), policy=email.policy.default)
    assert parsed["From"] == "European Appeal <appeal@example.org>"


def test_cli_send(queued: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    configure(queued, port, "OUTREACH_RATE_LIMIT=100/second\nOUTREACH_DOMAIN_RATE_LIMIT=\n")
    result = queued.run("send", "--yes")
    assert "12 sent, 0 to retry later, 0 failed, 0 unknown." in result.stderr
    assert len(handler.received) == 12
    assert queued.run("send", "--json").stdout.count('"sent": 0') == 1


def test_several_connections_send_side_by_side_each_message_once(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.delay = 0.05  # a server across a network: each answer takes a while
    report = drain(queued, sending(port, Clock(), connections=4))
    assert report.sent == 12
    assert sorted(r.recipients[0] for r in handler.received) == EVERYONE
    assert len(handler.peers) == 4 and handler.most_active > 1, "four connections, working at the same time"
    assert states(queued) == {"sent": 12}


def test_a_421_closes_the_connection_and_holds_everything_back_then_sending_goes_on(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.reject["mp0@parliament0.example.org"] = "421 4.7.0 Too many connections, closing"
    clock = Clock()
    how = sending(port, clock)
    report = drain(queued, how)
    assert (report.sent, report.retried) == (11, 1)
    assert len(handler.peers) == 2, "the connection the server closed was opened again"
    assert clock.seconds >= how.server_pause, "everything waited after the 421"


def test_the_global_rate_waits_when_short_and_stops_the_drain_when_long(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    clock = Clock()
    assert drain(queued, sending(port, clock, rate="4/second")).sent == 12
    assert 2 <= clock.seconds < 3, "twelve at four a second, with a burst of four at the start"


def test_the_global_rate_stops_the_drain_when_the_wait_is_long_and_a_new_run_remembers(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    clock = Clock()
    report = drain(queued, sending(port, clock, rate="5/day"))
    assert report.sent == 5 and clock.seconds == 0, "a burst of five, then the next may go in about five hours"
    assert report.paused_until is not None and report.paused_until > clock.wall() + timedelta(hours=4)
    assert states(queued) == {"sent": 5, "queued": 7}, "what was claimed went back to the queue"
    clock.advance(3600)
    assert drain(queued, sending(port, clock, rate="5/day")).sent == 0, "the day's five are spent"


def test_the_per_domain_limit_remembers_what_an_earlier_run_sent(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    clock = Clock()
    assert drain(queued, sending(port, clock, domain_rate="2/hour"), limit=3).sent == 3
    clock.advance(60)
    report = drain(queued, sending(port, clock, domain_rate="2/hour"))
    assert report.sent == 3, "a new run starts from the two an hour already used, not from a full allowance"


def test_cli_send_signs_with_dkim_and_offers_one_click_unsubscribe(
    env: Env, server: tuple[FaultyHandler, int], tmp_path: Path
) -> None:
    handler, port = server
    key = make_key(tmp_path)
    configure(env, port, "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\nOUTREACH_SMTP_CONNECTIONS=3\n"
              "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n"
              "OUTREACH_PUBLIC_URL=https://appeal.example.org/\n"
              f"OUTREACH_DKIM_KEY={key.pem}\nOUTREACH_DKIM_SELECTOR={SELECTOR}\n")  # fmt: skip
    env.write("list.csv", "email,name,role\n" + "".join(f"mp{n}@parliament.example.org,Member {n},mp\n"
                                                        for n in range(12)))  # fmt: skip
    env.run("contacts", "import", "list.csv")
    env.run("campaigns", "create", "wave", "--template", "appeal")
    env.run("campaigns", "queue", "wave", "--yes")  # the letters are made with the List-Unsubscribe pair
    assert json.loads(env.run("send", "--yes", "--json").stdout)["sent"] == 12
    assert len(handler.received) == 12
    with env.sessions() as session:
        campaign = session.scalars(select(Campaign.id)).one()
        contacts = {email: id_ for email, id_ in session.execute(select(Contact.email, Contact.id))}
    for received in handler.received:
        assert dkim.verify(received.data, dnsfunc=resolver(key)), "the signature verifies"
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        link, mailto = parsed["List-Unsubscribe"].split(", ")
        assert mailto == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
        assert link.startswith("<https://appeal.example.org/u/") and link.endswith(">")
        token = link.removeprefix("<https://appeal.example.org/u/").removesuffix(">")
        recipient = parsed["To"].addresses[0].addr_spec
        assert read_unsubscribe_token(read_secret(env.root), token) == (contacts[recipient], campaign), (
            "the signed token names the letter's contact and campaign"
        )
        assert token != parsed["Message-ID"].strip("<>").rpartition("@")[0]
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        signed = parsed["DKIM-Signature"].replace(" ", "").replace("\r\n", "").lower()
        assert "list-unsubscribe:list-unsubscribe-post" in signed.split("h=")[1], "RFC 8058 3: both are signed"


def test_a_password_never_shows_and_a_refused_login_stops_the_sender(queued: Env) -> None:
    handler = FaultyHandler()
    controller = start_server(handler, users={"campaign": "right horse battery"})
    try:
        configure(queued, controller.port,
                  "OUTREACH_SMTP_USERNAME=campaign\nOUTREACH_SMTP_PASSWORD=wrong staple secret\n")  # fmt: skip
        result = queued.run("send", "--yes", check=False)
    finally:
        controller.stop()
    assert result.returncode != 0 and "refused the login for 'campaign'" in result.stderr
    assert "wrong staple secret" not in result.stderr + result.stdout
    assert states(queued) == {"queued": 12}, "nothing was lost: every message waits for the right password"
    with queued.sessions() as session:
        replies = " ".join(filter(None, session.scalars(select(OutboxMessage.last_reply))))
    assert "wrong staple secret" not in replies


def test_a_server_that_cannot_be_reached_stops_the_run_and_uses_up_no_attempt(queued: Env) -> None:
    configure(queued, free_port(), "")
    result = queued.run("send", "--yes", check=False)
    assert result.returncode != 0
    assert "cannot use the SMTP server: ConnectionRefusedError" in result.stderr
    with queued.sessions() as session:
        assert set(session.scalars(select(OutboxMessage.attempts))) == {0}
    assert states(queued) == {"queued": 12}


def test_a_sender_whose_claim_was_taken_back_does_not_send_it(queued: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    clock = Clock()

    class Overtaken(SmtpTransport):
        """Another sender took the message back (its lease ran out) and claimed it again, mid-transaction."""

        def send(self, sender: str, recipient: str, data: bytes, before_commit: Callable[[], None], *,
                 smtputf8: bool = False, while_waiting: Callable[[], None] | None = None) -> Reply:  # fmt: skip
            with queued.sessions.begin() as session:
                session.execute(update(OutboxMessage).where(OutboxMessage.recipient == recipient)
                                .values(claimed_by="elsewhere:1"))  # fmt: skip
            return super().send(sender, recipient, data, before_commit, smtputf8=smtputf8, while_waiting=while_waiting)

    overtaken = sending(port, clock)
    overtaken.connect = lambda: Overtaken(SmtpSettings("127.0.0.1", port, security="none", timeout=5))
    with pytest.raises(TakenOverError, match="another sender took over outbox message"):
        drain(queued, overtaken)
    assert handler.received == [], "its end-of-data mark never left: the other sender owns the message now"


def test_a_line_dropped_before_the_data_is_a_temporary_failure_and_the_message_goes_later_once(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.hang_up_at.add("mp4@parliament1.example.org")
    clock = Clock()
    report = drain(queued, sending(port, clock))
    assert (report.sent, report.retried, report.unknown) == (11, 1, 0), "nothing had gone: safe to send again"
    handler.hang_up_at.clear()
    clock.advance(3600)
    assert drain(queued, sending(port, clock)).sent == 1
    assert sorted(r.recipients[0] for r in handler.received) == EVERYONE


def test_cli_outbox_lists_by_state_and_queues_failed_and_unknown_again_but_never_a_sent_one(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    handler.reject["mp0@parliament0.example.org"] = "550 5.7.1 Message refused by policy"
    configure(queued, port, "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n")
    assert json.loads(queued.run("send", "--yes", "--json").stdout)["failed"] == 1
    listed = json.loads(queued.run("outbox", "list", "--state", "failed", "--json").stdout)
    assert listed["counts"] == {"sent": 11, "failed": 1}
    [failed] = listed["messages"]
    assert (failed["recipient"], failed["state"], failed["attempts"]) == ("mp0@parliament0.example.org", "failed", 1)
    assert failed["last_reply"].startswith("550 5.7.1")
    assert (listed["shown"], listed["total"]) == (1, 1), "the failed ones: one, shown"
    human = queued.run("outbox", "list").stderr
    assert "11 sent" in human and "1 failed" in human and "shown" not in human
    page = queued.run("outbox", "list", "--limit", "5")
    assert "5 of 12 shown, the most recently changed first: --limit 0 shows all." in page.stderr
    assert json.loads(queued.run("outbox", "list", "--limit", "0", "--json").stdout)["shown"] == 12

    sent_id = next(m["id"] for m in json.loads(queued.run("outbox", "list", "--json").stdout)["messages"]
                   if m["state"] == "sent")  # fmt: skip
    refused = queued.run("outbox", "retry", str(sent_id), check=False)
    assert refused.returncode != 0 and f"outbox message {sent_id} is sent" in refused.stderr

    del handler.reject["mp0@parliament0.example.org"]
    assert json.loads(queued.run("outbox", "retry", str(failed["id"]), "--json").stdout) == {"queued": 1}
    assert json.loads(queued.run("send", "--json").stdout)["sent"] == 1
    assert sorted(r.recipients[0] for r in handler.received) == EVERYONE, "each once, the refused one at last"
    assert queued.run("outbox", "retry", "--state", "sent", check=False).returncode != 0
