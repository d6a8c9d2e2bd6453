"""`outreach campaigns`: create, follow-ups, schedule, list, show, preview, queue, pause, resume, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from outreach.campaigns.catalog import (
    UNLESS,
    CampaignView,
    add_follow_up,
    create_campaign,
    list_campaigns,
    schedule_campaign,
    set_status,
    show_campaign,
)
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


@app.command("followup")
def followup_command(
    ctx: typer.Context,
    name: Name,
    after: Annotated[str, typer.Option(help="How long after the contact's step before: 7d, 36h, 2w.")],
    template: Annotated[str, typer.Option(help="The template of the follow-up.")],
    unless: Annotated[
        str, typer.Option(help=f"Skip it for contacts who meanwhile: {', '.join(UNLESS)} (comma separated).")
    ] = ",".join(UNLESS),
    json_output: JsonOption = False,
) -> None:
    """Add a follow-up step: it threads under the first letter and goes when it falls due for each contact."""
    workspace = ctx.obj.workspace()
    compile_template(workspace.templates, template)  # a missing or broken template is refused now
    view = add_follow_up(workspace.sessions, name, template, after, unless, now=datetime.now(UTC))
    if json_output:
        emit_json(view.as_json())
    else:
        step = view.steps[-1]
        unless_ = ", ".join(step["unless"]) or "nothing"
        err.print(f"Added step {step['position']} to {name!r}: {template}, {step['after']} after the step before,"
                  f" unless {unless_}; `outreach run` queues it as it falls due.")  # fmt: skip


@app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    name: Name,
    at: Annotated[str | None, typer.Option(help='Not before then: "2025-04-10 09:00" (in --tz).')] = None,
    tz: Annotated[
        str | None, typer.Option(help="Zone of --at, and of contacts whose own zone is unknown (default UTC).")
    ] = None,
    local_time: Annotated[
        str | None, typer.Option(help="Deliver at this time in each recipient's own zone: 09:30.")
    ] = None,
    weekdays: Annotated[bool, typer.Option("--weekdays", help="Monday to Friday only, in their zone.")] = False,
    window: Annotated[
        str | None, typer.Option(help="Only within these office hours, in their zone: 09:00-17:00.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Set when a campaign sends; copies already queued are placed again. Follow-ups keep to the same hours."""
    now = datetime.now(UTC)
    view = schedule_campaign(ctx.obj.workspace().sessions, name, at=at, tz=tz, local_time=local_time,
                             weekdays_only=weekdays, window=window, now=now)  # fmt: skip
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(f"Scheduled {name!r}: {_describe(view)}.")


def _describe(view: CampaignView) -> str:
    """A campaign's schedule in words."""
    s = view.schedule
    parts = [f"from {s['send_at']}" if s["send_at"] else "from now"]
    if s["local_time"]:
        parts.append(f"at {s['local_time']} in each recipient's zone")
    if s["window"]:
        parts.append(f"within {s['window']} their time")
    if s["weekdays_only"]:
        parts.append("on weekdays")
    if s["time_zone"]:
        parts.append(f"(zone {s['time_zone']} where theirs is unknown)")
    return " ".join(parts)


@app.command("show")
def show_command(ctx: typer.Context, name: Name, json_output: JsonOption = False) -> None:
    """Show a campaign: its schedule, and each step with its due, sent and skipped counts and next send time."""
    view = show_campaign(ctx.obj.workspace().sessions, name, now=datetime.now(UTC))
    if json_output:
        emit_json(view.as_json())
        return
    out.print(f"{view.name}: {view.status}, segment {view.segment or 'all contacts'}; sends {_describe(view)}",
              markup=False)  # fmt: skip
    table(None, ["step", "template", "when", "due now", "waiting", "sent", "skipped", "failed", "next send"], [
        [s["position"], s["template"], "first letter" if s["position"] == 0 else f"{s['after']} after, unless "
         + "/".join(s["unless"]), s["due"], s["waiting"], s["sent"],
         ", ".join(f"{n} {why}" for why, n in s["skipped"].items()) or 0, s["outbox"]["failed"],
         s["next_send"] or "-"] for s in view.steps
    ])  # fmt: skip


def _print_queue(report: QueueReport) -> None:
    verb = "would be queued" if report.dry_run else "queued"
    skipped = ", ".join(f"{n} {status}" for status, n in sorted(report.skipped.items()))
    languages = ", ".join(f"{n} in {language}" for language, n in sorted(report.languages.items()))
    err.print(f"{report.campaign} step {report.step}: {report.queued} {verb}"
              + (f" ({languages})" if languages else "")
              + f", {report.already_queued} already queued" + (f", skipped: {skipped}" if skipped else "")
              + (f"; the first goes at {report.first_due:%Y-%m-%d %H:%M} UTC" if report.first_due else ""))  # fmt: skip


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
