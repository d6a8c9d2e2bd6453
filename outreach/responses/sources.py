"""Where inbound mail comes from: an IMAP folder, a Maildir or an mbox file, read incrementally as raw bytes.

An adapter: it knows the network and the file system, nothing of the database. Each message comes with the
checkpoint that is safe to store once the message is recorded; the caller stores both in one transaction, so a
crash re-reads at most what was not recorded, and the caller deduplicates what is read twice.
"""

from __future__ import annotations

import hashlib
import imaplib
import mailbox
import os
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from outreach.config import is_loopback
from outreach.errors import ConfigError, InputError, InvalidValueError, OutreachError
from outreach.outbox.smtp import SECURITIES
from outreach.scrubbing import Scrubber

BATCH = 200  # UIDs per FETCH: one round trip for many small messages, a bounded reply for large ones
MBOX_LOCK_WAIT = 5.0  # seconds to wait for a program that is writing the mbox
IDENTITY_BYTES = 1024  # how much of the start of an mbox file identifies it (with its inode)


class ImapError(OutreachError):
    """The IMAP server cannot be used as configured (connection, TLS, login, folder); never shows the password."""


_LOGIN_HINT = "check OUTREACH_IMAP_USERNAME and OUTREACH_IMAP_PASSWORD"


@dataclass(frozen=True)
class Fetched:
    """One message as it arrived, with its identity in its source (`imap:INBOX:<uidvalidity>:<uid>`,
    `maildir:<key>`, `mbox:<offset>:<digest>`)."""

    key: str
    raw: bytes
    # When it arrived in this mailbox (IMAP INTERNALDATE, the Maildir file's delivery time, the mbox From_ line's
    # date), in UTC; None when the source does not say. Not its Date header, which the sender's clock sets.
    arrived: datetime | None = None


@dataclass(frozen=True)
class Checkpoint:
    """How far a source has been read, as two opaque strings for the caller to store."""

    validity: str
    position: str


class Source(Protocol):
    """A mailbox read incrementally."""

    name: str

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[tuple[Fetched, Checkpoint]]:
        """Yield each message after `checkpoint` (all of them for None), with the checkpoint to store after it."""
        ...

    def done(self, fetched: Fetched) -> None:
        """Move a recorded message out of the way, where the source was told to; otherwise do nothing."""
        ...

    def close(self) -> None:
        """Release the connection or files."""
        ...


@dataclass(frozen=True)
class ImapSettings:
    """Where and how to reach the IMAP server."""

    host: str
    port: int = 993
    security: str = "tls"
    username: str = ""
    password: str = ""
    timeout: float = 60.0

    def __repr__(self) -> str:
        # The password is never shown.
        return f"ImapSettings({self.host!r}, {self.port}, security={self.security!r}, username={self.username!r})"


class ImapSource:
    """One folder of an IMAP server, read by UID (RFC 3501 2.3.1.1): a checkpoint is the folder's UIDVALIDITY
    and the highest UID read. The connection opens on first use and is kept until `close()`."""

    def __init__(
        self,
        settings: ImapSettings,
        folder: str = "INBOX",
        move_to: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        if settings.security not in SECURITIES:
            raise ImapError(f"OUTREACH_IMAP_SECURITY {settings.security!r} is not one of {', '.join(SECURITIES)}")
        self.settings = settings
        self.folder = folder
        self.move_to = move_to or None
        self.name = f"imap://{settings.username}@{settings.host}:{settings.port}/{folder}"
        self._context = context
        # A server may quote the login line it refused (and imaplib shows its reply as a repr of bytes): every
        # error this raises goes through the scrubber, whatever form the password took on the way back.
        self._scrub = Scrubber([(settings.username, settings.password)])
        self._client: Any = None
        self._validity = ""

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[tuple[Fetched, Checkpoint]]:
        """Yield the messages with a UID above the checkpoint's, or every one when UIDVALIDITY changed. They are
        read with BODY.PEEK[], so they stay unseen for the people who read the mailbox too."""
        client = self._connected()
        validity = self._select(client)
        with self._errors(f"read the folder {self.folder!r}"):
            last = int(checkpoint.position) if checkpoint and checkpoint.validity == validity else 0
            # `n:*` always matches the highest UID, even when it is below n (RFC 3501 6.4.8): filter it out.
            uids = sorted(uid for uid in client.search(["UID", f"{last + 1}:*"]) if uid > last)
        for start in range(0, len(uids), BATCH):
            batch = uids[start : start + BATCH]
            with self._errors(f"read the folder {self.folder!r}"):
                found = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in batch:
                data = found.get(uid)
                if data is None:  # expunged since the search
                    continue
                raw = cast(bytes, data[b"BODY[]"])
                arrived = _utc(data.get(b"INTERNALDATE"))
                yield Fetched(f"imap:{self.folder}:{validity}:{uid}", raw, arrived), Checkpoint(validity, str(uid))

    def probe(self) -> tuple[int, int]:
        """Log in and look at the folder without reading anything: how many messages it holds and how many of
        them are unseen (for `outreach doctor`)."""
        client = self._connected()
        with self._errors(f"look at the folder {self.folder!r}"):
            try:
                status = client.folder_status(self.folder, [b"MESSAGES", b"UNSEEN"])
            except imaplib.IMAP4.error:
                if not client.folder_exists(self.folder):
                    hint = "set OUTREACH_IMAP_FOLDER to a folder that exists"
                    raise ImapError(f"there is no folder {self.folder!r}", where=self.where, hint=hint) from None
                raise
        return int(status[b"MESSAGES"]), int(status[b"UNSEEN"])

    def done(self, fetched: Fetched) -> None:
        """Move the message to the `move_to` folder: MOVE (RFC 6851) where the server offers it, else COPY, mark
        \\Deleted and expunge it alone (UID EXPUNGE, RFC 4315) or, on a server without UIDPLUS, every message
        marked \\Deleted."""
        if self.move_to is None:
            return
        prefix, validity, uid_text = fetched.key.rsplit(":", 2)
        folder = prefix.removeprefix("imap:")
        if folder != self.folder or validity != self._validity or not uid_text.isdigit():
            return  # fetched from another folder, or before the folder was replaced: nothing safe to move
        uid = int(uid_text)
        client = self._client
        if client is None:  # dropped since the fetch: the folder must be selected again, and still be the same
            client = self._connected()
            if self._select(client) != validity:
                return
        with self._errors(f"move a message to {self.move_to!r}"):
            if client.has_capability("MOVE"):
                client.move([uid], self.move_to)
            else:
                client.copy([uid], self.move_to)
                client.add_flags([uid], [b"\\Deleted"], silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge([uid])
                else:
                    client.expunge()

    def close(self) -> None:
        """Log out, or just drop the connection when the server no longer answers."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            with suppress(OSError):
                client.shutdown()

    def _connected(self) -> Any:
        """The open, logged-in connection: the one kept from before if it still answers, else a new one."""
        if self._client is not None:
            try:
                self._client.noop()
                return self._client
            except (OSError, imaplib.IMAP4.error):
                self.close()
        s = self.settings
        if s.security == "none" and not is_loopback(s.host):
            raise ImapError(
                "refusing to send the password over an unencrypted connection",
                where=self.where,
                hint="set OUTREACH_IMAP_SECURITY=tls or starttls",
            )
        # imapclient is imported here, not at the top: the settings this module defines are read by every command.
        from imapclient import IMAPClient  # type: ignore[import-untyped]
        from imapclient.exceptions import LoginError  # type: ignore[import-untyped]

        context = self._context or ssl.create_default_context()
        with self._errors("connect to the IMAP server"):
            try:
                client = IMAPClient(s.host, s.port, ssl=s.security == "tls", ssl_context=context, timeout=s.timeout)
            except UnicodeError:  # the IDNA codec refuses a malformed host name before any connection
                raise ImapError(f"{s.host!r} is not a host name", where=self.where,
                                hint="check OUTREACH_IMAP_HOST") from None  # fmt: skip
        try:
            with self._errors("connect to the IMAP server"):
                if s.security == "starttls":
                    if not client.has_capability("STARTTLS"):
                        raise ImapError(
                            "the server does not offer STARTTLS",
                            where=self.where,
                            hint="set OUTREACH_IMAP_SECURITY=tls for port 993",
                        )
                    client.starttls(context)
                try:
                    self._log_in(client)
                except LoginError as error:
                    message = f"the server refused the login for {s.username!r}: {_text(error)}"
                    raise ImapError(message, where=self.where, hint=_LOGIN_HINT) from None
                if self.move_to is not None and not client.folder_exists(self.move_to):
                    client.create_folder(self.move_to)
        except BaseException:
            with suppress(OSError):
                client.shutdown()
            raise
        self._client = client
        return client

    def _log_in(self, client: Any) -> None:
        """LOGIN, or AUTHENTICATE PLAIN for a user name or password that is not ASCII.

        LOGIN sends both as quoted strings, which hold 7-bit characters only (RFC 3501 9: QUOTED-CHAR is a CHAR),
        and imaplib encodes its commands as ASCII; SASL PLAIN carries its message in UTF-8 (RFC 4616 2), base64
        encoded on the wire, which is how RFC 6855 lets UTF-8 credentials through. An ASCII login stays LOGIN, as
        every server takes it."""
        s = self.settings
        if s.username.isascii() and s.password.isascii():
            client.login(s.username, s.password)
        elif client.has_capability("AUTH=PLAIN"):
            client.plain_login(s.username, s.password)
        else:
            raise ImapError(
                "a user name or password that is not ASCII needs AUTHENTICATE PLAIN, which the server does not offer"
                + (" before TLS" if s.security == "none" else ""),
                where=self.where,
                hint="set OUTREACH_IMAP_SECURITY=tls or starttls, or choose an ASCII password",
            )

    def _select(self, client: Any) -> str:
        """Select the folder (read-only unless messages are to be moved out of it) and return its UIDVALIDITY."""
        with self._errors(f"read the folder {self.folder!r}"):
            try:
                selected = client.select_folder(self.folder, readonly=self.move_to is None)
            except imaplib.IMAP4.error:
                if not client.folder_exists(self.folder):
                    hint = "set OUTREACH_IMAP_FOLDER to a folder that exists"
                    raise ImapError(f"there is no folder {self.folder!r}", where=self.where, hint=hint) from None
                raise
        self._validity = str(selected[b"UIDVALIDITY"])
        return self._validity

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn the library's and the socket's errors into one-line ImapErrors naming host:port."""
        try:
            yield
        except ImapError as error:
            raise self._scrub.error(error) from None
        except (OSError, imaplib.IMAP4.error) as error:  # timeouts and TLS errors are OSErrors too
            self.close()
            kind = "" if isinstance(error, imaplib.IMAP4.error) else f"{type(error).__name__}: "
            raise self._scrub.error(ImapError(f"cannot {doing}: {kind}{_text(error)}", where=self.where)) from None
        except UnicodeError as error:  # its text would quote the character: the reason alone
            self.close()
            reason = f"{type(error).__name__} ({getattr(error, 'reason', '')})"
            raise ImapError(f"cannot {doing}: {reason}", where=self.where) from None


def _text(error: BaseException) -> str:
    """An exception's text on one line; imaplib's carry the server's bytes."""
    text = str(error)
    quoted = re.fullmatch(r"b(['\"])(.*)\1", text, re.DOTALL)  # str() of the server's bytes: b'[ALERT] ...'
    return " ".join((quoted[2] if quoted else text).split())


class MaildirSource:
    """A Maildir read whole each time, in the order of its keys (the unique file names); the caller skips keys
    it has recorded. Moving a message puts its file, unchanged, into the same place (new/ or cur/) of a Maildir++
    subfolder (`.NAME`, as dovecot and Courier keep an IMAP folder NAME), so a mail client shows it as it was."""

    def __init__(self, path: Path, move_to: str | None = None) -> None:
        self.path = Path(path)
        if not (self.path / "cur").is_dir() or not (self.path / "new").is_dir():
            raise InputError(f"{self.path} is not a Maildir (it needs cur/ and new/)")
        if move_to and ("/" in move_to or move_to.startswith(".")):
            raise InvalidValueError(f"{move_to!r} is not a Maildir folder name", hint="use a name such as Processed")
        self.move_to = move_to or None
        self.name = f"maildir:{self.path}"
        self._files: dict[str, Path] = {}

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[tuple[Fetched, Checkpoint]]:
        """Yield every message in new/ and cur/; the checkpoint is always empty."""
        self._files = {}
        for folder in ("new", "cur"):
            for entry in os.scandir(self.path / folder):
                if entry.name.startswith("."):
                    continue
                # The key is the name up to the info part (":2,FLAGS"), as mailbox.Maildir has it.
                self._files[entry.name.split(":", 1)[0]] = Path(entry.path)
        for key in sorted(self._files):
            try:
                raw = self._files[key].read_bytes()
                arrived = _delivered(key, self._files[key])
            except FileNotFoundError:  # moved or deleted by a mail client since the listing
                continue
            yield Fetched(f"maildir:{key}", raw, arrived), Checkpoint("", "")

    def done(self, fetched: Fetched) -> None:
        """Move the message's file into the `move_to` subfolder (created if missing), keeping its name and flags."""
        if self.move_to is None:
            return
        path = self._files.get(fetched.key.removeprefix("maildir:"))
        if path is None or not path.exists():
            return
        target = self.path / f".{self.move_to}"
        if not target.is_dir():
            mailbox.Maildir(self.path, create=False).add_folder(self.move_to)
        path.rename(target / path.parent.name / path.name)

    def close(self) -> None:
        """Nothing to release."""
        self._files = {}


class MboxSource:
    """An mbox file read from where the last fetch stopped: the checkpoint holds the file's identity (inode and
    a digest of its first bytes) and the byte offset read up to. An appended file is read from that offset on; a
    replaced, rewritten or truncated one from the start. Messages cannot be moved out of it (that would rewrite
    the file under the program that delivers to it)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path} is not an mbox file")
        self.name = f"mbox:{self.path}"

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[tuple[Fetched, Checkpoint]]:
        """Yield each message after the checkpoint's offset, without its From_ line, with the bytes as stored."""
        try:
            file = self.path.open("rb")
        except OSError as error:
            raise InputError(f"cannot read the mbox: {error.strerror}", where=str(self.path)) from None
        with file:
            self._lock(file)
            inode = os.fstat(file.fileno()).st_ino
            head = file.read(IDENTITY_BYTES)
            offset = self._resume_at(file, inode, head, checkpoint)
            file.seek(offset)
            for start, from_line, raw, end in _mbox_messages(file, offset):
                digest = hashlib.sha256(raw).hexdigest()[:16]
                fetched = Fetched(f"mbox:{start}:{digest}", raw, _from_line_date(from_line))
                yield fetched, Checkpoint(_identity(inode, head, end), str(end))

    def done(self, fetched: Fetched) -> None:
        """Nothing: an mbox is only read."""

    def close(self) -> None:
        """Nothing to release: the file is open only while fetching."""

    def _resume_at(self, file: BinaryIO, inode: int, head: bytes, checkpoint: Checkpoint | None) -> int:
        """The offset to read from: the checkpoint's while the file is the one it was taken of, else 0."""
        if checkpoint is None or not checkpoint.position.isdigit():
            return 0
        offset = int(checkpoint.position)
        size = os.fstat(file.fileno()).st_size
        if checkpoint.validity != _identity(inode, head, offset) or offset > size:
            return 0
        if offset < size:  # what follows must be the next message's From_ line, or the file was rewritten
            file.seek(offset)
            if file.read(5) != b"From ":
                return 0
        return offset

    def _lock(self, file: BinaryIO) -> None:
        """Wait for a program that is writing the file (fcntl locks, as Debian's delivery agents take them)."""
        try:
            import fcntl
        except ImportError:  # Windows: no such locks
            return
        deadline = time.monotonic() + MBOX_LOCK_WAIT
        while True:
            try:
                fcntl.lockf(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise InputError("another program keeps the mbox locked", where=str(self.path)) from None
                time.sleep(0.1)


def _identity(inode: int, head: bytes, offset: int) -> str:
    """What identifies the file a checkpoint at `offset` was taken of: its inode and the digest of its first bytes
    (only those already read, so that appending to a short file does not change it)."""
    known = head[: min(offset, IDENTITY_BYTES)]
    return f"{inode}:{len(known)}:{hashlib.sha256(known).hexdigest()[:16]}"


def _mbox_messages(file: BinaryIO, offset: int) -> Iterator[tuple[int, bytes, bytes, int]]:
    """Yield (start, From_ line, message, end) for each message from `offset` on: `start` is its From_ line's
    offset, `end` the next one's (or the end of the file). A line starting with "From " starts a message (mboxo and
    mboxrd writers quote such lines in bodies as ">From ", which stays as it is). The blank line that separates a
    message from the next is not part of it, as in Python's mailbox.mbox."""
    start: int | None = None
    from_line = b""
    lines: list[bytes] = []
    position = offset
    for line in file:
        if line.startswith(b"From "):
            if start is not None:
                yield start, from_line, _without_separator(lines), position
            start, from_line, lines = position, line, []
        elif start is not None:
            lines.append(line)
        elif line.strip():
            raise InputError("not an mbox file: it does not start with a From line", where=str(file.name))
        position += len(line)
    if start is not None:
        yield start, from_line, _without_separator(lines), position


# The date a delivery agent writes on the From_ line, in asctime's form: `From sender Thu Dec  3 10:00:00 2026`,
# sometimes with a zone or offset before or after the year.
_FROM_LINE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +"
    rb"\d{1,2}:\d{2}(?::\d{2})?)(?: +[A-Z]{3,5}| +[+-]\d{4})? +(\d{4})"
)


def _from_line_date(line: bytes) -> datetime | None:
    """When an mbox message was delivered, from its From_ line (UTC, which delivery agents write; None: no date)."""
    found = _FROM_LINE_DATE.search(line)
    if found is None:
        return None
    text = f"{' '.join(found[1].decode('ascii').split())} {found[2].decode('ascii')}"
    for layout in ("%b %d %H:%M:%S %Y", "%b %d %H:%M %Y"):
        with suppress(ValueError):
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
    return None


def _delivered(key: str, path: Path) -> datetime | None:
    """When a Maildir message was delivered: the seconds its unique name begins with (`1764846000.M…`, the Maildir
    convention), else the file's modification time, which delivery sets."""
    seconds, _, _ = key.partition(".")
    if seconds.isascii() and seconds.isdigit() and 9 <= len(seconds) <= 11:
        return datetime.fromtimestamp(int(seconds), UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _utc(value: object) -> datetime | None:
    """An IMAP INTERNALDATE as imapclient gives it (a datetime in the server's zone, or naive local time) in UTC."""
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.astimezone().astimezone(UTC)


def _without_separator(lines: list[bytes]) -> bytes:
    """The message's lines without the blank line that ends it in the file."""
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def source_of(name: str | None, key: str | None) -> dict[str, Any] | None:
    """Where a recorded message was read, as a script checks it against the mailbox: the IMAP mailbox with the
    folder, UIDVALIDITY and UID, or the Maildir or mbox file with the message's key there (None: logged by hand)."""
    if not name:
        return None
    parts = (key or "").split(":")
    if parts[0] == "imap" and len(parts) >= 4 and parts[-1].isdigit():
        return {"mailbox": name, "folder": ":".join(parts[1:-2]), "uidvalidity": parts[-2], "uid": int(parts[-1])}
    kind, _, path = name.partition(":")
    if kind in ("maildir", "mbox") and len(parts) >= 2:
        return {kind: path, "key": ":".join(parts[1:])}
    return {"source": name, "key": key}


SPEC = re.compile(r"(?P<kind>imap|maildir|mbox)(?::(?P<path>.+))?\Z")


def source_for(spec: str, imap: ImapSettings | None, move_to: str | None, folder: str = "INBOX") -> Source:
    """The source a spec names: `imap` (the configured server), `maildir:PATH` or `mbox:PATH`."""
    match = SPEC.match(spec.strip())
    if match is None or (match["kind"] == "imap") != (match["path"] is None):
        raise InvalidValueError(
            f"{spec!r} is not a mail source", hint="use imap, maildir:PATH or mbox:PATH (PATH relative or absolute)"
        )
    if match["kind"] == "imap":
        if imap is None:
            raise ConfigError("no IMAP server is configured", hint="set OUTREACH_IMAP_HOST in .env")
        return ImapSource(imap, folder, move_to)
    path = Path(match["path"]).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist", hint=f"{spec!r} must name an existing {match['kind']}")
    if match["kind"] == "maildir":
        return MaildirSource(path, move_to)
    return MboxSource(path)
