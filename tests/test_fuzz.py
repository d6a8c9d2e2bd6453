"""Fuzzing the parts that read what a hostile world sends: CSV files, inbound mail, segment expressions, settings
and template bodies. Whatever they are given, they return, or raise outreach's own errors (OutreachError and its
subclasses); anything else escaping (IndexError, UnicodeError, TypeError, RecursionError...) is a bug.

By default each test runs 200 examples, so that the file takes seconds in CI. For a longer run, set
OUTREACH_FUZZ_EXAMPLES, e.g. `OUTREACH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.config import KNOWN, load_settings
from outreach.contacts.rows import CONTACT_SYNONYMS, ContactReader, match_columns, open_table
from outreach.contacts.segments import parse_segment
from outreach.errors import OutreachError
from outreach.rendering.copies import Letterhead, Recipient, Signatory, TemplateRenderError
from outreach.rendering.environment import RenderLimits
from outreach.rendering.previewing import compile_template
from outreach.responses.reading import understand

settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("OUTREACH_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")

INBOUND = sorted((Path(__file__).parent / "samples" / "inbound").glob("*.eml"))
REPLIES = sorted((Path(__file__).parent / "samples" / "replies").glob("*.eml"))
UNSUBSCRIBE = ("unsubscribe@appeal.example.org",)
SAMPLES = [path.read_bytes() for path in [*INBOUND, *REPLIES]]


# --- CSV files (outreach/contacts/rows.py) ---------------------------------------------------------------------


def read_csv(data: bytes, encoding: str | None = None) -> None:
    """Read a CSV file's bytes to the end as the importer does: rows and rejects, or an OutreachError."""
    try:
        table = open_table(io.BytesIO(data), "fuzz.csv", encoding)
        reader = ContactReader(table, match_columns(table.headers, CONTACT_SYNONYMS), default_tags=("fuzz",))
        for _ in reader:
            pass
    except OutreachError:
        pass


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "cp1250", "latin-1", "iso-8859-2",
             "koi8-r", "shift_jis", "gb18030"]  # fmt: skip
BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE]
CELL = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["email", "E-Mail", "name", "role", "tags", "country", "gender", "language", "time_zone",
                     "a@x.org", "=cmd()", "mp", "DE", "f", "Europe/Berlin", "Frau", '"', '""', "\x00", "\r\n"]),
)  # fmt: skip


@st.composite
def csv_bytes(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A CSV-like file: cells with random delimiters, quotes, line ends and NULs, in some encoding, maybe a BOM."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", '"', "\x00", " "]))
    quote = draw(st.sampled_from(['"', "'", ""]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\x00"]))
    rows = draw(st.lists(st.lists(CELL, min_size=1, max_size=6), min_size=1, max_size=8))
    text = newline.join(delimiter.join(quote + cell + quote for cell in row) for row in rows)
    encoding = draw(st.sampled_from(ENCODINGS))
    data = text.encode(encoding, errors="replace")
    data = draw(st.sampled_from(BOMS)) + data
    given_encoding = draw(st.one_of(st.none(), st.sampled_from([*ENCODINGS, "no-such-codec"])))
    return data, given_encoding


@FUZZ
@given(st.binary(max_size=2000), st.one_of(st.none(), st.sampled_from(ENCODINGS)))
def test_any_bytes_as_a_csv_file_read_or_are_refused(data: bytes, encoding: str | None) -> None:
    read_csv(data, encoding)


@FUZZ
@given(csv_bytes())
def test_any_csv_like_text_reads_or_is_refused(case: tuple[bytes, str | None]) -> None:
    read_csv(*case)


# --- Inbound mail (outreach/responses/reading.py, inbound.py, classify.py) ---------------------------------------


def mutated(sample: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """The sample with each edit applied: at a position (modulo the length), cut some bytes and put others in."""
    for position, cut, put in edits:
        at = position % (len(sample) + 1)
        sample = sample[:at] + put + sample[at + cut :]
    return sample


SNIPPETS = st.sampled_from([
    b"\r\n", b"\n\n", b"--", b"=?utf-8?b?", b"=?iso-2022-jp?q?=1B", b"?=", b"\x00", b"\xff", b"boundary=",
    b"charset=", b"Content-Type: multipart/report; report-type=", b";", b"<", b">", b'"', b"@",
    b"Content-Transfer-Encoding: base64\n", b"message/rfc822", b"Status: 5.1.1",
])  # fmt: skip
EDITS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 64), st.one_of(SNIPPETS, st.binary(max_size=16))),
                 max_size=8)  # fmt: skip


@FUZZ
@given(st.binary(max_size=4000))
def test_any_bytes_as_inbound_mail_are_understood(raw: bytes) -> None:
    # understand promises never to raise for malformed mail: not even an OutreachError
    understand(
        raw, unsubscribe_addresses=("unsubscribe@appeal.example.org",), token_address="reply+{token}@example.org"
    )


@FUZZ
@given(st.sampled_from(SAMPLES), EDITS)
def test_mutated_real_mail_is_understood(sample: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    understand(mutated(sample, edits), unsubscribe_addresses=UNSUBSCRIBE)


# --- Segments (outreach/contacts/segments.py) -------------------------------------------------------------------

SEGMENT_WORDS = st.sampled_from([
    "role:", "country:", "tag:", "language:", "-", ":", ",", "mp", "DE", "*", " ", "\t", "imported:", "since:",
    "2026-01-01", "..", ">", "<", "=", "status:", "\x00",
])  # fmt: skip


@FUZZ
@given(st.one_of(st.text(max_size=200), st.lists(st.one_of(SEGMENT_WORDS, st.text(max_size=5))).map("".join)))
def test_any_text_is_a_segment_or_refused(text: str) -> None:
    with contextlib.suppress(OutreachError):
        parse_segment(text)


# --- Settings (outreach/config.py) ------------------------------------------------------------------------------
# tests/test_config.py::test_any_bytes_in_env_load_or_are_one_config_error fuzzes the values of known keys in .env;
# these add whole .env files of any bytes and any values in the environment.


@FUZZ
@given(
    st.binary(max_size=500),
    st.dictionaries(st.sampled_from(sorted(KNOWN)), st.text(max_size=40).filter(lambda v: "\x00" not in v),
                    max_size=6),
)  # fmt: skip
def test_any_env_file_and_environment_load_or_are_one_config_error(dotenv: bytes, environ: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / ".env").write_bytes(dotenv)
        with contextlib.suppress(OutreachError):
            load_settings(Path(folder), environ)


# --- Template bodies (outreach/rendering) -----------------------------------------------------------------------

JINJA = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", " for x in range(99) ", " endfor ", " if ", " endif ",
                         " macro m() ", " endmacro ", " m() ", "'x'", " * ", " ** ", "999", "(", ")", "[", "]", "|",
                         "center(", "list", "greeting.salutation", "contact", ".__class__", " ~ ", " set ",
                         "namespace(", " raw ", " endraw ", "\n", "1/0", "-"])  # fmt: skip
TIGHT = RenderLimits(seconds=0.5, size=16 * 1024)
PERSON = Recipient("rada@example.org", name="Олена Коваленко", role="mp", language="en")
HEAD = Letterhead("Jane Doe", "European Surge", date(2026, 12, 1), {"signatories": [Signatory("A")] * 3})


@FUZZ
@given(st.one_of(st.text(max_size=300), st.lists(st.one_of(JINJA, st.text(max_size=4)), max_size=40).map("".join)))
def test_any_template_body_renders_or_is_a_template_error(body: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "fuzz" / "en").mkdir(parents=True)
        (root / "fuzz" / "en" / "subject.txt").write_text("Subject", encoding="utf-8")
        (root / "fuzz" / "en" / "body.txt").write_text(body, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(TemplateRenderError):
            compile_template(root, "fuzz", TIGHT).render(PERSON, HEAD)
