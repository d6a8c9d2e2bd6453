"""SMTP, one transaction at a time, with the end-of-data mark as a step of its own.

`smtplib.SMTP.sendmail()` sends the body and the end-of-data mark in one call; the outbox must record "about to
commit" before the mark leaves (RFC 5321 4.1.1.4: only the 250 after the mark hands responsibility to the
server), so this drives the transaction step by step with smtplib's lower-level calls. It knows nothing of the
database; the caller's `before_commit` writes that state.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from outreach.config import is_loopback
from outreach.errors import OutreachError
from outreach.scrubbing import Scrubber

SECURITIES = ("none", "starttls", "tls")


class SmtpError(OutreachError):
    """The SMTP server cannot be used as configured (connection, TLS, authentication); never shows the password."""


_LOGIN_HINT = "check OUTREACH_SMTP_USERNAME and OUTREACH_SMTP_PASSWORD"


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


class SmtpConnection:
    """One connection to the server, opened once and reused for many transactions."""

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext | None = None) -> None:
        if settings.security not in SECURITIES:
            raise SmtpError(f"OUTREACH_SMTP_SECURITY {settings.security!r} is not one of {', '.join(SECURITIES)}")
        self.settings = settings
        self._context = context
        self._smtp: smtplib.SMTP | None = None
        # What the server says goes into errors and replies: a server that echoes the login must not show it.
        self._scrub = Scrubber([(settings.username, settings.password)])

    def _tls(self) -> ssl.SSLContext:
        """The TLS settings, made when a connection first needs them: loading the system's certificates takes some
        20 ms, which a connection without TLS (a local relay) need not spend."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def open(self) -> None:
        """Connect, say EHLO, start TLS and log in as the settings say; what goes wrong is one SmtpError, with the
        password hidden in whatever form the server or the library echoed it."""
        try:
            self._open()
        except SmtpError as error:
            raise self._scrub.error(error) from None

    def _open(self) -> None:
        s = self.settings
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname, context=self._tls()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout, local_hostname=s.local_hostname)
        except OSError as error:
            raise SmtpError(f"cannot use the SMTP server: {type(error).__name__}: {error}", where=self.where) from None
        except UnicodeError:  # the IDNA codec refuses a malformed host name before any connection
            hint = "check OUTREACH_SMTP_HOST"
            raise SmtpError(f"{s.host!r} is not a host name", where=self.where, hint=hint) from None
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
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if s.username:
                if s.security == "none" and not is_loopback(s.host):
                    raise SmtpError(
                        "refusing to send the password over an unencrypted connection",
                        where=self.where,
                        hint="set OUTREACH_SMTP_SECURITY=starttls or tls",
                    )
                self._log_in(smtp)
        except smtplib.SMTPAuthenticationError as error:
            said = " ".join(filter(None, (str(error.smtp_code), _one_line(error.smtp_error))))
            message = f"the server refused the login for {s.username!r} ({said})"
            raise SmtpError(message, where=self.where, hint=_LOGIN_HINT) from None
        except (OSError, smtplib.SMTPException) as error:
            reason = f"{type(error).__name__}: {error}"
            raise SmtpError(f"cannot use the SMTP server: {reason}", where=self.where) from None
        except UnicodeError as error:  # its text would quote the character: the reason alone
            reason = f"{type(error).__name__} ({getattr(error, 'reason', '')})"
            raise SmtpError(f"cannot use the SMTP server: {reason}", where=self.where) from None

    def _log_in(self, smtp: smtplib.SMTP) -> None:
        """AUTH with the settings' user name and password, which may be any Unicode text.

        smtplib encodes both as ASCII, so `Pässwörd` would fail before a byte is sent. An ASCII login goes through
        smtplib as it always did (CRAM-MD5, PLAIN or LOGIN, whichever the server offers first); any other is sent
        here in UTF-8: as AUTH PLAIN, whose message RFC 4616 2 defines as UTF-8 (`NUL user NUL password`, base64 as
        the initial response of RFC 4954 4), or, where the server offers no PLAIN, as AUTH LOGIN with the same
        UTF-8 bytes (draft-murchison-sasl-login). A refusal raises smtplib's SMTPAuthenticationError either way.
        """
        s = self.settings
        if s.username.isascii() and s.password.isascii():
            smtp.login(s.username, s.password)
            return
        if not smtp.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        offered = smtp.esmtp_features["auth"].upper().split()
        # surrogateescape: a password read from an environment that is not UTF-8 goes out as the bytes it was.
        user, password = (text.encode("utf-8", "surrogateescape") for text in (s.username, s.password))
        if "PLAIN" in offered:
            message = _base64(b"\0" + user + b"\0" + password)
            code, reply = smtp.docmd("AUTH", f"PLAIN {message}")
            if code == 334:  # a server that takes no initial response asks for the message (RFC 4954 4)
                code, reply = smtp.docmd(message)
        elif "LOGIN" in offered:
            code, reply = smtp.docmd("AUTH", "LOGIN")
            for answer in (user, password):
                if code != 334:
                    break
                code, reply = smtp.docmd(_base64(answer))
        else:
            raise SmtpError(
                f"the server offers AUTH {' '.join(offered) or 'with no mechanism'}, but a user name or password "
                "that is not ASCII needs PLAIN or LOGIN",
                where=self.where,
                hint="ask the mail provider for AUTH PLAIN, or choose an ASCII password",
            )
        if code not in (235, 503):  # 503: already authenticated, as smtplib takes it
            raise smtplib.SMTPAuthenticationError(code, reply)

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
            return Reply(code, self._scrub(text.decode("utf-8", "replace")), after_data_mark=True)
        except (smtplib.SMTPServerDisconnected, OSError) as error:  # timeouts are OSErrors too
            self.close()
            return Reply(None, self._scrub(f"{type(error).__name__}: {error}"), after_data_mark=committing)

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
        return Reply(code, self._scrub(text.decode("utf-8", "replace")))

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


def _base64(data: bytes) -> str:
    """`data` in base64 on one line, as SMTP AUTH carries it (RFC 4954 4)."""
    return base64.b64encode(data).decode("ascii")


def _one_line(reply: bytes | str) -> str:
    """A server's reply (several lines joined by smtplib) as one line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


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
