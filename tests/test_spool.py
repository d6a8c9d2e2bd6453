"""The letters a first pass made, kept for the second: taken only for the same key and what they were made for, in
one pass, and kept beyond memory in the workspace's folder, never the system's temporary one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from outreach.campaigns import spool as spooling
from outreach.campaigns.spool import LetterSpool
from outreach.rendering.letters import Letter


def letter(number: int) -> Letter:
    return Letter(f"<{number}@example.org>", "appeal@example.org", "appeal@example.org", f"mp{number}@example.org",
                  "en", "Open appeal", b"x" * 1000 + str(number).encode())  # fmt: skip


def test_a_letter_is_taken_for_its_key_and_what_it_was_made_for_and_passed_over_ones_are_dropped() -> None:
    with LetterSpool() as spool:
        spool.start("made from A")
        for key in (2, 5, 7, 9):
            spool.keep(key, ("Anna", key), letter(key))
        assert spool.usable("made from A") and not spool.usable("made from B")
        assert spool.take(1, ("Anna", 1)) is None, "none was kept for it"
        assert spool.take(2, ("Anna", 2)) == letter(2)
        assert spool.take(5, ("Anna, renamed", 5)) is None, "made for what changed since: made again"
        assert spool.take(9, ("Anna", 9)) == letter(9), "7 was passed over: no one asked for it"
        assert spool.take(10, ("Anna", 10)) is None
        assert (spool.kept, spool.taken) == (4, 2)
        spool.start("made from B")
        assert not spool.usable("made from B"), "nothing kept yet since it started again"


@pytest.mark.skipif(sys.platform != "linux", reason="reads where the file is from /proc, which only Linux has")
def test_letters_beyond_memory_go_to_the_folder_given_in_a_file_no_one_else_can_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spooling, "IN_MEMORY", 10_000)
    with LetterSpool(tmp_path) as spool:
        spool.start(None)
        for key in range(20):  # some 20 kB: past what is kept in memory
            spool.keep(key, None, letter(key))
        where = os.readlink(f"/proc/self/fd/{spool._file.fileno()}")
        assert where.startswith(f"{tmp_path}/") and where.endswith("(deleted)"), where
        assert list(tmp_path.iterdir()) == [], "unnamed: nothing in the folder to open or leave behind"
        assert [spool.take(key, None) for key in range(20)] == [letter(key) for key in range(20)]


def test_letters_that_cannot_be_kept_are_made_again_and_nothing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spooling, "IN_MEMORY", 10_000)
    with LetterSpool(tmp_path / "gone") as spool:  # the folder is not there: the file beyond memory cannot be made
        spool.start("made from A")
        for key in range(20):
            spool.keep(key, None, letter(key))
        assert not spool.usable("made from A")
        assert spool.take(0, None) is None, "nothing is taken: every letter is made again"
