"""The one scrubber: whatever the password, none of the forms a protocol may echo it in survives; the rest stays."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from outreach.config import load_settings
from outreach.errors import OutreachError
from outreach.scheduler import Jobs, run_scheduler
from outreach.scrubbing import MASK, Scrubber, redact_url, url_password


def echoed_forms(password: str, user: str) -> list[str]:
    """The forms issue 14 lists, made here with the standard library (not with the scrubber's own code): raw,
    IMAP-quoted, backslash-escaped, Python repr, URL-quoted, base64 of the AUTH PLAIN message and of the password
    alone, and the reprs of their bytes."""
    utf8 = password.encode("utf-8")
    imap = password.replace("\\", "\\\\").replace('"', '\\"')
    plain = b"\0" + user.encode("utf-8") + b"\0" + utf8
    return [
        password,
        f'"{imap}"',
        password.encode("unicode_escape").decode("ascii"),
        json.dumps(password),
        json.dumps(password, ensure_ascii=False),
        repr(password),
        ascii(password),
        repr(imap),
        quote(password, safe=""),
        quote(password),
        quote_plus(password),
        base64.b64encode(plain).decode("ascii"),
        base64.b64encode(utf8).decode("ascii"),
        repr(utf8),
        repr(imap.encode("utf-8")),
        str([f"NO [{imap}]".encode()]),  # imaplib's error text: a list of the server's bytes
    ]


PASSWORDS = st.text(st.characters(blacklist_categories=["Cs"]), min_size=4, max_size=24)
USERS = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(password=PASSWORDS, user=USERS, around=st.lists(st.text(max_size=8), min_size=1, max_size=4),
       seed=st.integers(0, 2**32))  # fmt: skip
@example(password='Pässwörd "q" \\ back', user="campaign", around=["NO ["], seed=1)
@example(password='it\'s "both" \\', user="", around=[""], seed=2)
@example(password="****", user="x", around=["*", "**"], seed=3)
@example(password="a\nb\tc\x00d\x7f", user="u", around=["\n"], seed=4)
def test_no_encoded_form_of_any_password_survives(password: str, user: str, around: list[str], seed: int) -> None:
    forms = echoed_forms(password, user)
    random.Random(seed).shuffle(forms)
    pieces = [around[n % len(around)] + form for n, form in enumerate(forms)] + around
    scrubbed = Scrubber([(user, password)])("".join(pieces))
    assert [form for form in forms if form in scrubbed] == []


@settings(max_examples=100, deadline=None)
@given(password=PASSWORDS, other=PASSWORDS)
def test_several_secrets_are_each_hidden(password: str, other: str) -> None:
    scrub = Scrubber([("campaign", password), ("", ""), ("inbox", other)])
    scrubbed = scrub(f"smtp said {password!r}; imap said {other.encode()!r}; again {password}")
    assert password not in scrubbed and repr(password) not in scrubbed and repr(other.encode()) not in scrubbed


def test_text_without_a_secret_is_left_as_it_was() -> None:
    scrub = Scrubber([("campaign", 'Pässwörd "q" \\ back')])
    line = "127.0.0.1:2525: the server refused the login for 'campaign' (535 5.7.8 Authentication credentials invalid)"
    assert scrub(line) == line
    assert Scrubber()(line) == line and Scrubber([("campaign", "")])(line) == line
    assert scrub('refused [Pässwörd "q" \\ back] and [Pässwörd \\"q\\" \\\\ back]') == f"refused [{MASK}] and [{MASK}]"


def test_a_password_from_an_environment_that_is_not_utf8_is_hidden_too() -> None:
    password = "caf\udce9-\ud800-pw"  # surrogateescape'd Latin-1, and a lone surrogate no codec writes
    scrubbed = Scrubber([("u", password)])(f"{password} {password!r} {password.encode('utf-8', 'surrogatepass')!r}")
    assert password not in scrubbed and repr(password) not in scrubbed


def test_an_error_is_scrubbed_in_what_it_says_where_and_its_hint() -> None:
    error = OutreachError("refused 'pw-1234'", where="host pw-1234", hint="not pw-1234")
    assert Scrubber([("", "pw-1234")]).error(error) is error
    assert (error.message, error.where, error.hint, str(error)) == (
        "refused '***'", "host ***", "not ***", "host ***: refused '***' (not ***)",
    )  # fmt: skip


def test_the_settings_scrubber_knows_the_smtp_imap_and_database_passwords(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {
        "OUTREACH_SMTP_USERNAME": "campaign", "OUTREACH_SMTP_PASSWORD": "smtp-pw-1",
        "OUTREACH_IMAP_HOST": "imap.example.org", "OUTREACH_IMAP_PASSWORD": "imap-pw-2",
        "OUTREACH_DATABASE_URL": "postgresql+psycopg://outreach:db%40pw-3@db.example.org/appeal",
    })  # fmt: skip
    scrubbed = settings.scrubber()("smtp-pw-1 imap-pw-2 db@pw-3 db%40pw-3 'smtp-pw-1'")
    assert scrubbed == f"{MASK} {MASK} {MASK} {MASK} '{MASK}'"
    assert "smtp-pw-1" not in repr(settings) and "db@pw-3" not in repr(settings)


def test_database_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql+psycopg://user:pw@host/db") == "postgresql+psycopg://user:***@host/db"
    assert redact_url("postgresql+psycopg://user@host/db") == "postgresql+psycopg://user@host/db"
    assert url_password("postgresql+psycopg://user:p%40ss%3Aw@host/db") == "p@ss:w"
    assert url_password("sqlite:////tmp/a:b@c.db") == "" and url_password("sqlite:////tmp/x.db") == ""


class _Escaped(BaseException):
    """What a job's own error handling does not catch (it catches Exception), so that APScheduler logs it."""


def test_what_the_scheduler_logs_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    password = 'Pässwörd "q" \\ back'
    stop = threading.Event()

    def send(should_stop: object) -> int:
        threading.Timer(0.3, stop.set).start()
        raise _Escaped(f"the server said {password.encode()!r}")

    caplog.set_level(logging.ERROR)
    run_scheduler(Jobs(lambda now: 0, send, None), stop=stop, scrub=Scrubber([("campaign", password)]))
    assert "raised an exception" in caplog.text and "the server said b'***'" in caplog.text
    assert [form for form in echoed_forms(password, "campaign") if form in caplog.text] == []
    assert not logging.getLogger("apscheduler.executors.default").filters, "the filter goes with the scheduler"
