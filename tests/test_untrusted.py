"""Text from outside on its way through (issue 14): what the database cannot hold is made storable, and what a
terminal or a browser would obey (escape sequences, bidi overrides, zero-width characters) is shown as escapes in
`responses show|list`, `contacts show|list` and the HTML report, while every letter stays as it was written and
`--json` keeps the exact data."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from outreach.db.models import Contact
from outreach.untrusted import storable, visible

from .conftest import Env, on_a_terminal
from .test_responses import maildir, reply, sent
from .test_sending import queued, server

__all__ = ["queued", "sent", "server"]  # fixtures

ESC = "\x1b[2J\x1b[31m"  # clear the screen, then write in red
RLO, PDF = "\u202e", "\u202c"  # right-to-left override, and its end
BIDI = {chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
GREEK = "Ἀλέξανδρος Παπαδόπουλος"
CYRILLIC = "Алексе́й Ёлкин"  # with a combining acute accent, as dictionaries print stress
LETTERS = f"{GREEK} {CYRILLIC} Ñoño Łódź Çağrı عبد الله 李小龍 👩🏽 ❤️ 🇫🇷 ２０２６ Ⅻ"  # noqa: RUF001

# Characters worth trying often: controls, bidi and zero-width ones, separators, lone surrogates, and letters.
SPECIAL = st.sampled_from(
    ["\x00", "\x1b", "\r", "\n", "\t", "\r\n", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u00ad", "\udc80", "\ud800",
     "\U000e0041", "\u3000", "\u00a0", *BIDI, *ZERO_WIDTH, *LETTERS]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.characters(codec=None, exclude_categories=()), SPECIAL)).map("".join)


def hidden(ch: str, *, lines: bool = False) -> bool:
    """A character a terminal or a browser would obey or hide rather than show."""
    if lines and ch in "\n\t":
        return False
    return ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in BIDI or ch in ZERO_WIDTH or (
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"))  # fmt: skip


@given(TEXT)
@example(f"Re: {ESC}Appeal{RLO}\u200b")
def test_visible_text_hides_nothing_and_keeps_every_letter_and_digit_where_it_was(text: str) -> None:
    shown = visible(text)
    assert not any(hidden(ch) for ch in shown), ascii(shown)
    assert shown == "".join(visible(ch) for ch in text), "each character on its own: the letters stay in place"
    for ch in text:
        if unicodedata.category(ch)[0] in "LN":
            assert visible(ch) == ch
        elif hidden(ch):
            assert visible(ch) == ascii(ch)[1:-1].replace("\\r", "\\x0d").replace("\\n", "\\x0a").replace(
                "\\t", "\\x09"), "written as its escape"  # fmt: skip
    if not any(hidden(ch) for ch in text):
        assert shown == text


@given(TEXT)
@example("Dear all,\r\n\tyes\x1b[2J.\rno\n")
def test_visible_lines_keep_their_line_ends_and_tabs_and_nothing_else(text: str) -> None:
    shown = visible(text, lines=True)
    assert not any(hidden(ch, lines=True) for ch in shown), ascii(shown)
    assert shown.count("\n") == text.count("\n") and shown.count("\t") == text.count("\t")
    assert shown == "".join(visible(ch, lines=True) for ch in text.replace("\r\n", "\n"))


def test_visible_keeps_letters_of_every_script_accents_and_emoji() -> None:
    assert visible(LETTERS) == LETTERS
    assert visible(f"{GREEK}\n\t{CYRILLIC}", lines=True) == f"{GREEK}\n\t{CYRILLIC}"
    assert visible(f"Yes{ESC} {RLO}ngis{PDF}\u200b\x00") == "Yes\\x1b[2J\\x1b[31m \\u202engis\\u202c\\u200b\\x00"


@given(TEXT)
def test_storable_text_holds_no_nul_nor_lone_surrogate_and_changes_nothing_else(text: str) -> None:
    stored = storable(text)
    assert "\x00" not in stored and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in stored)
    stored.encode("utf-8")  # no codec refuses it
    if "\x00" not in text and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        assert stored is text


@given(st.binary())
@example("Zoë\x00 ".encode() + b"\xff\xc3" + "é".encode("latin-1"))
def test_bytes_kept_by_surrogateescape_are_stored_as_utf8_reads_them(data: bytes) -> None:
    escaped = data.decode("utf-8", "surrogateescape")  # how a file name or a CSV field keeps undecodable bytes
    assert storable(escaped) == data.decode("utf-8", "replace").replace("\x00", "\ufffd")


def test_what_a_stranger_wrote_is_shown_not_obeyed_and_names_keep_their_letters(
    queued: Env, sent: dict[str, str]
) -> None:
    mp = sorted(sent)
    with queued.sessions.begin() as session:
        session.scalars(select(Contact).where(Contact.email == mp[0])).one().name = f"{GREEK} {RLO}lanretni\u200b"
        session.scalars(select(Contact).where(Contact.email == mp[1])).one().name = CYRILLIC
    text = f"Yes{ESC} I will sign {RLO}ti ngis{PDF}.\r\nBest,\r\n\tAlexandros"
    sender = f'"evil{ESC}"@parliament.example'
    folder = maildir(queued.root, [reply(sender, sent[mp[0]], text, subject=f"Re: {ESC}Appeal{RLO}")])
    queued.run("responses", "poll", "--source", f"maildir:{folder}")

    listed = queued.run("responses", "list").stdout
    assert "\x1b" not in listed and RLO not in listed and "\\x1b[2J\\x1b[31m" in listed
    [entry] = json.loads(queued.run("responses", "list", "--json").stdout)["responses"]
    shown = queued.run("responses", "show", str(entry["id"])).stdout
    assert "\x1b" not in shown and RLO not in shown and PDF not in shown
    assert f"      from: {visible(sender)}\n" in shown and "\\x1b[2J\\x1b[31m" in visible(sender)
    assert "   subject: Re: \\x1b[2J\\x1b[31mAppeal\\u202e\n" in shown
    # (rich writes a tab as the blanks up to the terminal's next tab stop)
    assert "\nYes\\x1b[2J\\x1b[31m I will sign \\u202eti ngis\\u202c.\nBest,\n\tAlexandros".expandtabs() in shown

    exact = json.loads(queued.run("responses", "show", str(entry["id"]), "--json").stdout)
    assert (exact["sender"], exact["subject"]) == (sender, f"Re: {ESC}Appeal{RLO}"), "--json keeps the data"
    assert exact["text"].replace("\r\n", "\n") == text.replace("\r\n", "\n")
    raw = queued.run("responses", "show", str(entry["id"]), "--raw").stdout
    assert ESC in raw, "--raw into a pipe is the message as it arrived"
    on_terminal = on_a_terminal(queued, "responses", "show", str(entry["id"]), "--raw")
    assert b"\x1b" not in on_terminal and b"Yes\\x1b[2J\\x1b[31m I will sign \\u202eti ngis\\u202c." in on_terminal

    greek = queued.run("contacts", "show", mp[0]).stdout
    assert f"name: {GREEK} \\u202elanretni\\u200b\n" in greek and RLO not in greek
    assert f"name: {CYRILLIC}\n" in queued.run("contacts", "show", mp[1]).stdout
    contacts = queued.run("contacts", "list").stdout
    assert CYRILLIC in contacts and GREEK in contacts and "\\u202elanretni" in contacts and RLO not in contacts
    assert json.loads(queued.run("contacts", "show", mp[0], "--json").stdout)["name"] == f"{GREEK} {RLO}lanretni\u200b"

    queued.run("report", "wave", "--html", "report.html")
    page = (queued.root / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in page and RLO not in page and "\u200b" not in page
    assert f"<strong>{GREEK} \\u202elanretni\\u200b &lt;{mp[0]}&gt;</strong>" in page
    assert (
        "<blockquote>Yes\\x1b[2J\\x1b[31m I will sign \\u202eti ngis\\u202c.\nBest,\n\tAlexandros</blockquote>" in page
    )
