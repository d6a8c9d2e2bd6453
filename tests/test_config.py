"""Settings are parsed and checked once, when loaded: what cannot work is one line naming the setting, never a
traceback or a failure at send time. DKIM keys per From domain."""

from __future__ import annotations

import email
import email.policy
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.config import KNOWN, Settings, load_settings
from outreach.contacts.tokens import unsubscribe_token
from outreach.errors import ConfigError, SettingsError
from outreach.rates import Rate
from outreach.rendering.letters import one_click_url, unsubscribe_headers
from outreach.rendering.mime import Mailbox, Message, build_message
from outreach.workspace import Workspace

from .test_signing import SELECTOR, Key, make_key

FROM = {"OUTREACH_FROM": "European Appeal <appeal@example.org>"}


def refused(workspace: Path, environ: Mapping[str, str]) -> ConfigError:
    """The error load_settings raises, checked to be one line."""
    with pytest.raises(ConfigError) as raised:
        load_settings(workspace, environ)
    line = str(raised.value)
    assert "\n" not in line and "\r" not in line, line
    return raised.value


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OUTREACH_SMTP_PORT": "²5"}, "OUTREACH_SMTP_PORT is '²5', not a port number"),
        ({"OUTREACH_IMAP_PORT": "\uff19\uff19\uff13"}, "OUTREACH_IMAP_PORT is '\uff19\uff19\uff13', not a port"),
        ({"OUTREACH_SMTP_PORT": "9" * 5000}, "OUTREACH_SMTP_PORT is '999"),
        ({"OUTREACH_SMTP_CONNECTIONS": "²"}, "OUTREACH_SMTP_CONNECTIONS is '²'"),
        ({"OUTREACH_SOFT_BOUNCE_LIMIT": "³"}, "OUTREACH_SOFT_BOUNCE_LIMIT is '³'"),
        ({"OUTREACH_SOFT_BOUNCE_LIMIT": "9" * 5000}, "OUTREACH_SOFT_BOUNCE_LIMIT is '999"),
        ({"OUTREACH_MISFIRE_GRACE": "²h"}, "OUTREACH_MISFIRE_GRACE is '²h'"),
        ({"OUTREACH_MISFIRE_GRACE": "366d"}, "OUTREACH_MISFIRE_GRACE is '366d', more than 365 days"),
        ({"OUTREACH_MISFIRE_GRACE": "9" * 30}, "OUTREACH_MISFIRE_GRACE is '999999999999999999999999999999', more than"),
        ({"OUTREACH_RATE_LIMIT": "fast"}, "OUTREACH_RATE_LIMIT: rate 'fast' is not N/unit"),
        ({"OUTREACH_RATE_LIMIT": "1/second, ²/day"}, "OUTREACH_RATE_LIMIT: rate '²/day' is not N/unit"),
        ({"OUTREACH_DOMAIN_RATE_LIMIT": "20/0hour"}, "OUTREACH_DOMAIN_RATE_LIMIT: rate '20/0hour' needs whole numbers"),
        ({"OUTREACH_FROM": "appeal-at-example.org"}, "OUTREACH_FROM is 'appeal-at-example.org': "),
        ({"OUTREACH_REPLY_TO": "Replies <replies@>"}, "OUTREACH_REPLY_TO is 'Replies <replies@>': "),
        ({"OUTREACH_FROM": "Appeal <appeal@example.org>\r\nBcc: x@example.net"}, "OUTREACH_FROM holds a line break"),
        ({"OUTREACH_DKIM_SELECTOR": "out reach"}, "OUTREACH_DKIM_SELECTOR is 'out reach', not an ASCII DNS name"),
        ({"OUTREACH_DKIM_DOMAIN": "not a domain"}, "OUTREACH_DKIM_DOMAIN is 'not a domain', not a domain name"),
        ({"OUTREACH_DKIM_KEY": "dkim.pem"}, "OUTREACH_DKIM_KEY is one key for no domain"),
        ({"OUTREACH_DKIM_KEY": "example.org="}, "OUTREACH_DKIM_KEY: 'example.org=' is not DOMAIN=PATH"),
        ({"OUTREACH_DKIM_KEY": "=dkim.pem"}, "OUTREACH_DKIM_KEY: '=dkim.pem' is not DOMAIN=PATH"),
        ({"OUTREACH_DKIM_KEY": "no domain=dkim.pem"}, "OUTREACH_DKIM_KEY: 'no domain=dkim.pem' is not DOMAIN=PATH"),
        (
            {"OUTREACH_DKIM_KEY": "example.org=a.pem, Example.org=b.pem"},
            "OUTREACH_DKIM_KEY names two keys for example.org",
        ),
        (
            {"OUTREACH_DKIM_KEY": "example.org=dkim.pem", "OUTREACH_DKIM_DOMAIN": "example.org"},
            "OUTREACH_DKIM_DOMAIN is 'example.org', but OUTREACH_DKIM_KEY names each key's domain",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_one_line_naming_it(tmp_path: Path, environ: dict[str, str], named: str) -> None:
    for name in ("dkim.pem", "a.pem", "b.pem"):
        (tmp_path / name).write_text("a key, not read when the settings load\n")
    assert named in str(refused(tmp_path, environ))


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("PUBLIC_URL", "https://appeal.example.org/u\r\nBcc: victim@example.net", "URL holds a line break"),
        ("PUBLIC_URL", "https://appeal.example.org/u\nX-Other: 1", "URL holds a line break"),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe@example.org\r\nBcc: victim@example.net", "MAILTO holds a line break"),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe@example.org\rX", "MAILTO holds a line break"),
        ("PUBLIC_URL", "http://appeal.example.org", "URL is 'http://appeal.example.org': one-click unsubscribe needs "
                                                    "https (RFC 8058 3.1); http is for 127.0.0.1 and localhost alone"),
        ("PUBLIC_URL", "ftp://appeal.example.org", "URL is 'ftp://appeal.example.org': it is no https URL with a host"),
        ("PUBLIC_URL", "appeal.example.org", "URL is 'appeal.example.org': it is no https URL with a host"),
        ("PUBLIC_URL", "https://appeal.example.org/u>, <https://evil.example.net/", "URL is 'https://appeal.example"),
        ("PUBLIC_URL", "https://appeal.example.org/u?s==?utf-8?q?x?=", "must be ASCII without blanks, controls, angle"),
        ("PUBLIC_URL", "https://appeal.exämple.org", "must be ASCII"),
        ("PUBLIC_URL", "https://appeal.example.org/\x7fu", "must be ASCII"),
        ("PUBLIC_URL", "https://appeal.example.org/" + "u" * 950, "URL is too long: with a token it passes"),
        ("PUBLIC_URL", "https:///unsubscribe", "URL is 'https:///unsubscribe': it is no https URL with a host"),
        ("PUBLIC_URL", "https://appeal.example.org:99999", "it is no URL"),
        ("PUBLIC_URL", "https://[::1", "it is no URL"),
        ("PUBLIC_URL", "https://appeal.example.org/?lang=de", "it must end in a host or a path, with no query"),
        ("PUBLIC_URL", "https://appeal.example.org/#top", "it must end in a host or a path, with no query"),
        ("PUBLIC_URL", "https://desk:secret@appeal.example.org", "it must hold no login and no placeholder"),
        ("PUBLIC_URL", "https://appeal.example.org/u/{token}", "it must hold no login and no placeholder"),
        ("UNSUBSCRIBE_MAILTO", "a@example.org, b@example.org", "MAILTO is 'a@example.org, b@example.org': it must be"),
        ("UNSUBSCRIBE_MAILTO", "a@example.org,b@example.org", "MAILTO is 'a@example.org,b@example.org': it must be"),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe", "MAILTO is 'unsubscribe': it must be one address"),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe@example.org?subject=stop", "it must be one address"),
        ("UNSUBSCRIBE_MAILTO", "mailto:unsubscribe@example.org", "MAILTO is 'mailto:unsubscribe@example.org': "),
        ("UNSUBSCRIBE_MAILTO", "unsubscribe@localhost", "MAILTO is 'unsubscribe@localhost': "),
        ("UNSUBSCRIBE_MAILTO", "un..subscribe@example.org", "MAILTO is 'un..subscribe@example.org': "),
    ],
)  # fmt: skip
def test_an_unsubscribe_setting_that_would_break_the_header_is_refused(
    tmp_path: Path, setting: str, value: str, named: str
) -> None:
    error = refused(tmp_path, {f"OUTREACH_{setting}": value})
    assert named in str(error)
    assert str(error).startswith(f"OUTREACH_{setting}")


@pytest.mark.parametrize("url", ["https://appeal.example.org/PAD", "http://127.0.0.1:8080/PAD"])
def test_the_longest_public_url_that_loads_fits_a_header_line_with_a_token(tmp_path: Path, url: str) -> None:
    def loads(padding: int) -> bool:
        try:
            return bool(load_settings(tmp_path, {"OUTREACH_PUBLIC_URL": url.replace("PAD", "u" * padding)}))
        except ConfigError:
            return False

    low, high = 0, 1000  # loads(low), and not loads(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if loads(middle) else (low, middle)
    longest = url.replace("PAD", "u" * low)
    token = unsubscribe_token(b"k" * 32, 2**63 - 1, 2**63 - 1)  # every token has the same length
    headers = unsubscribe_headers("unsubscribe@example.org", one_click_url(longest, token))
    link = dict(headers)["List-Unsubscribe"].split(", ")[0]
    assert len(f"List-Unsubscribe: {link},") == 998


@pytest.mark.parametrize(
    ("given", "loaded"),
    [
        ("https://appeal.example.org", "https://appeal.example.org"),
        (" https://appeal.example.org/ ", "https://appeal.example.org"),
        ("https://example.org/appeal//", "https://example.org/appeal"),
        ("HTTPS://Appeal.Example.org:8443/desk", "HTTPS://Appeal.Example.org:8443/desk"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("", ""),
    ],
)
def test_a_public_url_loads_without_its_trailing_slash(tmp_path: Path, given: str, loaded: str) -> None:
    assert load_settings(tmp_path, {"OUTREACH_PUBLIC_URL": given}).public_url == loaded


def test_good_unsubscribe_settings_load_as_written(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        {
            "OUTREACH_UNSUBSCRIBE_MAILTO": " unsubscribe+appeal@example.org ",
            "OUTREACH_PUBLIC_URL": "https://appeal.example.org/open-letter/",
        },
    )
    assert settings.unsubscribe_mailto == "unsubscribe+appeal@example.org"
    assert settings.public_url == "https://appeal.example.org/open-letter"


def test_the_retired_unsubscribe_url_is_refused_with_what_replaced_it_and_passed_over_when_empty(
    tmp_path: Path,
) -> None:
    hint = ("one-click unsubscribe is now served by `outreach serve`: remove OUTREACH_UNSUBSCRIBE_URL and set "
            "OUTREACH_PUBLIC_URL to the https address it answers at")  # fmt: skip
    error = refused(tmp_path, {"OUTREACH_UNSUBSCRIBE_URL": "https://appeal.example.org/u/{token}"})
    assert str(error) == f"OUTREACH_UNSUBSCRIBE_URL is no longer read ({hint})"
    (tmp_path / ".env").write_text("OUTREACH_UNSUBSCRIBE_URL=https://appeal.example.org/u/{token}\n")
    assert str(refused(tmp_path, {})) == f"OUTREACH_UNSUBSCRIBE_URL is no longer read ({hint})"
    (tmp_path / ".env").write_text("OUTREACH_UNSUBSCRIBE_URL=\n", encoding="utf-8")  # as .env.example wrote it
    assert load_settings(tmp_path, {"OUTREACH_UNSUBSCRIBE_URL": " "}).public_url == ""


def test_every_problem_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OUTREACH_SMTP_HOTS=mail.example.org\nOUTREACH_RATE_LIMIT=fast\n")
    error = refused(tmp_path, {"OUTREACH_SMTP_PORT": "²", "OUTREACH_PUBLIC_URL": "http://appeal.example.org/u"})
    assert isinstance(error, SettingsError) and error.exit_code == 2
    assert [problem.message.split(maxsplit=1)[0] for problem in error.problems] == [
        "unknown", "OUTREACH_SMTP_PORT", "OUTREACH_RATE_LIMIT:", "OUTREACH_PUBLIC_URL",
    ]  # fmt: skip
    assert str(error).startswith(
        f"{tmp_path / '.env'}: unknown setting OUTREACH_SMTP_HOTS; OUTREACH_SMTP_PORT is '²', not a port number; "
        "OUTREACH_RATE_LIMIT: rate 'fast' is not N/unit, e.g. 30/minute or 500/day; OUTREACH_PUBLIC_URL is "
    )
    assert error.hint is not None and error.hint.startswith("did you mean OUTREACH_SMTP_HOST?; use a number from 1 to")


def test_an_env_file_that_is_not_utf8_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"OUTREACH_FROM=appeal@example.org\n\xff\xfe\x00\x81 random \x9c bytes\n")
    error = refused(tmp_path, {})
    assert str(error) == (
        f"{tmp_path / '.env'}: cannot read it: byte 0xff at offset 33 is not UTF-8 "
        "(save it as UTF-8 text; .env.example shows what it holds)"
    )


@given(st.lists(st.tuples(st.sampled_from(sorted(KNOWN)), st.binary(max_size=30)), max_size=4))
def test_any_bytes_in_env_load_or_are_one_config_error(lines: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        (workspace / ".env").write_bytes(b"".join(key.encode() + b"=" + value + b"\n" for key, value in lines))
        try:
            load_settings(workspace, {})
        except ConfigError as error:
            assert "\n" not in str(error) and "\r" not in str(error)


def test_the_rates_are_parsed_when_loaded(tmp_path: Path) -> None:
    default = load_settings(tmp_path, {})
    assert (default.rate_limits, default.domain_rate_limits) == ((Rate(1, 1), Rate(500, 86400)), (Rate(20, 3600),))
    unloaded = Settings(tmp_path, "")
    assert (default.rate_limits, default.domain_rate_limits) == (unloaded.rate_limits, unloaded.domain_rate_limits)
    settings = load_settings(tmp_path, {"OUTREACH_RATE_LIMIT": "30/minute, 100/5min", "OUTREACH_DOMAIN_RATE_LIMIT": ""})
    assert settings.rate_limits == (Rate(30, 60), Rate(100, 300)) and settings.domain_rate_limits == ()
    assert (settings.rate_limit, settings.domain_rate_limit) == ("30/minute, 100/5min", "")


def test_numbers_load_up_to_their_bounds(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {"OUTREACH_MISFIRE_GRACE": "365d", "OUTREACH_SMTP_CONNECTIONS": "32",
                                        "OUTREACH_SMTP_PORT": "65535", "OUTREACH_SOFT_BOUNCE_LIMIT": "1"})  # fmt: skip
    assert (settings.misfire_grace, settings.smtp_connections) == (365 * 86400, 32)
    assert (settings.smtp_port, settings.soft_bounce_limit) == (65535, 1)


def test_the_render_limits_load_within_their_bounds(tmp_path: Path) -> None:
    default = load_settings(tmp_path, {})
    assert (default.render_seconds, default.render_bytes) == (2, 2 * 1024 * 1024)
    settings = load_settings(tmp_path, {"OUTREACH_RENDER_SECONDS": "3600", "OUTREACH_RENDER_BYTES": "1024"})
    assert (settings.render_seconds, settings.render_bytes) == (3600, 1024)
    said = str(refused(tmp_path, {"OUTREACH_RENDER_SECONDS": "0", "OUTREACH_RENDER_BYTES": "2MB"}))
    assert "OUTREACH_RENDER_SECONDS is '0'" in said and "OUTREACH_RENDER_BYTES is '2MB'" in said


def test_one_key_path_is_the_key_of_the_dkim_domain_or_else_of_the_senders(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").write_text("not read when the settings load\n")
    one = {"OUTREACH_FROM": "Appeal <appeal@Example.ORG>", "OUTREACH_DKIM_KEY": "dkim.pem"}
    assert load_settings(tmp_path, one).dkim_keys == (("example.org", "dkim.pem"),)
    named = {**one, "OUTREACH_DKIM_DOMAIN": "Mail.Example.org"}
    assert load_settings(tmp_path, named).dkim_keys == (("mail.example.org", "dkim.pem"),)
    idn = {"OUTREACH_FROM": "Bücher <post@bücher.example>", "OUTREACH_DKIM_KEY": str(tmp_path / "dkim.pem")}
    assert load_settings(tmp_path, idn).dkim_keys == (("xn--bcher-kva.example", str(tmp_path / "dkim.pem")),)
    assert load_settings(tmp_path, {}).dkim_keys == ()


def test_keys_for_several_domains_load_as_domain_path_pairs(tmp_path: Path) -> None:
    (tmp_path / "dkim").mkdir()
    for name in ("org.pem", "net.pem"):
        (tmp_path / "dkim" / name).write_text("not read when the settings load\n")
    text = f"example.org=dkim/org.pem, Campaign.Example.NET = {tmp_path / 'dkim' / 'net.pem'} ,"
    settings = load_settings(tmp_path, {"OUTREACH_DKIM_KEY": text})  # no OUTREACH_FROM needed
    assert settings.dkim_keys == (
        ("example.org", "dkim/org.pem"), ("campaign.example.net", str(tmp_path / "dkim" / "net.pem")),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["dev-zero", "1-MB-file", "folder", "fifo", "missing"])
def test_a_key_path_that_is_no_small_regular_file_is_refused_when_loaded_without_reading_it(
    tmp_path: Path, kind: str
) -> None:
    path = Path("/dev/zero") if kind == "dev-zero" else tmp_path / "dkim.pem"
    if kind == "1-MB-file":
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (1 << 20))
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer
    started = time.monotonic()
    error = refused(tmp_path, {**FROM, "OUTREACH_DKIM_KEY": str(path)})
    assert time.monotonic() - started < 1
    why = {
        "1-MB-file": "has 1,048,604 bytes, too many for a PEM private key (at most 65,536)",
        "missing": ": cannot read the DKIM private key: No such file or directory",
    }.get(kind, "is not a regular file")
    assert error.message == f"OUTREACH_DKIM_KEY: {path}{'' if why.startswith(':') else ' '}{why}"
    assert error.hint is not None and "domain=path" in error.hint


def keys(tmp_path: Path) -> dict[str, Key]:
    """A fresh key for each of two domains."""
    made = {}
    for domain in ("example.org", "campaign.example.net"):
        (tmp_path / domain).mkdir()
        made[domain] = make_key(tmp_path / domain)
    return made


def resolver(records: Mapping[str, Key]) -> Callable[..., bytes | None]:
    """DNS as dkimpy asks it, from a dict: each domain's key published under SELECTOR."""
    txt = {f"{SELECTOR}._domainkey.{domain}.".encode(): key.record for domain, key in records.items()}
    return lambda name, timeout=5: txt.get(name)


def letter_from(domain: str) -> bytes:
    when = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
    sender, recipient = Mailbox(f"appeal@{domain}", "Appeal"), Mailbox("pm@example.eu")
    return build_message(Message(sender, recipient, "An open letter", "Excellency,\n", f"<t1@{domain}>", when))


def test_dkim_signers_sign_each_domain_with_its_own_key(tmp_path: Path) -> None:
    made = keys(tmp_path)
    text = f"example.org={made['example.org'].pem}, campaign.example.net={made['campaign.example.net'].pem.name}"
    (tmp_path / made["campaign.example.net"].pem.name).write_bytes(made["campaign.example.net"].pem.read_bytes())
    environ = {**FROM, "OUTREACH_DKIM_KEY": text, "OUTREACH_DKIM_SELECTOR": SELECTOR}
    workspace = Workspace(load_settings(tmp_path, environ))
    signers = workspace.dkim_signers()
    assert {domain: signer.domain for domain, signer in signers.items()} == {
        "example.org": "example.org", "campaign.example.net": "campaign.example.net",
    }  # fmt: skip
    for domain in made:
        signed = signers[domain].sign(letter_from(domain))
        parsed = email.message_from_bytes(signed, policy=email.policy.default)
        assert f"d={domain};" in "".join(str(parsed["DKIM-Signature"]).split())
        assert dkim.verify(signed, dnsfunc=resolver(made))
        other = next(key for name, key in made.items() if name != domain)
        assert not dkim.verify(signed, dnsfunc=resolver(dict.fromkeys(made, other))), "signed with its own key"


def test_one_key_is_for_the_dkim_domain(tmp_path: Path) -> None:
    made = keys(tmp_path)
    environ = {**FROM, "OUTREACH_DKIM_KEY": str(made["campaign.example.net"].pem),
               "OUTREACH_DKIM_DOMAIN": "campaign.example.net", "OUTREACH_DKIM_SELECTOR": SELECTOR}  # fmt: skip
    workspace = Workspace(load_settings(tmp_path, environ))
    assert list(workspace.dkim_signers()) == ["campaign.example.net"]


def test_every_key_that_cannot_sign_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text("not a key\n")
    (tmp_path / "b.pem").write_text("")
    workspace = Workspace(load_settings(tmp_path, {"OUTREACH_DKIM_KEY": "example.org=a.pem, example.net=b.pem"}))
    with pytest.raises(SettingsError) as raised:
        workspace.dkim_signers()
    assert [problem.where for problem in raised.value.problems] == [str(tmp_path / "a.pem"), str(tmp_path / "b.pem")]
    assert "\n" not in str(raised.value) and "not an unencrypted RSA private key in PEM" in str(raised.value)
