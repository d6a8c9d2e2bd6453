"""SMTP, one transaction at a time, with the end-of-data mark as a step of its own.

`smtplib.SMTP.sendmail()` sends the body and the end-of-data mark in one call; the outbox must record "about to
commit" before the mark leaves (RFC 5321 4.1.1.4: only the 250 after the mark hands responsibility to the
server), so this drives the transaction step by step with smtplib's lower-level calls. It knows nothing of the
database; the caller's `before_commit` writes that state.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from outreach.errors import OutreachError

SECURITIES = ("none", "starttls", "tls")


class SmtpError(OutreachError):
    """The SMTP server cannot be used as configured (connection, TLS, authentication); never shows the password."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    password: str = ""
    timeout: float = 60.0
    local_hostname: str | None = None

    def __repr__(self) -> str:
        # The password is never shown.
        return f"SmtpSettings({self.host!r}, {self.port}, security={self.security!r}, username={self.username!r})"


@dataclass(frozen=True)
class Reply:
    """What the server answered; `code` None when the connection broke instead. `after_data_mark` says whether
    the end-of-data mark had gone out (the one case where the message's fate is unknown)."""

    code: int | None
    text: str
    after_data_mark: bool = False

    @property
    def ok(self) -> bool:
        """True for a 2xx reply."""
        return self.code is not None and 200 <= self.code < 300


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where AUTH without encryption harms no one."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpConnection:
    """One connection to the server, opened once and reused for many transactions."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext | None = None) -> None:
        if settings.security not in SECURITIES:
            raise SmtpError(f"OUTREACH_SMTP_SECURITY {settings.security!r} is not one of {', '.join(SECURITIES)}")
        self.settings = settings
        self._context = context or ssl.create_default_context()
        self._smtp: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def open(self) -> None:
        """Connect, say EHLO, start TLS and log in as the settings say."""
        s = self.settings
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname, context=self._context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname)
        except OSError as error:
            raise SmtpError(f"cannot use the SMTP server: {type(error).__name__}: {error}", where=self.where) from None
        # The end-of-data mark goes out in a write of its own (after the commit point); with Nagle's algorithm it
        # would wait for the ACK of the body, which a delayed ACK holds back 40 ms: a message would cost 40 ms.
        if smtp.sock is not None:
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._greet(smtp)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp

    def _greet(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS and AUTH on a fresh connection, with library errors turned into one-line ones."""
        s = self.settings
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SmtpError(
                        "the server does not offer STARTTLS",
                        where=self.where,
                        hint="set OUTREACH_SMTP_SECURITY=tls for port 465, or none for a local server",
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if s.username:
                if s.security == "none" and not is_loopback(s.host):
                    raise SmtpError(
                        "refusing to send the password over an unencrypted connection",
                        where=self.where,
                        hint="set OUTREACH_SMTP_SECURITY=starttls or tls",
                    )
                smtp.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as error:
            message = f"the server refused the login for {s.username!r} ({error.smtp_code})"
            raise SmtpError(message, where=self.where) from None
        except (OSError, smtplib.SMTPException) as error:
            reason = f"{type(error).__name__}: {error}"
            raise SmtpError(f"cannot use the SMTP server: {reason}", where=self.where) from None

    def offers(self, extension: str) -> bool:
        """True when the open connection's server offers an ESMTP extension (`pipelining`, `smtputf8`)."""
        return bool(self._smtp and self._smtp.has_extn(extension))

    @property
    def supports_smtputf8(self) -> bool:
        """True when the server offers SMTPUTF8 (RFC 6531)."""
        return self.offers("smtputf8")

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_commit: Callable[[], None],
        *,
        smtputf8: bool = False,
        while_waiting: Callable[[], None] | None = None,
    ) -> Reply:
        """Run one transaction; call `before_commit` just before the end-of-data mark goes out, and
        `while_waiting` once it is out, while the server digests the data and before its answer is read."""
        smtp = self._smtp
        if smtp is None:
            raise SmtpError("the connection is not open", where=self.where)
        committing = False
        try:
            options = ["SMTPUTF8", "BODY=8BITMIME"] if smtputf8 else []
            if smtputf8 and not self.supports_smtputf8:
                return Reply(553, "5.6.7 the address needs SMTPUTF8, which the server does not offer")
            refused = self._envelope(smtp, sender, recipient, options)
            if refused is not None:
                return refused
            smtp.send(_dot_stuffed(data))
            before_commit()
            committing = True
            smtp.send(b".\r\n")
            if while_waiting is not None:
                while_waiting()
            code, text = smtp.getreply()
            if code == 421:
                self.close()
            return Reply(code, text.decode("utf-8", "replace"), after_data_mark=True)
        except (smtplib.SMTPServerDisconnected, OSError) as error:  # timeouts are OSErrors too
            self.close()
            return Reply(None, f"{type(error).__name__}: {error}", after_data_mark=committing)

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str, options: list[str]) -> Reply | None:
        """MAIL, RCPT and DATA; None once the server waits for the data, else the reply that refused.

        Where the server offers PIPELINING (RFC 2920), the three commands go in one write and their replies are
        read together: one round trip instead of three. DATA ends the group, as section 3.1 asks, and the body
        goes only after its 354. Elsewhere each command waits for its reply, and the first refusal ends it.
        """
        extra = "".join(f" {option}" for option in options)
        commands = [f"MAIL FROM:{_path(sender)}{extra}", f"RCPT TO:{_path(recipient)}", "DATA"]
        wanted = ((250,), (250, 251), (354,))
        encoding = "utf-8" if options else "ascii"
        if not smtp.has_extn("pipelining"):
            for command, codes in zip(commands, wanted, strict=True):
                smtp.send(f"{command}\r\n".encode(encoding))
                code, text = smtp.getreply()
                if code not in codes:
                    return self._refused(code, text)
            return None
        smtp.send("".join(f"{command}\r\n" for command in commands).encode(encoding))
        replies = []
        for _ in commands:  # every reply is read, whatever the first ones said, unless the server hangs up
            replies.append(smtp.getreply())
            if replies[-1][0] == 421:
                return self._refused(*replies[-1])
        for (code, text), codes in zip(replies, wanted, strict=True):
            if code not in codes:
                if replies[2][0] == 354:  # a server that waits for data anyway gets none: an empty message
                    smtp.send(b".\r\n")  # with no valid recipient, which it cannot deliver
                    smtp.getreply()
                return self._refused(code, text)
        return None

    def _refused(self, code: int, text: bytes) -> Reply:
        """End a transaction the server refused before the data: RSET, or hang up after a 421 (RFC 5321 3.8:
        the server is closing the connection)."""
        assert self._smtp is not None
        if code == 421:
            self.close()
        else:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.close()
        return Reply(code, text.decode("utf-8", "replace"))

    @property
    def is_open(self) -> bool:
        """True while the connection can carry another transaction."""
        return self._smtp is not None

    def close(self) -> None:
        """Say QUIT if the server still listens, and close."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _path(address: str) -> str:
    """An address as a reverse- or forward-path (RFC 5321 4.1.2): `<address>`, `<>` for the null sender. The
    addresses were checked long before; a line break or bracket here would forge a command, so it is refused."""
    if any(character in address for character in "\r\n<>"):
        raise SmtpError(f"refusing the address {address!r}: it would break the SMTP command")
    return f"<{address}>"


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, a leading dot doubled (RFC 5321 4.5.2), ending in CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


class SmtpTransport:
    """A connection that opens on first use and again after the server dropped it."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext | None = None) -> None:
        self._connection = SmtpConnection(settings, context)

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        before_commit: Callable[[], None],
        *,
        smtputf8: bool = False,
        while_waiting: Callable[[], None] | None = None,
    ) -> Reply:
        """Send one message, connecting first if needed. A server that cannot be reached (or refuses the login)
        raises SmtpError: trying every other message against it would only use up their attempts."""
        if not self._connection.is_open:
            self._connection.open()
        return self._connection.send(
            sender, recipient, data, before_commit, smtputf8=smtputf8, while_waiting=while_waiting
        )

    def close(self) -> None:
        """Say goodbye to the server."""
        self._connection.close()
