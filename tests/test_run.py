"""`outreach run`, the scheduler, as real processes against a real SMTP server: it sends what is due and what falls
due later, survives kill -9, stops cleanly on SIGTERM, leads alone, and holds what it missed long ago."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.config import load_settings
from outreach.db.models import OutboxMessage, SchedulerLease, as_utc
from outreach.errors import ConfigError
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox

from .conftest import RUNS, Env
from .imap_server import Dovecot
from .smtp_server import FaultyHandler, start_server
from .test_import import do_import
from .test_sending import configure, server, states

__all__ = ["server"]  # fixture

NO_PACE = "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n"


def now() -> datetime:
    return datetime.now(UTC)


def queue(env: Env, count: int, *, at: datetime) -> list[str]:
    """A campaign of `count` contacts, queued due at `at`; their addresses."""
    addresses = [f"p{n}@host{n % 7}.example.org" for n in range(count)]
    do_import(
        env, env.write("many.csv", "email,name\n" + "".join(f"{a},Person {n}\n" for n, a in enumerate(addresses)))
    )
    create_campaign(env.sessions, "many", "appeal", "", sender=None, reply_to=None, now=at)
    queue_step(env.sessions, env.root / "templates", "many", Sender(Mailbox("appeal@example.org")), now=at)
    return addresses


def due_at(env: Env, addresses: list[str], when: datetime) -> None:
    with env.sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.recipient.in_(addresses))
                        .values(next_attempt_at=when))  # fmt: skip


class Scheduler:
    """`outreach run` as a background process of the test, its stderr in a file."""

    def __init__(self, env: Env, *args: str) -> None:
        self.log = env.root / f"run-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.process = RUNS.popen(
                ["run", *args], cwd=env.root, env=env.environ(),
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self, number: signal.Signals = signal.SIGTERM, timeout: float = 15) -> tuple[int, float]:
        """Send the signal; the exit code and how long the process took to exit."""
        started = time.monotonic()
        os.kill(self.process.pid, number)
        self.process.wait(timeout)
        return self.process.returncode, time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def state_of(env: Env) -> dict[str, str]:
    with env.sessions() as session:
        return dict(session.execute(select(OutboxMessage.recipient, OutboxMessage.state)).all())


def test_run_once_sends_what_is_due_and_then_exits_at_once(env: Env, server: tuple[FaultyHandler, int]) -> None:
    addresses = queue(env, 12, at=now() - timedelta(minutes=1))
    handler, port = server
    configure(env, port, NO_PACE)
    first = env.run("run", "--yes", "--once")
    assert sorted(r.recipients[0] for r in handler.received) == sorted(addresses)
    assert "sent 12, 0 to retry later, 0 failed, 0 unknown." in first.stderr
    assert "Nothing more is due after 2 rounds: 12 sent (0 to retry later, 0 failed, 0 unknown)" in first.stderr
    started = time.monotonic()
    again = env.run("run", "--yes", "--once", "--json")
    assert json.loads(again.stdout) == {"held": 0, "sent": 0, "follow_ups": 0, "polled": 0, "rounds": 1}
    assert time.monotonic() - started < 10 and len(handler.received) == 12
    with env.sessions() as session:
        lease = session.get_one(SchedulerLease, "run")
    assert lease.holder.rpartition(":")[2].isdigit() and as_utc(lease.seen_at) > as_utc(lease.started_at)


def test_run_once_queues_the_follow_ups_that_fell_due_and_sends_them_threaded(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    addresses = queue(env, 6, at=now() - timedelta(minutes=1))
    handler, port = server
    configure(env, port, NO_PACE)
    env.run("run", "--yes", "--once")
    env.run("campaigns", "followup", "many", "--after", "30m", "--template", "appeal-reminder")
    assert json.loads(env.run("run", "--yes", "--once", "--json").stdout)["follow_ups"] == 0, "not due for 30 minutes"
    with env.sessions.begin() as session:  # as if the first letters had gone an hour ago
        session.execute(update(OutboxMessage).values(sent_at=now() - timedelta(hours=1)))
    done = json.loads(env.run("run", "--yes", "--once", "--json").stdout)
    assert (done["follow_ups"], done["sent"]) == (6, 6)
    assert Counter(r.recipients[0] for r in handler.received) == dict.fromkeys(addresses, 2)
    firsts = {r.recipients[0]: r.data for r in handler.received[:6]}
    for received in handler.received[6:]:
        lines = firsts[received.recipients[0]].split(b"\r\n")
        first_id = next(line for line in lines if line.startswith(b"Message-ID: ")).split(b": ", 1)[1]
        assert b"In-Reply-To: " + first_id in received.data


def test_a_killed_scheduler_restarted_sends_everything_once_and_what_falls_due_later_on_time(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    addresses = queue(env, 300, at=now() - timedelta(minutes=1))
    later = addresses[::3]  # due only once the restarted scheduler has sent the rest: one of its later ticks sends them
    due_at(env, later, now() + timedelta(hours=1))
    handler, port = server
    configure(env, port, NO_PACE)
    first = Scheduler(env, "--yes")
    try:
        wait_for(lambda: len(handler.received) >= 40 or first.process.poll() is not None, "the first sends")
        first.kill()  # SIGKILL, part way through the drain
    finally:
        first.kill()
    assert first.process.returncode == -signal.SIGKILL
    assert len(handler.received) < len(addresses) - len(later), "it finished before it could be killed"

    def left(among: list[str]) -> bool:
        found = state_of(env)
        return any(found[address] in ("queued", "sending", "committing") for address in among)

    second = Scheduler(env, "--yes", "--wait")  # on PostgreSQL, the dead session's lock may take a moment to go
    try:
        wait_for(lambda: not left(sorted(set(addresses) - set(later))), "the rest of what was due", 30)
        due_at(env, later, later_at := now() + timedelta(seconds=1))
        wait_for(lambda: not left(later), "what fell due later", 30)
        assert second.process.poll() is None, "the scheduler keeps running"
        code, took = second.stop(signal.SIGTERM)
    finally:
        second.kill()
    assert code == 0 and took < 5, second.stderr()
    received = Counter(r.recipients[0] for r in handler.received)
    assert [address for address, times in received.items() if times > 1] == [], "an address got two copies"
    final = state_of(env)
    unknown = {address for address, state in final.items() if state == "unknown"}
    assert len(unknown) <= 1, "only the message caught between the end of data and the answer is unknown"
    sent = {address for address, state in final.items() if state == "sent"}
    assert sent | unknown == set(addresses) and set(received) - unknown == sent
    with env.sessions() as session:
        sent_at = session.scalars(select(OutboxMessage.sent_at).where(OutboxMessage.recipient.in_(later))).all()
    assert all(when is not None and as_utc(when) >= later_at for when in sent_at), "none went before it was due"


def test_one_scheduler_leads_a_database_and_another_can_wait_for_it(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    _, port = server
    configure(env, port, NO_PACE)
    leader = Scheduler(env)
    waiting: Scheduler | None = None
    try:
        wait_for(lambda: "running as" in leader.stderr(), "the leader to start", 20)
        second = env.run("run", check=False)
        assert second.returncode == 6, second.stderr
        [line] = second.stderr.strip().splitlines()
        assert "another `outreach run` is running on this database" in line and "since" in line
        assert str(leader.process.pid) in line, "the line names the leader"
        waiting = Scheduler(env, "--wait")
        time.sleep(1.5)
        assert waiting.process.poll() is None and "running as" not in waiting.stderr()
        assert leader.stop() == (0, pytest.approx(0, abs=5))
        wait_for(lambda: "running as" in waiting.stderr(), "the waiting one to take over", 20)  # type: ignore[union-attr]
        assert waiting.stop()[0] == 0
    finally:
        leader.kill()
        if waiting:
            waiting.kill()


def test_what_fell_due_long_ago_while_no_scheduler_ran_is_held_what_fell_due_lately_is_sent(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    start = now()
    long_ago, lately, before, early = queue(env, 4, at=start - timedelta(hours=5))
    due_at(env, [long_ago, lately], start - timedelta(hours=2))
    due_at(env, [before], start - timedelta(minutes=10))
    due_at(env, [early], start - timedelta(hours=4))  # due while the last scheduler still ran: merely late
    with env.sessions.begin() as session:
        session.add(SchedulerLease(name="run", holder="elsewhere:1", started_at=start - timedelta(hours=6),
                                   seen_at=start - timedelta(hours=3)))  # fmt: skip
    handler, port = server
    configure(env, port, NO_PACE)
    first = env.run("run", "--yes", "--once", "--json")
    assert json.loads(first.stdout)["held"] == 2 and json.loads(first.stdout)["sent"] == 2
    assert ("2 messages fell due more than 1h ago while no scheduler ran: held; `outreach outbox release` sends "
            "them.") in first.stderr  # fmt: skip
    assert sorted(r.recipients[0] for r in handler.received) == sorted([before, early])
    assert {address: state for address, state in state_of(env).items() if state == "held"} == {
        long_ago: "held", lately: "held"}  # fmt: skip
    assert "Released 2 held messages" in env.run("outbox", "release").stderr
    again = json.loads(env.run("run", "--yes", "--once", "--json").stdout)
    assert (again["held"], again["sent"]) == (0, 2), "released, they go; the lease was seen just now"
    assert states(env) == {"sent": 4}


def test_sigterm_mid_drain_finishes_the_message_in_flight_and_exits_0(env: Env) -> None:
    handler = FaultyHandler(delay=0.6)
    controller = start_server(handler)
    try:
        queue(env, 12, at=now() - timedelta(minutes=1))
        configure(env, controller.port, NO_PACE)
        running = Scheduler(env, "--yes", "--json")
        try:
            # One letter sent and the next in flight: on a busy machine the first seen committing may be the first.
            wait_for(lambda: {"sent", "committing"} <= set(state_of(env).values()), "a send and one in flight", 20)
            code, took = running.stop(signal.SIGTERM)
            output = running.process.stdout.read().decode() if running.process.stdout else ""
        finally:
            running.kill()
    finally:
        controller.stop()
    assert code == 0 and took < 5, running.stderr()
    assert "Stopping after the messages in flight" in running.stderr()
    final = states(env)
    assert set(final) <= {"sent", "queued"}, "nothing left mid-send"
    assert final["sent"] == len(handler.received) >= 2 and final["queued"] >= 1
    assert json.loads(output)["sent"] == final["sent"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_once_reads_the_inbox_too_when_one_is_configured(
    env: Env, server: tuple[FaultyHandler, int], dovecot: Dovecot
) -> None:
    handler, port = server
    queue(env, 2, at=now() - timedelta(minutes=1))
    with dovecot.new_folder("run") as (client, folder):
        reply = b"From: Person 0 <p0@host0.example.org>\r\nTo: appeal@example.org\r\nSubject: Re: Appeal\r\n"
        client.append(folder, reply + b"Message-ID: <r1@host0.example.org>\r\n\r\nI will sign.\r\n")
    configure(env, port, NO_PACE + f"OUTREACH_IMAP_HOST={dovecot.host}\nOUTREACH_IMAP_PORT={dovecot.port}\n"
              f"OUTREACH_IMAP_SECURITY=none\nOUTREACH_IMAP_USERNAME={dovecot.username}\n"
              f"OUTREACH_IMAP_PASSWORD={dovecot.password}\nOUTREACH_IMAP_FOLDER={folder}\n")  # fmt: skip
    result = env.run("run", "--yes", "--once", "--json")
    assert json.loads(result.stdout) == {"held": 0, "sent": 2, "follow_ups": 0, "polled": 1, "rounds": 2}
    assert len(handler.received) == 2 and "recorded 1 new responses (1 reply)" in result.stderr


@pytest.mark.parametrize(("value", "seconds"), [("3600", 3600), ("90m", 5400), ("1h", 3600), ("2d", 172800)])
def test_the_misfire_grace_reads_seconds_or_a_unit(tmp_path: Path, value: str, seconds: int) -> None:
    assert load_settings(tmp_path, {"OUTREACH_MISFIRE_GRACE": value}).misfire_grace == seconds


def test_a_misfire_grace_that_is_no_duration_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OUTREACH_MISFIRE_GRACE is 'soon'"):
        load_settings(tmp_path, {"OUTREACH_MISFIRE_GRACE": "soon"})


@pytest.mark.postgres
def test_a_scheduler_whose_lock_connection_breaks_knows_it_no_longer_leads(tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    from outreach.scheduler import lead
    from outreach.workspace import init_workspace, open_workspace

    environ = {"OUTREACH_DATABASE_URL": postgres_url}
    init_workspace(tmp_path / "ws", environ)
    first, second = open_workspace(tmp_path / "ws", environ), open_workspace(tmp_path / "ws", environ)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with lead(first, "host:1", wait=False) as still_leads:
            assert still_leads()
            with admin.connect() as connection:  # the server drops the lock's session (a restart, a network cut)
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE application_name = 'outreach run host:1'"))  # fmt: skip
            assert not still_leads(), "the lead went with the session"
            with lead(second, "host:2", wait=False) as other_leads:
                assert other_leads(), "and another scheduler can take it"
    finally:
        admin.dispose()
        first.close()
        second.close()
