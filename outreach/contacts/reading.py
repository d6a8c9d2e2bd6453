"""Reading a contacts file into batches of rows and rejects: in this process, or in a second one for large
files, so that parsing and validating (one core) overlap with writing to the database (the other)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO

from outreach import errors
from outreach.contacts.addresses import Resolver
from outreach.contacts.rows import (
    CHECKED_VALUES,
    CONTACT_IGNORED,
    CONTACT_SYNONYMS,
    ContactReader,
    ContactRow,
    Demoted,
    Reject,
    match_columns,
    match_contact_columns,
    open_table,
)

BATCH = 2000
# Below this size a second process costs more to start (it imports the validators anew) than it saves.
WORKER_THRESHOLD = 2 * 1024 * 1024


@dataclass(frozen=True)
class ReadOptions:
    """How to read the file: what the CLI's --encoding, --map, --role, --tag and --language say."""

    encoding: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Shape:
    """What the head of the file said: its encoding (and whether that was a guess), delimiter, columns, and the
    columns kept as custom attributes because their values did not look like the field their name matched."""

    encoding: str
    encoding_guessed: bool
    delimiter: str
    headers: tuple[str, ...]
    columns: list[tuple[str, str]]
    demoted: tuple[Demoted, ...] = ()


@dataclass(frozen=True)
class Batch:
    """Consecutive records of the file: the valid rows, the rejects, and how many bytes have been read."""

    rows: list[ContactRow]
    rejects: list[Reject]
    position: int


class ContactsFile(ABC):
    """A contacts file being read: `shape` first, then `batches()`, then `blank` (blank lines skipped)."""

    shape: Shape
    blank: int = 0

    @abstractmethod
    def batches(self) -> Iterator[Batch]:
        """Yield the file's records in batches, in file order."""

    @abstractmethod
    def close(self) -> None:
        """Release what reading holds (the file, the worker process)."""

    def __enter__(self) -> ContactsFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Here(ContactsFile):
    """Reads in this process."""

    def __init__(self, path: Path, options: ReadOptions, check_dns: bool, resolver: Resolver | None) -> None:
        self._binary: BinaryIO = path.open("rb")
        try:
            table = open_table(self._binary, str(path), options.encoding)
            columns = match_columns(table.headers, CONTACT_SYNONYMS, options.mapping, CONTACT_IGNORED)
            # Made before any record is read, so that a file with no address column says so first.
            reader = ContactReader(
                table, columns, options.role, options.language, options.tags, check_dns=check_dns, resolver=resolver
            )
            # The first records decide which columns matched by name hold what their name says; they are read
            # from the one generator of records, and given back before the rest of it.
            records = table.records()
            head = list(islice(records, CHECKED_VALUES))
            sample = [record[1] for record in head if not isinstance(record, Reject)]
            columns, demoted = match_contact_columns(table.headers, options.mapping, sample)
            self._reader = replace(reader, columns=columns)
        except BaseException:
            self._binary.close()
            raise
        self._table = table
        self._records = chain(head, records)
        self.shape = Shape(
            table.encoding, table.encoding_guessed, table.delimiter, table.headers, columns.described(), demoted
        )

    def batches(self) -> Iterator[Batch]:
        items = self._reader.read(self._records)
        while chunk := list(islice(items, BATCH)):
            rows = [item for item in chunk if isinstance(item, ContactRow)]
            rejects = [item for item in chunk if isinstance(item, Reject)]
            yield Batch(rows, rejects, self._binary.tell())
        self.blank = self._table.blank

    def close(self) -> None:
        self._binary.close()


def _serve() -> None:
    """The worker: read (path, options) from stdin, send the shape, the batches and the end (or the error) to
    stdout as pickles."""
    out = sys.stdout.buffer
    path, options = pickle.load(sys.stdin.buffer)
    try:
        with _Here(Path(path), options, False, None) as here:
            pickle.dump(("shape", here.shape), out)
            for batch in here.batches():
                pickle.dump(("batch", batch), out)
            pickle.dump(("end", here.blank), out)
    except errors.OutreachError as error:
        pickle.dump(("error", (type(error).__name__, error.message, error.where, error.hint)), out)
    except Exception as error:  # reported to the parent, which raises it
        pickle.dump(("error", ("InputError", f"reading failed: {error!r}", path, None)), out)
    out.flush()


class _InWorker(ContactsFile):
    """Reads in a second Python process that imports only what parsing needs (not the CLI or the database),
    so it starts fast and stays small; the pipe between the two is the backpressure."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "outreach.contacts.reading"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._out = self._process.stdout
        try:
            pickle.dump((str(path), options), self._process.stdin)
            self._process.stdin.close()
            kind, value = self._receive()
        except BaseException:
            self.close()
            raise
        if kind != "shape":
            raise errors.InputError(f"reading {path} did not start as expected ({kind})")
        self.shape = value

    def _receive(self) -> tuple[str, Any]:
        try:
            kind, value = pickle.load(self._out)
        except EOFError:
            code = self._process.wait()
            raise errors.InputError(f"the process reading the file stopped (exit code {code})") from None
        if kind == "error":
            name, message, where, hint = value
            error_class = getattr(errors, name, errors.InputError)
            raise error_class(message, where=where, hint=hint)
        return kind, value

    def batches(self) -> Iterator[Batch]:
        while True:
            kind, value = self._receive()
            if kind == "end":
                self.blank = value
                return
            yield value

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._out.close()


def open_contacts_file(
    path: Path, options: ReadOptions, *, check_dns: bool = False, resolver: Resolver | None = None
) -> ContactsFile:
    """Open a contacts file for reading: in a worker process when it is large (and DNS is not asked)."""
    if not check_dns and path.stat().st_size >= WORKER_THRESHOLD:
        return _InWorker(path, options)
    return _Here(path, options, check_dns, resolver)


if __name__ == "__main__":
    # Run the copy imported under its own name, so that what is pickled names outreach.contacts.reading.
    from outreach.contacts import reading

    reading._serve()
