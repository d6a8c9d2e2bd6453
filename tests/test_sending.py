"""Draining the outbox into a real SMTP server on loopback: each message once, failures where they belong."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from sqlalchemy import select

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.db.models import Contact, OutboxMessage
from outreach.outbox.pacing import Pacer, parse_rates
from outreach.outbox.sending import Sending, SendReport, drain_outbox, recover, retry_unknown, write_due_as_eml
from outreach.outbox.smtp import Reply, SmtpSettings, SmtpTransport
from outreach.rendering.mime import Mailbox
from outreach.rendering.previewing import Sender

from .conftest import Env
from .smtp_server import FaultyHandler, start_server
from .test_import import do_import

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
SENDER = Sender(Mailbox("appeal@example.org", "European Appeal"), "European Surge for Ukraine")


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


@pytest.fixture
def queued(env: Env) -> Env:
    do_import(env, env.write("list.csv", "email,name,country,language,role\n" + "".join(
        f"mp{n}@parliament{n % 3}.example.org,Member {n},FR,fr,mp\n" for n in range(12))))  # fmt: skip
    create_campaign(env.sessions, "wave", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=NOW)
    return env


def sending(port: int, clock: Clock, *, rate: str = "", domain_rate: str = "") -> Sending:
    transport = SmtpTransport(SmtpSettings("127.0.0.1", port, security="none", timeout=5))
    pacer = Pacer(parse_rates(rate), parse_rates(domain_rate))
    return Sending(transport, SENDER.mailbox, None, pacer, clock.wall, clock.monotonic, Random(1),  # type: ignore[arg-type]
                   unsubscribe_mailto="unsubscribe@example.org")  # fmt: skip


def drain(env: Env, how: Sending, **options: object) -> SendReport:
    """Drain and say goodbye to the server, as `outreach send` does."""
    try:
        return drain_outbox(env.sessions, how, **options)  # type: ignore[arg-type]
    finally:
        how.transport.close()


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
    assert sorted(r.recipients[0] for r in handler.received) == sorted(f"mp{n}@parliament{n % 3}.example.org"
                                                                        for n in range(12))  # fmt: skip
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
    assert retry_unknown(queued.sessions, clock.wall()) == 1
    assert drain(queued, sending(port, clock)).sent == 1


def test_a_sender_that_died_mid_commit_leaves_unknown_and_one_that_died_before_leaves_queued(
    queued: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    clock = Clock()

    class Dies(SmtpTransport):
        def send(self, sender: str, recipient: str, data: bytes, before_commit: Callable[[], None], *,
                 smtputf8: bool = False) -> Reply:  # fmt: skip
            before_commit()
            raise KeyboardInterrupt  # the process is killed right after the commit point

    dying = sending(port, clock)
    dying.transport = Dies(SmtpSettings("127.0.0.1", port, security="none"))
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
    [eml] = write_due_as_eml(env.sessions, how, env.root / "outbox")
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
    handler, port = server
    how = sending(port, Clock())
    written = write_due_as_eml(queued.sessions, how, queued.root / "outbox")
    how.transport.close()
    assert len(written) == 12 and handler.received == []
    assert states(queued) == {"queued": 12}
    parsed = email.message_from_bytes(written[0].read_bytes(), policy=email.policy.default)
    assert parsed["From"] == "European Appeal <appeal@example.org>"


def test_cli_send(queued: Env, server: tuple[FaultyHandler, int]) -> None:
    handler, port = server
    (queued.root / ".env").write_text(
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\n'
        f"OUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={port}\nOUTREACH_SMTP_SECURITY=none\n"
        "OUTREACH_RATE_LIMIT=100/second\nOUTREACH_DOMAIN_RATE_LIMIT=\n",
        encoding="utf-8",
    )
    result = queued.run("send")
    assert "12 sent, 0 to retry later, 0 failed, 0 unknown." in result.stderr
    assert len(handler.received) == 12
    assert queued.run("send", "--json").stdout.count('"sent": 0') == 1
