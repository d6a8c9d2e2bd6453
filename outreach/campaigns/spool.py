"""Letters made by a first pass that checks them, kept aside for the second pass that writes them.

Whatever makes many letters makes and checks every one before it changes anything, so that one broken copy changes
nothing: `campaigns queue` before it asks (a dry run, which keeps nothing in the outbox), `campaigns refresh` before
its first batch is written. The pass that writes then takes the letters the first one made, instead of making each
one again: the campaigner waits for one rendering, not two, and the letters written are the ones that were checked.

A letter is taken only for the same key (a contact's id, an outbox message's), only when what it was made for is
the same (the contact's details, what a follow-up says of its first letter), and only when what every letter of
the spool is made from has not changed (`usable`: the template's files, the letterhead, the sender). Anything else
(a contact who unsubscribed, was edited or was queued meanwhile, a new contact) is decided again by the second pass,
which makes the letters it finds none for.

The letters are kept in memory up to `IN_MEMORY` bytes and beyond in an unnamed temporary file (deleted when closed
or when the process ends) in the folder given, the workspace's: 100,000 letters take some 1.7 GB, which belong beside
the database they are going to, not in the system's temporary folder (often in memory, and small). They are kept in
the order they were made, which is the order of their keys: taking them is one pass over the file. Where they
cannot be kept (the disk full), the second pass makes them all again, as before there was a spool.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from outreach.rendering.copies import Letterhead
from outreach.rendering.letters import Letter, Sender

IN_MEMORY = 32 * 1024 * 1024


@dataclass(frozen=True)
class MadeFrom:
    """What a step's letters are made from, besides each contact's own details."""

    template_digest: str
    head: Letterhead
    sender: Sender


class LetterSpool:
    """Letters kept by an increasing key: `keep` them in the pass that checks, `take` them in the pass that writes."""

    def __init__(self, folder: Path | None = None) -> None:
        """Keep letters beyond `IN_MEMORY` bytes in `folder` (None: the system's temporary folder)."""
        where = None if folder is None else str(folder)
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, dir=where)  # noqa: SIM115 - closed by close()
        self.made_from: object = None
        self.kept = 0
        self.taken = 0
        self._next: tuple[int, object, Letter] | None = None
        self._reading = False
        self._failed = False  # a letter could not be kept (the folder full, gone or not writable)

    def start(self, made_from: object) -> None:
        """Forget what was kept, and keep the letters made from `made_from` (what they all share) from now on."""
        self._file.seek(0)
        self._file.truncate()
        self.made_from, self.kept, self.taken, self._next, self._reading = made_from, 0, 0, None, False
        self._failed = False

    def keep(self, key: int, made_for: object, letter: Letter) -> None:
        """Keep the letter of `key` (keys come in increasing order), made for `made_for` (compared by equality).
        Where the letters cannot be kept (the folder full, gone or not writable), none is taken: they are made
        again, as if nothing had been kept."""
        if self._failed:
            return
        try:
            pickle.dump((key, made_for, letter), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            self._failed = True
            return
        self.kept += 1

    def usable(self, made_from: object) -> bool:
        """Whether the kept letters were made from exactly this (and so may be queued as they are)."""
        return not self._failed and self.kept > 0 and self.made_from == made_from

    def take(self, key: int, made_for: object) -> Letter | None:
        """The letter kept for `key` if it was made for what equals `made_for`, else None; keys are asked for in
        increasing order, and the letters of keys passed over are dropped."""
        if self._failed:
            return None
        if not self._reading:
            self._file.seek(0)
            self._reading = True
            self._advance()
        while self._next is not None and self._next[0] < key:
            self._advance()
        if self._next is None or self._next[0] != key:
            return None
        _, kept_for, letter = self._next
        self._advance()
        if kept_for != made_for:
            return None
        self.taken += 1
        return letter

    def _advance(self) -> None:
        try:
            self._next = pickle.load(self._file)
        except EOFError:
            self._next = None

    def close(self) -> None:
        """Drop every letter kept (the temporary file goes with them)."""
        self._file.close()

    def __enter__(self) -> LetterSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
