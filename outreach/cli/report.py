"""`outreach report`: a campaign's figures in the terminal, as JSON, as CSV, or as one self-contained HTML page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from outreach.cli.completion import complete_campaign
from outreach.cli.output import JsonOption, emit_json, err, out, table
from outreach.errors import OutreachError

if TYPE_CHECKING:
    from outreach.reports.figures import Counts, Report, Unanswered

COLUMNS = ("targeted", "queued", "sent", "failed", "unknown", "skipped", "bounced hard/soft", "replied",
           "auto-replied", "unsubscribed", "complained", "rate", "first reply")  # fmt: skip


def report(
    ctx: typer.Context,
    campaign: Annotated[
        str | None,
        typer.Argument(help="The campaign (default: one line per campaign).", autocompletion=complete_campaign),
    ] = None,
    json_output: JsonOption = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per campaign, step, role and country to FILE.")
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Write the report as one self-contained HTML page to FILE.")
    ] = None,
) -> None:
    """Per campaign and step: sent, bounced, replied, response rate and time to first reply, by role and country."""
    from outreach.reports.collect import collect_report  # the reports room loads when a report is asked for
    from outreach.reports.html import render_html

    found = collect_report(ctx.obj.workspace().sessions, campaign, now=datetime.now(UTC))
    if csv_file is not None:
        _write(csv_file, found.as_csv())
        err.print(f"Wrote the CSV to {csv_file}.", markup=False, highlight=False)
    if html_file is not None:
        _write(html_file, render_html(found))
        err.print(f"Wrote the HTML report to {html_file.resolve()}: open it in a browser.", markup=False,
                  highlight=False)  # fmt: skip
    if json_output:
        emit_json(found.as_json())
    else:
        print_report(found)


def _write(path: Path, text: str) -> None:
    """Write a file, or say in one line why it cannot be written."""
    try:
        path.write_text(text, encoding="utf-8", newline="")  # the CSV's own CRLF stays as written
    except OSError as error:
        raise OutreachError(f"cannot write {path}: {error.strerror or error}") from error


def print_report(found: Report) -> None:
    """The report as tables on stdout: one line per campaign, or a campaign with its steps, roles, countries."""
    if found.campaign is None:
        table(f"{len(found.campaigns)} campaigns", ["campaign", "status", *COLUMNS],
              [[c.name, c.status, *_cells(c.figures.total)] for c in found.campaigns])  # fmt: skip
        _print_signatories(found)
        return
    for campaign in found.campaigns:
        table(f"Campaign {campaign.name} ({campaign.status})", ["campaign", *COLUMNS],
              [[campaign.name, *_cells(campaign.figures.total)]])  # fmt: skip
        table("Steps", ["step", "template", *COLUMNS],
              [[s.position, s.template, *_cells(s.figures.total)] for s in campaign.steps])  # fmt: skip
        table("By role", ["role", *COLUMNS], [[k, *_cells(c)] for k, c in campaign.figures.by_role.items()])
        table("By country", ["country", *COLUMNS], [[k, *_cells(c)] for k, c in campaign.figures.by_country.items()])
        table("Outcomes", ["outcome", "contacts"], list(campaign.outcomes.items()))
        _print_unanswered(campaign.name, campaign.unanswered)
    _print_signatories(found)


def _cells(counts: Counts) -> list[Any]:
    """One table row of figures."""
    from outreach.reports.figures import format_duration, format_rate

    c = counts
    return [c.targeted, c.queued, c.sent, c.failed, c.unknown, c.skipped, f"{c.hard_bounced}/{c.soft_bounced}",
            c.replied, c.auto_replied, c.unsubscribed, c.complained, format_rate(c.response_rate),
            format_duration(c.median_reply_seconds)]  # fmt: skip


# The terminal shows the first of those not answered; the HTML report and the export list more, or all.
_UNANSWERED_SHOWN = 20


def _print_unanswered(campaign: str, unanswered: Unanswered) -> None:
    if not unanswered.total:
        return
    shown = unanswered.contacts[:_UNANSWERED_SHOWN]
    table(f"Not answered ({unanswered.total})", ["name", "position", "role", "country", "email", "sent"],
          [[c.name, c.position, c.role, c.country, c.email, f"{c.sent_at:%Y-%m-%d}" if c.sent_at else ""]
           for c in shown])  # fmt: skip
    if unanswered.total > len(shown):
        out.print(f"{unanswered.total - len(shown)} more: `outreach contacts export --segment "
                  f"\"campaign:{campaign}=no-reply\"` lists them all.", markup=False, highlight=False)  # fmt: skip


def _print_signatories(found: Report) -> None:
    if not found.signatories:
        out.print("Signatories: none yet.")
        return
    last = found.signatories[-1]
    out.print(f"Signatories: {last.total} in all, {last.added} added on {last.day:%Y-%m-%d} (the latest day).",
              markup=False, highlight=False)  # fmt: skip
