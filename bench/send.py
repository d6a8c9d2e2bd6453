"""Benchmark queueing and sending as a user runs them, against a minimal smtplib loop in the same run.

    .venv/bin/python bench/send.py                          # 10,000 messages: (a), (b) three times, (c), (d) (~8 min)
    .venv/bin/python bench/send.py --count 100000 --runs 1 --no-baseline --no-delayed --no-pipelining  # 100,000
    .venv/bin/python bench/send.py --json

(a) `outreach campaigns queue` of N copies of the shipped appeal, from start to exit, in copies per second.
    Also, on a copy of the same workspace, the same queueing as a campaigner runs it at a terminal: without
    --yes it makes and checks every letter, shows what it will queue, asks, and queues on a "y" (the answer is
    typed at once, so the time is the command's own; Linux and macOS only: a pseudo-terminal); then, after a line
    is added to the English text, `outreach campaigns refresh`, which makes every copy again and writes those
    that changed.
(b) `outreach send` of those N messages through one connection to an SMTP sink on loopback that answers at once
    (`bench/sink.py`, a process of its own), from start to exit, against the baseline: smtplib's `sendmail()` in a
    loop over one connection, with the same messages rendered beforehand (`outreach send --dry-run`). Measured
    twice: with the sink as aiosmtpd is (no PIPELINING), and with the sink offering PIPELINING (RFC 2920) as real
    servers do, which outreach uses and smtplib does not.
(c) `outreach send` with 4 connections to a sink that answers each DATA after 20 ms, as a server across a network
    does, against the same one-connection baseline on that same sink (`--delayed-count` messages, 4,000 by default:
    the baseline needs about 90 seconds for them), again without and with PIPELINING offered. The same run also
    times the baseline's loop itself on 4 connections (threads) to that sink: what the loop measured against
    reaches with 4 connections on this machine and sink, the ceiling for a sender that does not pipeline.
(d) what campaigners would otherwise reach for: mailmerge 2.3 (`pip install -e '.[bench]'`), sending the same
    appeal (the English text and HTML as one multipart/alternative template, the signatory list rendered into it,
    each recipient's salutation and address line in its CSV) to the first `--mailmerge-count` recipients of the
    same outbox (1,000 by default: mailmerge takes a connection a message), on a sink of its own, timed from start
    to exit. Against it, outreach's `campaigns queue` and first `send` of (a) and (b) together: rates, not times,
    as the counts differ. `--no-mailmerge` skips it; without mailmerge installed, it is skipped with a word.
    Also the most any sender could reach on this sink, from the CPU time the sink (one process, one thread) spent
    a message during that send: N messages cannot go faster than N times it, so queue + send cannot beat
    N / (queue seconds + N x sink CPU a message) over one connection.

Runs of (b) alternate with runs of the baseline, and the ratio is taken run by run, because this machine is shared
and noisy. After every run the sink reports what it received: the script fails unless each message arrived once.
Peak memory of `outreach send` is the peak RSS of its process (os.wait4). On Linux a child's ru_maxrss starts
from its parent's size at the fork, so the baseline runs in a process of its own and this one stays small.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import importlib.util
import json
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

HERE = Path(__file__).resolve().parent
OUTREACH = Path(sys.executable).parent / "outreach"
SENDER = "appeal@example.org"


@cache
def import_tools() -> ModuleType:
    """bench/import.py, for its generator and its way of timing a command."""
    spec = importlib.util.spec_from_file_location("bench_import", HERE / "import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_import"] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """bench/sink.py in a process of its own, for one run; with `ids`, it writes there the Message-ID of every
    message it received."""

    def __init__(self, delay: float, *, pipelining: bool = False, ids: Path | None = None) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), "--port", str(self.port), "--delay", str(delay)]
            + (["--pipelining"] if pipelining else []) + (["--ids", str(ids)] if ids else []),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")

    def cpu_seconds(self) -> float | None:
        """CPU time the sink has used so far (user and system); None where /proc cannot say (not Linux)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (proc(5))

    def stop(self) -> dict[str, int]:
        """Stop the sink and return what it received."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        return dict(json.loads(out.strip().splitlines()[-1]))


def _check(received: dict[str, int], count: int, what: str) -> None:
    if received["received"] != count or received["recipients"] != count or received["most_copies"] != 1:
        raise SystemExit(f"{what}: the sink received {received}, expected {count} messages, each once")


def baseline(folder: Path, port: int, count: int, connections: int = 1) -> float:
    """The minimal smtplib loop, in a process of its own: `sendmail()` for each of the first `count` pre-rendered
    messages (read into memory before the clock starts), over one connection or over `connections` at once (a
    thread each, taking the next message as they go); returns the seconds it took."""
    done = subprocess.run(
        [sys.executable, __file__, "--baseline-of", str(folder), "--port", str(port), "--count", str(count),
         "--connections", str(connections)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout)


def _baseline_process(folder: Path, port: int, count: int, connections: int) -> None:
    manifest = (folder / "recipients.tsv").read_text(encoding="utf-8").splitlines()[:count]
    pairs = (line.split("\t") for line in manifest)
    messages = iter([(recipient, (folder / name).read_bytes()) for name, recipient in pairs])
    taking = threading.Lock()

    def loop() -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        while True:
            with taking:
                recipient, data = next(messages, ("", b""))
            if not recipient:
                break
            smtp.sendmail(SENDER, [recipient], data, mail_options=() if recipient.isascii() else ("SMTPUTF8",))
        smtp.quit()

    started = time.perf_counter()
    if connections == 1:
        loop()
    else:
        threads = [threading.Thread(target=loop) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(time.perf_counter() - started)


def settings(workspace: Path, port: int, connections: int, database_url: str = "") -> None:
    """The workspace's .env: the sink, `connections` connections, no pace; the database at `database_url` (empty:
    the workspace's SQLite file)."""
    lines = [
        f"OUTREACH_DATABASE_URL={database_url}",
        f'OUTREACH_FROM="European Appeal <{SENDER}>"',
        "OUTREACH_SMTP_HOST=127.0.0.1",
        f"OUTREACH_SMTP_PORT={port}",
        "OUTREACH_SMTP_SECURITY=none",
        f"OUTREACH_SMTP_CONNECTIONS={connections}",
        "OUTREACH_RATE_LIMIT=",  # a local sink: no pace
        "OUTREACH_DOMAIN_RATE_LIMIT=",
        "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org",
    ]
    (workspace / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextmanager
def database(workspace: Path, database_url: str = "") -> Iterator[Connection]:
    """One transaction on the workspace's database (its SQLite file, or `database_url`), for the bench's own
    setup, resets and checks."""
    from sqlalchemy import create_engine  # here: the baseline's process (this script too) does without it

    engine = create_engine(database_url or f"sqlite:///{workspace / 'outreach.db'}")
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def requeue(workspace: Path, database_url: str = "") -> None:
    """Put every message back in the queue, as it was after `campaigns queue`."""
    from sqlalchemy import text

    with database(workspace, database_url) as db:
        db.execute(text(
            "UPDATE outbox_messages SET state = 'queued', sent_at = NULL, attempts = 0, claimed_by = NULL,"
            " lease_until = NULL, last_reply = NULL"
        ))  # fmt: skip


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `outreach ARGS` in `cwd`; a failure ends the benchmark with what the command said."""
    done = subprocess.run([str(OUTREACH), *args], cwd=cwd, capture_output=True, text=True,
                          env=import_tools().child_env())  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"outreach {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def make_workspace(tools: ModuleType, folder: Path, count: int, database_url: str = "") -> Path:
    """A fresh workspace `folder`/ws on its SQLite file or on `database_url` (a database of its own, empty), with
    `count` generated contacts, the shipped signatories and a campaign `everyone` for all of them, not yet queued."""
    from sqlalchemy import text

    generated = folder / "contacts.csv"
    # The generator makes about 2% invalid or duplicate rows: ask for a little more to queue `count` copies.
    tools.generate(generated, int(count * 1.03) + 20)
    run("init", str(folder / "ws"), cwd=folder)
    workspace = folder / "ws"
    settings(workspace, 25, 1, database_url)
    if database_url:
        run("db", "upgrade", cwd=workspace)
    run("contacts", "import", str(generated), cwd=workspace)
    run("signatories", "import", "contacts/signatories.csv", cwd=workspace)
    with database(workspace, database_url) as db:
        ids = list(db.scalars(text("SELECT id FROM contacts WHERE status = 'active' ORDER BY id")))
        db.execute(text("UPDATE contacts SET status = 'do_not_contact' WHERE id > :last"), {"last": ids[count - 1]})
    run("campaigns", "create", "everyone", "--template", "appeal", cwd=workspace)
    return workspace


def time_asked(workspace: Path, expected: int) -> float | None:
    """Seconds `outreach campaigns queue everyone` takes at a terminal, answered "y" at once (None: no pty)."""
    try:
        import pty
    except ImportError:
        return None
    controller, terminal = pty.openpty()
    try:
        started = time.perf_counter()
        process = subprocess.Popen([str(OUTREACH), "campaigns", "queue", "everyone"], cwd=workspace, stdin=terminal,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=import_tools().child_env())  # fmt: skip
        os.write(controller, b"y\n")
        _, stderr = process.communicate(timeout=600)
        seconds = time.perf_counter() - started
    finally:
        os.close(controller)
        os.close(terminal)
    if process.returncode != 0 or f"{expected} letters queued" not in stderr:
        raise SystemExit(f"outreach campaigns queue at a terminal exited {process.returncode}: {stderr.strip()}")
    return seconds


def one_core(args: list[str]) -> list[str]:
    """A command run on one core: its process (and any it forks) may use only the first core this one may."""
    pin = "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", pin, *args]


def time_queue(workspace: Path, expected: int, *, cores: int) -> float:
    """Seconds `outreach campaigns queue everyone --yes` takes from start to exit, on both cores or on one."""
    command = [str(OUTREACH), "campaigns", "queue", "everyone", "--json", "--yes"]
    started = time.perf_counter()
    done = subprocess.run(command if cores > 1 else one_core(command), cwd=workspace, capture_output=True, text=True,
                          env=import_tools().child_env())  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0 or json.loads(done.stdout)["queued"] != expected:
        raise SystemExit(f"outreach campaigns queue exited {done.returncode}: {done.stderr.strip()}")
    return seconds


def render_rate(count: int) -> float:
    """Copies a second of `bench/render.py` (one core, pinned by itself), run now."""
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "render.py"), "--count", str(count), "--json",
                           "--no-baseline"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return float(json.loads(done.stdout)["ours"]["per_second"])


def time_refresh(workspace: Path) -> tuple[float, int]:
    """Seconds `outreach campaigns refresh everyone` takes after a line is added to the English text, and how
    many copies it changed (every English one: the script fails otherwise)."""
    from sqlalchemy import text

    body = workspace / "templates" / "appeal" / "en" / "body.txt"
    body.write_text(body.read_text(encoding="utf-8") + "\nP.S. A line added after queueing.\n", encoding="utf-8")
    with database(workspace) as db:
        english = db.scalar(text("SELECT count(*) FROM outbox_messages WHERE language = 'en'"))
    started = time.perf_counter()
    report = json.loads(run("campaigns", "refresh", "everyone", "--json", cwd=workspace).stdout)
    seconds = time.perf_counter() - started
    if report["changed"] != english:
        raise SystemExit(f"campaigns refresh changed {report['changed']} copies, not the {english} English ones")
    return seconds, report["changed"]


def _send(tools: ModuleType, workspace: Path, port: int, connections: int, count: int, limit: int | None) -> Any:
    settings(workspace, port, connections)
    args = [str(OUTREACH), "send", "--yes", "--json"] + (["--limit", str(limit)] if limit else [])
    timed = tools.run_timed(args, workspace, workspace.parent)
    if timed.exit_code != 0:
        raise SystemExit(f"outreach send exited {timed.exit_code}: {timed.stderr}")
    report = json.loads(timed.stdout)
    if report["sent"] != count:
        raise SystemExit(f"outreach send sent {report['sent']} of {count}: {timed.stderr}")
    return timed


def send_once(tools: ModuleType, workspace: Path, count: int) -> tuple[Any, float | None]:
    """`outreach send` of the whole queue, again, over one connection to a fresh sink that answers at once: how it
    was timed, and the sink's CPU seconds a message (None where they cannot be read)."""
    requeue(workspace)
    sink = Sink(0.0)
    timed = _send(tools, workspace, sink.port, 1, count, None)
    used = sink.cpu_seconds()
    _check(sink.stop(), count, "outreach send")
    return timed, None if used is None else used / count


def _prerender(workspace: Path, folder: Path) -> None:
    """The messages as `outreach send` would send them (its dry run), and a manifest of their recipients."""
    from sqlalchemy import text

    run("send", "--dry-run", "--outbox-dir", str(folder), cwd=workspace)
    with database(workspace) as db:
        recipients = {id: recipient for id, recipient in db.execute(text("SELECT id, recipient FROM outbox_messages"))}
    files = sorted(path.name for path in folder.iterdir())
    lines = [f"{name}\t{recipients[int(name.split('-', 1)[0])]}" for name in files]
    (folder / "recipients.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed = email.message_from_bytes((folder / files[0]).read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"], "the pre-rendered messages are real messages"


def mailmerge_command() -> Path | None:
    """mailmerge's command in this virtualenv, or None when it is not installed."""
    command = Path(sys.executable).parent / "mailmerge"
    return command if importlib.util.find_spec("mailmerge") and command.exists() else None


MARKERS = {"salutation": "@@SALUTATION@@", "address_line": "@@ADDRESS_LINE@@"}


def _mailmerge_template(copy: Any) -> str:
    """The appeal as a mailmerge template: the copy rendered with markers for the salutation and the address line,
    which become mailmerge's variables again; everything else (the signatory list too) as rendered. Text and HTML
    go in one multipart/alternative message, as mailmerge's README shows."""
    import re

    text, html = copy.text, copy.html
    assert not re.search(r"\{[{%#]", text + html), "the rendered appeal holds nothing mailmerge's Jinja would read"
    line = MARKERS["address_line"]
    text = text.replace(f"{line}\n\n", "{% if address_line %}{{ address_line }}\n\n{% endif %}")
    html, found = re.subn(rf"(\n<p[^>]*>){line}(</p>)", r"{% if address_line %}\1{{ address_line|e }}\2{% endif %}",
                          html)  # fmt: skip
    assert found == 1 and line not in text, "the address line is where the template puts it"
    text = text.replace(MARKERS["salutation"], "{{ salutation }}")
    html = html.replace(MARKERS["salutation"], "{{ salutation|e }}")
    return (
        'TO: "{{ name }}" <{{ email }}>\n'
        f'FROM: "European Appeal" <{SENDER}>\n'
        f"SUBJECT: {copy.subject}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="=_appeal"\n\n'
        "--=_appeal\nContent-Type: text/plain; charset=utf-8\n\n"
        f"{text}\n"
        "--=_appeal\nContent-Type: text/html; charset=utf-8\n\n"
        f"{html}\n"
        "--=_appeal--\n"
    )


def mailmerge_files(workspace: Path, folder: Path, count: int, port: int) -> dict[str, int]:
    """mailmerge's template, database and server configuration in `folder`, for the first `count` recipients of
    the outbox that mailmerge can send to (an address with non-ASCII characters makes smtplib fail on a plain
    connection: those are left out and counted); checks that mailmerge renders what outreach renders."""
    import csv
    from dataclasses import replace
    from datetime import UTC, datetime

    from mailmerge.template_message import TemplateMessage
    from sqlalchemy import select

    from outreach.db.models import Contact, OutboxMessage
    from outreach.rendering.copies import Recipient
    from outreach.rendering.previewing import compile_template, letterhead, recipient_of
    from outreach.rendering.salutations import greeting, shipped_forms
    from outreach.workspace import open_workspace

    space = open_workspace(workspace, environ={})
    template = compile_template(space.templates, "appeal")
    forms = shipped_forms()
    folder.mkdir()
    with space.sessions() as session:
        head = letterhead(session, space.sender(), datetime.now(UTC))
        marked = Recipient(f"someone@{SENDER.split('@')[1]}", language="en", attributes=dict(MARKERS))
        (folder / "template.txt").write_text(_mailmerge_template(template.render(marked, head)), encoding="utf-8")
        outbox = session.execute(select(OutboxMessage.recipient, Contact).join(Contact)
                                 .order_by(OutboxMessage.id).limit(count * 2)).all()  # fmt: skip
        rows, left_out, checked = [], 0, False
        for address, contact in outbox:
            if len(rows) == count:
                break
            if not address.isascii():
                left_out += 1
                continue
            english = replace(recipient_of(contact), language="en")
            hello = greeting(english.addressee(), forms)
            rows.append({"email": address, "name": contact.name or "", "salutation": hello.salutation,
                         "address_line": hello.address_line})  # fmt: skip
            if not checked and hello.address_line:  # one copy with every part of the letter, compared
                ours = template.render(english, head)
                _, _, theirs = TemplateMessage(folder / "template.txt").render(rows[-1])
                parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in theirs.walk()
                         if not part.is_multipart()}  # fmt: skip
                assert parts["text/plain"].strip() == ours.text.strip(), "mailmerge sends the text outreach sends"
                assert parts["text/html"].strip() == (ours.html or "").strip(), "and the HTML"
                checked = True
    space.close()
    assert checked and len(rows) == count, f"{len(rows)} recipients for mailmerge, {count} asked for"
    with (folder / "database.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, ["email", "name", "salutation", "address_line"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n", encoding="utf-8")
    return {"recipients": len(rows), "left_out": left_out}


def time_mailmerge(command: Path, folder: Path) -> float:
    """Run mailmerge over the files in `folder`, sending every row; the seconds from start to exit. What it prints
    for each message goes to /dev/null, which costs it less than a terminal would."""
    args = [str(command), "--template", "template.txt", "--database", "database.csv", "--config", "server.conf",
            "--no-dry-run", "--no-limit", "--output-format", "text"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=import_tools().child_env())  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mailmerge exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return seconds


def compare_mailmerge(command: Path, workspace: Path, folder: Path, count: int, outreach: tuple[int, float],
                      fastest: float | None = None) -> dict[str, Any]:  # fmt: skip
    """(d): mailmerge sends `count` messages to a sink of its own; against `outreach`, (messages, seconds) of its
    queue and send together, and against `fastest`, the fewest seconds they could have taken on that sink; in
    messages a second."""
    from importlib.metadata import version

    sink = Sink(0.0)
    try:
        made = mailmerge_files(workspace, folder / "mailmerge", count, sink.port)
        seconds = time_mailmerge(command, folder / "mailmerge")
    finally:
        received = sink.stop()
    _check(received, made["recipients"], "mailmerge")
    theirs, ours = made["recipients"] / seconds, outreach[0] / outreach[1]
    return {"version": version("mailmerge"), **made, "seconds": round(seconds, 2), "per_second": round(theirs, 1),
            "outreach_messages": outreach[0], "outreach_seconds": round(outreach[1], 2),
            "outreach_per_second": round(ours, 1), "ratio": round(ours / theirs, 1)} | (
        {} if fastest is None else {"ceiling_per_second": round(outreach[0] / fastest, 1),
                                    "ceiling_ratio": round(outreach[0] / fastest / theirs, 1)})  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages to queue and send (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of (b) and of its baseline (default 3)")
    parser.add_argument("--delayed-count", type=int, default=4_000, help="messages for (c) (default 4,000)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines (for memory at large N)")
    parser.add_argument("--no-delayed", action="store_true", help="skip (c)")
    parser.add_argument("--no-pipelining", action="store_true", help="skip the runs against a PIPELINING sink")
    parser.add_argument("--no-mailmerge", action="store_true", help="skip (d), the comparison with mailmerge")
    parser.add_argument("--mailmerge-count", type=int, default=1_000, help="messages for (d) (default 1,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--baseline-of", type=Path, help=argparse.SUPPRESS)  # the baseline's own process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_of:
        _baseline_process(args.baseline_of, args.port, args.count, args.connections)
        return 0
    tools = import_tools()
    say = (lambda *a: None) if args.json else print
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-send-"))
    result: dict[str, Any] = {"benchmark": "send", "count": args.count}
    try:
        workspace = make_workspace(tools, folder, args.count)
        shutil.copytree(workspace, folder / "asked")
        asked = time_asked(folder / "asked", args.count)
        refreshed = time_refresh(folder / "asked")
        shutil.rmtree(folder / "asked")
        shutil.copytree(workspace, folder / "one-core")
        seconds = queue_seconds = time_queue(workspace, args.count, cores=2)
        queued = args.count
        one = time_queue(folder / "one-core", args.count, cores=1)
        shutil.rmtree(folder / "one-core")
        rendered = render_rate(min(args.count, 5_000))
        result["queue"] = {"seconds": round(seconds, 2), "per_second": round(queued / seconds),
                           "one_core_seconds": round(one, 2), "render_one_core_per_second": round(rendered),
                           "ratio_to_render": round(queued / seconds / rendered, 2)}  # fmt: skip
        say(f"(a) campaigns queue: {queued} copies in {seconds:.2f} s: {queued / seconds:,.0f} copies/s"
            f" ({one:.2f} s on one core); bench/render.py on one core right after: {rendered:,.0f} copies/s;"
            f" ratio {queued / seconds / rendered:.2f}")  # fmt: skip
        if asked is not None:
            result["queue"]["asked_seconds"] = round(asked, 2)
            say(f"(a) the same at a terminal, asked and answered yes: {asked:.2f} s")
        result["refresh"] = {"seconds": round(refreshed[0], 2), "changed": refreshed[1]}
        say(f"(a) campaigns refresh after an edit of the English text: {refreshed[1]} of {args.count} copies changed"
            f" in {refreshed[0]:.2f} s")  # fmt: skip

        with_baseline = not args.no_baseline
        if with_baseline:
            _prerender(workspace, folder / "eml")
        runs = []
        first_send: tuple[float, float | None] | None = None  # (b)'s first send for (d): seconds, sink CPU a message
        for number in range(args.runs):
            entry: dict[str, Any] = {}
            if with_baseline:
                sink = Sink(0.0)
                entry["baseline_per_second"] = round(args.count / baseline(folder / "eml", sink.port, args.count))
                _check(sink.stop(), args.count, "baseline")
            timed, sink_cpu = send_once(tools, workspace, args.count)
            first_send = first_send or (timed.seconds, sink_cpu)
            entry |= {"per_second": round(args.count / timed.seconds), "peak_rss_mb": round(timed.peak_rss_mb, 1)}
            if with_baseline:
                entry["ratio"] = round(entry["per_second"] / entry["baseline_per_second"], 2)
            if not args.no_pipelining:
                requeue(workspace)
                sink = Sink(0.0, pipelining=True)
                timed = _send(tools, workspace, sink.port, 1, args.count, None)
                _check(sink.stop(), args.count, "outreach send, PIPELINING")
                entry["pipelining_per_second"] = round(args.count / timed.seconds)
                if with_baseline:
                    entry["pipelining_ratio"] = round(entry["pipelining_per_second"] / entry["baseline_per_second"], 2)
            runs.append(entry)
            say(f"(b) run {number + 1}: " + ", ".join(f"{key} {value}" for key, value in entry.items()))
        if runs:  # --runs 0 skips (b)
            result["send"] = {"runs": runs, "median_per_second": statistics.median(r["per_second"] for r in runs)}
        if runs and with_baseline:
            result["send"]["median_ratio"] = statistics.median(r["ratio"] for r in runs)
            said = f"(b) median ratio to the baseline: {result['send']['median_ratio']}"
            if not args.no_pipelining:
                result["send"]["median_pipelining_ratio"] = statistics.median(r["pipelining_ratio"] for r in runs)
                said += f", {result['send']['median_pipelining_ratio']} with PIPELINING"
            say(said)

        if not args.no_delayed:
            count = min(args.delayed_count, args.count)
            entry = {"count": count}
            if with_baseline:
                sink = Sink(0.02)
                entry["baseline_per_second"] = round(count / baseline(folder / "eml", sink.port, count))
                _check(sink.stop(), count, "baseline, 20 ms")
            for key, pipelining in (("per_second", False), ("pipelining_per_second", True)):
                requeue(workspace)
                sink = Sink(0.02, pipelining=pipelining)
                timed = _send(tools, workspace, sink.port, 4, count, count)
                _check(sink.stop(), count, "outreach send, 4 connections, 20 ms")
                entry[key] = round(count / timed.seconds)
            if with_baseline:
                entry["ratio"] = round(entry["per_second"] / entry["baseline_per_second"], 2)
                entry["pipelining_ratio"] = round(entry["pipelining_per_second"] / entry["baseline_per_second"], 2)
                sink = Sink(0.02)  # the ceiling: the smtplib loop itself on 4 connections
                entry["four_baseline_per_second"] = round(count / baseline(folder / "eml", sink.port, count, 4))
                _check(sink.stop(), count, "baseline on 4 connections, 20 ms")
                entry["ceiling_ratio"] = round(entry["four_baseline_per_second"] / entry["baseline_per_second"], 2)
            result["delayed"] = entry
            say(f"(c) 20 ms sink, {count} messages: outreach send with 4 connections {entry['per_second']:,}/s, "
                f"{entry['pipelining_per_second']:,}/s to a sink offering PIPELINING"
                + (f"; baseline (one connection) {entry['baseline_per_second']:,}/s; ratios {entry['ratio']} and "
                   f"{entry['pipelining_ratio']}; the smtplib loop itself on 4 connections "
                   f"{entry['four_baseline_per_second']:,}/s: ratio {entry['ceiling_ratio']}, what the loop"
                   " measured against reaches itself" if with_baseline else ""))  # fmt: skip

        if not args.no_mailmerge:
            command = mailmerge_command()
            if command is None:
                say("(d) skipped: mailmerge is not installed; `pip install -e '.[bench]'` installs it")
            else:
                if first_send is None:  # --runs 0: one send of (b) for the comparison
                    timed, sink_cpu = send_once(tools, workspace, args.count)
                    first_send = (timed.seconds, sink_cpu)
                count = min(args.mailmerge_count, args.count)
                sent_seconds, sink_cpu = first_send
                outreach = (args.count, queue_seconds + sent_seconds)
                fastest = None if sink_cpu is None else queue_seconds + args.count * sink_cpu
                result["mailmerge"] = entry = compare_mailmerge(command, workspace, folder, count, outreach, fastest)
                say(f"(d) mailmerge {entry['version']}: {entry['recipients']:,} messages in {entry['seconds']:.1f} s:"
                    f" {entry['per_second']:,.1f} msg/s; outreach queue + send: {args.count:,} in"
                    f" {entry['outreach_seconds']:.1f} s: {entry['outreach_per_second']:,.1f} msg/s;"
                    f" ratio {entry['ratio']}x ({entry['left_out']} recipients left out: mailmerge cannot send to"
                    " addresses with non-ASCII characters)")  # fmt: skip
                if fastest is not None:
                    say(
                        f"(d) the sink spent {sink_cpu * 1000:.2f} ms of CPU a message in that send: over one"
                        f" connection, queue + send of {args.count:,} cannot take less than {fastest:.1f} s here:"
                        f" {entry['ceiling_per_second']:,.1f} msg/s, ratio {entry['ceiling_ratio']}x at most"
                    )
    finally:
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
