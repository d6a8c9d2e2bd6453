"""The new text of replies and the clues that match inbound messages, on bodies and messages shaped like the ones
Outlook, Gmail, Apple Mail, Thunderbird and bouncing servers produce (tests/samples/replies)."""

from __future__ import annotations

import email
import json
from email import policy
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.responses.inbound import body_text, read_message
from outreach.responses.matching import Clues, clues, message_id_token, message_ids, normalize_message_id
from outreach.responses.replies import new_text

SAMPLES = Path(__file__).parent / "samples" / "replies"
CORPUS = Path(__file__).parent / "corpus"
OURS = "<3f9a1c2e7b.20250410@appeal.example.org>"
FIRST_STEP = "<0a1b2c3d4e.20250401@appeal.example.org>"
TOKEN_ADDRESS = "bounces+{token}@appeal.example.org"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "outlook_en.txt",
            "Dear Ms Example,\n\nThank you for your letter. I support the appeal and I will sign it this week.\n"
            "My office will send you the signed form.\n\nKind regards,\nJohn Smith\nMember of Parliament",
        ),
        ("outlook_original_message.txt", "Hello,\n\nPlease take me off your list.\n\nPeter"),
        (
            "outlook_fr.txt",
            "Madame,\n\nMerci pour votre message. Je signerai l'appel.\n\nCordialement,\nMarie Dupont\nDéputée",
        ),
        (
            "outlook_de.txt",
            "Sehr geehrte Damen und Herren,\n\nvielen Dank für Ihre Nachricht. Ich unterstütze den Aufruf.\n\n"
            "Mit freundlichen Grüßen\nHans Müller",
        ),
        (
            "outlook_html_underscores.txt",
            "Dear team,\n\nI have read the appeal and will discuss it with my group on Thursday.\n\nBest,\nAnna",
        ),
        (
            "outlook_html_bold_de.txt",
            "Guten Tag,\n\nich bin gerade nicht im Büro und antworte nächste Woche ausführlich.\n\nGrüße\nEva Schmidt",
        ),
        ("gmail_en.txt", "Thank you, I will sign."),
        ("gmail_en_wrapped.txt", "Yes, count me in. Which address should the signed form go to?"),
        ("gmail_fr.txt", "Bonjour,\n\nJe soutiens cet appel, vous pouvez citer mon nom.\n\nBien à vous,\nMarie"),
        ("gmail_de.txt", "Hallo,\n\nich unterschreibe gerne.\n\nViele Grüße\nHans"),
        ("gmail_es.txt", "Hola,\n\nfirmaré la carta la semana que viene.\n\nUn saludo,\nLucía"),
        (
            "gmail_it.txt",
            "Buongiorno,\n\nnon posso firmare a titolo personale, ma inoltro al gruppo.\n\n"
            "Cordiali saluti\nGiulia Rossi",
        ),
        ("gmail_pl.txt", "Dzień dobry,\n\npodpiszę apel w przyszłym tygodniu.\n\nZ poważaniem\nJan Kowalski"),
        ("gmail_cs.txt", "Dobrý den,\n\nvýzvu rád podepíšu.\n\nS pozdravem,\nPetr Novák"),
        ("apple_mail.txt", 'Happy to sign. Put me down as "Councillor, Leeds".'),
        ("apple_mail_fr.txt", "Avec plaisir, je signe."),
        ("apple_mail_de.txt", "Ich bin dabei."),
        ("apple_mail_es.txt", "Sí, firmo."),
        ("apple_mail_cs.txt", "Dobrý den,\n\nděkuji, podepíšu."),
        ("thunderbird.txt", "Dear Clean Air Appeal,\n\nI have forwarded your appeal to our chair.\n\nRegards,\nTom"),
        ("thunderbird_pl_crlf.txt", "Dzień dobry,\n\npopieram apel.\n\nPozdrawiam\nAnna"),
        ("bottom_posted.txt", "Yes, I will. Please use my university title.\n\nBest regards,\nDr Sarah Evans"),
        ("interleaved.txt", "Hi,\n\nanswers below.\n\nYes.\n\nOnly with my party affiliation, please."),
        ("signature_dashes.txt", "Just a thought -- you might also ask the mayors.\n\nDaniel"),
        ("all_quoted.txt", ""),
    ],
)
def test_the_new_text_of_a_reply(sample: str, expected: str) -> None:
    body = (SAMPLES / sample).read_bytes().decode("utf-8")  # read_text would turn the CRLF sample's ends into LF
    assert new_text(body) == expected


def test_a_bottom_posted_answer_is_kept() -> None:
    assert new_text("> original\n\nMy answer") == "My answer"


def test_line_ends_blanks_and_empty_lines_are_tidied() -> None:
    assert new_text("\r\n  First line   \r\n\r\n\r\n\r\n\rSecond line\t\r\n\r\n") == "  First line\n\nSecond line"
    assert new_text("") == ""
    assert new_text(" \n\n\t\n") == ""


def test_a_body_of_nothing_but_a_signature_keeps_it() -> None:
    assert new_text("-- \nJohn Smith\n") == "--\nJohn Smith"
    assert new_text("Sent from my iPhone") == "Sent from my iPhone"


def test_a_header_at_the_top_with_the_original_under_it_leaves_nothing() -> None:
    forwarded = "From: Clean Air Appeal <appeal@appeal.example.org>\nSent: Tuesday\nTo: Jan\nSubject: Appeal\n\nDear"
    assert new_text(forwarded) == ""


def test_one_line_that_looks_like_a_polish_header_field_does_not_cut_the_reply() -> None:
    # mail-parser-reply's Polish pattern takes a single "Data:" line for a quote header.
    assert new_text("Data: 5 mln podpisów\n\nDziękuję") == "Data: 5 mln podpisów\n\nDziękuję"
    polish_outlook = "Dzięki\n\nOd: Apel <appeal@appeal.example.org>\nWysłano: wtorek\nDo: Jan\nTemat: Apel\n\nTekst"
    assert new_text(polish_outlook) == "Dzięki"


def test_an_attribution_in_a_language_beyond_outreachs_own_is_found() -> None:
    # Any attribution that names an address or a date and ends with the verb or a colon; `language` may add more.
    dutch = "Prima.\n\nOp 8 apr. 2025 om 10:00, Clean Air Appeal <appeal@appeal.example.org> schreef:\n> Tekst\n"
    assert new_text(dutch) == "Prima."
    assert new_text(dutch, language="nl") == "Prima."
    assert new_text(dutch, language="nl-BE") == "Prima."


@given(st.from_regex(r"[^\W\d_][\w ,.!?']{0,80}", fullmatch=True))
def test_a_line_of_its_own_above_or_below_a_quote_is_kept(line: str) -> None:
    assert new_text(f"{line}\n\n> quoted\n") == line.rstrip()
    assert new_text(f"> quoted\r\n\r\n{line}") == line.rstrip()


# Replies of the corpus (tests/corpus/README.md) whose new text outreach still gets wrong, and why. strict: a fix
# turns the xfail into a failure, so that the entry is removed and the count below stays true.
KNOWN_WRONG = {
    "messages/crisp-email-reply-parser/email_6.eml": 'a made-up device line, "Sent a magnificent torch of pixels"',
    "messages/crisp-email-reply-parser/email_multiline_reply_headers_de.eml": "the same made-up device line",
    "messages/crisp-email-reply-parser/email_with_quotes.eml": 'code the person quoted with ">" on purpose',
    "messages/talon/pattern_on_date_polymail.eml": "an attribution broken over five lines around blank ones",
    "messages/talon/preprocess.eml": 'a wrapped link leaves "> for more" at the start of a line of the answer',
    "messages/talon/preprocess_3.eml": "the attribution starts in the middle of a line of the answer",
    "messages/talon/quotation_marker_false_positive.eml": 'a line of the answer that starts with ">>>"',
    "messages/talon/reply_and_quotation_splitter_share_line.eml": "the attribution starts in the middle of a line",
}
CORPUS_REPLIES = [json.loads(line) for line in (CORPUS / "expected-replies.jsonl").read_text("utf-8").splitlines()]


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param(record, marks=pytest.mark.xfail(reason=KNOWN_WRONG[record["file"]], strict=True))
        if record["file"] in KNOWN_WRONG
        else record
        for record in CORPUS_REPLIES
    ],
    ids=[record["file"].removeprefix("messages/") for record in CORPUS_REPLIES],
)
def test_the_new_text_of_each_reply_of_the_corpus(expected: dict[str, str]) -> None:
    message = read_message((CORPUS / expected["file"]).read_bytes())
    assert _words(new_text(body_text(message))) == _words(expected["new_text"])


def test_the_corpus_known_failures_are_few_and_listed() -> None:
    files = {record["file"] for record in CORPUS_REPLIES}
    assert len(files) == len(CORPUS_REPLIES) >= 200
    assert set(KNOWN_WRONG) <= files
    assert len(KNOWN_WRONG) == 8  # 192 of 200 right (96 %)


def _message(sample: str) -> Message:
    return email.message_from_bytes((SAMPLES / sample).read_bytes(), policy=policy.compat32)


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "reply_threaded.eml",
            Clues((OURS, FIRST_STEP), (), "Jane.Roe@parliament.example", ("in-reply-to", "references")),
        ),
        ("reply_sloppy.eml", Clues((OURS,), (), "jan@starosta.example", ("in-reply-to",))),
        ("dsn_rfc822.eml", Clues((OURS,), (), "MAILER-DAEMON@mx.appeal.example.org", ("report",))),
        ("arf_headers.eml", Clues((OURS,), ("3f9a1c2e7b.20250410",), "abuse@mail.provider.example", ("report",))),
        ("qmail_bounce.eml", Clues((OURS,), (), "MAILER-DAEMON@mail.town.example", ("quoted-text",))),
        (
            "verp_bounce.eml",
            Clues((OURS,), ("3f9a1c2e7b.20250410",), "Mailer-Daemon@mx.region.example", ("quoted-text",)),
        ),
    ],
)
def test_the_clues_of_an_inbound_message(sample: str, expected: Clues) -> None:
    assert clues(_message(sample), token_address=TOKEN_ADDRESS) == expected


def test_without_a_token_address_no_tokens_are_looked_for() -> None:
    assert clues(_message("verp_bounce.eml")).tokens == ()


def test_the_original_of_a_report_comes_before_ids_quoted_in_its_text() -> None:
    # The attached original's body quotes another "Message-ID:" line; a report's part says which one is ours.
    assert clues(_message("dsn_rfc822.eml")).message_ids == (OURS,)


def test_headers_that_name_nothing_give_no_clues() -> None:
    message = email.message_from_string(
        "From: nobody\nIn-Reply-To: Your message of Tue, 8 Apr 2025\nReferences: (none)\n\nHello\n",
        policy=policy.compat32,
    )
    assert clues(message, token_address=TOKEN_ADDRESS) == Clues((), (), None)


def test_a_token_address_must_have_one_token_in_its_local_part() -> None:
    message = _message("verp_bounce.eml")
    for bad in ("bounces@appeal.example.org", "bounces+{token}", "b+{token}.{token}@appeal.example.org"):
        with pytest.raises(ValueError, match="token"):
            clues(message, token_address=bad)


def test_a_token_is_found_only_in_an_address_of_that_shape() -> None:
    message = email.message_from_string(
        "To: xbounces+aaa@appeal.example.org, bounces+bbb@appeal.example.org.evil.example,\n"
        " <bounces+Ccc=d.e-f_g@Appeal.Example.ORG>\n\n",
        policy=policy.compat32,
    )
    assert clues(message, token_address=TOKEN_ADDRESS).tokens == ("Ccc=d.e-f_g",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<3f9a1c2e7b.20250410@Appeal.Example.ORG>", OURS),
        ("  3f9a1c2e7b.20250410@appeal.example.org ", OURS),
        ("<3f9a1c2e7b.20250410@\r\n appeal.example.org>", OURS),
        ("<Ab+c=d@[192.0.2.1]>", "<Ab+c=d@[192.0.2.1]>"),
        ("", None),
        ("<>", None),
        ("no id here", None),
        ("<a@b@c>", None),
        ('<"quoted"@example.org>', None),
    ],
)
def test_normalize_message_id(value: str, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


def test_message_ids_in_a_header_value() -> None:
    references = "<a@x.example>\n\t<B@Y.example> (comment <c@z.example>)\r\n <d@\r\n w.example>"
    assert message_ids(references) == ["<a@x.example>", "<B@y.example>", "<d@w.example>"]
    assert message_ids('"Jane <j@x.example>" 3f9a@appeal.example.org') == ["<3f9a@appeal.example.org>"]
    assert message_ids("<id@x.example> (Message from X (nested) of Tue)") == ["<id@x.example>"]


def test_message_id_token() -> None:
    assert message_id_token(OURS) == "3f9a1c2e7b.20250410"
    assert message_id_token("3F9A@APPEAL.EXAMPLE.ORG") == "3F9A"
    with pytest.raises(ValueError, match="not a Message-ID"):
        message_id_token("garbage")
