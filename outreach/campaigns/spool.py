"""The letters a look before queueing made, kept aside for the queueing that follows the campaigner's yes.

`campaigns queue` makes and checks every letter before it asks (a dry run: a broken copy is found before the
question, and nothing is kept in the outbox); the queueing after the yes then takes the letters that look made,
instead of making each one again: the campaigner waits for one rendering, not two, and the letters queued are
the ones that were checked.

A letter is taken only for the contact it was made for, and only when nothing it was made from has changed since:
the template's files (their digest), the letterhead (the sender, the date, the signatories) and the sender. Anything
else (a contact who unsubscribed or was queued meanwhile, a new contact) is decided again by the queueing itself,
which makes the letters it finds no made one for.

The letters are kept in memory up to `IN_MEMORY` bytes and in an unnamed temporary file beyond (deleted when closed
or when the process ends), in the order they were made, which is the order of the contacts (by id): taking them
is one pass over the file.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
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
    """Letters kept by contact id, in contact order: `keep` while making them, then `take` while queueing."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - closed by close()
        self.made_from: MadeFrom | None = None
        self.kept = 0
        self.taken = 0
        self._next: tuple[int, Letter] | None = None
        self._reading = False

    def start(self, made_from: MadeFrom) -> None:
        """Forget what was kept, and keep the letters made from `made_from` from now on."""
        self._file.seek(0)
        self._file.truncate()
        self.made_from, self.kept, self.taken, self._next, self._reading = made_from, 0, 0, None, False

    def keep(self, contact_id: int, letter: Letter) -> None:
        """Keep one contact's letter (contacts come in increasing id order)."""
        pickle.dump((contact_id, letter), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.kept += 1

    def usable(self, made_from: MadeFrom) -> bool:
        """Whether the kept letters were made from exactly this (and so may be queued as they are)."""
        return self.kept > 0 and self.made_from == made_from

    def take(self, contact_id: int) -> Letter | None:
        """The letter kept for this contact, or None; contacts are asked for in increasing id order, and letters
        kept for contacts passed over are dropped."""
        if not self._reading:
            self._file.seek(0)
            self._reading = True
            self._advance()
        while self._next is not None and self._next[0] < contact_id:
            self._advance()
        if self._next is None or self._next[0] != contact_id:
            return None
        letter = self._next[1]
        self._advance()
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
