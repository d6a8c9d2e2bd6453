"""The preview is the letter: what a campaigner looks at is, byte for byte, what the server receives (but for Date
and the DKIM signature), signed by the key of the From address's own domain; proofs go only to the campaigner."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from sqlalchemy import func, select

from outreach.db.models import OutboxMessage, Proof
from outreach.outbox.sending import signer_for
from outreach.rendering.copies import Copy
from outreach.rendering.differences import same_letter
from outreach.rendering.eml import eml_name
from outreach.rendering.letters import Sender, compose, dated
from outreach.rendering.mime import Mailbox
from outreach.rendering.salutations import Greeting

from .conftest import Env
from .smtp_server import FaultyHandler
from .test_sending import server
from .test_signing import SELECTOR, Key, make_key

__all__ = ["server"]  # fixtures

HEADS = (
    "email,name,role,country,language,gender\n"
    "elysee@example.org,Emmanuel Macron,head_of_state,FR,fr,m\n"
    "kanzleramt@example.org,Friedrich Merz,head_of_government,DE,de,m\n"
    "premier@example.org,Petteri Orpo,head_of_government,FI,fi,m\n"
    "rada@example.org,Ruslan Stefanchuk,mp,UA,en,m\n"
)


def resolver(*keys: tuple[str, Key]) -> Callable[..., bytes | None]:
    """DNS as dkimpy asks it, for the keys of the given domains."""
    records = {f"{SELECTOR}._domainkey.{domain}.".encode(): key.record for domain, key in keys}
    return lambda name, timeout=5: records.get(name)


def without(data: bytes, *names: str) -> bytes:
    """The message without the named header fields (with their folded lines)."""
    head, _, body = data.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].decode().lower() in {name.lower() for name in names}
        if not dropping:
            kept.append(line)
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


@pytest.fixture
def workspace(env: Env, tmp_path: Path, server: tuple[FaultyHandler, int]) -> tuple[Env, Key, Key]:
    _, port = server
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours, theirs = make_key(tmp_path / "ours"), make_key(tmp_path / "theirs")
    (env.root / ".env").write_text(
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\n'
        f"OUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={port}\nOUTREACH_SMTP_SECURITY=none\n"
        "OUTREACH_RATE_LIMIT=\nOUTREACH_DOMAIN_RATE_LIMIT=\n"
        "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n"
        "OUTREACH_RETURN_PATH=bounces+{token}@example.org\n"
        f"OUTREACH_DKIM_KEY=example.org={ours.pem}, example.net={theirs.pem}\n"
        f"OUTREACH_DKIM_SELECTOR={SELECTOR}\n",
        encoding="utf-8",
    )
    env.write("heads.csv", HEADS)
    env.run("contacts", "import", "heads.csv")
    return env, ours, theirs


def test_the_preview_is_what_the_server_receives_signed_for_the_from_domain(
    workspace: tuple[Env, Key, Key], server: tuple[FaultyHandler, int]
) -> None:
    env, ours, theirs = workspace
    handler, _ = server
    env.run("campaigns", "create", "coalition", "--template", "appeal", "--from", "Coalition <coalition@example.net>",
            "--reply-to", "Desk <desk@example.net>")  # fmt: skip
    env.run("campaigns", "queue", "coalition", "--yes")
    previews = json.loads(env.run("campaigns", "preview", "coalition", "-o", "preview", "--json").stdout)["written"]
    assert {p["recipient"] for p in previews} == {"elysee@example.org", "kanzleramt@example.org",
                                                  "premier@example.org", "rada@example.org"}  # fmt: skip
    assert all(p["queued"] for p in previews), "every preview is the queued letter itself"
    finnish = next(p for p in previews if p["recipient"] == "premier@example.org")
    assert (finnish["language"], finnish["fallback_from"]) == ("en", "fi"), "a fallback is named as such"

    env.run("send", "--yes")
    assert len(handler.received) == 4
    for received in handler.received:
        preview = env.root / next(p["path"] for p in previews if p["recipient"] == received.recipients[0])
        assert without(received.data, "Date", "DKIM-Signature") == without(preview.read_bytes(), "Date")
        assert dkim.verify(received.data, dnsfunc=resolver(("example.net", theirs))), (
            "signed with the key of the From address's own domain"
        )
        assert not dkim.verify(received.data, dnsfunc=resolver(("example.net", ours)))
        signature = received.data.split(b"\r\n\r\n")[0].decode()
        assert re.search(r"d=example\.net;", signature.replace("\r\n", "").replace(" ", ""))
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        token = parsed["Message-ID"].strip("<>").rpartition("@")[0]
        assert received.sender == f"bounces+{token}@example.org", "VERP, decided when the letter was queued"
        assert parsed["Reply-To"] == "Desk <desk@example.net>"
        assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"


def test_a_dry_run_and_templates_render_write_the_same_kind_of_file(workspace: tuple[Env, Key, Key]) -> None:
    env, _, _ = workspace
    env.run("campaigns", "create", "heads", "--template", "appeal")
    env.run("campaigns", "queue", "heads", "--yes")
    env.run("campaigns", "preview", "heads", "--contact", "elysee@example.org", "-o", "preview")
    env.run("send", "--dry-run", "--outbox-dir", "dry")
    [preview] = sorted((env.root / "preview").iterdir())
    dry = next(path for path in (env.root / "dry").iterdir() if "elysee" in path.name)
    assert without(dry.read_bytes(), "Date") == without(preview.read_bytes(), "Date")
    rendered = env.run("templates", "render", "appeal", "--contact", "elysee@example.org", "-f", "eml", "-o",
                       "one.eml")  # fmt: skip
    assert rendered.returncode == 0
    made = email.message_from_bytes((env.root / "one.eml").read_bytes(), policy=email.policy.default)
    assert made["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert made["Date"] is not None and made["Message-ID"].endswith("@example.org>")


def test_a_proof_reaches_only_the_campaigner_and_counts_nowhere(
    workspace: tuple[Env, Key, Key], server: tuple[FaultyHandler, int]
) -> None:
    env, ours, _ = workspace
    handler, _ = server
    env.run("campaigns", "create", "heads", "--template", "appeal")
    env.run("campaigns", "queue", "heads", "--yes")

    def figures() -> dict[str, object]:
        return {k: v for k, v in json.loads(env.run("report", "heads", "--json").stdout).items() if k != "generated_at"}

    report_before = figures()
    sent = json.loads(env.run("campaigns", "proof", "heads", "--to", "me@example.org", "--json").stdout)
    assert sent["total"] == sent["accepted"] == 4
    assert {r.recipients[0] for r in handler.received} == {"me@example.org"}, "only the --to address"
    for received in handler.received:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert parsed["Subject"].startswith("[proof] ") and parsed["To"] == "me@example.org"
        assert dkim.verify(received.data, dnsfunc=resolver(("example.org", ours)))
    french = next(r for r in handler.received if b"Monsieur le Pr" in r.data.replace(b"=\r\n", b""))
    assert french is not None, "each proof is a contact's own copy"
    with env.sessions() as session:
        assert set(session.scalars(select(OutboxMessage.state))) == {"queued"}, "the outbox is as it was"
        assert session.scalar(select(func.count()).select_from(Proof)) == 4
    assert figures() == report_before


def test_a_file_name_is_safe_whatever_the_address_holds() -> None:
    assert eml_name(7, "a/b@example.org") == "000007-a_b_at_example.org.eml"
    assert eml_name(12, "../../etc/passwd@example.org") == "000012-etc_passwd_at_example.org.eml"
    assert eml_name(3, "\x1b[31m@example.org").endswith(".eml") and "/" not in eml_name(3, "x/@/y")


def test_a_letter_carries_everything_but_the_date_and_sending_adds_only_that() -> None:
    copy = Copy("appeal", "en", "Open appeal", "Dear President,\n\nText.\n", None, Greeting("Dear President,", ""))
    sender = Sender(Mailbox("appeal@example.org", "European Appeal"), reply_to=Mailbox("desk@example.org"),
                    return_path="bounces+{token}@example.org", unsubscribe_mailto="unsubscribe@example.org",
                    public_url="https://appeal.example.org")  # fmt: skip
    letter = compose(copy, Mailbox("pm@example.gov", "Prime Minister"), sender, "<outreach.1.2.3.ab@example.org>",
                     thread_id="<first@example.org>", unsubscribe_token="SIGNED")  # fmt: skip
    assert (letter.sender, letter.envelope_sender) == ("appeal@example.org", "bounces+outreach.1.2.3.ab@example.org")
    parsed = email.message_from_bytes(letter.data, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == (
        "<https://appeal.example.org/u/SIGNED>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    ), "the caller's token in the one-click URL; the Message-ID's local part only in the VERP address"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Date"] is None and parsed["In-Reply-To"] == parsed["References"] == "<first@example.org>"
    assert parsed["Reply-To"] == "desk@example.org" and parsed["To"] == "Prime Minister <pm@example.gov>"
    when = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    sent = email.message_from_bytes(dated(letter.data, when), policy=email.policy.default)
    assert sent["Date"].datetime == when and dated(letter.data, when).endswith(letter.data)
    proof = compose(copy, Mailbox("me@example.org"), sender, proof=True, unsubscribe_token="NO-ONE")
    assert proof.subject == "[proof] Open appeal" and proof.message_id.endswith("@example.org>")


def test_two_builds_of_a_letter_are_the_same_letter_but_a_changed_word_is_not() -> None:
    html = "<p>Dear President,</p>\n\n<p>Text.</p>\n"
    copy = Copy("appeal", "en", "Open appeal", "Dear President,\n\nText.\n", html, Greeting("Dear President,", ""))
    sender = Sender(Mailbox("appeal@example.org", "European Appeal"))

    def build(made: Copy) -> bytes:
        return compose(made, Mailbox("pm@example.gov"), sender, "<a@example.org>", unsubscribe_token="T").data

    first, second = build(copy), build(copy)
    assert first != second, "each build has its own MIME boundary"
    assert same_letter(first, second)
    assert not same_letter(first, build(replace(copy, text="Dear President,\n\nText!\n")))
    assert not same_letter(first, build(replace(copy, subject="Open appeal, again")))
    plain = compose(replace(copy, html=None), Mailbox("pm@example.gov"), sender, "<a@example.org>",
                    unsubscribe_token="T").data  # fmt: skip
    assert same_letter(plain, plain) and not same_letter(plain, first), "a letter without a boundary compares whole"


def test_a_letter_is_signed_by_its_from_domains_key_or_the_nearest_above_it() -> None:
    def ours(data: bytes) -> bytes:
        return b"signed by example.org\r\n" + data

    def theirs(data: bytes) -> bytes:
        return b"signed by example.net\r\n" + data

    signers = {"example.org": ours, "example.net": theirs}
    assert signer_for("example.org", signers) is ours
    assert signer_for("news.mail.example.org", signers) is ours, "relaxed alignment: the organisational domain"
    assert signer_for("example.net", signers) is theirs
    assert signer_for("example.com", signers) is None and signer_for("org", {"org": ours}) is None


def test_an_address_with_a_slash_is_previewed_and_dry_run_without_a_crash(workspace: tuple[Env, Key, Key]) -> None:
    env, _, _ = workspace
    env.write("slash.csv", "email,name,role\nhead/office@example.org,Office Head,head_of_government\n")
    env.run("contacts", "import", "slash.csv")
    env.run("campaigns", "create", "slash", "--template", "appeal", "--segment", "role:head_of_government")
    env.run("campaigns", "queue", "slash", "--yes")
    env.run("campaigns", "preview", "slash", "--contact", "head/office@example.org", "-o", "preview")
    env.run("send", "--dry-run", "--outbox-dir", "dry")
    [preview] = list((env.root / "preview").iterdir())
    assert preview.name == "000001-head_office_at_example.org.eml"
    written = [path.name for path in (env.root / "dry").iterdir()]
    assert any(name.endswith("-head_office_at_example.org.eml") for name in written), written
