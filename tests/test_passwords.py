"""Passwords as people choose them (issue 14): any Unicode text logs in to SMTP and IMAP, and no command shows one,
in any form a server may echo it, on stdout, stderr or in --json. Real processes, a real aiosmtpd and dovecot."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from imapclient import IMAPClient

from outreach.config import load_settings
from outreach.scrubbing import MASK

from .conftest import Env
from .imap_server import ECHO_USERNAME, UNICODE_PASSWORD, UNICODE_USERNAME, Dovecot
from .smtp_server import FaultyHandler, free_port, start_server
from .test_run import Scheduler, wait_for
from .test_scrubbing import echoed_forms
from .test_sending import queue_wave

# The processes cost a second each: SQLite alone, where the databases make no difference.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

WRONG = ['wrong "pw" \\ 4711', 'wröng "pw" \\ 4711']  # ASCII goes by smtplib and IMAP LOGIN, the other not


def quoted(value: str) -> str:
    """A value as .env holds it whatever it contains: single-quoted, `\\` and `'` escaped (python-dotenv)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def configure(env: Env, *, smtp_port: int, smtp_password: str, dovecot: Dovecot, imap_user: str, imap_password: str,
              folder: str = "INBOX") -> None:  # fmt: skip
    """Settings for sending through the SMTP server on loopback and reading the inbox from dovecot."""
    env.write(".env", (
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\nOUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n'
        f"OUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={smtp_port}\nOUTREACH_SMTP_SECURITY=none\n"
        f"OUTREACH_SMTP_USERNAME=campaign\nOUTREACH_SMTP_PASSWORD={quoted(smtp_password)}\n"
        f"OUTREACH_IMAP_HOST={dovecot.host}\nOUTREACH_IMAP_PORT={dovecot.port}\nOUTREACH_IMAP_SECURITY=none\n"
        f"OUTREACH_IMAP_USERNAME={imap_user}\nOUTREACH_IMAP_PASSWORD={quoted(imap_password)}\n"
        f"OUTREACH_IMAP_FOLDER={folder}\n"
    ))  # fmt: skip
    settings = load_settings(env.root, {})
    assert (settings.smtp_password, settings.imap_password) == (smtp_password, imap_password), "read back as written"


def test_a_password_that_is_not_ascii_logs_in_to_smtp_and_imap(env: Env, dovecot: Dovecot) -> None:
    handler = FaultyHandler()
    controller = start_server(handler, users={"campaign": UNICODE_PASSWORD})
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10)
    client.plain_login(UNICODE_USERNAME, UNICODE_PASSWORD)
    folder = f"unicode{uuid.uuid4().hex[:10]}"
    try:
        client.create_folder(folder)
        client.append(folder, b"From: Member 0 <mp0@parliament0.example.org>\r\nTo: appeal@example.org\r\n"
                              b"Subject: Re: Appeal\r\nMessage-ID: <r1@parliament0.example.org>\r\n\r\n"
                              b"I sign.\r\n")  # fmt: skip
        configure(queue_wave(env), smtp_port=controller.port, smtp_password=UNICODE_PASSWORD, dovecot=dovecot,
                  imap_user=UNICODE_USERNAME, imap_password=UNICODE_PASSWORD, folder=folder)  # fmt: skip
        doctor = env.run("doctor", "--json", check=False)
        checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
        assert checks["smtp"]["status"] == "ok" and "logged in as 'campaign'" in checks["smtp"]["detail"]
        assert checks["imap"]["status"] == "ok" and f"logged in as '{UNICODE_USERNAME}'" in checks["imap"]["detail"]
        sent = env.run("send", "--yes", "--json")
        assert json.loads(sent.stdout)["sent"] == 12 and len(handler.received) == 12
        polled = env.run("responses", "poll", "--json")
        assert json.loads(polled.stdout)["recorded"] == 1
    finally:
        client.logout()
        controller.stop()
    for result in (doctor, sent, polled):
        assert UNICODE_PASSWORD not in result.stdout + result.stderr


def _echoing(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    """Refuse every login with a reply that quotes back what came, in the forms a careless server might."""
    assert isinstance(data, LoginPassword)
    login, password = data.login.decode(), data.password.decode()
    plain = base64.b64encode(b"\0" + data.login + b"\0" + data.password).decode()
    said = f"{password} {password!r} {data.password!r} {quote(password)} {plain} {base64.b64encode(data.password)!r}"
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 refused {login}: {said}")


@pytest.fixture
def echoing_smtp() -> Iterator[int]:
    """An aiosmtpd on loopback that offers AUTH and echoes the password of every login it refuses."""
    controller = Controller(FaultyHandler(), hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=True,
                            authenticator=_echoing, auth_require_tls=False)  # fmt: skip
    controller.start()
    yield controller.port
    controller.stop()


@pytest.mark.parametrize("wrong", WRONG)
def test_a_password_that_servers_echo_shows_in_no_output(
    env: Env, dovecot: Dovecot, echoing_smtp: int, wrong: str
) -> None:
    forms = echoed_forms(wrong, "campaign") + echoed_forms(wrong, ECHO_USERNAME)
    configure(queue_wave(env), smtp_port=echoing_smtp, smtp_password=wrong, dovecot=dovecot, imap_user=ECHO_USERNAME,
              imap_password=wrong)  # fmt: skip
    shown: dict[str, str] = {}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = env.run(*args, check=False)
        assert result.returncode != 0, f"outreach {' '.join(args)} failed, as it should"
        shown[" ".join(args)] = result.stdout + result.stderr
        return result

    doctor = json.loads(run("doctor", "--json").stdout)
    checks = {check["name"]: check for check in doctor["checks"]}
    assert checks["smtp"]["detail"].startswith(f"127.0.0.1:{echoing_smtp}: the server refused the login for "
                                               "'campaign' (535 5.7.8 refused campaign: ***")  # fmt: skip
    assert checks["smtp"]["hint"] == "check OUTREACH_SMTP_USERNAME and OUTREACH_SMTP_PASSWORD", "not the host name"
    assert checks["imap"]["detail"] == (f"{dovecot.host}:{dovecot.port}: the server refused the login for 'echo': "
                                        "[CONTACTADMIN] [***][***]")  # fmt: skip
    assert checks["imap"]["hint"] == "check OUTREACH_IMAP_USERNAME and OUTREACH_IMAP_PASSWORD"
    run("doctor")
    assert "the server refused the login for 'campaign'" in run("send", "--yes").stderr
    assert "Traceback (most recent call last)" in run("--debug", "send", "--yes").stderr
    assert "the server refused the login for 'echo'" in run("responses", "poll").stderr
    run("responses", "poll", "--json")
    assert "the server refused the login for 'campaign'" in run("run", "--once", "--yes").stderr

    taking = start_server(FaultyHandler(), users={"campaign": wrong})  # now the letters go, and the inbox refuses
    try:
        configure(env, smtp_port=taking.port, smtp_password=wrong, dovecot=dovecot, imap_user=ECHO_USERNAME,
                  imap_password=wrong)  # fmt: skip
        assert "the server refused the login for 'echo'" in run("run", "--once", "--yes").stderr
        scheduler = Scheduler(env, "--yes")  # running on, it logs the job's error and carries on
        try:
            wait_for(lambda: "poll failed: " in scheduler.stderr(), "the poll's failure in the log")
            scheduler.stop(signal.SIGTERM)
        finally:
            scheduler.kill()
        shown["run"] = scheduler.stderr()
    finally:
        taking.stop()
    assert "the server refused the login for 'echo'" in shown["run"]
    for command, output in shown.items():
        assert MASK in output, f"outreach {command}: the echo was there to hide"
        assert [form for form in forms if form in output] == [], f"outreach {command}"
