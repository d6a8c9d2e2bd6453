"""The rejects file: rows that could not be imported, with line number and reason, beside the input."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from outreach.contacts.rows import Reject
from outreach.spreadsheets import quote_formula


def rejects_path_for(source: Path) -> Path:
    """Where the rejects of `contacts.csv` go: `contacts.rejects.csv` beside it."""
    return source.with_name(f"{source.stem}.rejects.csv")


class RejectsFile:
    """Collects rejected rows in a hidden file, then moves it beside the input in one step."""

    def __init__(self, target: Path, headers: Sequence[str], enabled: bool, shown: int = 10) -> None:
        self.target = target
        self._partial = target.with_name(f".{target.name}.partial")
        self._headers = headers
        self._enabled = enabled
        self._file: Any = None
        self._writer: Any = None
        self._shown = shown
        self.first: list[Reject] = []  # the first few, to show on the terminal (also in a dry run)

    def add(self, reject: Reject) -> None:
        """Record one rejected row."""
        if len(self.first) < self._shown:
            self.first.append(reject)
        if self._enabled:
            self._write(reject)

    def _write(self, reject: Reject) -> None:
        if self._writer is None:
            self._file = self._partial.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow([quote_formula(cell) for cell in ("line", "reason", *self._headers)])
        # The cells of a file that was to be imported are whatever it held: a spreadsheet must not run them.
        self._writer.writerow([str(reject.line), *(quote_formula(cell) for cell in (reject.reason, *reject.cells))])

    def finish(self) -> Path | None:
        """Put the file in place (also after a failed import: it says what to fix); return where, if any."""
        if self._file is None:
            return None
        self._file.close()
        os.replace(self._partial, self.target)
        return self.target
