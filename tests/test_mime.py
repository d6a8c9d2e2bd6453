"""Messages on the wire: parsed back with the stdlib, they say exactly what was meant, within SMTP's limits."""

from __future__ import annotations

import binascii
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.rendering.mime import (
    Mailbox,
    Message,
    MessageError,
    _quoted_printable,
    build_message,
    make_message_id,
    one_line,
)

SEED_PARAGRAPH = (
    "For most NATO member countries, there can be no future security in Europe without a clear and indisputable "
    "military defeat for Russia in Ukraine. " * 20
)
WHEN = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "sender": Mailbox("appeal@example.org", "Appeal Team"),
        "recipient": Mailbox("elysee@example.org", "Emmanuel Macron"),
        "subject": "Open appeal to European heads of state and government",
        "text": f"Your Excellency,\n\n{SEED_PARAGRAPH}\n\nYours faithfully,\n",
        "message_id": "<c0ffee@example.org>",
        "date": WHEN,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def content(part: EmailMessage) -> str:
    """A part's text as a reader sees it (the parser keeps the wire's CRLF line ends)."""
    return str(part.get_content()).replace("\r\n", "\n")


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def assert_wire_safe(data: bytes) -> None:
    lines = data.split(b"\r\n")
    assert lines[-1] == b"", "the message ends with CRLF"
    assert all(b"\n" not in line and b"\r" not in line for line in lines), "no bare CR or LF"
    assert max(len(line) for line in lines) <= 78, "every line within RFC 5322's 78 characters"


def test_a_plain_letter_parses_back_as_written() -> None:
    data = build_message(message())
    assert_wire_safe(data)
    parsed = parse(data)
    assert parsed["From"] == "Appeal Team <appeal@example.org>"
    assert parsed["To"].addresses[0].addr_spec == "elysee@example.org"
    assert parsed["Subject"] == "Open appeal to European heads of state and government"
    assert parsed["Message-ID"] == "<c0ffee@example.org>"
    assert parsed["Date"].datetime == WHEN
    assert parsed.get_content_type() == "text/plain"
    assert content(parsed) == f"Your Excellency,\n\n{SEED_PARAGRAPH}\n\nYours faithfully,\n"


def test_html_makes_a_multipart_alternative_with_the_text_first() -> None:
    parsed = parse(build_message(message(html="<p>Your Excellency,</p><p>Ελλάδα</p>")))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert content(parts[1]) == "<p>Your Excellency,</p><p>Ελλάδα</p>\n"


@pytest.mark.parametrize(
    "name",
    ["Élisabeth Borne-Dupré", "Олена Зеленська", "Κυριάκος Μητσοτάκης", "Նիկոլ Փաշինյան", "Andrej \u0410. Piontkovsky"],
)
def test_non_ascii_names_are_encoded_words_and_the_address_stays_outside(name: str) -> None:
    data = build_message(message(recipient=Mailbox("pm@example.org", name), subject=f"Appel — {name}"))
    assert_wire_safe(data)
    unfolded = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")
    to_line = next(line for line in unfolded.split(b"\r\n") if line.startswith(b"To:"))
    assert to_line.endswith(b" <pm@example.org>") and b"=?utf-8?b?" in to_line
    parsed = parse(data)
    assert parsed["To"].addresses[0].display_name == name
    assert parsed["To"].addresses[0].addr_spec == "pm@example.org"
    assert parsed["Subject"] == f"Appel — {name}"


def test_a_long_name_is_split_between_its_words_not_inside_one() -> None:
    name = "Володимир Олександрович Зеленський"
    parsed = parse(build_message(message(recipient=Mailbox("pm@example.org", name))))
    assert parsed["To"].addresses[0].display_name.split() == name.split()


def test_a_name_with_specials_is_quoted() -> None:
    parsed = parse(build_message(message(recipient=Mailbox("pm@example.org", 'Smith, John "Jack"'))))
    assert parsed["To"].addresses[0].display_name == 'Smith, John "Jack"'


def test_crlf_in_a_name_or_subject_cannot_add_a_header() -> None:
    hostile = "Jane\r\nBcc: victim@example.net"
    parsed = parse(build_message(message(recipient=Mailbox("pm@example.org", hostile), subject=f"Hi\n{hostile}")))
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].display_name == "Jane Bcc: victim@example.net"
    assert parsed["Subject"] == "Hi Jane Bcc: victim@example.net"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["pm@example.org"]


@pytest.mark.parametrize("address", ["pm@example.org\r\nBcc: x@example.net", "a@example.org, b@example.org", "none"])
def test_an_address_that_would_break_the_header_is_refused(address: str) -> None:
    with pytest.raises(MessageError):
        build_message(message(recipient=Mailbox(address)))


def test_extra_headers_and_their_names_are_checked() -> None:
    headers = [("List-Unsubscribe", "<mailto:unsubscribe@example.org?subject=unsubscribe>"), ("In-Reply-To", "<a@b>")]
    parsed = parse(build_message(message(headers=headers)))
    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"
    with pytest.raises(MessageError, match="not a header name"):
        build_message(message(headers=[("Bcc: x@example.net\r\nX", "y")]))


def test_a_long_url_in_an_extra_header_stays_whole_on_a_line_of_its_own() -> None:
    # RFC 2047 5 allows no encoded word in a URL: a one-click URL longer than 78 characters must not become one.
    url = "https://appeal.example.org/unsubscribe?token=outreach.12.3.4567.9f3a61c2&campaign=open-letter-2026"
    value = f"<{url}>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    data = build_message(message(headers=[("List-Unsubscribe", value), ("X-Note", "Ελλάδα " + "x" * 100)]))
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert f"List-Unsubscribe: <{url}>,".encode() in head
    assert b" <mailto:unsubscribe@example.org?subject=unsubscribe>" in head
    assert max(len(line) for line in head) <= 998
    parsed = parse(data)
    assert parsed["List-Unsubscribe"] == value
    assert parsed["X-Note"] == "Ελλάδα " + "x" * 100, "text that is not ASCII is still encoded"
    assert all(len(line) <= 78 for line in head if not line.startswith(b"List-Unsubscribe:"))


def test_an_address_that_needs_smtputf8_is_flagged() -> None:
    assert message(recipient=Mailbox("ольга@example.org")).needs_smtputf8
    assert not message().needs_smtputf8


def test_message_ids_are_under_the_senders_domain_and_unique() -> None:
    first, second = make_message_id("Example.org"), make_message_id("example.org")
    assert first.endswith("@example.org>") and first != second
    assert make_message_id("example.org", "outreach.42.1") == "<outreach.42.1@example.org>"
    with pytest.raises(MessageError):
        make_message_id("example.org", "two words")


def test_the_same_message_built_by_the_stdlib_parses_back_the_same() -> None:
    ours = message(
        recipient=Mailbox("pm@example.org", "Κυριάκος Μητσοτάκης"), subject="Ανοιχτή επιστολή", html="<p>Ελλάδα</p>"
    )
    reference = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=76))
    reference["From"] = "Appeal Team <appeal@example.org>"
    reference["To"] = "Κυριάκος Μητσοτάκης <pm@example.org>"
    reference["Subject"] = ours.subject
    reference.set_content(ours.text)
    reference.add_alternative(ours.html, subtype="html")
    theirs, mine = parse(reference.as_bytes()), parse(build_message(ours))
    for header in ("From", "To", "Subject"):
        assert str(mine[header]) == str(theirs[header])
    mine_parts, their_parts = list(mine.iter_parts()), list(theirs.iter_parts())
    assert [content(p) for p in mine_parts] == [content(p) for p in their_parts]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=200), st.text(min_size=0, max_size=60), st.text(min_size=0, max_size=500))
def test_any_subject_name_and_text_survive_the_wire(subject: str, name: str, text: str) -> None:
    text = text.replace("\x00", "")
    data = build_message(message(subject=subject, recipient=Mailbox("pm@example.org", name), text=text))
    assert_wire_safe(data)
    parsed = parse(data)
    assert parsed["Subject"] == one_line(subject)
    # Python's address parser shows a blank between encoded words, against RFC 2047 6.2: compare without blanks.
    assert "".join(parsed["To"].addresses[0].display_name.split()) == "".join(one_line(name).split())
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert content(parsed) == (expected if expected.endswith("\n") else expected + "\n")


@settings(max_examples=500)
@given(st.lists(st.text(alphabet=" \t=.aZé€\u00a0-From", max_size=200), max_size=6))
def test_quoted_printable_line_by_line_is_what_the_whole_text_would_give(lines: list[str]) -> None:
    # The encoding is cached line by line; binascii on the whole text is the reference (soft breaks, blanks
    # at a line's end, `=`).
    text = "\r\n".join(lines) + "\r\n"
    whole = binascii.b2a_qp(text.encode(), istext=True).decode("ascii")
    assert "\r\n".join(map(_quoted_printable, text.split("\r\n"))) == whole
