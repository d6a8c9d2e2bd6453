"""STARTTLS and TLS from the first byte, against a real aiosmtpd on loopback with a certificate made for the test."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from outreach.outbox.smtp import SmtpConnection, SmtpError, SmtpSettings

from .smtp_server import FaultyHandler, start_server
from .test_signing import openssl

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: over TLS\r\n\r\nsealed\r\n"
USERS = {"campaign": "tls-only-secret"}


@dataclass
class Certificate:
    cert: Path
    key: Path

    def server(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client(self) -> ssl.SSLContext:
        """A client that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    folder = tmp_path_factory.mktemp("tls")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"))  # fmt: skip
    return Certificate(folder / "cert.pem", folder / "key.pem")


@pytest.fixture
def starttls_server(certificate: Certificate) -> Iterator[tuple[FaultyHandler, Controller]]:
    handler = FaultyHandler()
    controller = start_server(handler, USERS, tls_context=certificate.server(), require_starttls=True)
    yield handler, controller
    controller.stop()


def send_one(port: int, security: str, certificate: Certificate) -> None:
    """Log in as the campaign over `security` and send MESSAGE once."""
    settings = SmtpSettings("127.0.0.1", port, security, "campaign", USERS["campaign"], timeout=5)
    smtp = SmtpConnection(settings, certificate.client())
    smtp.open()
    try:
        assert smtp.send("a@example.org", "b@example.org", MESSAGE, lambda: None).ok
    finally:
        smtp.close()


def test_starttls_then_login_then_a_message(
    starttls_server: tuple[FaultyHandler, Controller], certificate: Certificate
) -> None:
    handler, controller = starttls_server
    send_one(controller.port, "starttls", certificate)
    assert [r.data for r in handler.received] == [MESSAGE]


def test_a_certificate_that_is_not_trusted_is_one_clear_error_without_the_password(
    starttls_server: tuple[FaultyHandler, Controller],
) -> None:
    _, controller = starttls_server
    settings = SmtpSettings("127.0.0.1", controller.port, "starttls", "campaign", USERS["campaign"], timeout=5)
    with pytest.raises(SmtpError) as refused:
        SmtpConnection(settings).open()  # the system's trust store does not know the test's certificate
    message = str(refused.value)
    assert "cannot use the SMTP server: SSLCertVerificationError" in message and "\n" not in message
    assert USERS["campaign"] not in message


def test_tls_from_the_first_byte(certificate: Certificate) -> None:
    handler = FaultyHandler()
    controller = start_server(handler, USERS, ssl_context=certificate.server())
    try:
        send_one(controller.port, "tls", certificate)
    finally:
        controller.stop()
    assert [r.data for r in handler.received] == [MESSAGE]


def test_a_server_without_starttls_is_refused_when_starttls_is_asked() -> None:
    handler = FaultyHandler()
    controller = start_server(handler)
    try:
        with pytest.raises(SmtpError, match="the server does not offer STARTTLS"):
            SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "starttls", timeout=5)).open()
    finally:
        controller.stop()
    assert handler.received == []
