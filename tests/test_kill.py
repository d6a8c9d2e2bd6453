"""Kill -9 `outreach send` part way through and start it again: no address twice, none missing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.db.models import OutboxMessage
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox

from .conftest import RUNS, Env
from .smtp_server import FaultyHandler, start_server
from .test_import import do_import

COUNT = 1500
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def test_a_killed_sender_restarted_sends_everything_once(env: Env) -> None:
    rows = "".join(f"p{n}@host{n % 7}.example.org,Person {n}\n" for n in range(COUNT))
    do_import(env, env.write("many.csv", "email,name\n" + rows))
    create_campaign(env.sessions, "many", "appeal", "", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "many", Sender(Mailbox("appeal@example.org")), now=NOW)
    handler = FaultyHandler()
    controller = start_server(handler)
    try:
        (env.root / ".env").write_text(
            'OUTREACH_FROM="Appeal <appeal@example.org>"\nOUTREACH_SMTP_HOST=127.0.0.1\n'
            f"OUTREACH_SMTP_PORT={controller.port}\nOUTREACH_SMTP_SECURITY=none\n"
            "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n",
            encoding="utf-8",
        )
        kills = 0
        for _ in range(3):  # kill it a few times at different moments, then let it finish
            process = RUNS.popen(
                ["send", "--yes"], cwd=env.root, env=env.environ(),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            target = len(handler.received) + 150 + 97 * kills
            deadline = time.monotonic() + 60
            while len(handler.received) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.wait()
        final = env.run("send", "--yes")
        assert final.returncode == 0
    finally:
        controller.stop()
    assert kills >= 2, "the sender finished before it could be killed: raise COUNT"
    received = Counter(r.recipients[0] for r in handler.received)
    assert [address for address, times in received.items() if times > 1] == [], "an address got two copies"
    with env.sessions() as session:
        state_of = dict(session.execute(select(OutboxMessage.recipient, OutboxMessage.state)).all())
    unknown = {address for address, state in state_of.items() if state == "unknown"}
    assert len(unknown) <= kills, "only a message caught between the end of data and the answer is unknown"
    assert {address for address, state in state_of.items() if state == "sent"} | unknown == set(state_of)
    assert set(received) - unknown == {address for address, state in state_of.items() if state == "sent"}
    assert len(state_of) == COUNT
