"""`outreach send`: drain the outbox through the SMTP server, at the configured pace."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from outreach.cli.output import JsonOption, emit_json, err
from outreach.errors import ConfigError
from outreach.outbox.pacing import Pacer, RateError, parse_rates
from outreach.outbox.sending import Sending, SendReport, drain_outbox, retry_unknown, write_due_as_eml
from outreach.outbox.smtp import SmtpSettings, SmtpTransport


def _now() -> datetime:
    return datetime.now(UTC)


def send(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    limit: Annotated[int | None, typer.Option(help="Send at most this many.")] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Write what is due as .eml files; send nothing, change nothing.")
    ] = False,
    outbox_dir: Annotated[Path, typer.Option(help="Where --dry-run writes.")] = Path("outbox"),
    retry_unknown_: Annotated[
        bool, typer.Option("--retry-unknown", help="Queue again messages whose fate is unknown (may arrive twice).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Send the queued messages that are due, each exactly once."""
    workspace = ctx.obj.workspace()
    settings = workspace.settings
    sender = workspace.sender()
    if sender.mailbox is None:
        raise ConfigError("OUTREACH_FROM is not set", hint='add OUTREACH_FROM="Name <address>" to .env')
    try:
        pacer = Pacer(parse_rates(settings.rate_limit), parse_rates(settings.domain_rate_limit))
    except RateError as error:
        raise ConfigError(str(error), hint="OUTREACH_RATE_LIMIT and OUTREACH_DOMAIN_RATE_LIMIT") from None
    smtp = SmtpSettings(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username,
                        settings.smtp_password)  # fmt: skip
    transport = SmtpTransport(smtp)
    sending = Sending(transport, sender.mailbox, sender.reply_to, pacer, _now, time.monotonic,
                      unsubscribe_mailto=settings.unsubscribe_mailto)  # fmt: skip
    sessions = workspace.sessions
    if dry_run:
        written = write_due_as_eml(sessions, sending, outbox_dir, campaign=campaign, limit=limit)
        if json_output:
            emit_json({"dry_run": True, "written": [str(path) for path in written]})
        else:
            err.print(f"Dry run: wrote {len(written)} messages to {outbox_dir}; the outbox is as it was.")
        return
    if retry_unknown_:
        err.print(f"Queued again {retry_unknown(sessions, _now(), campaign)} messages of unknown fate.")
    with Progress(TextColumn("Sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=err, transient=True, disable=not err.is_terminal) as progress:  # fmt: skip
        task = progress.add_task("", total=limit)

        def show(report: SendReport) -> None:
            progress.update(task, completed=report.sent + report.failed + report.retried + report.unknown,
                            description=f"{report.sent} sent, {report.failed} failed")  # fmt: skip

        try:
            report = drain_outbox(sessions, sending, campaign=campaign, limit=limit, progress=show)
        finally:
            transport.close()
    if json_output:
        emit_json(report.as_json())
        return
    recovered = report.recovered
    if recovered.get("unknown"):
        err.print(
            f"[yellow]{recovered['unknown']} messages were left mid-send by a stopped sender: their fate is "
            "unknown[/yellow] (`outreach send --retry-unknown` sends them again; they may arrive twice)."
        )
    counts = f"{report.sent} sent, {report.retried} to retry later, {report.failed} failed, {report.unknown} unknown"
    err.print(counts + ".")
    for recipient, reply in report.failures[:10]:
        err.print(f"  {recipient}: {reply}", markup=False, highlight=False)
