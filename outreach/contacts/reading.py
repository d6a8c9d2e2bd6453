"""Reading a contacts file into batches of rows and rejects: in this process, or in a second one for large
files, so that parsing and validating (one core) overlap with writing to the database (the other)."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from outreach import errors
from outreach.contacts.addresses import Resolver
from outreach.contacts.rows import (
    CONTACT_IGNORED,
    CONTACT_SYNONYMS,
    ContactReader,
    ContactRow,
    Reject,
    match_columns,
    open_table,
)

BATCH = 2000
# Below this size a second process costs more to start (it imports the validators anew) than it saves.
WORKER_THRESHOLD = 2 * 1024 * 1024
_QUEUE_DEPTH = 4  # batches in flight: keeps memory flat when the database is the slower side


@dataclass(frozen=True)
class ReadOptions:
    """How to read the file: what the CLI's --encoding, --map, --role and --tag say."""

    encoding: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shape:
    """What the head of the file said: its encoding (and whether that was a guess), delimiter, columns."""

    encoding: str
    encoding_guessed: bool
    delimiter: str
    headers: tuple[str, ...]
    columns: list[tuple[str, str]]


@dataclass(frozen=True)
class Batch:
    """Consecutive records of the file: the valid rows, the rejects, and how many bytes have been read."""

    rows: list[ContactRow]
    rejects: list[Reject]
    position: int


class ContactsFile:
    """A contacts file being read: `shape` first, then `batches()`, then `blank` (blank lines skipped)."""

    shape: Shape
    blank: int = 0

    def batches(self) -> Iterator[Batch]:
        """Yield the file's records in batches, in file order."""
        raise NotImplementedError

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
            self._reader = ContactReader(table, columns, options.role, options.tags, check_dns, resolver)
        except BaseException:
            self._binary.close()
            raise
        self._table = table
        self.shape = Shape(table.encoding, table.encoding_guessed, table.delimiter, table.headers, columns.described())

    def batches(self) -> Iterator[Batch]:
        items = iter(self._reader)
        while chunk := list(islice(items, BATCH)):
            rows = [item for item in chunk if isinstance(item, ContactRow)]
            rejects = [item for item in chunk if isinstance(item, Reject)]
            yield Batch(rows, rejects, self._binary.tell())
        self.blank = self._table.blank

    def close(self) -> None:
        self._binary.close()


def _work(path: str, options: ReadOptions, out: Any) -> None:
    """The worker process: read the file here and send its shape, batches and end (or the error) back."""
    try:
        with _Here(Path(path), options, False, None) as here:
            out.put(("shape", here.shape))
            for batch in here.batches():
                out.put(("batch", batch))
            out.put(("end", here.blank))
    except errors.OutreachError as error:
        out.put(("error", (type(error).__name__, error.message, error.where, error.hint)))
    except BaseException as error:
        out.put(("error", ("InputError", f"reading failed: {error!r}", path, None)))


class _InWorker(ContactsFile):
    """Reads in a second process (spawned, so it shares no threads or connections with this one)."""

    def __init__(self, path: Path, options: ReadOptions) -> None:
        context = multiprocessing.get_context("spawn")
        self._queue: Any = context.Queue(maxsize=_QUEUE_DEPTH)
        self._process = context.Process(target=_work, args=(str(path), options, self._queue), daemon=True)
        self._process.start()
        kind, value = self._receive()
        if kind != "shape":
            raise errors.InputError(f"reading {path} did not start as expected ({kind})")
        self.shape = value

    def _receive(self) -> tuple[str, Any]:
        while True:
            try:
                kind, value = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._process.is_alive():
                    raise errors.InputError(
                        f"the process reading the file stopped (exit code {self._process.exitcode})"
                    ) from None
                continue
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
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)
        self._queue.close()
        self._queue.join_thread()


def open_contacts_file(
    path: Path, options: ReadOptions, *, check_dns: bool = False, resolver: Resolver | None = None
) -> ContactsFile:
    """Open a contacts file for reading: in a worker process when it is large (and DNS is not asked)."""
    if not check_dns and path.stat().st_size >= WORKER_THRESHOLD:
        return _InWorker(path, options)
    return _Here(path, options, check_dns, resolver)
