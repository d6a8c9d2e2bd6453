"""Signed messages that a DKIM verifier accepts, and List-Unsubscribe headers that survive the wire."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from outreach.contacts.tokens import unsubscribe_token
from outreach.errors import ConfigError
from outreach.outbox.signing import DkimSigner, load_dkim_signer
from outreach.rendering.letters import one_click_url, unsubscribe_headers
from outreach.rendering.mime import Mailbox, Message, build_message

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SELECTOR, DOMAIN = "outreach2026", "example.org"
# The shape queueing gives a Message-ID's local part, and a one-click URL long enough to need a line of its own.
TOKEN = "outreach.12.3.4567.9f3a61c2"
URL = one_click_url("https://appeal.example.org/campaigns/open-letter-2026", unsubscribe_token(b"s" * 32, 4567, 12))
MAILTO = "unsubscribe@example.org"
WHEN = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Key:
    """A fresh RSA key pair on disk, and the TXT record that publishes its public half."""

    pem: Path
    record: bytes


def openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("the openssl command is needed to make a test key", pytrace=False)
        pytest.skip("the openssl command is needed to make a test key")
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_key(folder: Path, bits: int = 2048) -> Key:
    """Generate an RSA key with openssl (the `cryptography` package is not installed here)."""
    pem, der = folder / f"dkim-{bits}.pem", folder / f"dkim-{bits}.der"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out", str(pem))
    openssl("pkey", "-in", str(pem), "-pubout", "-outform", "DER", "-out", str(der))
    return Key(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der.read_bytes()))


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return make_key(tmp_path_factory.mktemp("dkim"))


def resolver(key: Key) -> Callable[..., bytes | None]:
    """A dict-backed stand-in for DNS (there is none on this machine), shaped as dkimpy's dnsfunc."""
    records = {f"{SELECTOR}._domainkey.{DOMAIN}.".encode(): key.record}

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return txt


def letter() -> bytes:
    headers = unsubscribe_headers(MAILTO, URL)
    return build_message(
        Message(
            sender=Mailbox("appeal@example.org", "Initiative Offener Brief"),
            recipient=Mailbox("pm@example.org", "Κυριάκος Μητσοτάκης"),
            subject="Offener Brief an die Staats- und Regierungschefs — Ελλάδα",
            text="Exzellenz,\n\n" + "Für die meisten Mitgliedstaaten gibt es keine Sicherheit. " * 40 + "\n",
            html="<p>Exzellenz,</p><p>" + "Für die meisten Mitgliedstaaten gibt es keine Sicherheit. " * 40 + "</p>",
            message_id=f"<{TOKEN}@example.org>",
            date=WHEN,
            headers=headers,
        )
    )


@pytest.fixture(scope="module")
def signed(key: Key) -> bytes:
    return load_dkim_signer(key.pem, SELECTOR, DOMAIN).sign(letter())


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def signature_tags(data: bytes) -> dict[str, str]:
    value = "".join(str(parse(data)["DKIM-Signature"]).split())
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def test_a_signed_letter_verifies_and_its_signature_covers_one_click_unsubscribe(key: Key, signed: bytes) -> None:
    assert signed.startswith(b"DKIM-Signature: ")
    assert dkim.verify(signed, dnsfunc=resolver(key))
    tags = signature_tags(signed)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == ("rsa-sha256", "relaxed/relaxed", DOMAIN, SELECTOR)
    signed_names = tags["h"].split(":")
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(
        signed_names
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"List-Unsubscribe-Post: List-Unsubscribe=No\r\n"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
        (b"/open-letter-2026/u/", b"/open-letter-2026/v/"),
        (b"<p>Exzellenz,</p>", b"<p>Exzellenz!</p>"),
        # Listed but absent when signed (no Reply-To): it cannot be added afterwards.
        (b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nReply-To: someone@example.net\r\n"),
        # Listed twice: a second Subject above the signed one (which readers may show) breaks it too.
        (b"\r\nFrom: ", b"\r\nSubject: Another subject\r\nFrom: "),
    ],
    ids=["post-changed", "post-removed", "url-changed", "body-changed", "reply-to-added", "second-subject"],
)
def test_a_change_after_signing_fails_verification(key: Key, signed: bytes, old: bytes, new: bytes) -> None:
    assert signed.count(old) == 1
    assert not dkim.verify(signed.replace(old, new), dnsfunc=resolver(key))


def test_a_signed_letter_parses_back_and_stays_within_smtp_limits(signed: bytes) -> None:
    lines = signed.split(b"\r\n")
    assert lines[-1] == b"", "the message ends with CRLF"
    assert all(b"\n" not in line and b"\r" not in line for line in lines), "no bare CR or LF"
    assert max(len(line) for line in lines) <= 998
    head = signed.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in head if not line.startswith((b"List-Unsubscribe:", b" <https:")))
    parsed = parse(signed)
    assert parsed["To"].addresses[0].display_name == "Κυριάκος Μητσοτάκης"
    assert parsed["Subject"] == "Offener Brief an die Staats- und Regierungschefs — Ελλάδα"
    assert parsed["List-Unsubscribe"] == (f"<{URL}>, <mailto:{MAILTO}?subject=unsubscribe>"), (
        "the URL stays whole, not an encoded word"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_both_links_url_first_and_one_click() -> None:
    assert unsubscribe_headers(MAILTO, "https://appeal.example.org/u/abc123") == [
        ("List-Unsubscribe", f"<https://appeal.example.org/u/abc123>, <mailto:{MAILTO}?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def test_a_mailto_alone_has_no_one_click() -> None:
    assert unsubscribe_headers(MAILTO, "") == [("List-Unsubscribe", f"<mailto:{MAILTO}?subject=unsubscribe>")]


def test_a_url_alone_is_one_click() -> None:
    assert unsubscribe_headers("", one_click_url("https://appeal.example.org", "abc123")) == [
        ("List-Unsubscribe", "<https://appeal.example.org/u/abc123>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def test_neither_gives_no_header() -> None:
    assert unsubscribe_headers("", "") == []


@pytest.mark.parametrize("form", ["pkcs8", "pkcs1", "crlf"])
def test_a_key_in_any_usual_pem_form_loads_and_signs(key: Key, tmp_path: Path, form: str) -> None:
    path = tmp_path / "key.pem"
    if form == "pkcs1":
        openssl("pkey", "-in", str(key.pem), "-traditional", "-out", str(path))
    else:
        pem = key.pem.read_bytes()
        path.write_bytes(pem.replace(b"\n", b"\r\n") if form == "crlf" else pem)
    signer = load_dkim_signer(path, SELECTOR, DOMAIN)
    assert signer.bits == 2048
    assert dkim.verify(signer.sign(letter()), dnsfunc=resolver(key))
    assert "PRIVATE" not in repr(signer) and "MII" not in repr(signer)


def test_a_missing_key_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "dkim.pem"
    with pytest.raises(ConfigError) as raised:
        load_dkim_signer(path, SELECTOR, DOMAIN)
    assert str(raised.value) == f"{path}: cannot read the DKIM private key: No such file or directory"


@pytest.mark.parametrize("size", [1 << 20, None], ids=["1-MB-file", "dev-zero"])
def test_a_huge_file_or_a_device_is_refused_before_it_is_read(tmp_path: Path, size: int | None) -> None:
    path = Path("/dev/zero")
    if size is not None:
        path = tmp_path / "dkim.pem"
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * size)
    started = time.monotonic()
    why = "not a regular file" if size is None else "more than 65,536 bytes"
    with pytest.raises(ConfigError, match=f"{path}: {why}, so no DKIM private key"):
        load_dkim_signer(path, SELECTOR, DOMAIN)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key at all\n",
        b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n",
    ],
    ids=["empty", "text", "bad-base64", "truncated"],
)
def test_a_file_that_is_no_key_is_a_config_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "dkim.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_dkim_signer(path, SELECTOR, DOMAIN)
    message = str(raised.value)
    assert message.startswith(f"{path}: not an unencrypted RSA private key in PEM")
    assert "\n" not in message and "openssl genpkey" in message


def test_a_public_key_or_a_damaged_key_is_refused(key: Key, tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    openssl("pkey", "-in", str(key.pem), "-pubout", "-out", str(public))
    with pytest.raises(ConfigError, match="not an unencrypted RSA private key"):
        load_dkim_signer(public, SELECTOR, DOMAIN)
    # One base64 character changed near the end falls in the CRT parameters: the key parses, but signs wrongly.
    lines = key.pem.read_text().splitlines()
    line = lines[-3]
    middle = len(line) // 2
    lines[-3] = line[:middle] + ("A" if line[middle] != "A" else "B") + line[middle + 1 :]
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"{damaged}: the RSA private key is damaged"):
        load_dkim_signer(damaged, SELECTOR, DOMAIN)


def test_a_key_under_1024_bits_is_refused(tmp_path: Path) -> None:
    small = make_key(tmp_path, bits=512)
    with pytest.raises(ConfigError, match="512 bits; DKIM needs at least 1024"):
        load_dkim_signer(small.pem, SELECTOR, DOMAIN)


@pytest.mark.parametrize(("selector", "domain"), [("out reach", DOMAIN), (SELECTOR, "exämple.org"), ("", DOMAIN)])
def test_a_selector_or_domain_that_is_no_dns_name_is_refused(key: Key, selector: str, domain: str) -> None:
    with pytest.raises(ConfigError, match="is not an ASCII DNS name"):
        load_dkim_signer(key.pem, selector, domain)
    with pytest.raises(ValueError, match="is not an ASCII DNS name"):
        DkimSigner(key.pem.read_bytes(), selector, domain)
