"""`outreach demo`: the whole job on embedded defaults, in a new workspace, as far as the tool goes today."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.cli.output import err, file_progress, out, table
from outreach.config import process_environment
from outreach.contacts.directory import count_contacts, list_contacts
from outreach.contacts.importer import ImportOptions, import_contacts
from outreach.contacts.segments import parse_segment
from outreach.contacts.signatories import import_signatories, list_signatories
from outreach.rendering.previewing import as_eml, check_template, render_for
from outreach.vocabulary import GROUPS
from outreach.workspace import init_workspace, open_workspace

DEMO_SENDER = "European Appeal (demo) <appeal@example.org>"


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
    environ.setdefault("OUTREACH_FROM", DEMO_SENDER)
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
        report_check = check_template(sessions, workspace.templates, "appeal", segment, workspace.sender(), now=now)
        err.print(f"[bold]6. outreach templates check[/bold] appeal --segment \"{segment}\": "
                  f"{report_check.checked} copies, {len(report_check.failures)} failed, "
                  + ", ".join(f"{n} in {lang}" for lang, n in sorted(report_check.languages.items())))  # fmt: skip
        copy, recipient = render_for(sessions, workspace.templates, "appeal", "elysee@example.org",
                                     workspace.sender(), now=now)  # fmt: skip
        eml = root / "appeal-elysee.eml"
        eml.write_bytes(as_eml(copy, recipient, workspace.sender(), now=now))
        err.print(f"[bold]7. outreach templates render[/bold] appeal --contact elysee@example.org -f eml -o {eml.name}")
        preview = [line for line in copy.text.splitlines() if line.strip()][:4]
        out.print("\n".join(f"   | {line[:100]}" for line in [f"Subject: {copy.subject}", *preview]),
                  markup=False, highlight=False)  # fmt: skip
    finally:
        workspace.close()
    err.print(f"\nThe demo workspace is {root}. Try: cd {root} && outreach contacts list --segment tag:wave-1")
    err.print(
        "The demo stops before sending: `outreach send`, `campaigns followup|schedule`, `outreach run` and "
        "`outreach responses` are built and described in the README; the demo will send and read replies once "
        "reports are built."
    )
