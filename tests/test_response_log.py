"""The response log as an auditor reads it: for each message, what it is and how that was told, whom a bounce names
with what status, which letter of ours it names and where, how it was matched, its own Message-ID, where it was read
and when it arrived; and its raw bytes exactly as stored. On SQLite and PostgreSQL, from real-world samples."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

from .conftest import RUNS, Env

SAMPLES = Path(__file__).parent / "samples" / "inbound"
FILES = ("bounce-postfix-user-unknown.eml", "bounce-qmail-no-mailbox.eml", "complaint-arf-abuse.eml",
         "reply-gmail.eml", "auto-reply-en-exchange.eml")  # fmt: skip


def polled(env: Env, messages: list[bytes]) -> dict[str, dict[str, object]]:
    """Poll a Maildir of these messages with the real command; the JSON of `responses list`, by sender."""
    folder = mailbox.Maildir(env.root / "in")
    for raw in messages:
        folder.add(raw)
    env.run("responses", "poll", "--source", "maildir:in")
    listed = json.loads(env.run("responses", "list", "--json").stdout)
    assert listed["shown"] == listed["total"] == len(messages)
    return {entry["sender"]: entry for entry in listed["responses"]}


def test_the_json_of_each_kind_carries_what_an_auditor_checks(env: Env) -> None:
    found = polled(env, [(SAMPLES / name).read_bytes() for name in FILES])
    dsn = found["MAILER-DAEMON@mail.appeal.example.org"]
    assert (dsn["kind"], dsn["sub_kind"], dsn["status"]) == ("hard_bounce", "dsn", "5.1.1")
    assert dsn["bounced"] == [{"address": "m.mustermann@bundestag.example", "action": "failed", "status": "5.1.1",
                               "diagnostic": "550 5.1.1 <m.mustermann@bundestag.example>: Recipient address "
                                             "rejected: User unknown in virtual mailbox table"}]  # fmt: skip
    assert dsn["original"] == {"message_id": "<1a2b3c4d.20250410T090000@appeal.example.org>", "found_in": "report"}
    assert dsn["message_id"] == "<20250410070004.4ZHk2m0Q3Cz9vBx@mail.appeal.example.org>"
    assert dsn["date_header"] == "2025-04-10T07:00:04+00:00"

    free_text = found["MAILER-DAEMON@mail.senat.example"]
    assert (free_text["kind"], free_text["sub_kind"]) == ("hard_bounce", "free-text")
    assert [(b["address"], b["status"]) for b in free_text["bounced"]] == [("p.dupont@senat.example", "5.1.1")]
    assert free_text["original"]["found_in"] == "quoted-text"

    complaint = found["staff@fbl.mailbox.example"]
    assert (complaint["kind"], complaint["sub_kind"], complaint["original"]["found_in"]) == (
        "complaint",
        "arf",
        "report",
    )

    answer = found["joanna.kowalczyk@senat-office.example"]
    assert (answer["kind"], answer["sub_kind"], answer["bounced"]) == ("reply", None, [])
    assert answer["original"] == {"message_id": "<5a6b7c8d.20250410T090000@appeal.example.org>",
                                  "found_in": "in-reply-to"}  # fmt: skip
    away = found["s.whitfield@parliament.example"]
    assert (away["kind"], away["sub_kind"]) == ("auto_reply", "rfc3834")

    for entry in found.values():
        # Not ours (the samples answer letters of another workspace): named, but matched to nothing.
        assert entry["matched"] == {"method": None, "outbox_message_id": None, "message_id": None, "contact_id": None,
                                    "contact": None}  # fmt: skip
        source = entry["source"]
        assert isinstance(source, dict) and source["maildir"] == "in" and (env.root / "in" / "new").is_dir()
        assert any(path.name.startswith(str(source["key"])) for path in (env.root / "in").glob("*/*"))
        assert entry["received_at"] > "2026"  # when it came into the Maildir, not its Date of 2025
    shown = json.loads(env.run("responses", "show", str(dsn["id"]), "--json").stdout)
    assert {key: shown[key] for key in dsn} == dsn


def test_a_match_says_how_it_was_made(env: Env) -> None:
    env.run("contacts", "add", "mp@parliament.example", "--name", "A Member")
    found = polled(env, [(
        b"From: A Member <mp@parliament.example>\r\nTo: appeal@example.org\r\nSubject: Re: Appeal\r\n"
        b"Date: Tue, 01 Dec 2026 09:00:00 +0100\r\nMessage-ID: <answer@parliament.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nI will sign.\r\n"
    )])  # fmt: skip
    entry = found["mp@parliament.example"]
    assert entry["matched"]["method"] == "address" and entry["matched"]["contact"] == "mp@parliament.example"
    assert entry["matched"]["contact_id"] is not None and entry["original"] is None


def test_raw_is_the_stored_bytes_exactly_in_a_non_utf8_charset(env: Env) -> None:
    raw = (
        "From: =?iso-8859-1?q?Fran=E7oise?= <f@assemblee.example>\r\nTo: appeal@example.org\r\n"
        "Subject: =?iso-8859-1?q?R=E9ponse?=\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\n"
        "Message-ID: <latin1@assemblee.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Madame, Monsieur,\r\nje signe volontiers l'appel. \xc0 bient\xf4t, Fran\xe7oise \xa4\xff\r\n"
    ).encode("latin-1")
    found = polled(env, [raw])
    entry = found["f@assemblee.example"]
    assert "À bientôt, Françoise" in str(entry["text"])
    written = env.root / "message.eml"
    env.run("responses", "show", str(entry["id"]), "--raw", "-o", str(written))
    assert written.read_bytes() == raw
    piped = RUNS.run(["responses", "show", str(entry["id"]), "--raw"], cwd=env.root, env=env.environ(), check=True,
                     timeout=60)  # fmt: skip
    assert piped.stdout == raw
    refused = env.run("responses", "show", str(entry["id"]), "-o", str(written), check=False)
    assert refused.returncode != 0 and "give --raw too" in refused.stderr
