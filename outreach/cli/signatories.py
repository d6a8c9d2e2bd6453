"""`outreach signatories`: the people who signed, as the appeal prints them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.cli.output import JsonOption, command_group, emit_json, err, file_progress, out
from outreach.errors import InvalidValueError
from outreach.untrusted import visible
from outreach.vocabulary import GROUPS

# The service is imported inside each command: it brings SQLAlchemy, and shell completion and --help load this
# module without running a command.

app = command_group("The people who signed the appeal.")

Group = Annotated[str | None, typer.Option(help=f"One of: {', '.join(GROUPS)}.")]


@app.command("list")
def list_command(ctx: typer.Context, group: Group = None, json_output: JsonOption = False) -> None:
    """List the signatories by group, in the order they signed."""
    from outreach.contacts.signatories import list_signatories

    found = list_signatories(ctx.obj.workspace().sessions, group)
    if json_output:
        emit_json([view.as_json() for view in found])
        return
    current = None
    for view in found:
        if view.group != current:
            current = view.group
            count = sum(1 for v in found if v.group == current)
            out.print(f"\n[bold]{current.replace('_', ' ').capitalize()}[/bold] ({count})")
        shown = f"  {view.name}, {view.line}" if view.line else f"  {view.name}"
        out.print(visible(shown), markup=False, highlight=False)
    out.print(f"\n{len(found)} signatories")


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The name exactly as it should be printed.")],
    line: Annotated[str, typer.Option(help="The line printed after the name.")] = "",
    group: Group = "signatories",
    country: Annotated[str, typer.Option(help="Country name or ISO code.")] = "",
    email: Annotated[str, typer.Option(help="Address, to link the signatory to a contact.")] = "",
    json_output: JsonOption = False,
) -> None:
    """Add one signatory."""
    from outreach.contacts.signatories import add_signatory

    view = add_signatory(
        ctx.obj.workspace().sessions,
        name,
        line,
        group or "signatories",
        country,
        email,
        now=datetime.now(UTC),
    )
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(f"Added {view.name} to {view.group}.", markup=False)


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: name, line, group, country, email.")],
    group: Group = None,
    encoding: Annotated[str | None, typer.Option(help="The file's encoding.")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=field.")] = None,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row is rejected.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Import signatories; names and lines are kept exactly as written."""
    from outreach.contacts.signatories import import_signatories

    mapping: dict[str, str] = {}
    for item in map_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidValueError(f"--map {item!r} is not COLUMN=field")
        mapping[key] = value
    with file_progress(file, f"Importing {file.name}") as binary:
        summary = import_signatories(
            ctx.obj.workspace().sessions, binary, file, default_group=group, mapping=mapping,
            encoding=encoding, strict=strict, now=datetime.now(UTC),
        )  # fmt: skip
    if json_output:
        emit_json({"source": summary.source, **summary.counts(),
                   "rejects_file": str(summary.rejects_path) if summary.rejects_path else None,
                   "rejects": [{"line": r.line, "reason": r.reason} for r in summary.first_rejects]})  # fmt: skip
        return
    counts = summary.counts()
    err.print(f"{counts['imported']} imported, {counts['unchanged']} already there, {counts['rejected']} rejected")
    for reject in summary.first_rejects:
        err.print(f"  line {reject.line}: {reject.reason}", markup=False, highlight=False)
    if summary.rejects_path:
        err.print(f"Rejected rows were written to {summary.rejects_path}")
