"""`outreach campaigns`: create, list, show, preview, queue, pause, resume, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.campaigns.catalog import create_campaign, list_campaigns, set_status, show_campaign
from outreach.campaigns.previews import write_previews
from outreach.campaigns.queueing import QueueReport, queue_step
from outreach.cli.output import JsonOption, emit_json, err, out, table
from outreach.rendering.previewing import compile_template, parse_mailbox

app = typer.Typer(help="Mailings: a template, a segment, steps; queue them into the outbox.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The campaign's name.")]


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Name,
    template: Annotated[str, typer.Option(help="The template of the first letter.")],
    segment: Annotated[str, typer.Option(help='Who gets it, e.g. "role:head_of_state,head_of_government".')] = "",
    from_: Annotated[
        str | None, typer.Option("--from", help="Sender `Name <address>` (default OUTREACH_FROM).")
    ] = None,
    reply_to: Annotated[str | None, typer.Option(help="Reply-To `Name <address>`.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a campaign with its first step."""
    workspace = ctx.obj.workspace()
    compile_template(workspace.templates, template)  # a missing or broken template is refused now
    for text, setting in ((from_, "--from"), (reply_to, "--reply-to")):
        if text:
            parse_mailbox(text, setting)
    view = create_campaign(workspace.sessions, name, template, segment, sender=from_, reply_to=reply_to,
                           now=datetime.now(UTC))  # fmt: skip
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(f"Created campaign {name!r} ({template}, segment: {view.segment or 'all contacts'}).")


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List campaigns with their outbox counts."""
    found = list_campaigns(ctx.obj.workspace().sessions)
    if json_output:
        emit_json([view.as_json() for view in found])
        return
    table(f"{len(found)} campaigns", ["name", "status", "segment", "queued", "sent", "failed", "unknown"],
          [(v.name, v.status, v.segment or "all", v.outbox["queued"], v.outbox["sent"], v.outbox["failed"],
            v.outbox["unknown"]) for v in found])  # fmt: skip


@app.command("show")
def show_command(ctx: typer.Context, name: Name, json_output: JsonOption = False) -> None:
    """Show a campaign: its steps and its outbox by state."""
    view = show_campaign(ctx.obj.workspace().sessions, name)
    if json_output:
        emit_json(view.as_json())
        return
    out.print(f"{view.name}: {view.status}, segment {view.segment or 'all contacts'}", markup=False)
    for step in view.steps:
        counts = ", ".join(f"{n} {state}" for state, n in step["outbox"].items() if n) or "nothing queued"
        after = "first letter" if step["position"] == 0 else f"after {step['after_days']} days"
        out.print(f"  step {step['position']} ({after}): {step['template']}: {counts}", markup=False)


def _print_queue(report: QueueReport) -> None:
    verb = "would be queued" if report.dry_run else "queued"
    skipped = ", ".join(f"{n} {status}" for status, n in sorted(report.skipped.items()))
    languages = ", ".join(f"{n} in {language}" for language, n in sorted(report.languages.items()))
    err.print(f"{report.campaign} step {report.step}: {report.queued} {verb}"
              + (f" ({languages})" if languages else "")
              + f", {report.already_queued} already queued" + (f", skipped: {skipped}" if skipped else ""))  # fmt: skip


@app.command("queue")
def queue_command(
    ctx: typer.Context,
    name: Name,
    dry_run: Annotated[bool, typer.Option(help="Render and check every copy, queue nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Render every copy of the first step into the outbox, once per contact; one broken copy queues none."""
    workspace = ctx.obj.workspace()
    report = queue_step(workspace.sessions, workspace.templates, name, workspace.sender(), now=datetime.now(UTC),
                        dry_run=dry_run)  # fmt: skip
    if json_output:
        emit_json(report.as_json())
    else:
        _print_queue(report)


@app.command("pause")
def pause_command(ctx: typer.Context, name: Name) -> None:
    """Pause a campaign: nothing of it is sent until it is resumed."""
    err.print(f"Campaign {set_status(ctx.obj.workspace().sessions, name, 'paused').name!r} paused.")


@app.command("resume")
def resume_command(ctx: typer.Context, name: Name) -> None:
    """Resume a paused campaign."""
    err.print(f"Campaign {set_status(ctx.obj.workspace().sessions, name, 'active').name!r} resumed.")


@app.command("cancel")
def cancel_command(ctx: typer.Context, name: Name) -> None:
    """Cancel a campaign: its unsent copies are withdrawn; what was sent stays sent."""
    err.print(f"Campaign {set_status(ctx.obj.workspace().sessions, name, 'cancelled').name!r} cancelled.")


@app.command("preview")
def preview_command(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(help="How many copies.")] = 3,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the .eml files.")] = Path("preview"),
) -> None:
    """Write the first copies of a campaign's first step as .eml files, to open in a mail client."""
    workspace = ctx.obj.workspace()
    written = write_previews(workspace.sessions, workspace.templates, name, workspace.sender(), output, limit,
                             now=datetime.now(UTC))  # fmt: skip
    for path in written:
        err.print(f"  {path}")
    err.print(f"Wrote {len(written)} previews to {output}.")
