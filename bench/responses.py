"""Benchmark reading the inbox as a user runs it: `outreach responses poll --source maildir:PATH`.

    .venv/bin/python bench/responses.py                  # 10,000 inbound messages (about a minute)
    .venv/bin/python bench/responses.py --count 2000 --json

It makes a workspace whose campaign went out to N/2 contacts (queued by `outreach campaigns queue`, then marked
sent in the database: no SMTP here), and a Maildir of N inbound messages that answer those letters the way real
mail does: replies from Outlook, Gmail and Apple Mail in seven languages with the original quoted, out-of-office
replies, RFC 3464 bounces (hard and soft) and plain-text ones, delay notices, unsubscribe requests, ARF abuse
reports, and mail from strangers. It times the whole command from start to exit (read, classify, match,
separate each reply's text, record, apply effects), checks that every message was recorded with the kind it was
made as, and times a baseline in its own process for context: parsing the same files with the stdlib's
`email.message_from_bytes(policy=email.policy.default)` and reading each one's From, Subject and plain text.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import importlib.util
import json
import mailbox
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
OUTREACH = Path(sys.executable).parent / "outreach"
SEED = 20261129

QUOTE_HEADERS = {
    "en": "On Mon, 30 Nov 2026 at 10:00, European Appeal <appeal@example.org> wrote:",
    "fr": "Le lun. 30 nov. 2026 à 10:00, European Appeal <appeal@example.org> a écrit :",
    "de": "Am Mo., 30. Nov. 2026 um 10:00 Uhr schrieb European Appeal <appeal@example.org>:",
    "es": "El lun, 30 nov 2026 a las 10:00, European Appeal (<appeal@example.org>) escribió:",
    "it": "Il giorno lun 30 nov 2026 alle ore 10:00 European Appeal <appeal@example.org> ha scritto:",
    "pl": "pon., 30 lis 2026 o 10:00 European Appeal <appeal@example.org> napisał(a):",
    "cs": "po 30. 11. 2026 v 10:00 odesílatel European Appeal <appeal@example.org> napsal:",
}
ANSWERS = {
    "en": "Thank you for your letter. The minister has read the appeal and will answer in due course.",
    "fr": "Merci pour votre lettre. Le ministre a lu l'appel et vous répondra prochainement.",
    "de": "Vielen Dank für Ihr Schreiben. Die Ministerin hat den Appell gelesen und wird antworten.",
    "es": "Gracias por su carta. El ministro ha leído el llamamiento y responderá en breve.",
    "it": "Grazie per la sua lettera. Il ministro ha letto l'appello e risponderà a breve.",
    "pl": "Dziękujemy za list. Minister zapoznał się z apelem i odpowie wkrótce.",
    "cs": "Děkujeme za dopis. Ministr se s výzvou seznámil a brzy odpoví.",
}
AWAY = {
    "en": "Automatic reply: Appeal", "fr": "Réponse automatique : Appel", "de": "Abwesenheitsnotiz: Appell",
    "es": "Respuesta automática: Llamamiento", "it": "Risposta automatica: Appello",
    "pl": "Odpowiedź automatyczna: Apel", "cs": "Automatická odpověď: Výzva",
}  # fmt: skip
# The kinds the Maildir is made of, with their share: mostly replies and auto-replies, as an inbox is.
MIX = {"reply": 45, "auto_reply": 20, "hard_bounce": 10, "soft_bounce": 5, "delayed": 4, "unsubscribe": 6,
       "complaint": 2, "stranger": 8}  # fmt: skip
QUOTED = "\r\n".join(f"> {line}" for line in (
    "Your Excellency,", "", "we write to you on behalf of the signatories of the appeal for a European coalition",
    "that would protect Ukraine's skies and its people. The appeal, its signatories and its sources are",
    "attached below. We would be grateful for a word on whether you would add your name.", "",
    "With respect,", "European Appeal") * 6)  # fmt: skip


def _import_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_import", HERE / "import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_import"] = module
    spec.loader.exec_module(module)
    return module


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OUTREACH), *args], cwd=cwd, capture_output=True, text=True, check=True)


def _headers(sender: str, to: str, subject: str, n: int, extra: str = "") -> str:
    return (f"Return-Path: <{sender}>\r\nFrom: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Dec 2026 {n % 24:02d}:{n % 60:02d}:00 +0100\r\n"
            f"Message-ID: <in{n}.{SEED}@mail.example.net>\r\n"
            f"MIME-Version: 1.0\r\n{extra}")  # fmt: skip


def make(kind: str, n: int, rng: random.Random, recipient: str, message_id: str) -> bytes:
    """One inbound message of `kind` answering our letter `message_id` to `recipient`."""
    language = rng.choice(list(QUOTE_HEADERS))
    threading = f"In-Reply-To: {message_id}\r\nReferences: {message_id}\r\n"
    plain = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    if kind in ("reply", "stranger"):
        sender = recipient if kind == "reply" else f"someone{n}@elsewhere.example"
        signature = "-- \r\nOffice of the Minister\r\n"
        body = f"{ANSWERS[language]}\r\n\r\n{signature}\r\n{QUOTE_HEADERS[language]}\r\n{QUOTED}\r\n"
        return (_headers(sender, "appeal@example.org", "Re: Appeal", n, threading if kind == "reply" else "")
                + plain + body).encode()  # fmt: skip
    if kind == "auto_reply":
        extra = threading + ("Auto-Submitted: auto-replied\r\n" if n % 2 else "X-Auto-Response-Suppress: All\r\n")
        return (_headers(recipient, "appeal@example.org", AWAY[language], n, extra) + plain
                + "I am out of the office until 14 December with limited access to email.\r\n").encode()  # fmt: skip
    if kind == "unsubscribe":
        return (_headers(recipient, "unsubscribe@example.org", "unsubscribe", n) + plain + "unsubscribe\r\n").encode()
    if kind == "complaint":
        return _complaint(n, recipient, message_id)
    status, action = {"hard_bounce": ("5.1.1", "failed"), "soft_bounce": ("4.2.2", "failed"),
                      "delayed": ("4.4.1", "delayed")}[kind]  # fmt: skip
    if kind == "hard_bounce" and n % 3 == 0:  # an old-style plain-text bounce, as Exim writes them
        return (_headers("Mail Delivery System <Mailer-Daemon@mx.example.net>", "appeal@example.org",
                         "Mail delivery failed: returning message to sender", n,
                         f"X-Failed-Recipients: {recipient}\r\nAuto-Submitted: auto-replied\r\n") + plain
                + "This message was created automatically by mail delivery software.\r\n\r\nA message that you "
                  "sent could not be delivered to one or more of its recipients. This is a permanent error. The "
                  f"following address(es) failed:\r\n\r\n  {recipient}\r\n    host mx.example.net:\r\n    SMTP error "
                  "from remote mail server after RCPT TO:<x>:\r\n    550 5.1.1 User unknown\r\n\r\n------ This is a"
                  f" copy of the message, including all the headers. ------\r\n\r\nMessage-ID: {message_id}\r\n"
                  "From: appeal@example.org\r\nSubject: Appeal\r\n").encode()  # fmt: skip
    return _dsn(n, recipient, message_id, status, action)


def _dsn(n: int, recipient: str, message_id: str, status: str, action: str) -> bytes:
    boundary = f"dsn{n}"
    return (_headers("MAILER-DAEMON@mx.example.net (Mail Delivery System)", "appeal@example.org",
                     "Undelivered Mail Returned to Sender" if action == "failed" else "Delayed Mail (still being "
                     "retried)", n, "Auto-Submitted: auto-replied\r\nContent-Type: multipart/report; "
                     f'report-type=delivery-status; boundary="{boundary}"\r\n')
            + f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host "
              f"mx.example.net.\r\n\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
              f"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: {action}\r\n"
              f"Status: {status}\r\nDiagnostic-Code: smtp; 550 {status} mailbox problem\r\n\r\n--{boundary}\r\n"
              f"Content-Type: text/rfc822-headers\r\n\r\nFrom: appeal@example.org\r\nTo: {recipient}\r\n"
              f"Message-ID: {message_id}\r\nSubject: Appeal\r\n\r\n--{boundary}--\r\n").encode()  # fmt: skip


def _complaint(n: int, recipient: str, message_id: str) -> bytes:
    boundary = f"arf{n}"
    return (_headers("abuse@isp.example.net", "appeal@example.org", "Abuse report", n,
                     f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\r\n')
            + f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
              f"--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: "
              f"Bench/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n--{boundary}\r\n"
              f"Content-Type: text/rfc822-headers\r\n\r\nFrom: appeal@example.org\r\nTo: {recipient}\r\n"
              f"Message-ID: {message_id}\r\nSubject: Appeal\r\n\r\n--{boundary}--\r\n").encode()  # fmt: skip


def _workspace(folder: Path, contacts: int) -> Path:
    tools = _import_bench()
    generated = folder / "contacts.csv"
    tools.generate(generated, int(contacts * 1.03) + 20)
    workspace = folder / "ws"
    _run("init", str(workspace), cwd=folder)
    (workspace / ".env").write_text('OUTREACH_FROM="European Appeal <appeal@example.org>"\n'
                                    "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n")  # fmt: skip
    _run("contacts", "import", str(generated), cwd=workspace)
    _run("signatories", "import", "contacts/signatories.csv", cwd=workspace)
    with sqlite3.connect(workspace / "outreach.db") as db:
        ids = [row[0] for row in db.execute("SELECT id FROM contacts WHERE status = 'active' ORDER BY id")]
        db.execute(f"UPDATE contacts SET status = 'do_not_contact' WHERE id > {ids[contacts - 1]}")
    _run("campaigns", "create", "everyone", "--template", "appeal", cwd=workspace)
    _run("campaigns", "queue", "everyone", "--yes", cwd=workspace)
    with sqlite3.connect(workspace / "outreach.db") as db:  # sent, as far as the inbox is concerned
        db.execute("UPDATE outbox_messages SET state = 'sent', sent_at = '2026-11-30 09:00:00.000000'")
    return workspace


def _maildir(workspace: Path, path: Path, count: int) -> Counter[str]:
    with sqlite3.connect(workspace / "outreach.db") as db:
        letters = db.execute("SELECT recipient, message_id FROM outbox_messages ORDER BY id").fetchall()
    rng = random.Random(SEED)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    box = mailbox.Maildir(path)
    made: Counter[str] = Counter()
    for n, kind in enumerate(kinds):
        recipient, message_id = letters[n % len(letters)]
        box.add(make(kind, n, rng, recipient, message_id))
        made["reply" if kind == "stranger" else kind] += 1
    return made


def _poll(workspace: Path, path: Path) -> tuple[float, float, dict[str, Any]]:
    """`outreach responses poll` as a child; wall-clock seconds, its peak RSS in MB, and its JSON."""
    started = time.perf_counter()
    process = subprocess.Popen([str(OUTREACH), "responses", "poll", "--source", f"maildir:{path}", "--json"],
                               cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout and process.stderr
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"outreach responses poll failed:\n{err.decode()}")
    return seconds, usage.ru_maxrss / 1024, json.loads(out)


def _baseline(path: Path) -> float:
    """The stdlib's full parse of every file, in a process of its own; returns the seconds it took."""
    done = subprocess.run([sys.executable, __file__, "--baseline-of", str(path)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return float(done.stdout)


def _baseline_process(path: Path) -> None:
    files = sorted(p for sub in ("new", "cur") for p in (path / sub).iterdir())
    started = time.perf_counter()
    for file in files:
        message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        _ = (message["From"], message["Subject"])
        body = message.get_body(("plain",))  # type: ignore[attr-defined]
        _ = body.get_content() if body is not None else ""
    print(time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="inbound messages (default 10,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--baseline-of", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_of:
        _baseline_process(args.baseline_of)
        return 0
    say = (lambda *a: None) if args.json else print
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-responses-"))
    try:
        workspace = _workspace(folder, max(100, args.count // 2))
        made = _maildir(workspace, folder / "Maildir", args.count)
        seconds, rss, report = _poll(workspace, folder / "Maildir")
        if report["recorded"] != args.count or dict(report["kinds"]) != dict(made):
            raise SystemExit(f"recorded {report['recorded']} as {report['kinds']}, made {args.count} as {dict(made)}")
        baseline = _baseline(folder / "Maildir")
        again, _, second = _poll(workspace, folder / "Maildir")
        if second["recorded"] != 0:
            raise SystemExit(f"a second poll recorded {second['recorded']} messages again")
        result = {
            "benchmark": "responses", "count": args.count, "seconds": round(seconds, 2),
            "per_second": round(args.count / seconds), "peak_rss_mb": round(rss, 1), "kinds": dict(made),
            "unmatched": report["unmatched"], "baseline_per_second": round(args.count / baseline),
            "second_poll_seconds": round(again, 2),
        }  # fmt: skip
        say(f"responses poll: {args.count} messages in {seconds:.2f} s: {args.count / seconds:,.0f} messages/s, "
            f"peak RSS {rss:.1f} MB; every message recorded with the kind it was made as ({dict(made)})")  # fmt: skip
        say(f"baseline (stdlib parse with policy.default, From, Subject, plain text; no database): "
            f"{args.count / baseline:,.0f} messages/s; a second poll of the same Maildir: {again:.2f} s, "
            "0 new")  # fmt: skip
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
