"""What the CLI shows: one JSON document on stdout with --json, everything else on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
SegmentOption = Annotated[
    str | None,
    typer.Option(
        "--segment", "-s", help='Which contacts, e.g. "role:mp,mep country:FR,DE tag:wave-1 -status:bounced".'
    ),
]

# Data goes to stdout; messages, tables meant for people and progress go to stderr, so --json stays clean.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table for people on stdout."""
    shown = Table(title=title, show_lines=False)
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*("" if value is None else str(value) for value in row))
    out.print(shown)


@contextmanager
def byte_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Show a progress bar on stderr; yield the function that says how many bytes are done."""
    with _bar() as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@contextmanager
def file_progress(path: Path, description: str) -> Iterator[BinaryIO]:
    """Open a file for reading, wrapped in a progress bar on stderr that follows the bytes read."""
    with _bar() as progress, path.open("rb") as raw:
        yield progress.wrap_file(raw, total=path.stat().st_size, description=description)
