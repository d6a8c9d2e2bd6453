"""`outreach demo`: the whole job on embedded defaults, in a new workspace, as far as the tool goes today."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.cli.output import err, file_progress, table
from outreach.config import process_environment
from outreach.contacts.directory import count_contacts, list_contacts
from outreach.contacts.importer import ImportOptions, import_contacts
from outreach.contacts.segments import parse_segment
from outreach.contacts.signatories import import_signatories, list_signatories
from outreach.vocabulary import GROUPS
from outreach.workspace import init_workspace, open_workspace


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the demo workspace (default: a new temporary folder)."),
    ] = None,
) -> None:
    """Create a workspace on SQLite, import the sample lists and the signatories, and show the result."""
    root = directory or Path(tempfile.mkdtemp(prefix="outreach-demo-"))
    # The demo always runs on its own SQLite file, whatever database the environment names.
    environ = {k: v for k, v in process_environment().items() if k != "OUTREACH_DATABASE_URL"}
    report = init_workspace(root, environ)
    err.print(f"[bold]1. outreach init[/bold] {report.root}: {len(report.created)} files and a SQLite database")
    workspace = open_workspace(root, environ)
    sessions = workspace.sessions
    now = datetime.now(UTC)
    try:
        for step, (name, options) in enumerate(
            [
                ("heads-of-state.csv", ImportOptions()),
                ("prospects.csv", ImportOptions(role="prospect", tags=("wave-1",))),
            ],
            start=2,
        ):
            path = root / "contacts" / name
            summary = import_contacts(sessions, path, options, now=now)
            err.print(f"[bold]{step}. outreach contacts import[/bold] contacts/{name}: "
                      f"{summary.imported} imported, {summary.rejected} rejected")  # fmt: skip
        path = root / "contacts" / "signatories.csv"
        with file_progress(path, "Importing signatories") as binary:
            signed = import_signatories(sessions, binary, path, now=now)
        err.print(f"[bold]4. outreach signatories import[/bold] contacts/signatories.csv: {signed.imported} imported")
        by_group = {group: 0 for group in GROUPS}
        for signatory in list_signatories(sessions):
            by_group[signatory.group] += 1
        err.print("   " + ", ".join(f"{count} {group.replace('_', ' ')}" for group, count in by_group.items()))
        segment = parse_segment("role:head_of_state,monarch,head_of_government")
        err.print(f"[bold]5. outreach contacts list[/bold] --segment \"{segment}\": "
                  f"{count_contacts(sessions, segment)} contacts")  # fmt: skip
        heads = list_contacts(sessions, parse_segment("role:head_of_state,monarch country:FR,DE,GB,PL,SE"))
        table(None, ["email", "name", "position", "country", "language"],
              [(c.email, c.name, c.position, c.country, c.language) for c in heads])  # fmt: skip
    finally:
        workspace.close()
    err.print(f"\nThe demo workspace is {root}. Try: cd {root} && outreach contacts list --segment tag:wave-1")
    err.print("Rendering, sending, follow-ups, the response log and reports are not built yet.")
