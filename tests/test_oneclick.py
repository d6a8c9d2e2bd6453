"""One-click unsubscribe (RFC 8058): signed tokens that name a contact and a campaign, the letters that carry them,
and the one service that acts on a click, on SQLite and PostgreSQL. (A letter sent to a real SMTP server with both
headers DKIM-signed: tests/test_sending.py; `doctor` asking the public URL: tests/test_doctor.py.)"""

from __future__ import annotations

import base64
import email
import email.policy
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from outreach.campaigns.catalog import create_campaign
from outreach.campaigns.previews import proof_letters, write_previews
from outreach.campaigns.queueing import queue_step
from outreach.contacts.directory import suppression_reason
from outreach.contacts.erasing import forget_contact
from outreach.contacts.tokens import NO_ONE, TOKEN_LENGTH, read_unsubscribe_token, unsubscribe_token
from outreach.db.models import Campaign, Contact, OutboxBody, OutboxMessage, Response
from outreach.rendering.letters import Sender
from outreach.rendering.mime import Mailbox
from outreach.responses.oneclick import OneClick, UnknownTokenError, unsubscribe_by_token
from outreach.workspace import read_secret

from .conftest import Env
from .test_import import do_import

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
PUBLIC = "https://appeal.example.org"
SENDER = Sender(
    Mailbox("appeal@example.org", "European Appeal"), unsubscribe_mailto="unsubscribe@example.org", public_url=PUBLIC
)
MPS = [f"mp{n}@parliament.example.org" for n in range(4)]
IDS = st.integers(min_value=0, max_value=2**63 - 1)


@given(IDS, st.one_of(st.none(), st.integers(min_value=1, max_value=2**63 - 1)))
def test_a_token_reads_back_to_its_contact_and_campaign(contact_id: int, campaign_id: int | None) -> None:
    token = unsubscribe_token(SECRET, contact_id, campaign_id)
    assert (
        len(token) == TOKEN_LENGTH
        and token.isascii()
        and set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    ), "URL-safe as it is, and no padding"
    assert read_unsubscribe_token(SECRET, token) == (contact_id, campaign_id)
    assert read_unsubscribe_token(OTHER_SECRET, token) is None, "another workspace's secret reads nothing"


def test_the_same_contact_and_campaign_always_get_the_same_token_and_another_gets_another() -> None:
    token = unsubscribe_token(SECRET, 7, 3)
    assert unsubscribe_token(SECRET, 7, 3) == token
    assert len({token, unsubscribe_token(SECRET, 8, 3), unsubscribe_token(SECRET, 7, 4),
                unsubscribe_token(SECRET, 7, None), unsubscribe_token(OTHER_SECRET, 7, 3)}) == 5  # fmt: skip
    assert read_unsubscribe_token(SECRET, unsubscribe_token(SECRET, NO_ONE, None)) == (NO_ONE, None)


def forged_forms(token: str) -> list[str]:
    """Every way a token can be got wrong: each character changed, cut short, lengthened, padded, re-spelled."""
    raw = base64.urlsafe_b64decode(token)
    other_version = base64.urlsafe_b64encode(bytes([2]) + raw[1:]).decode()
    swapped_ids = base64.urlsafe_b64encode(raw[:1] + raw[9:17] + raw[1:9] + raw[17:]).decode()
    changed = [token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :] for i in range(len(token))]
    return [
        *changed, token[:-1], token[1:], token[:22], token + "A", token + "=", token + "==", token + "\n",
        " " + token, token.upper(), token[:-1] + "é", token[:-1] + "\uff21", token.replace("-", "+").replace("_", "/"),
        other_version, swapped_ids, "", "=" * TOKEN_LENGTH, "A" * TOKEN_LENGTH, "A" * 10_000,
    ]  # fmt: skip


def test_a_forged_altered_cut_or_padded_token_reads_as_nothing() -> None:
    token = unsubscribe_token(SECRET, 1234, 56)
    if "-" not in token and "_" not in token:  # (the re-spelled form then equals the token: use one that has them)
        token = next(t for n in range(1, 100) if set("-_") & set(t := unsubscribe_token(SECRET, n, 56)))
    for forged in forged_forms(token):
        assert forged == token or read_unsubscribe_token(SECRET, forged) is None, repr(forged)


@pytest.mark.parametrize(("contact_id", "campaign_id"), [(-1, None), (1, -1), (2**63, 1), (1, 2**64)])
def test_ids_no_database_holds_make_no_token(contact_id: int, campaign_id: int | None) -> None:
    with pytest.raises(ValueError, match="cannot be in an unsubscribe token"):
        unsubscribe_token(SECRET, contact_id, campaign_id)


def test_no_secret_signs_and_no_secret_reads() -> None:
    with pytest.raises(ValueError, match="no workspace secret"):
        unsubscribe_token(b"", 1, 1)
    assert read_unsubscribe_token(b"", unsubscribe_token(SECRET, 1, 1)) is None


def queue(env: Env) -> tuple[int, dict[str, int]]:
    """Four members of parliament, and the campaign `wave` queued for them with OUTREACH_PUBLIC_URL set: its id, and
    each contact's id by address."""
    do_import(env, env.write("list.csv", "email,name,role\n" + "".join(f"{a},Member {n},mp\n"
                                                                      for n, a in enumerate(MPS))))  # fmt: skip
    create_campaign(env.sessions, "wave", "appeal", "role:mp", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=NOW)
    with env.sessions() as session:
        campaign = session.scalars(select(Campaign.id)).one()
        return campaign, {email: id_ for email, id_ in session.execute(select(Contact.email, Contact.id))}


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def token_in(message: EmailMessage) -> str:
    """The token of a letter's one-click URL, once its List-Unsubscribe is checked whole."""
    link, mailto = str(message["List-Unsubscribe"]).split(", ")
    assert mailto == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert link.startswith(f"<{PUBLIC}/u/") and link.endswith(">")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return link.removeprefix(f"<{PUBLIC}/u/").removesuffix(">")


def test_a_queued_letter_carries_a_signed_one_click_url_that_names_its_contact_and_campaign(env: Env) -> None:
    campaign, contacts = queue(env)
    with env.sessions() as session:
        letters = session.execute(
            select(OutboxMessage.recipient, OutboxMessage.message_id, OutboxBody.letter)
            .join(OutboxBody, OutboxBody.message_id == OutboxMessage.message_id)
        ).all()  # fmt: skip
    assert len(letters) == len(MPS)
    secret = read_secret(env.root)
    for recipient, message_id, data in letters:
        token = token_in(parsed(data))
        assert read_unsubscribe_token(secret, token) == (contacts[recipient], campaign)
        assert token != message_id.strip("<>").rpartition("@")[0] and token not in message_id


def test_a_preview_shows_the_one_click_url_the_letter_will_carry_and_a_proof_one_that_names_no_one(
    env: Env, tmp_path: Path
) -> None:
    campaign, contacts = queue(env)
    with env.sessions.begin() as session:  # one letter not queued yet: its preview is made now
        session.execute(update(OutboxMessage).where(OutboxMessage.contact_id == contacts[MPS[0]])
                        .values(state="cancelled"))  # fmt: skip
    secret = read_secret(env.root)
    previews = write_previews(env.sessions, env.root / "templates", "wave", SENDER, tmp_path, now=NOW, contacts=MPS)
    assert [preview.queued for preview in previews] == [False, True, True, True]
    for preview in previews:
        token = token_in(parsed(preview.path.read_bytes()))
        assert read_unsubscribe_token(secret, token) == (contacts[preview.recipient], campaign)
    _, proofs = proof_letters(env.sessions, env.root / "templates", "wave", SENDER, Mailbox("me@example.org"),
                              now=NOW, contacts=MPS[:1])  # fmt: skip
    assert read_unsubscribe_token(secret, token_in(parsed(proofs[0][2].data))) == (NO_ONE, campaign), (
        "the campaigner's mail client offers the proof's link as a button: it unsubscribes nobody"
    )


def responses(env: Env) -> list[Response]:
    with env.sessions() as session:
        return list(session.scalars(select(Response).order_by(Response.id)))


def test_a_click_unsubscribes_once_and_records_one_response(env: Env) -> None:
    campaign, contacts = queue(env)
    first, second = MPS[0], MPS[1]
    sent_at = NOW + timedelta(hours=1)
    with env.sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.contact_id == contacts[first])
                        .values(state="sent", sent_at=sent_at))  # fmt: skip
        letter = session.scalars(select(OutboxMessage.id).where(OutboxMessage.contact_id == contacts[first])).one()
    token = unsubscribe_token(read_secret(env.root), contacts[first], campaign)
    later = NOW + timedelta(days=1)

    done = unsubscribe_by_token(env.sessions, token, now=later)

    assert done == OneClick(contacts[first], campaign, done=True, response_id=done.response_id)
    [response] = responses(env)
    assert response.id == done.response_id
    assert (response.kind, response.channel, response.matched_by, response.reason) == (
        "unsubscribe", "email", "one-click", "one-click unsubscribe (RFC 8058)"
    )  # fmt: skip
    assert (response.contact_id, response.campaign_id, response.outbox_message_id) == (
        contacts[first],
        campaign,
        letter,
    )
    assert response.sender == first and response.received_at == response.recorded_at
    with env.sessions() as session:
        contact = session.get_one(Contact, contacts[first])
        assert contact.status == "unsubscribed"
        assert suppression_reason(session, contact.email_key or "") == "unsubscribed"
        assert session.get_one(Contact, contacts[second]).status == "active", "the others stay"

    again = unsubscribe_by_token(env.sessions, token, now=later + timedelta(minutes=1))
    assert again == OneClick(contacts[first], campaign, done=False)
    assert len(responses(env)) == 1, "a second click records nothing"

    # A letter not sent yet answers nothing, and a click without a campaign is the contact's alone.
    other = unsubscribe_by_token(env.sessions, unsubscribe_token(read_secret(env.root), contacts[second], None),
                                 now=later)  # fmt: skip
    assert other.done and other.campaign_id is None
    assert (responses(env)[-1].campaign_id, responses(env)[-1].outbox_message_id) == (None, None)


def test_a_contact_already_suppressed_is_left_as_it_is(env: Env) -> None:
    campaign, contacts = queue(env)
    env.run("contacts", "suppress", MPS[2], "--reason", "bounced")
    token = unsubscribe_token(read_secret(env.root), contacts[MPS[2]], campaign)
    assert unsubscribe_by_token(env.sessions, token, now=NOW) == OneClick(contacts[MPS[2]], campaign, done=False)
    assert responses(env) == []
    with env.sessions() as session:
        assert session.get_one(Contact, contacts[MPS[2]]).status == "bounced"


def test_a_forged_token_an_erased_contact_and_a_sample_letter_unsubscribe_no_one(env: Env) -> None:
    campaign, contacts = queue(env)
    secret = read_secret(env.root)
    forged = unsubscribe_token(OTHER_SECRET, contacts[MPS[0]], campaign)
    with pytest.raises(UnknownTokenError, match="not made by this workspace"):
        unsubscribe_by_token(env.sessions, forged, now=NOW)
    with pytest.raises(UnknownTokenError, match="names no contact"):
        unsubscribe_by_token(env.sessions, unsubscribe_token(secret, NO_ONE, None), now=NOW)
    with pytest.raises(UnknownTokenError, match="names no contact"):
        unsubscribe_by_token(env.sessions, unsubscribe_token(secret, 10_000, campaign), now=NOW)
    forget_contact(env.sessions, MPS[3], now=NOW)
    with pytest.raises(UnknownTokenError, match="names no contact"):
        unsubscribe_by_token(env.sessions, unsubscribe_token(secret, contacts[MPS[3]], campaign), now=NOW)
    assert responses(env) == []
    with env.sessions() as session:
        statuses = {row.email: row.status for row in session.execute(select(Contact.email, Contact.status))}
    assert statuses == {**dict.fromkeys(MPS[:3], "active"), None: "do_not_contact"}


def test_clicks_at_the_same_moment_record_one_response(env: Env) -> None:
    campaign, contacts = queue(env)
    secret = read_secret(env.root)
    clicks = 4
    for address in MPS:
        token = unsubscribe_token(secret, contacts[address], campaign)
        start = threading.Barrier(clicks)
        results: list[OneClick | BaseException] = []

        def click(token: str = token, start: threading.Barrier = start, results: list[object] = results) -> None:
            start.wait()
            try:
                results.append(unsubscribe_by_token(env.sessions, token, now=NOW))
            except BaseException as error:
                results.append(error)

        threads = [threading.Thread(target=click) for _ in range(clicks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(isinstance(result, OneClick) for result in results), results
        assert sorted(result.done for result in results if isinstance(result, OneClick)) == [False] * 3 + [True]
    with env.sessions() as session:
        counted = session.scalar(select(func.count()).select_from(Response).where(Response.kind == "unsubscribe"))
    assert counted == len(MPS), "one response a contact, however many clicks came at once"
