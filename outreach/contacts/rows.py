"""CSV files of contacts, as spreadsheets and official lists export them, turned into rows or rejects."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import BinaryIO, NamedTuple

from charset_normalizer import from_bytes

from outreach.contacts import values
from outreach.contacts.addresses import InvalidAddressError, Resolver, parse_addresses
from outreach.errors import InputError
from outreach.spreadsheets import unquote_formula

SAMPLE_SIZE = 64 * 1024

# Header names as they appear in real exports, folded (see `header_key`), for each field.
CONTACT_SYNONYMS = {
    "email": "email e_mail email_address e_mail_address mail mail_address courriel e_mail_adresse correo"
    " adresse_electronique adresse_e_mail adresse_mail",
    "alternates": "alternates alternate_emails other_emails",
    "name": "name full_name fullname display_name contact_name nom_complet",
    "first_name": "first_name firstname first given_name forename prenom vorname nombre",
    "last_name": "last_name lastname last surname family_name nom nom_de_famille nachname familienname apellido"
    " apellidos",
    "honorific": "honorific honorific_prefix title salutation_title courtesy_title anrede civilite titre titel",
    "gender": "gender sex geschlecht genre",
    "position": "position job_title jobtitle function office post fonction funktion",
    "role": "role",
    "organization": "organization organisation org company institution employer organisme",
    "country": "country country_code country_name nation land pays citizenship nationality member_state"
    " constituency_country nationalite etat_membre staatsangehorigkeit staatsangehoerigkeit mitgliedstaat",
    "language": "language lang locale preferred_language langue sprache",
    "time_zone": "time_zone timezone tz zone",
    "tags": "tags tag labels label",
}
# Popolo's `sort_name` ("Doe, Jane") is left a custom attribute: a letter addressed "Dear Doe, Jane" is worse than
# the name made from `given_name` and `family_name`, which such lists also carry.

# Words that prefix every column of some official lists (`mep_email`, `person_given_name`), even one column alone.
KNOWN_PREFIXES = ("mep", "person", "member", "contact")


# Columns that `contacts export` writes but an import must not apply: a status changes only through
# suppression and the responses that come back, never because a file says "active".
CONTACT_IGNORED = ("status",)


def _synonym_table(synonyms: Mapping[str, str]) -> dict[str, str]:
    return {name: target for target, names in synonyms.items() for name in names.split()}


_CONTACT_HEADERS = _synonym_table(CONTACT_SYNONYMS)


def header_key(header: str) -> str:
    """Fold a column name into a lower-case identifier (`E-Mail Address` -> `e_mail_address`)."""
    return values.fold(header).replace(" ", "_")


@dataclass(frozen=True)
class Columns:
    """What each column of a file feeds: a field, a custom attribute (`attr:<key>`) or nothing (``)."""

    headers: tuple[str, ...]
    targets: tuple[str, ...]

    def target_of(self, name: str) -> int | None:
        """Return the index of the column that feeds `name`, if any."""
        return self.targets.index(name) if name in self.targets else None

    def described(self) -> list[tuple[str, str]]:
        """Return (header, target) pairs for showing the user how the file was read."""
        return list(zip(self.headers, self.targets, strict=True))


def match_columns(
    headers: Sequence[str],
    synonyms: Mapping[str, str],
    mapping: Mapping[str, str] | None = None,
    ignored: Sequence[str] = (),
    attributes: Collection[str] = (),
) -> Columns:
    """Match header names loosely to fields: explicit mapping first, then exact names, then shared prefixes.

    Columns named in `attributes` (as headers) are kept as custom attributes unless the mapping names them.
    """
    table = _synonym_table(synonyms)
    fields = set(synonyms)
    keys = [header_key(h) for h in headers]
    targets: list[str | None] = [None] * len(headers)
    taken: set[str] = set()

    def claim(index: int, target: str) -> None:
        if targets[index] is None and (target not in fields or target not in taken):
            targets[index] = target
            taken.add(target)

    explicit = {header_key(k): v.strip() for k, v in (mapping or {}).items()}
    for index, key in enumerate(keys):
        if key in explicit:
            wanted = explicit[key]
            claim(index, wanted if wanted in fields or wanted == "" else f"attr:{header_key(wanted)}")
    for key in {header_key(header) for header in attributes}:
        if key in keys:
            claim(keys.index(key), f"attr:{key}")
    for index, key in enumerate(keys):
        if key in table:
            claim(index, table[key])
    # Official lists prefix every column with the same word (`mep_email`, `mep_name`): drop a shared prefix, or
    # a known one.
    prefixes = [key.split("_", 1)[0] for key in keys if "_" in key]
    shared = {prefix for prefix in prefixes if prefixes.count(prefix) >= 2 or prefix in KNOWN_PREFIXES}
    for index, key in enumerate(keys):
        head, _, rest = key.partition("_")
        if head in shared and rest in table:
            claim(index, table[rest])
    for index, key in enumerate(keys):
        if targets[index] is None:
            targets[index] = f"attr:{key}" if key and key not in ignored else ""
    return Columns(tuple(headers), tuple(t or "" for t in targets))


class Demoted(NamedTuple):
    """A column whose name matched a field but whose values mostly do not look like it (an `Office` of room
    numbers): kept as a custom attribute. `example` is the first value that did not fit."""

    header: str
    field: str
    example: str


# How many of the first non-empty values of a loosely matched column are checked against its field.
CHECKED_VALUES = 200
_CHECKERS: dict[str, Callable[[str], object]] = {
    "country": values.country,
    "language": values.language,
    "gender": values.gender,
    "role": values.role,
    "time_zone": values.time_zone,
}
_WORDY = frozenset(("name", "first_name", "last_name", "honorific", "position", "organization"))


def looks_like(field: str, value: str) -> bool:
    """Whether a value could be what a field holds: one the field's checker accepts, or, for names and titles,
    words rather than a number or a code (`ASP 08G205`, `12.3`)."""
    checker = _CHECKERS.get(field)
    if checker is not None:
        try:
            checker(value)
        except values.InvalidValueError:
            return False
        return True
    if field in _WORDY:
        letters = sum(1 for ch in value if ch.isalpha())
        digits = sum(1 for ch in value if ch.isdigit())
        return letters > 0 and digits * 2 < letters
    return True


def unlikely_columns(
    columns: Columns, records: Sequence[Sequence[str]], explicit: Collection[str] = ()
) -> list[Demoted]:
    """Return the columns matched by their name (not named in `explicit`, the headers of `--map`) whose first
    non-empty values in `records` mostly (more than half, and at least two) do not look like their field.

    A column named exactly for a name or title field (`name`, `position`, as `contacts export` writes them) is
    taken at its word, like `--map`: free text is judged only where the name was a guess (`Office` -> position).
    """
    named = {header_key(header) for header in explicit}
    found: list[Demoted] = []
    for index, (header, target) in enumerate(columns.described()):
        key = header_key(header)
        judged = target in _CHECKERS or (target in _WORDY and key != target)
        if not judged or key in named:
            continue
        seen = [text for cells in records if index < len(cells) and (text := values.clean_text(cells[index]))]
        seen = seen[:CHECKED_VALUES]
        bad = [text for text in seen if not looks_like(target, text)]
        if len(bad) >= 2 and len(bad) * 2 > len(seen):
            found.append(Demoted(header, target, bad[0]))
    return found


def match_contact_columns(
    headers: Sequence[str], mapping: Mapping[str, str], records: Sequence[Sequence[str]]
) -> tuple[Columns, tuple[Demoted, ...]]:
    """Match a contacts file's columns, then keep as custom attributes those matched by name whose values in the
    first records do not look like their field (matching again, as another column may then take the field)."""
    demoted: list[Demoted] = []
    while True:
        kept = [d.header for d in demoted]
        columns = match_columns(headers, CONTACT_SYNONYMS, mapping, CONTACT_IGNORED, kept)
        # Every column named like one demoted is demoted with it, so each round adds a new name, and this ends.
        more = unlikely_columns(columns, records, mapping)
        if not more:
            return columns, tuple(demoted)
        demoted += more


# Words of column names too common to say which field a column holds (`Post code`, `Office phone`, `Last seen`).
_VAGUE = frozenset(("first", "last", "post", "office", "label", "tag", "zone", "tz", "org", "nom", "land", "lang"))


def suggested_maps(
    columns: Sequence[tuple[str, str]], synonyms: Mapping[str, str] = CONTACT_SYNONYMS, skip: Collection[str] = ()
) -> list[tuple[str, str]]:
    """Return (header, field) for each custom attribute column (but those in `skip`) whose name holds the words of
    a field's name that no other column feeds (`Nationality of the member` -> country): the `--map` to suggest.

    `columns` are (header, target) pairs, as `Columns.described` returns them.
    """
    taken = {target for _, target in columns if target and not target.startswith("attr:")}
    if taken & {"first_name", "last_name"}:  # the name is made from them
        taken.add("name")
    found: list[tuple[str, str]] = []
    for header, target in columns:
        if not target.startswith("attr:") or header in skip:
            continue
        words = header_key(header).split("_")
        for field, names in synonyms.items():
            wanted = [name.split("_") for name in names.split() if name not in _VAGUE]
            if field not in taken and any(_holds(words, part) for part in wanted):
                found.append((header, field))
                break
    return found


def _holds(words: list[str], part: list[str]) -> bool:
    """Whether `part` occurs in `words`, whole words in a row."""
    return any(words[start : start + len(part)] == part for start in range(len(words) - len(part) + 1))


class ContactRow(NamedTuple):
    """One valid row: the address (as written, its key, SMTPUTF8 or not), the fields it fills, tags, attributes,
    the other addresses its cell (or an `alternates` column) held, and the parts of those cells that were not
    addresses, with why.

    A named tuple, not a dataclass: rows cross from the parsing process to the writing one by the hundred
    thousand, and tuples pickle several times faster.
    """

    line: int
    email: str
    key: str
    smtputf8: bool
    fields: dict[str, str]
    tags: tuple[str, ...] = ()
    attributes: dict[str, str] = {}  # noqa: RUF012 - never mutated; rows are built whole
    alternates: tuple[str, ...] = ()
    unusable: tuple[str, ...] = ()


class Reject(NamedTuple):
    """A row that cannot be imported: where it is, why, and what it held."""

    line: int
    reason: str
    cells: tuple[str, ...]


# Windows code pages that spreadsheets save in Europe, most common first: the first one ties go to.
_SINGLE_BYTE = ("cp1252", "cp1250", "cp1251", "cp1257", "cp1253", "cp1254")
# Accented letters of Western and of Central European languages; one word rarely needs both.
_WESTERN = set("àæçèêëïœùûÿñãõåøìòÀÆÇÈÊËÏŒÙÛŸÑÃÕÅØÌÒ")
_CENTRAL = set("ăčďěňřťůąęłńśźżőűĺľŕșțşţĂČĎĚŇŘŤŮĄĘŁŃŚŹŻŐŰĹĽŔȘȚŞŢ")
_WORD = re.compile(r"[^\s,;\t\"'@.()/0-9-]+")


def implausibility(text: str) -> int:
    """Count signs that text was decoded with the wrong code page (symbols or capitals inside words,
    Western and Central European accents in one word, words made mostly of accents)."""
    score = 0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        letters = set(word)
        score += sum(1 for ch in word if not ch.isalpha())
        score += sum(1 for before, ch in pairwise(word) if ch.isupper() and before.islower())
        score += 2 if letters & _WESTERN and letters & _CENTRAL else 0
        # Cyrillic or Greek read as a Latin code page comes out as words made mostly of accented letters.
        accented = sum(1 for ch in word if not ch.isascii() and "LATIN" in unicodedata.name(ch, ""))
        score += 2 if len(word) >= 3 and accented * 2 > len(word) else 0
    return score


def detect_encoding(sample: bytes) -> tuple[str, bool]:
    """Name the encoding of a file from its first bytes, and whether it is a guess.

    A BOM or valid UTF-8 is certain. Otherwise the candidates (Windows code pages and charset-normalizer's
    guess) are ranked by how plausible the text they decode to looks; the CLI says it guessed.
    """
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if sample.startswith(bom):
            return name, False
    try:
        # The sample may end inside a multi-byte character: an incremental decoder forgives only that.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8", False
    except UnicodeDecodeError:
        pass
    guess = from_bytes(sample).best()
    candidates = [*_SINGLE_BYTE, *([guess.encoding] if guess else [])]
    ranked: list[tuple[int, int, str]] = []
    for rank, name in enumerate(candidates):
        try:
            text = sample.decode(name)
        except UnicodeDecodeError:
            continue
        ranked.append((implausibility(text), rank, name))
    if not ranked:
        raise InputError("cannot tell the file's text encoding", hint="pass --encoding, e.g. cp1252")
    return min(ranked)[2], True


def detect_delimiter(header_line: str) -> str:
    """Pick `;`, `,` or a tab: whichever the header line uses most (`,` when it has none)."""
    counts = {sep: header_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


class _Prefixed(io.RawIOBase):
    """A binary stream that first returns bytes already read from another, then the rest of it."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self._head = memoryview(head)
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._tail.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


UNCLOSED_QUOTE = "a quote opened here is never closed"


def _lines(text: Iterator[str], again: list[str], held: list[str]) -> Iterator[str]:
    """The lines of text, each also put in `held` (the reader empties it once it has a record's lines); lines
    handed back in `again` (the next one last), between records, come before the rest of the text."""
    for line in text:
        while again:
            held.append(again.pop())
            yield held[-1]
        held.append(line)
        yield line
    while again:
        held.append(again.pop())
        yield held[-1]


@dataclass
class Table:
    """A CSV file opened for reading: its encoding, delimiter, header and records with line numbers."""

    source: str
    encoding: str
    encoding_guessed: bool
    delimiter: str
    headers: tuple[str, ...]
    lines: Iterator[str] | None  # the lines after the header
    blank: int = 0

    def records(self) -> Iterator[tuple[int, list[str]] | Reject]:
        """Yield (line number, cells) for each non-blank record; a record that spans lines gets its first.

        A quote left open would swallow the rows after it into one cell (up to the next quote, or to the end of the
        file). Such a record is a Reject of the line the quote opened on (UNCLOSED_QUOTE), and the lines after that
        one are read again as records of their own. Cells that `contacts export` quoted against spreadsheet
        formulas are read as they were (outreach/spreadsheets.py).
        """
        assert self.lines is not None
        again: list[str] = []  # lines to read again, the next one last
        held: list[str] = []  # the lines of the record being read
        read = 1  # lines of the file read so far: the header
        while True:
            # A new reader, and a new generator of lines: the last one may have ended with the file.
            reader = csv.reader(_lines(self.lines, again, held), delimiter=self.delimiter)
            try:
                for cells in reader:
                    line = read + 1
                    read += len(held)
                    # A record that spans lines, or a line with an odd number of quotes (the last one, say).
                    if (len(held) > 1 or held[0].count('"') % 2) and self._left_open(held, cells):
                        break
                    if any(cell.strip() for cell in cells):
                        if len(held) > 1 or "'" in held[0]:
                            cells = [unquote_formula(cell) for cell in cells]
                        self._check_decoded(line, cells)
                        yield line, cells
                    else:
                        self.blank += 1
                    held.clear()
                else:
                    return
            except csv.Error as error:
                line = read + 1
                read += len(held)
                # A quote left open near the end of a large file makes a cell past the csv module's size limit.
                if len(held) < 2 or "field limit" not in str(error):
                    raise InputError(
                        f"broken CSV ({error})", where=f"{self.source}:{line}", hint="check the quotes on that line"
                    ) from None
            opened = held[0].rstrip("\r\n")
            try:
                first = next(csv.reader([opened], delimiter=self.delimiter), [])
            except csv.Error:  # a NUL, say: the line as it is, in one cell
                first = [opened]
            self._check_decoded(line, first)
            yield Reject(line, UNCLOSED_QUOTE, tuple(unquote_formula(cell) for cell in first))
            # The lines after the one the quote opened on are read again, as records of their own.
            again.extend(reversed(held[1:]))
            held.clear()
            read = line

    def _left_open(self, held: list[str], cells: list[str]) -> bool:
        """Whether a quote was left open in a record that spans lines (or a line with an odd number of quotes): read
        strictly, its quotes do not pair up (the file ended inside one, or a quote "closes" into the middle of a
        cell), or a line inside one of its cells holds a whole row (as many delimiters as the header has between
        its columns). A real multi-line cell holding such a line is rejected too, visibly: the price of never
        swallowing rows silently."""
        try:
            for _ in csv.reader(held, delimiter=self.delimiter, strict=True):
                pass
        except csv.Error:
            return True
        between = max(len(self.headers) - 1, 1)
        return any(
            part.count(self.delimiter) >= between for cell in cells if "\n" in cell for part in cell.split("\n")[1:]
        )

    def _check_decoded(self, line: int, cells: list[str]) -> None:
        # The text is decoded with surrogateescape, so bytes the encoding cannot read arrive here as lone
        # surrogates and can be pinned to their line (a decoding error would only name a buffer).
        try:
            "".join(cells).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"not valid {self.encoding} text",
                where=f"{self.source}:{line}",
                hint="pass --encoding with the file's encoding, e.g. cp1252 or utf-16",
            ) from None


def _decoded(text: io.TextIOWrapper, source: str, encoding: str) -> Iterator[str]:
    """The lines of text, with the errors surrogateescape does not cover as an InputError naming the file."""
    # A UTF-16 or UTF-32 stream with no BOM, or one that ends inside a character, raises UnicodeError whatever the
    # error handler (found by tests/test_fuzz.py: b"\x00" read with --encoding utf-16).
    try:
        yield from text
    except UnicodeError as error:
        raise InputError(
            f"not valid {encoding} text ({error})", where=source, hint="pass --encoding with the file's encoding"
        ) from None


def open_table(binary: BinaryIO, source: str, encoding: str | None = None) -> Table:
    """Detect encoding (unless given) and delimiter, and read the header of a CSV file."""
    sample = binary.read(SAMPLE_SIZE)
    guessed = False
    if encoding is None:
        encoding, guessed = detect_encoding(sample)
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}", where=source) from None
    text = io.TextIOWrapper(
        io.BufferedReader(_Prefixed(sample, binary), buffer_size=SAMPLE_SIZE),
        encoding=encoding,
        newline="",
        errors="surrogateescape",
    )
    lines = _decoded(text, source, encoding)
    first = next(lines, "")
    if not first.strip():
        raise InputError("the file is empty or its first line is blank", where=source)
    delimiter = detect_delimiter(first)
    headers = next(csv.reader([first], delimiter=delimiter))
    Table(source, encoding, False, delimiter, (), None)._check_decoded(1, headers)
    names = tuple(unquote_formula(header.strip()) for header in headers)
    return Table(source, encoding, guessed, delimiter, names, lines)


@dataclass
class ContactReader:
    """Turns the records of a table into contact rows and rejects, applying `--role`, `--language` and `--tag`.

    A row with a country and no language gets its country's language, where the country has only one.
    """

    table: Table
    columns: Columns
    default_role: str | None = None
    default_language: str | None = None
    default_tags: tuple[str, ...] = ()
    check_dns: bool = False
    resolver: Resolver | None = None

    def __post_init__(self) -> None:
        if self.columns.target_of("email") is None:
            raise InputError(
                f"no email column among: {', '.join(self.table.headers)}",
                where=self.table.source,
                hint="name it with --map COLUMN=email",
            )

    def __iter__(self) -> Iterator[ContactRow | Reject]:
        return self.read(self.table.records())

    def read(self, records: Iterable[tuple[int, list[str]] | Reject]) -> Iterator[ContactRow | Reject]:
        """The rows and rejects that records of the table make (all of them, or those `Table.records` has left)."""
        parse = self.parse
        return (record if isinstance(record, Reject) else parse(*record) for record in records)

    def parse(self, line: int, cells: list[str]) -> ContactRow | Reject:
        """Check one record and return the row it makes, or why it makes none."""
        targets = self.columns.targets
        if len(cells) > len(targets) and any(cell.strip() for cell in cells[len(targets) :]):
            return Reject(line, f"the row has {len(cells)} fields, the header {len(targets)}", tuple(cells))
        fields: dict[str, str] = {}
        attributes: dict[str, str] = {}
        raw_email = ""
        raw_alternates = ""
        raw_tags = ""
        for target, cell in zip(targets, cells, strict=False):
            if not cell or not target:
                continue
            if target == "email":
                raw_email = cell
                continue
            if target == "alternates":
                raw_alternates = cell
                continue
            text = values.clean_text(cell)
            if not text:
                continue
            if target == "tags":
                raw_tags = text
            elif target.startswith("attr:"):
                attributes[target[5:]] = text
            else:
                fields[target] = text
        try:
            found = parse_addresses(raw_email, check_dns=self.check_dns, resolver=self.resolver)
            checked = self._check_fields(fields)
        except (InvalidAddressError, values.InvalidValueError) as error:
            return Reject(line, str(error), tuple(cells))
        address = found.address
        others: tuple[str, ...] = ()
        unusable = found.unusable
        if found.alternates or raw_alternates:
            alternates = found.alternates
            if raw_alternates:  # a column of them, as `contacts export` writes it
                try:
                    more = parse_addresses(raw_alternates, check_dns=self.check_dns, resolver=self.resolver)
                    alternates += (more.address, *more.alternates)
                    unusable += more.unusable
                except InvalidAddressError as error:
                    unusable += (str(error),)
            others = tuple({a.key: a.email for a in alternates if a.key != address.key}.values())
        found_tags = values.tags(raw_tags) if raw_tags else ()
        if self.default_tags:
            found_tags = tuple(dict.fromkeys(found_tags + self.default_tags))
        return ContactRow(line, address.email, address.key, address.smtputf8, checked, found_tags, attributes,
                          others, unusable)  # fmt: skip

    def _check_fields(self, fields: dict[str, str]) -> dict[str, str]:
        if "role" in fields:
            fields["role"] = values.role(fields["role"])
        elif self.default_role:
            fields["role"] = self.default_role
        if "gender" in fields:
            found = values.gender(fields["gender"])
            if found is None:
                del fields["gender"]
            else:
                fields["gender"] = found
        elif "honorific" in fields and (implied := values.gender_of_honorific(fields["honorific"])):
            fields["gender"] = implied
        if "country" in fields:
            fields["country"] = values.country(fields["country"])
        if "language" in fields:
            fields["language"] = values.language(fields["language"])
        elif self.default_language:
            fields["language"] = self.default_language
        elif "country" in fields and (spoken := values.language_of_country(fields["country"])):
            fields["language"] = spoken
        if "time_zone" in fields:
            fields["time_zone"] = values.time_zone(fields["time_zone"])
        if "name" not in fields and ("first_name" in fields or "last_name" in fields):
            fields["name"] = " ".join(fields[k] for k in ("first_name", "last_name") if k in fields)
        return fields
