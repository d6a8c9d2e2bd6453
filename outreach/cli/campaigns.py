"""`outreach campaigns`: create, follow-ups, schedule, list, show, preview, queue, pause, resume, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.completion import complete_campaign, complete_template
from outreach.cli.output import (
    JsonOption,
    YesOption,
    command_group,
    confirm,
    count_progress,
    emit_json,
    err,
    in_zone,
    out,
    table,
    tally,
)
from outreach.errors import InvalidValueError
from outreach.outbox.forecast import in_words, time_needed
from outreach.untrusted import visible
from outreach.vocabulary import FOLLOW_UP_UNLESS

if TYPE_CHECKING:
    from outreach.campaigns.catalog import CampaignView
    from outreach.campaigns.queueing import QueueReport
    from outreach.config import Settings

# The services are imported inside each command: they bring SQLAlchemy and Jinja2, and shell completion and --help
# load this module without running a command.


app = command_group("Mailings: a template, a segment, steps; queue them into the outbox.")

NewName = Annotated[str, typer.Argument(help="The campaign's name.")]
Name = Annotated[str, typer.Argument(help="The campaign's name.", autocompletion=complete_campaign)]
Template = Annotated[str, typer.Option(help="The template of the first letter.", autocompletion=complete_template)]


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: NewName,
    template: Template,
    segment: Annotated[str, typer.Option(help='Who gets it, e.g. "role:head_of_state,head_of_government".')] = "",
    from_: Annotated[
        str | None, typer.Option("--from", help="Sender `Name <address>` (default OUTREACH_FROM).")
    ] = None,
    reply_to: Annotated[str | None, typer.Option(help="Reply-To `Name <address>`.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a campaign with its first step."""
    from outreach.campaigns.catalog import create_campaign
    from outreach.rendering.letters import parse_mailbox
    from outreach.rendering.previewing import compile_template

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
    from outreach.campaigns.catalog import list_campaigns

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
    template: Annotated[str, typer.Option(help="The template of the follow-up.", autocompletion=complete_template)],
    unless: Annotated[
        str, typer.Option(help=f"Skip it for contacts who meanwhile: {', '.join(FOLLOW_UP_UNLESS)} (comma separated).")
    ] = ",".join(FOLLOW_UP_UNLESS),
    json_output: JsonOption = False,
) -> None:
    """Add a follow-up step: it threads under the first letter and goes when it falls due for each contact."""
    from outreach.campaigns.catalog import add_follow_up
    from outreach.rendering.previewing import compile_template

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
    from outreach.campaigns.catalog import schedule_campaign

    now = datetime.now(UTC)
    view = schedule_campaign(ctx.obj.workspace().sessions, name, at=at, tz=tz, local_time=local_time,
                             weekdays_only=weekdays, window=window, now=now)  # fmt: skip
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(f"Scheduled {name!r}: {_describe(view)}.")


def _when(view: CampaignView, instant: str | None) -> str:
    """An instant of the view (ISO, UTC) in the campaign's zone, to the minute; "-" for none."""
    return in_zone(datetime.fromisoformat(instant), view.schedule["time_zone"] or "UTC") if instant else "-"


def _describe(view: CampaignView) -> str:
    """A campaign's schedule in words."""
    s = view.schedule
    parts = [f"from {_when(view, s['send_at'])}" if s["send_at"] else "from now"]
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
    """Show a campaign: its schedule, and each step with its due, sent and skipped counts and next send time (in
    the campaign's zone, UTC unless scheduled with --tz)."""
    from outreach.campaigns.catalog import show_campaign

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
         _when(view, s["next_send"])] for s in view.steps
    ])  # fmt: skip


def _queue_summary(report: QueueReport, settings: Settings) -> list[str]:
    """What queueing does, for a campaigner to look at before it is done: how many letters from whom, by language,
    role and country, when the first goes, how long the pace needs, and who is left out and why."""
    verb = "would be queued" if report.dry_run else "queued"
    lines = [f"{report.campaign} step {report.step}: {report.queued} letters {verb}, from {report.sender}"]
    if report.queued:
        forecast = time_needed(report.domains, settings.rate_limits, settings.domain_rate_limits)
        lines += [
            f"  in {tally(report.languages)}",
            f"  to {tally(report.roles)}",
            f"  in {tally(report.countries, shown=12)}",
            f"  the first goes at {in_zone(report.first_due, report.time_zone)}" if report.first_due else "",
            f"  the pace needs {in_words(forecast.seconds)} from the first to the last"
            + (f" ({forecast.pace})" if forecast.pace else ""),
        ]  # fmt: skip
    left_out = [f"{n} {status}" for status, n in sorted(report.skipped.items())]
    if report.already_queued:
        left_out.append(f"{report.already_queued} already queued")
    if report.repeats:
        left_out.append(f"{report.repeats} written to with this template by another campaign (--allow-repeat)")
    if left_out:
        lines.append("  left out: " + ", ".join(left_out))
    return [line for line in lines if line]


@app.command("queue")
def queue_command(
    ctx: typer.Context,
    name: Name,
    dry_run: Annotated[bool, typer.Option(help="Render and check every copy, queue nothing.")] = False,
    allow_repeat: Annotated[
        bool, typer.Option(help="Also contacts another campaign has written to with the same template.")
    ] = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Render every letter of the first step into the outbox, once per contact; one broken copy queues none. Says
    what it will do and asks first."""
    from outreach.campaigns.queueing import queue_step
    from outreach.campaigns.spool import LetterSpool
    from outreach.campaigns.staleness import stale_steps

    workspace = ctx.obj.workspace()

    def queue(dry: bool, spool: LetterSpool | None = None) -> QueueReport:
        with count_progress("Making and checking the letters" if dry else "Queueing") as update:
            return queue_step(workspace.sessions, workspace.templates, name, workspace.sender(),
                              now=datetime.now(UTC), dry_run=dry, allow_repeat=allow_repeat,
                              limits=workspace.render_limits(), spool=spool, progress=update)  # fmt: skip

    with LetterSpool(workspace.root) as spool:
        if not (yes or dry_run):
            # Every letter is made and checked first, and nothing is kept in the outbox: only then is there
            # something to show. The letters made are kept aside, and queued after the yes as they were checked.
            plan = queue(True, spool)
            if plan.queued:
                confirm(_queue_summary(plan, workspace.settings), f"Queue these {plan.queued} letters?", yes=False)
        report = queue(dry_run, None if dry_run else spool)
    stale = stale_steps(workspace.sessions, workspace.templates, name)
    if json_output:
        emit_json({**report.as_json(), "stale": [step.as_json() for step in stale]})
        return
    for line in [*_queue_summary(report, workspace.settings), *(step.notice() for step in stale)]:
        err.print(line, markup=False, highlight=False)


@app.command("pause")
def pause_command(ctx: typer.Context, name: Name) -> None:
    """Pause a campaign: nothing of it is sent until it is resumed."""
    from outreach.campaigns.catalog import set_status

    err.print(f"Campaign {set_status(ctx.obj.workspace().sessions, name, 'paused').name!r} paused.")


@app.command("resume")
def resume_command(ctx: typer.Context, name: Name) -> None:
    """Resume a paused campaign."""
    from outreach.campaigns.catalog import set_status

    err.print(f"Campaign {set_status(ctx.obj.workspace().sessions, name, 'active').name!r} resumed.")


@app.command("cancel")
def cancel_command(ctx: typer.Context, name: Name, yes: YesOption = False) -> None:
    """Cancel a campaign: its unsent copies are withdrawn; what was sent stays sent. It cannot be resumed."""
    from outreach.campaigns.catalog import cancellation, set_status

    sessions = ctx.obj.workspace().sessions
    ahead = cancellation(sessions, name)
    if ahead.status != "cancelled":  # cancelled already: nothing more to lose
        withdrawn = sum(ahead.withdrawn.values())
        states = ", ".join(f"{count} {state}" for state, count in ahead.withdrawn.items() if count)
        summary = [f"Cancelling {ahead.campaign!r} withdraws {withdrawn} unsent "
                   f"{'copy' if withdrawn == 1 else 'copies'}" + (f" ({states})" if states else "")
                   + f"; {ahead.sent} sent already stay sent. It cannot be resumed."]  # fmt: skip
        if ahead.in_flight:
            summary.append(f"{ahead.in_flight} are being handed to the server right now: they may still go.")
        confirm(summary, f"Cancel campaign {ahead.campaign!r}?", yes)
    err.print(f"Campaign {set_status(sessions, name, 'cancelled').name!r} cancelled.")


@app.command("proof")
def proof_command(
    ctx: typer.Context,
    name: Name,
    to: Annotated[str, typer.Option("--to", help="Your own address: the proofs go there, and nowhere else.")],
    contact: Annotated[
        list[str] | None, typer.Option("--contact", "-c", help="This contact's letter (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="The first N contacts of the segment instead.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Send letters of a campaign's first step to yourself now, subject marked [proof], signed as the real ones
    will be: the preview's choice by default. Proofs are recorded, never counted in the outbox or a report."""
    from outreach.campaigns.previews import proof_letters
    from outreach.cli.sending import build_sending
    from outreach.outbox.proofs import send_proofs
    from outreach.rendering.letters import parse_mailbox

    workspace = ctx.obj.workspace()
    mailbox = parse_mailbox(to, "--to")
    if mailbox is None:
        raise InvalidValueError("--to is empty", hint="give your own address: --to you@your-org.example")
    campaign_id, letters = proof_letters(workspace.sessions, workspace.templates, name, workspace.sender(), mailbox,
                                         now=datetime.now(UTC), contacts=contact or (), limit=limit,
                                         limits=workspace.render_limits())  # fmt: skip
    sent = send_proofs(workspace.sessions, campaign_id, letters, build_sending(workspace))
    if json_output:
        emit_json({"proofs": [proof.as_json() for proof in sent], "total": len(sent),
                   "accepted": sum(proof.accepted for proof in sent)})  # fmt: skip
        return
    for proof in sent:
        err.print(visible(f"  {proof.contact}'s letter ({proof.language}) to {proof.to}: {proof.reply}"),
                  markup=False, highlight=False)  # fmt: skip
    accepted = sum(proof.accepted for proof in sent)
    err.print(f"Sent {accepted} of {len(sent)} proofs to {mailbox.address}; the outbox is as it was.")
    if accepted < len(sent):
        raise typer.Exit(1)


@app.command("preview")
def preview_command(
    ctx: typer.Context,
    name: Name,
    contact: Annotated[
        list[str] | None, typer.Option("--contact", "-c", help="This contact's letter (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="The first N contacts of the segment instead.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the .eml files.")] = Path("preview"),
    json_output: JsonOption = False,
) -> None:
    """Write letters of a campaign's first step as .eml files, to open in a mail client: by default one for each
    language and role, and every letter that falls back from its contact's language. A queued letter is written
    exactly as the server will receive it (but for the DKIM signature)."""
    from outreach.campaigns.previews import write_previews

    workspace = ctx.obj.workspace()
    written = write_previews(workspace.sessions, workspace.templates, name, workspace.sender(), output,
                             now=datetime.now(UTC), contacts=contact or (), limit=limit,
                             limits=workspace.render_limits())  # fmt: skip
    if json_output:
        emit_json({"written": [preview.as_json() for preview in written], "total": len(written)})
        return
    for preview in written:
        fallback = f", falls back from {preview.fallback_from}" if preview.fallback_from else ""
        where = "the queued letter" if preview.queued else "not queued yet: made now, its Message-ID will differ"
        err.print(f"  {preview.path}: {preview.recipient} ({preview.role or 'no role'}, {preview.language}"
                  f"{fallback}; {where})", markup=False, highlight=False)  # fmt: skip
    err.print(f"Wrote {len(written)} previews to {output}.")


@app.command("refresh")
def refresh_command(
    ctx: typer.Context,
    name: Name,
    diff: Annotated[bool, typer.Option("--diff", help="Show what changed in one copy: a diff of its text.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Make again, after a template, signatory or contact edit, the copies no sender has handed to the server yet
    (queued, held, failed); each keeps its Message-ID, thread and due time. One broken copy refreshes none."""
    from outreach.campaigns.refreshing import refresh_campaign

    workspace = ctx.obj.workspace()
    with count_progress("Refreshing") as update:
        report = refresh_campaign(workspace.sessions, workspace.templates, name, workspace.sender(),
                                  now=datetime.now(UTC), diff=diff, limits=workspace.render_limits(),
                                  spool_folder=workspace.root, progress=update)  # fmt: skip
    if json_output:
        emit_json(report.as_json())
        return
    if report.diff:
        err.print(f"What changed in the letter to {report.diff_of}:", markup=False, highlight=False)
        out.print(visible(report.diff, lines=True), end="", markup=False, highlight=False)
    elif diff:
        err.print("No copy changed: there is no diff to show.")
    parts = [f"{report.campaign}: {report.changed} changed, {report.current} already current"]
    if report.made:
        parts.append(f"{report.made} queued by an older version now have their letter"
                     + (f" ({report.releasable} held: `outreach outbox release` sends them)" if report.releasable
                        else ""))  # fmt: skip
    if report.taken:
        parts.append(f"{report.taken} left as they were: a sender took them meanwhile")
    if report.skipped:
        parts.append("skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())))
    err.print("; ".join(parts) + ".", markup=False, highlight=False)
