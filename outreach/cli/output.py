"""What the CLI shows: one JSON document on stdout with --json, everything else on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from outreach.errors import InvalidValueError, NotConfirmedError
from outreach.untrusted import visible

if TYPE_CHECKING:
    from rich.progress import Progress

# zoneinfo and rich.progress are imported where they are used: every command, --help and shell completion load this
# module, and few of them show a time or a progress bar.

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
SegmentOption = Annotated[
    str | None,
    typer.Option(
        "--segment",
        "-s",
        help='Which contacts, e.g. "role:mp,mep country:FR,DE tag:wave-1 -status:bounced" or, by what happened in a '
        'campaign, "campaign:NAME=no-reply" (sent, replied, no-reply, bounced, auto-replied, unsubscribed).',
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes: for scripts.")]
# A listing shows its first LISTED items unless asked for more: a table of 10,000 contacts took 8 s to print.
LISTED = 100
LimitOption = Annotated[int, typer.Option(help=f"Show at most this many ({LISTED} unless given); 0 shows all.")]

# Data goes to stdout; messages, tables meant for people and progress go to stderr, so --json stays clean.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def command_group(help: str) -> typer.Typer:
    """A group of commands (`outreach contacts ...`), its help plain as the root's: Typer's boxed help draws with
    Rich's Markdown and panels, which doubled the time `--help` takes."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def confirm(summary: list[str], question: str, yes: bool) -> None:
    """Show on stderr what is about to happen, then go on only on a yes: `--yes`, or the answer at the terminal.

    Without a terminal to ask on and without `--yes` it refuses: a script that never said yes sends no letter to a
    head of state. A "no" ends the command (exit code 1) before anything changed.
    """
    for line in summary:
        err.print(line, markup=False, highlight=False)
    if yes:
        return
    if not sys.stdin.isatty():
        raise NotConfirmedError(f'nothing was changed: there is no terminal to ask "{question}"',
                                hint="pass --yes to go ahead without being asked")  # fmt: skip
    if not typer.confirm(question, default=False, err=True):
        err.print("No: nothing was changed.")
        raise typer.Exit(1)


@dataclass(frozen=True)
class Listing:
    """A listing that may show only part of what there is: its items' JSON key and the order it shows them in."""

    key: str  # "contacts", "messages" ...
    order: str  # "newest first" ...

    @staticmethod
    def limit(given: int) -> int | None:
        """The --limit given as the query's limit: None (no limit) for 0; a negative one is refused."""
        if given < 0:
            raise InvalidValueError(f"--limit {given} is negative", hint="0 shows all")
        return given or None

    @staticmethod
    def total(shown: int, given: int, count: Callable[[], int]) -> int:
        """How many there are in all: `shown`, unless the --limit given may have cut them (then `count()` asks)."""
        return count() if given and shown == given else shown

    def json(self, items: Sequence[Any], total: int) -> dict[str, Any]:
        """The items under the key, how many are shown, and how many there are in all."""
        return {self.key: list(items), "shown": len(items), "total": total}

    def say_shown(self, shown: int, total: int) -> None:
        """Say on stderr, when only part is shown, how much and how to see all ("100 of 10000 shown, ...")."""
        if total > shown:
            err.print(f"{shown} of {total} shown, {self.order}: --limit 0 shows all.", markup=False, highlight=False)


def tally(counts: dict[str, int], shown: int = 8) -> str:
    """Counts in words, the largest first ("52 en, 4 de, 4 fr"), the rest summed when there are many."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = ", ".join(f"{n} {key}" for key, n in ordered[:shown])
    rest = sum(n for _, n in ordered[shown:])
    return words + (f" and {rest} more in {len(ordered) - shown} others" if rest else "")


def in_zone(instant: datetime, zone: str) -> str:
    """An instant as a person reads it: in `zone`, to the minute, the zone named ("2026-12-04 09:30 Europe/Paris")."""
    from zoneinfo import ZoneInfo

    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table for people on stdout: each value as plain text (never rich markup), with what a terminal would
    obey rather than show (escape sequences, bidi overrides, zero-width characters) made visible."""
    shown = Table(title=None if title is None else Text(visible(title)), show_lines=False)
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*(Text(visible("" if value is None else str(value))) for value in row))
    out.print(shown)


@contextmanager
def byte_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Show a progress bar on stderr; yield the function that says how many bytes are done."""
    with _bar() as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


@contextmanager
def count_progress(what: str) -> Iterator[Callable[..., None]]:
    """Show a progress bar on stderr (on a terminal only) for work counted in things (letters, contacts); yield
    `update(done, total=None, note=None)`: how many are done, of how many once known, and a word on how they went."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=err, transient=True,
                  disable=not err.is_terminal) as progress:  # fmt: skip
        task = progress.add_task("", total=None)

        def update(done: int, total: int | None = None, note: str | None = None) -> None:
            progress.update(task, completed=done, total=total, description=note)  # None: left as it was

        yield update


def _bar() -> Progress:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

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
