"""The SMTP adapter against a real server on loopback: each message once, the commit point where it belongs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from outreach.config import is_loopback
from outreach.outbox.smtp import SmtpConnection, SmtpError, SmtpSettings
from outreach.outbox.states import Verdict, classify_reply

from .smtp_server import FaultyHandler, PipeliningHandler, start_server

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\nline one\r\n.starts with a dot\r\n..two\r\n"


@pytest.fixture(params=[FaultyHandler, PipeliningHandler], ids=["one-by-one", "pipelining"])
def handler(request: pytest.FixtureRequest) -> FaultyHandler:
    """Each test runs against a server without PIPELINING and one with it (RFC 2920: one write for MAIL, RCPT
    and DATA)."""
    made: FaultyHandler = request.param()
    return made


@pytest.fixture
def connection(handler: FaultyHandler) -> Iterator[SmtpConnection]:
    controller = start_server(handler)
    smtp = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, security="none", timeout=5))
    smtp.open()
    yield smtp
    smtp.close()
    controller.stop()


def test_a_message_arrives_once_intact_and_the_commit_comes_before_the_reply(
    connection: SmtpConnection, handler: FaultyHandler
) -> None:
    assert connection.offers("pipelining") == isinstance(handler, PipeliningHandler)
    events: list[str] = []
    reply = connection.send("a@example.org", "b@example.org", MESSAGE, lambda: events.append("commit"))
    assert reply.ok and reply.after_data_mark and events == ["commit"]
    assert [(r.sender, r.recipients, r.data) for r in handler.received] == [
        ("a@example.org", ["b@example.org"], MESSAGE)
    ]
    second = connection.send("a@example.org", "c@example.org", MESSAGE, lambda: None)
    assert second.ok and len(handler.received) == 2, "the connection is reused"


def test_a_rejected_recipient_is_a_reply_before_any_data(connection: SmtpConnection, handler: FaultyHandler) -> None:
    handler.reject["gone@example.org"] = "550 5.1.1 <gone@example.org>: User unknown"
    commits: list[str] = []
    reply = connection.send("a@example.org", "gone@example.org", MESSAGE, lambda: commits.append("x"))
    assert (reply.code, reply.after_data_mark, commits) == (550, False, [])
    assert classify_reply(reply.code, reply.text, after_data_mark=reply.after_data_mark) is Verdict.BAD_ADDRESS
    assert connection.send("a@example.org", "b@example.org", MESSAGE, lambda: None).ok


def test_a_temporary_failure_after_data(connection: SmtpConnection, handler: FaultyHandler) -> None:
    handler.data_reply = "451 4.3.0 Try again later"
    reply = connection.send("a@example.org", "b@example.org", MESSAGE, lambda: None)
    assert reply.code == 451 and classify_reply(reply.code, reply.text) is Verdict.RETRY
    assert handler.received == []


def test_a_line_dropped_after_the_end_of_data_mark_is_unknown(
    connection: SmtpConnection, handler: FaultyHandler
) -> None:
    handler.drop_after_data = True
    reply = connection.send("a@example.org", "b@example.org", MESSAGE, lambda: None)
    assert reply.code is None and reply.after_data_mark
    assert classify_reply(reply.code, after_data_mark=reply.after_data_mark) is Verdict.UNKNOWN
    assert not connection.is_open


def test_a_slow_server_times_out_as_unknown_after_the_mark(handler: FaultyHandler) -> None:
    handler.delay = 2.0
    controller = start_server(handler)
    smtp = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, security="none", timeout=0.5))
    try:
        smtp.open()
        reply = smtp.send("a@example.org", "b@example.org", MESSAGE, lambda: None)
        assert reply.code is None and reply.after_data_mark
    finally:
        smtp.close()
        controller.stop()


def test_login_on_loopback_and_a_refused_password_is_never_shown(handler: FaultyHandler) -> None:
    controller = start_server(handler, users={"campaign": "s3cret-pw"})
    try:
        good = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "none", "campaign", "s3cret-pw", timeout=5))
        good.open()
        assert good.send("a@example.org", "b@example.org", MESSAGE, lambda: None).ok
        good.close()
        bad = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "none", "campaign", "wrong-pw-123", timeout=5))
        with pytest.raises(SmtpError) as refused:
            bad.open()
        assert "refused the login" in str(refused.value) and "wrong-pw-123" not in str(refused.value)
        assert "wrong-pw-123" not in repr(bad.settings)
    finally:
        controller.stop()


@pytest.mark.parametrize("mechanisms", [["LOGIN"], ["PLAIN"], []], ids=["plain", "login", "both"])
def test_a_password_that_is_not_ascii_logs_in_by_plain_or_login(mechanisms: list[str]) -> None:
    password = 'Pässwörd "q" \\ back'  # smtplib would refuse to encode it; RFC 4616 sends it as UTF-8
    handler = FaultyHandler()
    controller = start_server(handler, users={"kämpagne": password}, auth_exclude_mechanism=mechanisms)
    try:
        good = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "none", "kämpagne", password, timeout=5))
        good.open()
        assert good.send("a@example.org", "b@example.org", MESSAGE, lambda: None).ok
        good.close()
        assert [r.data for r in handler.received] == [MESSAGE]
        wrong = 'Pässwörd "q" \\ wrong'
        bad = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "none", "kämpagne", wrong, timeout=5))
        with pytest.raises(SmtpError) as refused:
            bad.open()
        assert str(refused.value) == (
            f"127.0.0.1:{controller.port}: the server refused the login for 'kämpagne' (535 5.7.8 Authentication "
            "credentials invalid) (check OUTREACH_SMTP_USERNAME and OUTREACH_SMTP_PASSWORD)"
        )
    finally:
        controller.stop()


def test_a_password_that_is_not_ascii_needs_a_mechanism_that_carries_it() -> None:
    controller = start_server(FaultyHandler(), users={"campaign": "x"}, auth_exclude_mechanism=["LOGIN", "PLAIN"])
    try:
        smtp = SmtpConnection(SmtpSettings("127.0.0.1", controller.port, "none", "campaign", "Pässwörd", timeout=5))
        with pytest.raises(SmtpError, match="a user name or password that is not ASCII needs PLAIN or LOGIN"):
            smtp.open()
    finally:
        controller.stop()


def test_a_host_name_that_is_none_is_named_as_such() -> None:
    with pytest.raises(SmtpError, match=r"'bad\.\.host' is not a host name \(check OUTREACH_SMTP_HOST\)"):
        SmtpConnection(SmtpSettings("bad..host", 25, "none", timeout=2)).open()  # the IDNA codec refuses it


def test_no_password_goes_over_plain_text_to_another_host() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("smtp.example.org") and not is_loopback("192.0.2.7")


def test_an_address_that_needs_smtputf8_goes_only_where_it_is_offered(
    connection: SmtpConnection, handler: FaultyHandler
) -> None:
    assert connection.supports_smtputf8
    reply = connection.send("a@example.org", "ольга@example.org", MESSAGE, lambda: None, smtputf8=True)
    assert reply.ok and handler.received[-1].recipients == ["ольга@example.org"]


def test_an_unreachable_server_is_one_clear_error() -> None:
    from .smtp_server import free_port

    smtp = SmtpConnection(SmtpSettings("127.0.0.1", free_port(), security="none", timeout=2))
    with pytest.raises(SmtpError, match=r"127\.0\.0\.1:\d+: cannot use the SMTP server: ConnectionRefusedError"):
        smtp.open()


def test_a_421_in_the_middle_ends_the_transaction_and_the_connection(
    connection: SmtpConnection, handler: FaultyHandler
) -> None:
    handler.reject["busy@example.org"] = "421 4.7.0 Too busy, closing"
    commits: list[str] = []
    reply = connection.send("a@example.org", "busy@example.org", MESSAGE, lambda: commits.append("x"))
    assert (reply.code, reply.after_data_mark, commits) == (421, False, [])
    assert classify_reply(reply.code, reply.text) is Verdict.SLOW_DOWN
    assert not connection.is_open, "the server closes after a 421, and so does the client"
    assert handler.received == []


def test_an_address_that_would_forge_a_command_is_refused_before_anything_is_sent(
    connection: SmtpConnection, handler: FaultyHandler
) -> None:
    forged = "b@example.org>\r\nRCPT TO:<c@example.org"
    with pytest.raises(SmtpError, match="would break the SMTP command"):
        connection.send("a@example.org", forged, MESSAGE, lambda: None)
    assert handler.received == []


def test_the_wait_for_the_answer_is_lent_out_after_the_end_of_data_mark(connection: SmtpConnection) -> None:
    events: list[str] = []
    reply = connection.send("a@example.org", "b@example.org", MESSAGE, lambda: events.append("commit"),
                            while_waiting=lambda: events.append("waiting"))  # fmt: skip
    assert reply.ok and events == ["commit", "waiting"]
