"""Reading inbound mail: a real dovecot over IMAP, and Maildir and mbox files as Python's mailbox module writes them."""

from __future__ import annotations

import mailbox
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from imapclient import IMAPClient

from outreach.config import load_settings
from outreach.errors import ConfigError, InputError, InvalidValueError
from outreach.responses import sources
from outreach.responses.sources import (
    Checkpoint,
    Fetched,
    ImapError,
    ImapSettings,
    ImapSource,
    MaildirSource,
    MboxSource,
    Source,
    source_for,
)
from outreach.workspace import Workspace
from tests.imap_server import ECHO_USERNAME, UNICODE_PASSWORD, UNICODE_USERNAME, Dovecot
from tests.smtp_server import free_port


def letter(number: int, body: str = "") -> bytes:
    """A small message as a mail server would hold it (CRLF line ends)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Member {number} <member{number}@parliament.example>"
    message["To"] = "appeal@example.org"
    message["Subject"] = f"Re: Appeal ({number})"
    message["Message-ID"] = f"<reply-{number}@parliament.example>"
    message.set_content(body or f"Reply number {number}.\n")
    return message.as_bytes()


def read(source: Source, checkpoint: Checkpoint | None) -> tuple[list[Fetched], Checkpoint | None]:
    """Everything a fetch yields, and the last checkpoint (the one given when nothing came)."""
    fetched = []
    for message, after in source.fetch(checkpoint):
        fetched.append(message)
        checkpoint = after
    return fetched, checkpoint


# IMAP


@pytest.fixture
def mailbox_folder(dovecot: Dovecot) -> Iterator[tuple[IMAPClient, str]]:
    """A folder of this test's own on the server, and a second connection to put messages in and look at it."""
    with dovecot.new_folder("test") as (client, folder):
        yield client, folder


def settings_for(dovecot: Dovecot, password: str | None = None) -> ImapSettings:
    return ImapSettings(dovecot.host, dovecot.port, "none", dovecot.username, password or dovecot.password, 10)


def test_new_mail_is_read_once(
    dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "BATCH", 2)  # three messages take two FETCHes
    client, folder = mailbox_folder
    for number in (1, 2, 3):
        client.append(folder, letter(number))
    source = ImapSource(settings_for(dovecot), folder)
    try:
        fetched, checkpoint = read(source, None)
        assert [m.raw for m in fetched] == [letter(1), letter(2), letter(3)]
        validity = client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]
        assert [m.key for m in fetched] == [f"imap:{folder}:{validity}:{uid}" for uid in (1, 2, 3)]
        assert checkpoint == Checkpoint(str(validity), "3")

        # `UID 4:*` matches the last message even though its UID is 3: nothing new must come of it.
        assert read(source, checkpoint) == ([], checkpoint)

        client.append(folder, letter(4))
        fetched, checkpoint = read(source, checkpoint)
        assert [m.raw for m in fetched] == [letter(4)]
        assert checkpoint == Checkpoint(str(validity), "4")
    finally:
        source.close()


def test_each_checkpoint_resumes_after_its_message(dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str]) -> None:
    client, folder = mailbox_folder
    for number in (1, 2, 3):
        client.append(folder, letter(number))
    source = ImapSource(settings_for(dovecot), folder)
    try:
        stream = source.fetch(None)
        next(stream)
        _, after_second = next(stream)
        stream.close()  # a crash here: the third was never recorded
        fetched, _ = read(source, after_second)
        assert [m.raw for m in fetched] == [letter(3)]
    finally:
        source.close()


def test_fetching_leaves_messages_unseen(dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str]) -> None:
    client, folder = mailbox_folder
    client.append(folder, letter(1))
    source = ImapSource(settings_for(dovecot), folder)
    try:
        assert len(read(source, None)[0]) == 1
    finally:
        source.close()
    client.select_folder(folder, readonly=True)
    assert client.search(["UNSEEN"]) == [1]


def test_a_new_uidvalidity_reads_the_folder_again(dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str]) -> None:
    client, folder = mailbox_folder
    client.append(folder, letter(1))
    client.append(folder, letter(2))
    source = ImapSource(settings_for(dovecot), folder)
    try:
        before, checkpoint = read(source, None)
        # Deleting a folder and creating it again gives it a new UIDVALIDITY (RFC 3501 2.3.1.1); its UIDs start
        # over, so the old checkpoint's "read up to 2" means nothing any more.
        client.delete_folder(folder)
        client.create_folder(folder)
        for number in (1, 2, 3):
            client.append(folder, letter(number))
        after, new_checkpoint = read(source, checkpoint)
    finally:
        source.close()
    assert checkpoint is not None and new_checkpoint is not None
    assert new_checkpoint.validity != checkpoint.validity
    assert [m.raw for m in after] == [letter(1), letter(2), letter(3)]
    assert not {m.key for m in before} & {m.key for m in after}


def test_done_moves_a_message_to_the_move_to_folder(dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str]) -> None:
    client, folder = mailbox_folder
    for number in (1, 2, 3):
        client.append(folder, letter(number))
    target = f"{folder}done"  # missing: the source creates it
    source = ImapSource(settings_for(dovecot), folder, move_to=target)
    try:
        fetched, checkpoint = read(source, None)
        source.done(fetched[0])
        source.close()
        source.done(fetched[2])  # on a new connection
        assert read(source, checkpoint) == ([], checkpoint)
    finally:
        source.close()
    client.select_folder(folder, readonly=True)
    assert client.search() == [2]
    client.select_folder(target, readonly=True)
    moved = client.fetch(client.search(), ["BODY.PEEK[]", "FLAGS"])
    assert sorted(data[b"BODY[]"] for data in moved.values()) == [letter(1), letter(3)]
    assert not [data for data in moved.values() if b"\\Seen" in data[b"FLAGS"]], "moved as they were: unseen"


def test_done_copies_and_expunges_where_the_server_lacks_move(
    dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, folder = mailbox_folder
    for number in (1, 2):
        client.append(folder, letter(number))
    target = f"{folder}done"
    source = ImapSource(settings_for(dovecot), folder, move_to=target)
    try:
        fetched, _ = read(source, None)
        # dovecot offers MOVE (RFC 6851); act as a server from before it.
        connection = source._client
        offers = connection.has_capability
        monkeypatch.setattr(connection, "has_capability", lambda name: name.upper() != "MOVE" and offers(name))
        monkeypatch.setattr(connection, "move", None)
        source.done(fetched[1])
    finally:
        source.close()
    client.select_folder(folder, readonly=True)
    assert client.search() == [1]
    assert client.search(["DELETED"]) == []
    client.select_folder(target, readonly=True)
    [uid] = client.search()
    assert client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == letter(2)


def test_a_wrong_password_is_one_line_without_the_password(dovecot: Dovecot) -> None:
    source = ImapSource(settings_for(dovecot, password="not-the-secret-4711"))
    with pytest.raises(ImapError) as raised:
        read(source, None)
    text = str(raised.value)
    assert text.startswith(f"{dovecot.host}:{dovecot.port}: the server refused the login for 'campaign'")
    assert "not-the-secret-4711" not in text
    assert "\n" not in text
    assert "not-the-secret-4711" not in repr(source.settings)


def test_a_password_that_is_not_ascii_logs_in_with_authenticate_plain(dovecot: Dovecot) -> None:
    unicode = ImapSettings(dovecot.host, dovecot.port, "none", UNICODE_USERNAME, UNICODE_PASSWORD, 10)
    source = ImapSource(unicode)
    try:
        assert source.probe() == (0, 0)  # imaplib's LOGIN would not even encode it (RFC 3501 9: 7-bit quoted)
    finally:
        source.close()
    wrong = ImapSource(ImapSettings(dovecot.host, dovecot.port, "none", UNICODE_USERNAME, "Pässwörd", 10))
    with pytest.raises(ImapError, match=r"the server refused the login for 'unicode': \[AUTHENTICATIONFAILED\]"):
        wrong.probe()


@pytest.mark.parametrize("password", ['ascii "pw" \\ 42', 'ünicode "pw" \\ 42'])
def test_a_password_the_server_echoes_is_hidden_in_every_form(dovecot: Dovecot, password: str) -> None:
    source = ImapSource(ImapSettings(dovecot.host, dovecot.port, "none", ECHO_USERNAME, password, 10))
    with pytest.raises(ImapError) as raised:
        source.probe()
    # dovecot echoes it as it came and IMAP-quoted; LOGIN's reply reaches the error as a repr of bytes.
    assert str(raised.value) == (
        f"{dovecot.host}:{dovecot.port}: the server refused the login for 'echo': [CONTACTADMIN] [***][***] "
        "(check OUTREACH_IMAP_USERNAME and OUTREACH_IMAP_PASSWORD)"
    )


def test_a_missing_folder_is_named(dovecot: Dovecot) -> None:
    source = ImapSource(settings_for(dovecot), "NoSuchFolder")
    try:
        with pytest.raises(ImapError, match=r"there is no folder 'NoSuchFolder' \(set OUTREACH_IMAP_FOLDER"):
            read(source, None)
    finally:
        source.close()


def test_a_server_that_does_not_answer_is_named() -> None:
    port = free_port()  # bound and released: nothing listens on it
    source = ImapSource(ImapSettings("127.0.0.1", port, "none", "campaign", "secret", 5))
    with pytest.raises(ImapError) as raised:
        read(source, None)
    text = str(raised.value)
    assert text.startswith(f"127.0.0.1:{port}: cannot connect to the IMAP server: ConnectionRefusedError")
    assert "secret" not in text


def test_login_in_plain_text_to_another_host_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("connected")

    monkeypatch.setattr(socket, "create_connection", no_network)
    source = ImapSource(ImapSettings("192.0.2.10", 143, "none", "campaign", "secret", 5))
    with pytest.raises(ImapError, match="refusing to send the password over an unencrypted connection"):
        read(source, None)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_mail_is_read_over_tls(dovecot: Dovecot, mailbox_folder: tuple[IMAPClient, str], security: str) -> None:
    client, folder = mailbox_folder
    client.append(folder, letter(1))
    port = dovecot.tls_port if security == "tls" else dovecot.port
    settings = ImapSettings(dovecot.host, port, security, dovecot.username, dovecot.password, 10)
    source = ImapSource(settings, folder, context=dovecot.client_context())
    try:
        assert [m.raw for m in read(source, None)[0]] == [letter(1)]
    finally:
        source.close()


def test_tls_failures_are_one_line(dovecot: Dovecot) -> None:
    where = f"{dovecot.host}:{dovecot.tls_port}"
    untrusted = ImapSource(ImapSettings(dovecot.host, dovecot.tls_port, "tls", "campaign", "secret", 5))
    with pytest.raises(ImapError, match=rf"^{where}: cannot connect to the IMAP server: .*CERTIFICATE_VERIFY_FAILED"):
        read(untrusted, None)
    where = f"{dovecot.host}:{dovecot.port}"
    plain_port = ImapSource(ImapSettings(dovecot.host, dovecot.port, "tls", "campaign", "secret", 5))
    with pytest.raises(ImapError, match=rf"^{where}: cannot connect to the IMAP server: SSLError: .*WRONG_VERSION"):
        read(plain_port, None)


# Maildir


def test_maildir_reads_new_and_cur_and_moves_what_is_done(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir")
    new_key = box.add(mailbox.MaildirMessage(letter(1)))
    seen = mailbox.MaildirMessage(letter(2))
    seen.set_subdir("cur")
    seen.add_flag("S")
    cur_key = box.add(seen)
    source = MaildirSource(tmp_path / "Maildir", move_to="Processed")
    fetched, checkpoint = read(source, None)
    assert sorted(m.key for m in fetched) == [m.key for m in fetched] == sorted(f"maildir:{k}" for k in box.iterkeys())
    # mailbox.Maildir stores the lines with LF ends; what it reads back is what the source must give.
    assert {m.key: m.raw for m in fetched} == {f"maildir:{k}": box.get_bytes(k) for k in (new_key, cur_key)}
    assert checkpoint == Checkpoint("", "")

    source.done(next(m for m in fetched if m.key == f"maildir:{cur_key}"))
    assert [m.key for m in read(source, checkpoint)[0]] == [f"maildir:{new_key}"]
    processed = box.get_folder("Processed")
    assert processed.keys() == [cur_key]
    assert processed.get_bytes(cur_key) == {m.key: m.raw for m in fetched}[f"maildir:{cur_key}"]
    assert processed[cur_key].get_subdir() == "cur" and processed[cur_key].get_flags() == "S"


def test_a_path_that_is_not_a_maildir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a Maildir"):
        MaildirSource(tmp_path)


# mbox


def append_mbox(path: Path, *messages: bytes) -> None:
    """Add messages to an mbox file as Python's mailbox module does (LF line ends, a From_ line, a blank line)."""
    box = mailbox.mbox(path)
    for message in messages:
        box.add(mailbox.mboxMessage(message))
    box.close()


def stored(path: Path) -> list[bytes]:
    """Each message of an mbox as Python's mailbox module reads it back."""
    box = mailbox.mbox(path)
    try:
        return [box.get_bytes(key) for key in box.iterkeys()]
    finally:
        box.close()


def test_mbox_reads_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    append_mbox(path, letter(1), letter(2))
    source = MboxSource(path)
    first, checkpoint = read(source, None)
    assert [m.raw for m in first] == stored(path)
    assert checkpoint is not None and checkpoint.position == str(path.stat().st_size)
    assert read(source, checkpoint) == ([], checkpoint)

    inode = path.stat().st_ino
    append_mbox(path, letter(3))
    assert path.stat().st_ino == inode
    more, checkpoint = read(source, checkpoint)
    assert [m.raw for m in more] == stored(path)[2:]
    assert b"Reply number 3." in more[0].raw
    assert not {m.key for m in first} & {m.key for m in more}


def test_a_truncated_or_replaced_mbox_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    append_mbox(path, letter(1), letter(2))
    source = MboxSource(path)
    _, checkpoint = read(source, None)

    path.write_bytes(b"")  # emptied in place by a mail client, then new mail
    append_mbox(path, letter(3))
    fetched, checkpoint = read(source, checkpoint)
    assert [m.raw for m in fetched] == stored(path)

    replacement = tmp_path / "new.mbox"
    append_mbox(replacement, letter(4), letter(5), letter(6))
    replacement.replace(path)  # longer than before: only its identity says it is another file
    fetched, _ = read(source, checkpoint)
    assert len(fetched) == 3


def test_mbox_keeps_the_bytes_of_each_message(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    # mboxo quotes a body line "From ..." as ">From ...", and leaves one that was quoted already alone.
    append_mbox(path, letter(1, "Dear all,\nFrom now on we agree.\n>From the archive.\n"), letter(2))
    fetched, _ = read(MboxSource(path), None)
    assert b"\n>From now on we agree.\n>From the archive.\n" in fetched[0].raw
    assert [m.raw for m in fetched] == stored(path)


def test_a_file_that_is_not_an_mbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Subject: no From_ line\n\nhello\n")
    with pytest.raises(InputError, match="not an mbox file"):
        read(MboxSource(path), None)


# Choosing a source, and its settings


def test_source_for_reads_the_spec(tmp_path: Path) -> None:
    mailbox.Maildir(tmp_path / "Maildir")
    (tmp_path / "inbox.mbox").write_bytes(b"")
    imap = ImapSettings("imap.example.org", 993, "tls", "campaign", "secret")
    source = source_for("imap", imap, "Processed")
    assert isinstance(source, ImapSource) and source.move_to == "Processed" and source.folder == "INBOX"
    assert isinstance(source_for(f"maildir:{tmp_path / 'Maildir'}", None, None), MaildirSource)
    assert isinstance(source_for(f"mbox:{tmp_path / 'inbox.mbox'}", None, None), MboxSource)
    with pytest.raises(InvalidValueError, match="'pop3' is not a mail source"):
        source_for("pop3", imap, None)
    with pytest.raises(InvalidValueError):
        source_for("mbox:", imap, None)
    with pytest.raises(InputError, match="does not exist"):
        source_for(f"mbox:{tmp_path / 'missing.mbox'}", imap, None)
    with pytest.raises(ConfigError, match="no IMAP server is configured"):
        source_for("imap", None, None)


def test_imap_settings_come_from_the_environment(tmp_path: Path) -> None:
    assert Workspace(load_settings(tmp_path, {})).imap_settings() is None
    settings = load_settings(
        tmp_path,
        {
            "OUTREACH_IMAP_HOST": "imap.example.org",
            "OUTREACH_IMAP_SECURITY": "starttls",
            "OUTREACH_IMAP_USERNAME": "campaign",
            "OUTREACH_IMAP_PASSWORD": "hunter2-secret",
            "OUTREACH_IMAP_MOVE_TO": "Processed",
        },
    )
    imap = Workspace(settings).imap_settings(timeout=5)
    assert imap == ImapSettings("imap.example.org", 143, "starttls", "campaign", "hunter2-secret", 5)
    assert (settings.imap_folder, settings.imap_move_to) == ("INBOX", "Processed")
    assert "hunter2-secret" not in repr(settings) + repr(imap)
    assert load_settings(tmp_path, {"OUTREACH_IMAP_HOST": "imap.example.org"}).imap_port == 993
    with pytest.raises(ConfigError, match="OUTREACH_IMAP_SECURITY"):
        load_settings(tmp_path, {"OUTREACH_IMAP_SECURITY": "ssl"})
    with pytest.raises(ConfigError, match="OUTREACH_IMAP_PORT"):
        load_settings(tmp_path, {"OUTREACH_IMAP_PORT": "imap"})


def test_each_source_says_when_a_message_arrived(tmp_path: Path) -> None:
    """Not the Date header: the mbox From_ line's date (UTC, as delivery agents write it), and the Maildir file's
    delivery time (the seconds its unique name starts with, else when the file was written)."""
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From MAILER-DAEMON Wed Dec  2 14:30:05 2026\nDate: Sun, 01 Dec 2025 09:00:00 +0000\nSubject: a\n\nA\n\n"
        b"From someone@example.org  Thu Dec 3 08:01 2026\nSubject: b\n\nB\n\n"
        b"From someone@example.org\nSubject: c\n\nC\n"
    )
    arrived = [fetched.arrived for fetched, _ in MboxSource(box).fetch(None)]
    assert arrived == [datetime(2026, 12, 2, 14, 30, 5, tzinfo=UTC), datetime(2026, 12, 3, 8, 1, tzinfo=UTC), None]
    folder = mailbox.Maildir(tmp_path / "Maildir")
    folder.add(b"Subject: named\n\nA\n")
    (tmp_path / "Maildir" / "new" / "1796300000.M1P1Q1.host").write_bytes(b"Subject: b\n\nB\n")
    (tmp_path / "Maildir" / "cur" / "handmade:2,S").write_bytes(b"Subject: c\n\nC\n")
    found = {fetched.key: fetched.arrived for fetched, _ in MaildirSource(tmp_path / "Maildir").fetch(None)}
    assert found["maildir:1796300000.M1P1Q1.host"] == datetime.fromtimestamp(1796300000, UTC)
    assert all(moment is not None and abs(moment - datetime.now(UTC)) < timedelta(minutes=10)
               for key, moment in found.items() if key != "maildir:1796300000.M1P1Q1.host")  # fmt: skip
