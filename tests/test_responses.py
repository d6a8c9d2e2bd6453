"""The response log end to end: a campaign sent to a real SMTP server, what came back read from a Maildir, each
message recorded once, matched to what it answers, and its effects applied (and undone on reclassification)."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from outreach.contacts.signatories import add_signatory
from outreach.db.models import Contact, OutboxMessage, Signatory, Suppression
from outreach.errors import InvalidValueError, NotFoundError
from outreach.responses import polling, reading
from outreach.responses.polling import BATCH, Inbox, poll
from outreach.responses.recording import add_response, mark_outcome, reclassify, signatory_draft
from outreach.responses.sources import Checkpoint, Fetched, ImapError, ImapSettings, ImapSource, MaildirSource
from outreach.responses.views import list_responses, raw_message, show_response

from .conftest import Env
from .imap_server import Dovecot
from .smtp_server import FaultyHandler
from .test_sending import SENDER, Clock, drain, queue_wave, queued, sending, server

__all__ = ["queued", "server"]  # fixtures

LATER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
INBOX = Inbox(unsubscribe_addresses=("unsubscribe@example.org",), soft_bounce_limit=2)


@pytest.fixture
def sent(queued: Env, server: tuple[FaultyHandler, int]) -> dict[str, str]:
    """The `queued` campaign sent: each recipient's Message-ID."""
    _, port = server
    assert drain(queued, sending(port, Clock())).sent == 12
    with queued.sessions() as session:
        return {row[0]: row[1] for row in session.execute(select(OutboxMessage.recipient, OutboxMessage.message_id))}


def reply(sender: str, answering: str, text: str, *, subject: str = "Re: Appeal", extra: str = "") -> bytes:
    return (
        f"From: Member <{sender}>\r\nTo: European Appeal <appeal@example.org>\r\nSubject: {subject}\r\n"
        f"Date: Tue, 01 Dec 2026 09:00:00 +0100\r\nMessage-ID: <{abs(hash((sender, text)))}@mail.example.org>\r\n"
        f"In-Reply-To: {answering}\r\nReferences: {answering}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{text}\r\n\r\nOn Mon, 30 Nov 2026 at 10:00, European Appeal <appeal@example.org> wrote:\r\n"
        "> Dear Member,\r\n> we write to you about the appeal.\r\n"
    ).encode()


def bounce(recipient: str, original: str, status: str, *, action: str = "failed", n: int = 0) -> bytes:
    boundary = f"b{n}"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.parliament.example.org>\r\nTo: appeal@example.org\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 01 Dec 2026 0{n}:00:00 +0000\r\n"
        f"Message-ID: <bounce{n}.{recipient}@mx.example.org>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could"
        f" not be delivered.\r\n\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.parliament.example.org\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: appeal@example.org\r\nTo: {recipient}\r\n"
        f"Message-ID: {original}\r\nSubject: Appeal\r\n\r\n--{boundary}--\r\n"
    ).encode()


def maildir(root: Path, messages: list[bytes]) -> Path:
    folder = mailbox.Maildir(root / "Maildir")
    for raw in messages:
        folder.add(raw)
    return root / "Maildir"


def inbox_of(sent: dict[str, str]) -> list[bytes]:
    mp = sorted(sent)
    away = "Auto-Submitted: auto-replied\r\n"
    unsubscribe = reply(mp[3], "<unrelated@elsewhere.example>", "unsubscribe", subject="unsubscribe")
    unsubscribe = unsubscribe.replace(b"To: European Appeal <appeal@example.org>", b"To: unsubscribe@example.org")
    return [
        reply(mp[0], sent[mp[0]], "Yes, I will sign. Where do I put my name?"),
        bounce(mp[1], sent[mp[1]], "5.1.1", n=1),
        reply(mp[2], sent[mp[2]], "I am out of the office until Monday.", subject="Automatic reply", extra=away),
        unsubscribe,
        bounce(mp[4], sent[mp[4]], "4.2.2", n=2),
        reply("stranger@nowhere.example", "<nothing@nowhere.example>", "Who are you?"),
    ]


def status_of(env: Env, address: str) -> str:
    with env.sessions() as session:
        return session.scalars(select(Contact.status).where(Contact.email == address)).one()


def test_each_message_is_recorded_once_matched_and_its_effects_applied(queued: Env, sent: dict[str, str]) -> None:
    mp = sorted(sent)
    folder = maildir(queued.root, inbox_of(sent))
    report = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (report.read, report.recorded, report.already, report.unmatched) == (6, 6, 0, 1)
    assert dict(report.kinds) == {"reply": 2, "hard_bounce": 1, "auto_reply": 1, "unsubscribe": 1, "soft_bounce": 1}

    views = {v.sender: v for v in list_responses(queued.sessions)}
    answer = views[mp[0]]
    assert (answer.kind, answer.contact, answer.campaign, answer.answered, answer.matched_by) == (
        "reply", mp[0], "wave", sent[mp[0]], "in-reply-to")  # fmt: skip
    assert answer.text == "Yes, I will sign. Where do I put my name?", "the quoted original is left out"
    assert answer.date_header == datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "the Date header, in UTC"
    assert abs(answer.received_at - datetime.now(UTC)) < timedelta(minutes=10), "when it came into the Maildir"
    assert "stops follow-ups" in answer.effects

    hard = next(v for v in views.values() if v.kind == "hard_bounce")
    assert (hard.contact, hard.status, hard.answered) == (mp[1], "5.1.1", sent[mp[1]])
    assert hard.effects == ("address suppressed: bounced",)
    assert status_of(queued, mp[1]) == "bounced"
    assert status_of(queued, mp[2]) == "active", "an out-of-office changes nothing"
    assert status_of(queued, mp[3]) == "unsubscribed", "mail to the List-Unsubscribe mailbox"
    assert status_of(queued, mp[4]) == "active", "one soft bounce is not enough"
    assert views["stranger@nowhere.example"].contact is None

    again = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (again.read, again.recorded, again.already) == (6, 0, 6), "a second poll records nothing twice"


def test_a_reply_from_one_of_a_contacts_other_addresses_is_theirs(queued: Env, sent: dict[str, str]) -> None:
    member = sorted(sent)[0]
    with queued.sessions.begin() as session:
        session.scalars(select(Contact).where(Contact.email == member)).one().alternates = ["Office@Member.example"]
    fresh = (
        b"From: Office <office@member.example>\r\nTo: appeal@example.org\r\nSubject: Your appeal\r\n"
        b"Date: Tue, 01 Dec 2026 09:00:00 +0100\r\nMessage-ID: <fresh.1@member.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe member will sign.\r\n"
    )
    report = poll(queued.sessions, MaildirSource(maildir(queued.root, [fresh])), INBOX, now=lambda: LATER)
    assert (report.recorded, report.unmatched) == (1, 0)
    answer = list_responses(queued.sessions)[0]
    assert (answer.contact, answer.matched_by) == (member, "address")


def test_soft_bounces_mark_the_address_bounced_at_the_limit_and_a_correction_lifts_it(
    queued: Env, sent: dict[str, str]
) -> None:
    address = sorted(sent)[4]
    folder = maildir(queued.root, [bounce(address, sent[address], "4.2.2", n=n) for n in (1, 2)])
    poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert status_of(queued, address) == "bounced", "the second soft bounce reaches the limit of two"
    first = min(v.id for v in list_responses(queued.sessions, kind="soft_bounce"))
    reclassify(queued.sessions, first, "delayed", now=LATER)
    assert status_of(queued, address) == "active", "one soft bounce left: below the limit again"
    with queued.sessions() as session:
        assert session.scalars(select(Suppression)).all() == []


def test_reclassifying_moves_the_effects_with_the_kind(queued: Env, sent: dict[str, str]) -> None:
    mp = sorted(sent)
    poll(queued.sessions, MaildirSource(maildir(queued.root, inbox_of(sent))), INBOX, now=lambda: LATER)
    hard = list_responses(queued.sessions, kind="hard_bounce")[0]
    corrected = reclassify(queued.sessions, hard.id, "auto_reply", now=LATER)
    assert (corrected.kind, corrected.detected_kind, corrected.effects) == ("auto_reply", "hard_bounce", ())
    assert status_of(queued, mp[1]) == "active"
    answer = next(v for v in list_responses(queued.sessions, kind="reply") if v.contact == mp[0])
    complaint = reclassify(queued.sessions, answer.id, "complaint", now=LATER)
    assert complaint.effects == ("address suppressed: complained",)
    assert status_of(queued, mp[0]) == "do_not_contact"
    with pytest.raises(InvalidValueError, match="not one of"):
        reclassify(queued.sessions, answer.id, "spam", now=LATER)
    with pytest.raises(NotFoundError, match="no response 999"):
        show_response(queued.sessions, 999)


def test_an_answer_by_phone_is_logged_and_a_signed_outcome_makes_a_signatory_once(
    queued: Env, sent: dict[str, str]
) -> None:
    address = sorted(sent)[5]
    logged = add_response(queued.sessions, address.upper(), "phone", "Will sign after the vote.", now=LATER)
    assert (logged.kind, logged.channel, logged.contact, logged.campaign) == ("reply", "phone", address, "wave")
    mark_outcome(queued.sessions, logged.id, "interested", now=LATER)
    signed = mark_outcome(queued.sessions, logged.id, "signed", now=LATER + timedelta(days=3))
    again = mark_outcome(queued.sessions, logged.id, "signed", now=LATER + timedelta(days=4))
    assert signed.response.outcome == "signed"
    assert (signed.already, again.already) == (False, True)
    assert again.signatory == signed.signatory
    with queued.sessions() as session:
        rows = session.scalars(select(Signatory).where(Signatory.email == address)).all()
    assert [(row.name, row.group) for row in rows] == [(f"Member {address[2:].split('@')[0]}", "parliamentarians")]
    with pytest.raises(InvalidValueError, match="channel 'fax'"):
        add_response(queued.sessions, address, "fax", "...", now=LATER)
    with pytest.raises(NotFoundError, match="no contact"):
        add_response(queued.sessions, "nobody@example.org", "phone", "...", now=LATER)


def test_signed_prints_the_line_the_campaigner_confirmed(queued: Env, sent: dict[str, str]) -> None:
    address = sorted(sent)[6]
    logged = add_response(queued.sessions, address, "meeting", "Signs.", now=LATER)
    draft = signatory_draft(queued.sessions, logged.id)
    assert draft["group"] == "parliamentarians" and draft["email"] == address
    edited = {"name": "  Dr Ana Member ", "line": "Member of Parliament,\x1b[2J Greens", "group": "Signatories"}
    marked = mark_outcome(queued.sessions, logged.id, "signed", now=LATER, signatory=edited)
    assert marked.signatory is not None and not marked.already
    assert (marked.signatory.name, marked.signatory.group) == ("Dr Ana Member", "signatories")
    assert "\x1b" not in marked.signatory.line and marked.signatory.contact_id is not None
    with pytest.raises(InvalidValueError, match="group 'generals'"):
        mark_outcome(queued.sessions, logged.id, "signed", now=LATER, signatory={**edited, "group": "generals"})


def test_signed_for_someone_already_a_signatory_by_name_says_so(queued: Env, sent: dict[str, str]) -> None:
    """A signatories file named them before they answered: marking the answer signed links that signatory to the
    contact instead of failing on the name and line that are already printed."""
    address = sorted(sent)[7]
    logged = add_response(queued.sessions, address, "phone", "Yes.", now=LATER)
    draft = signatory_draft(queued.sessions, logged.id)
    add_signatory(queued.sessions, draft["name"] or "", draft["line"] or "", draft["group"] or "", "", "", now=LATER)
    marked = mark_outcome(queued.sessions, logged.id, "signed", now=LATER)
    assert marked.already and marked.signatory is not None
    with queued.sessions() as session:
        rows = session.scalars(select(Signatory).where(Signatory.name == draft["name"])).all()
    assert [row.contact_id is not None for row in rows] == [True]


def test_a_reply_whose_date_lies_is_timed_by_its_arrival_in_a_maildir(queued: Env, sent: dict[str, str]) -> None:
    """Its Date says a year before the letter it answers (a wrong clock, or a quoted old letter's header): the log,
    the report and "time to first reply" go by when it arrived, the Maildir file's delivery time."""
    mp = sorted(sent)
    raw = reply(mp[0], sent[mp[0]], "Yes.").replace(b"Tue, 01 Dec 2026 09:00", b"Sun, 01 Dec 2025 09:00")
    folder = maildir(queued.root, [])
    arrived = datetime(2026, 12, 2, 14, 30, 5, tzinfo=UTC)
    name = f"{int(arrived.timestamp())}.M1P1Q1.mail.example"
    (folder / "new" / name).write_bytes(raw)
    poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER + timedelta(days=5))
    [view] = list_responses(queued.sessions)
    assert view.received_at == arrived
    assert view.date_header == datetime(2025, 12, 1, 8, 0, tzinfo=UTC)
    exact = json.loads(queued.run("responses", "show", str(view.id), "--json").stdout)
    assert (exact["received_at"], exact["date_header"]) == (arrived.isoformat(), "2025-12-01T08:00:00+00:00")
    assert exact["source"] == {"maildir": str(folder), "key": name}
    report = json.loads(queued.run("report", "wave", "--json").stdout)["campaigns"][0]
    assert report["responses_by_day"][0]["day"] == "2026-12-02"


def test_a_reply_whose_date_lies_is_timed_by_its_imap_internaldate(
    queued: Env, sent: dict[str, str], dovecot: Dovecot
) -> None:
    mp = sorted(sent)
    raw = reply(mp[0], sent[mp[0]], "Yes.").replace(b"Tue, 01 Dec 2026 09:00", b"Sun, 01 Dec 2025 09:00")
    arrived = datetime(2026, 12, 2, 14, 30, 5, tzinfo=UTC)
    with dovecot.new_folder("lying") as (client, folder):
        client.append(folder, raw, msg_time=arrived)
        settings = ImapSettings(dovecot.host, dovecot.port, "none", dovecot.username, dovecot.password)
        source = ImapSource(settings, folder)
        try:
            poll(queued.sessions, source, INBOX, now=lambda: LATER + timedelta(days=5))
        finally:
            source.close()
        validity = str(client.select_folder(folder)[b"UIDVALIDITY"])
    [view] = list_responses(queued.sessions)
    assert (view.received_at, view.date_header) == (arrived, datetime(2025, 12, 1, 8, 0, tzinfo=UTC))
    assert view.source is not None and view.source["uid"] == 1 and view.source["folder"] == folder
    assert view.source["uidvalidity"] == validity and view.source["mailbox"].startswith("imap://")


def test_the_commands_poll_list_show_and_reclassify_with_json(queued: Env, sent: dict[str, str]) -> None:
    folder = maildir(queued.root, inbox_of(sent))
    polled = json.loads(queued.run("responses", "poll", "--source", f"maildir:{folder}", "--json").stdout)
    assert (polled["read"], polled["recorded"]) == (6, 6)
    again = queued.run("responses", "poll", "--source", f"maildir:{folder}")
    assert "recorded 0 new" in again.stderr and "6 seen before" in again.stderr
    listed = json.loads(queued.run("responses", "list", "--kind", "hard_bounce", "--json").stdout)["responses"]
    assert [entry["contact"] for entry in listed] == [sorted(sent)[1]]
    two = json.loads(queued.run("responses", "list", "--limit", "2", "--json").stdout)
    assert (len(two["responses"]), two["shown"], two["total"]) == (2, 2, 6)
    assert "2 of 6 shown" in queued.run("responses", "list", "--limit", "2").stderr
    every = json.loads(queued.run("responses", "list", "--limit", "0", "--json").stdout)
    assert (len(every["responses"]), every["total"]) == (6, 6)
    shown = queued.run("responses", "show", str(listed[0]["id"])).stdout
    assert "hard_bounce, status 5.1.1" in shown and "address suppressed: bounced" in shown
    assert "Final-Recipient" in queued.run("responses", "show", str(listed[0]["id"]), "--raw").stdout
    fixed = json.loads(queued.run("responses", "reclassify", str(listed[0]["id"]), "soft_bounce", "--json").stdout)
    assert fixed["kind"] == "soft_bounce" and fixed["effects"] == []
    missing = queued.run("responses", "poll", check=False)
    assert missing.returncode != 0 and "OUTREACH_IMAP_HOST is not set" in missing.stderr
    wrong = queued.run("responses", "poll", "--source", "pop3:x", check=False)
    assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1


def test_polling_imap_records_new_mail_once_and_survives_a_new_uidvalidity(
    queued: Env, sent: dict[str, str], dovecot: Dovecot
) -> None:
    with dovecot.new_folder("poll") as (client, folder):
        (queued.root / ".env").write_text(
            f"OUTREACH_IMAP_HOST={dovecot.host}\nOUTREACH_IMAP_PORT={dovecot.port}\nOUTREACH_IMAP_SECURITY=none\n"
            f"OUTREACH_IMAP_USERNAME={dovecot.username}\nOUTREACH_IMAP_PASSWORD={dovecot.password}\n"
            f"OUTREACH_IMAP_FOLDER={folder}\nOUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n",
            encoding="utf-8",
        )
        inbox = inbox_of(sent)
        for raw in inbox[:4]:
            client.append(folder, raw)

        def polled() -> dict[str, int]:
            result = json.loads(queued.run("responses", "poll", "--json").stdout)
            assert dovecot.password not in json.dumps(result)
            return {key: result[key] for key in ("read", "recorded", "already")}

        assert polled() == {"read": 4, "recorded": 4, "already": 0}
        assert polled() == {"read": 0, "recorded": 0, "already": 0}, "by UID: nothing new, nothing read"
        client.append(folder, inbox[4])
        assert polled() == {"read": 1, "recorded": 1, "already": 0}
        # A new UIDVALIDITY (the folder deleted and made again): everything is read again, nothing recorded twice.
        client.delete_folder(folder)
        client.create_folder(folder)
        for raw in inbox:
            client.append(folder, raw)
        assert polled() == {"read": 6, "recorded": 1, "already": 5}
        client.select_folder(folder, readonly=True)
        assert client.search("UNSEEN") != [], "polling leaves messages unread"
    assert len(list_responses(queued.sessions)) == 6


def test_with_a_verp_return_path_a_bounce_that_quotes_nothing_is_matched_by_its_address(
    env: Env, server: tuple[FaultyHandler, int]
) -> None:
    handler, port = server
    queued = queue_wave(env, replace(SENDER, return_path="bounces+{token}@example.org"))
    assert drain(queued, sending(port, Clock())).sent == 12
    with queued.sessions() as session:
        letters = {row[0]: row[1] for row in session.execute(select(OutboxMessage.recipient, OutboxMessage.message_id))}
    recipient = sorted(letters)[7]
    token = letters[recipient].strip("<>").split("@")[0]
    envelope = next(r.sender for r in handler.received if r.recipients == [recipient])
    assert envelope == f"bounces+{token}@example.org", "each message's own return path"
    plain = (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {envelope}\r\nSubject: failure notice\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nHi. This is the qmail-send program at mx.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        "<someone.else@forwarded.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
    ).encode()
    inbox = Inbox(token_address="bounces+{token}@example.org")
    poll(queued.sessions, MaildirSource(maildir(queued.root, [plain])), inbox, now=lambda: LATER)
    [found] = list_responses(queued.sessions)
    assert (found.kind, found.contact, found.answered, found.matched_by) == (
        "hard_bounce", recipient, letters[recipient], "token")  # fmt: skip
    assert status_of(queued, recipient) == "bounced", "the contact the token names, not the forwarding address"


class Interrupted:
    """A Maildir whose reading breaks after `after` messages, as a dropped IMAP connection does."""

    def __init__(self, source: MaildirSource, after: int) -> None:
        self.source, self.after, self.name = source, after, source.name

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[tuple[Fetched, Checkpoint]]:
        for n, item in enumerate(self.source.fetch(checkpoint)):
            if n == self.after:
                raise ImapError("the connection dropped", where="imap.example.org:993")
            yield item

    def done(self, fetched: Fetched) -> None:
        self.source.done(fetched)

    def close(self) -> None:
        self.source.close()


def test_a_poll_that_breaks_off_keeps_what_it_recorded_and_the_next_records_the_rest_once(
    queued: Env, sent: dict[str, str]
) -> None:
    mp = sorted(sent)
    many = [reply(mp[n % 12], sent[mp[n % 12]], f"Answer number {n}.") for n in range(2 * BATCH + 50)]
    folder = maildir(queued.root, many)
    with pytest.raises(ImapError, match="dropped"):
        poll(queued.sessions, Interrupted(MaildirSource(folder), BATCH + 30), INBOX, now=lambda: LATER)
    assert len(list_responses(queued.sessions, limit=None)) == BATCH, "the first batch, committed with its cursor"
    # Large batches are classified in a second process: the answers are the same as in this one.
    report = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (report.read, report.recorded, report.already) == (len(many), len(many) - BATCH, BATCH)
    texts = sorted(view.text or "" for view in list_responses(queued.sessions, limit=None))
    assert texts == sorted(f"Answer number {n}." for n in range(len(many)))


# Issue 14: no message stops a poll. A NUL (refused by PostgreSQL in text) in a header or the body, between good
# messages and ahead of a bounce whose effect must still apply.


def with_nul(sent: dict[str, str], *, encoded: bool = False) -> list[bytes]:
    """Five messages: a reply, a NUL in a Subject, a NUL in a body, a hard bounce, a reply. `encoded` puts the NULs
    in an RFC 2047 encoded word and a quoted-printable body (an IMAP server turns a bare NUL byte into another)."""
    mp = sorted(sent)
    if encoded:
        in_subject = reply(mp[2], sent[mp[2]], "Count me in.", subject="=?utf-8?q?Re:_Ap=00peal?=")
        qp = "Content-Transfer-Encoding: quoted-printable\r\n"
        in_body = reply(mp[3], sent[mp[3]], "Glad to=00 help.", extra=qp)
    else:
        in_subject = reply(mp[2], sent[mp[2]], "Count me in.", subject="Re: Ap\x00peal")
        in_body = reply(mp[3], sent[mp[3]], "Glad to\x00 help.")
    return [
        reply(mp[0], sent[mp[0]], "Yes, I will sign."),
        in_subject,
        in_body,
        bounce(mp[1], sent[mp[1]], "5.1.1", n=1),
        reply(mp[4], sent[mp[4]], "Later, after the vote."),
    ]


def assert_all_recorded_with_nul_cleaned(env: Env, sent: dict[str, str], inbox: list[bytes]) -> None:
    """What a poll of `with_nul` must leave: every message recorded once, NULs as U+FFFD, the bounce applied."""
    mp = sorted(sent)
    views = {view.contact: view for view in list_responses(env.sessions) if view.contact}
    assert set(views) == {mp[0], mp[1], mp[2], mp[3], mp[4]}
    assert {view.kind for view in views.values()} == {"reply", "hard_bounce"}, "cleaned, not unreadable"
    assert (views[mp[2]].subject, views[mp[2]].text) == ("Re: Ap\ufffdpeal", "Count me in.")
    assert views[mp[3]].text == "Glad to\ufffd help."
    assert status_of(env, mp[1]) == "bounced", "the bounce behind the NULs has its effect"
    assert raw_message(env.sessions, views[mp[3]].id) in inbox, "the raw message is kept as it came"


def test_a_nul_in_a_header_or_body_read_from_a_maildir_stops_nothing(
    queued: Env, sent: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two: the NULs fall in the first and second batches, read by the second process.
    monkeypatch.setattr(polling, "BATCH", 2)
    inbox = with_nul(sent)
    folder = maildir(queued.root, inbox)
    report = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (report.read, report.recorded, report.already, report.unmatched) == (5, 5, 0, 0)
    assert_all_recorded_with_nul_cleaned(queued, sent, inbox)
    again = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (again.read, again.recorded, again.already) == (5, 0, 5), "a second poll records nothing twice"


def test_a_nul_in_a_header_or_body_read_over_imap_stops_nothing(
    queued: Env, sent: dict[str, str], dovecot: Dovecot
) -> None:
    with dovecot.new_folder("nul") as (client, folder):
        inbox = with_nul(sent, encoded=True)
        settings = ImapSettings(dovecot.host, dovecot.port, "none", dovecot.username, dovecot.password, 10)
        for raw in inbox:
            client.append(folder, raw)
        # A bare NUL byte as well, which dovecot stores as 0x80 (RFC 3501 9: no NUL in a literal).
        client.append(folder, reply("stranger@nowhere.example", "<nothing@nowhere.example>", "Bare\x00 NUL."))
        source = ImapSource(settings, folder)
        try:
            report = poll(queued.sessions, source, INBOX, now=lambda: LATER)
            assert (report.read, report.recorded, report.already) == (6, 6, 0)
            again = poll(queued.sessions, source, INBOX, now=lambda: LATER)
            assert (again.read, again.recorded, again.already) == (0, 0, 0), "by UID: nothing new, nothing twice"
        finally:
            source.close()
    assert_all_recorded_with_nul_cleaned(queued, sent, inbox)
    assert len(list_responses(queued.sessions)) == 6


@pytest.mark.parametrize("where", ["classifying", "matching"])
def test_a_message_that_cannot_be_read_is_recorded_as_unreadable_and_the_poll_goes_on(
    queued: Env, sent: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    mp = sorted(sent)
    if where == "classifying":  # a bug the parser's leniency does not cover, in the process that reads (small inbox)
        classify = reading.classify

        def broken_classify(message: Any, **options: Any) -> Any:
            if "Count me in" in str(message):
                raise ValueError("the classifier broke")
            return classify(message, **options)

        monkeypatch.setattr(reading, "classify", broken_classify)
    else:  # a bug in matching, which runs where the batch is recorded
        match = polling.match

        def broken_match(session: Any, understood: Any, letters: Any) -> Any:
            if understood.text == "Count me in.":
                raise ValueError("matching broke")
            return match(session, understood, letters)

        monkeypatch.setattr(polling, "match", broken_match)
    inbox = with_nul(sent)
    folder = maildir(queued.root, inbox)
    report = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (report.read, report.recorded, report.unmatched) == (5, 5, 0)
    assert dict(report.kinds) == {"reply": 3, "hard_bounce": 1, "unreadable": 1}
    [unreadable] = list_responses(queued.sessions, kind="unreadable")
    broke = "the classifier broke" if where == "classifying" else "matching broke"
    assert unreadable.reason == f"could not be read: ValueError: {broke}"
    assert (unreadable.contact, unreadable.campaign, unreadable.effects) == (None, None, ())
    assert raw_message(queued.sessions, unreadable.id) == inbox[1], "kept, to be looked at"
    assert status_of(queued, mp[1]) == "bounced", "the bounce behind it has its effect"
    assert status_of(queued, mp[2]) == "active", "an unreadable message has no effect"
    again = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (again.read, again.recorded, again.already) == (5, 0, 5), "the cursor moved past it; nothing twice"


def test_a_message_the_database_refuses_is_recorded_as_unreadable(
    queued: Env, sent: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not queued.url.startswith("postgresql"):
        pytest.skip("SQLite holds a NUL in text: only PostgreSQL refuses the uncleaned message")
    monkeypatch.setattr(polling, "_storable", lambda read: read)  # as before the fix: NULs go to the database
    inbox = with_nul(sent)
    folder = maildir(queued.root, inbox)
    report = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (report.read, report.recorded) == (5, 5)
    assert dict(report.kinds) == {"reply": 2, "hard_bounce": 1, "unreadable": 2}
    unreadable = list_responses(queued.sessions, kind="unreadable")
    assert all("NUL" in (view.reason or "") for view in unreadable), [view.reason for view in unreadable]
    assert sorted(raw_message(queued.sessions, view.id) or b"" for view in unreadable) == sorted(inbox[1:3])
    assert status_of(queued, sorted(sent)[1]) == "bounced"
    again = poll(queued.sessions, MaildirSource(folder), INBOX, now=lambda: LATER)
    assert (again.read, again.recorded, again.already) == (5, 0, 5)


def test_the_migration_to_unreadable_keeps_what_refers_to_responses(database_url: str) -> None:
    # SQLite changes a CHECK constraint by copying the table; dropping the old one must not run the ON DELETE
    # actions of the raw messages (CASCADE) and suppressions (SET NULL) that refer to it.
    from alembic import command
    from sqlalchemy import text

    from outreach.db.engine import _alembic_config, make_engine

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    try:
        command.upgrade(config, "head")  # (a new SQLite file is empty)
        command.downgrade(config, "0006")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO responses (id, channel, kind, received_at, recorded_at) "
                "VALUES (1, 'email', 'hard_bounce', '2026-12-01', '2026-12-01')"))  # fmt: skip
            connection.execute(text("INSERT INTO response_messages (response_id, raw) VALUES (1, :raw)"),
                               {"raw": b"From: x\r\n\r\n\x00"})  # fmt: skip
            connection.execute(text("INSERT INTO suppressions (address_hash, reason, created_at, response_id) "
                                    "VALUES ('h', 'bounced', '2026-12-01', 1)"))  # fmt: skip
        command.upgrade(config, "head")
        with engine.begin() as connection:
            assert connection.execute(text("SELECT raw FROM response_messages")).scalars().all() == [
                b"From: x\r\n\r\n\x00"]  # fmt: skip
            assert connection.execute(text("SELECT response_id FROM suppressions")).scalars().all() == [1]
            connection.execute(text("UPDATE responses SET kind = 'unreadable'"))
    finally:
        command.upgrade(config, "head")
        engine.dispose()
