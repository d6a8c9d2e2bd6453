"""Two `outreach send` processes at once: on PostgreSQL they share the outbox, on SQLite the second one says why
it cannot, or waits its turn."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.queueing import queue_step
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox

from .conftest import RUNS, Env
from .smtp_server import FaultyHandler, start_server
from .test_import import do_import

COUNT = 400
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def _queue(env: Env, port: int) -> None:
    rows = "".join(f"p{n}@host{n % 7}.example.org,Person {n}\n" for n in range(COUNT))
    do_import(env, env.write("many.csv", "email,name\n" + rows))
    create_campaign(env.sessions, "many", "appeal", "", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "many", Sender(Mailbox("appeal@example.org")), now=NOW)
    (env.root / ".env").write_text(
        f'OUTREACH_FROM="Appeal <appeal@example.org>"\nOUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={port}\n'
        "OUTREACH_SMTP_SECURITY=none\nOUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n",
        encoding="utf-8",
    )


def _start(env: Env, *args: str) -> subprocess.Popen[str]:
    return RUNS.popen(
        ["send", "--yes", "--json", *args], cwd=env.root, env=env.environ(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def test_two_senders_at_once(env: Env) -> None:
    handler = FaultyHandler(delay=0.01)  # slow enough that the two runs overlap
    controller = start_server(handler)
    try:
        _queue(env, controller.port)
        first = _start(env)
        deadline = time.monotonic() + 60
        while len(handler.received) < 20 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        second = _start(env)
        outputs = [process.communicate(timeout=120) for process in (first, second)]
        codes = [first.returncode, second.returncode]
        if env.url.startswith("postgresql"):
            assert codes == [0, 0], outputs
            reports = [json.loads(stdout) for stdout, _ in outputs]
            assert all(report["sent"] > 0 for report in reports), reports
            assert sum(report["sent"] for report in reports) == COUNT
        else:
            assert codes == [0, 6], outputs
            assert "another `outreach send` is running on this database (process" in outputs[1][1]
            assert outputs[1][0] == "", "nothing on stdout but the JSON document, and there is none"
            waited = _start(env, "--wait").communicate(timeout=60)
            assert json.loads(waited[0])["sent"] == 0, "the sender that waited found nothing left"
    finally:
        controller.stop()
    received = Counter(r.recipients[0] for r in handler.received)
    assert len(received) == COUNT and max(received.values()) == 1, "every message exactly once"
