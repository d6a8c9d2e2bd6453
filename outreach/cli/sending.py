"""`outreach send`: drain the outbox through the SMTP server, at the configured pace."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from outreach.cli.output import JsonOption, emit_json, err
from outreach.errors import ConfigError
from outreach.outbox.pacing import Pacer, RateError, parse_rates
from outreach.outbox.records import requeue
from outreach.outbox.sending import (
    Sending,
    SendReport,
    count_due,
    drain_outbox,
    write_due_as_eml,
)
from outreach.outbox.smtp import SmtpTransport
from outreach.workspace import Workspace


def _now() -> datetime:
    return datetime.now(UTC)


def build_sending(workspace: Workspace) -> Sending:
    """Everything a drain needs, from the workspace's settings; a setting that cannot work is a ConfigError."""
    settings = workspace.settings
    sender = workspace.sender()
    if sender.mailbox is None:
        raise ConfigError("OUTREACH_FROM is not set", hint='add OUTREACH_FROM="Name <address>" to .env')
    try:
        pacer = Pacer(parse_rates(settings.rate_limit), parse_rates(settings.domain_rate_limit))
    except RateError as error:
        raise ConfigError(str(error), hint="OUTREACH_RATE_LIMIT and OUTREACH_DOMAIN_RATE_LIMIT") from None
    smtp = workspace.smtp_settings()
    signer = workspace.dkim_signer(sender.mailbox)
    return Sending(lambda: SmtpTransport(smtp), sender.mailbox, sender.reply_to, pacer, _now, time.monotonic,
                   connections=settings.smtp_connections, unsubscribe_mailto=settings.unsubscribe_mailto,
                   unsubscribe_url=settings.unsubscribe_url, return_path=settings.return_path,
                   sign=signer.sign if signer else None)  # fmt: skip


@contextmanager
def stop_on_signals(asked: threading.Event | None = None) -> Iterator[Callable[[], bool]]:
    """SIGTERM and the first Ctrl-C ask the drain to stop after the transactions in flight; a second Ctrl-C
    interrupts at once (a message caught after its end of data is then reported as unknown next time). The
    request sets `asked` when given: `outreach run` waits on it."""
    asked = threading.Event() if asked is None else asked
    if threading.current_thread() is not threading.main_thread():
        yield asked.is_set
        return

    def ask(number: int, frame: Any) -> None:
        if asked.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        asked.set()
        err.print("Stopping after the messages in flight ...")

    previous = {number: signal.signal(number, ask) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield asked.is_set
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
    wait: Annotated[
        bool, typer.Option(help="On SQLite, wait for another sender to finish instead of exiting.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Send the queued messages that are due, each exactly once."""
    workspace: Workspace = ctx.obj.workspace()
    sending = build_sending(workspace)
    sessions = workspace.sessions
    if dry_run:
        written = write_due_as_eml(sessions, sending, outbox_dir, campaign=campaign, limit=limit)
        if json_output:
            emit_json({"dry_run": True, "written": [str(path) for path in written]})
        else:
            err.print(f"Dry run: wrote {len(written)} messages to {outbox_dir}; the outbox is as it was.")
        return
    with workspace.exclusive("send", wait=-1 if wait else 0), stop_on_signals() as stop:
        if retry_unknown_:
            again = requeue(sessions, _now(), states=("unknown",), campaign=campaign)
            err.print(f"Queued again {again} messages of unknown fate.")
        with Progress(TextColumn("Sending"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      console=err, transient=True, disable=not err.is_terminal) as progress:  # fmt: skip
            due = count_due(sessions, _now(), campaign)
            task = progress.add_task("", total=due if limit is None else min(due, limit))

            def show(report: SendReport) -> None:
                progress.update(task, completed=report.tried,
                                description=f"{report.sent} sent, {report.failed} failed")  # fmt: skip

            report = drain_outbox(sessions, sending, campaign=campaign, limit=limit, progress=show, stop=stop)
    if json_output:
        emit_json(report.as_json())
    else:
        _print_report(report)


def _print_report(report: SendReport) -> None:
    if report.recovered.get("unknown"):
        err.print(
            f"[yellow]{report.recovered['unknown']} messages were left mid-send by a stopped sender: their fate is "
            "unknown[/yellow] (`outreach send --retry-unknown` sends them again; they may arrive twice)."
        )
    counts = f"{report.sent} sent, {report.retried} to retry later, {report.failed} failed, {report.unknown} unknown"
    err.print(counts + ".")
    if report.deferred:
        err.print(f"{report.deferred} held back by the per-domain limit (OUTREACH_DOMAIN_RATE_LIMIT) for later.")
    if report.paused_until:
        err.print(f"The sending rate (OUTREACH_RATE_LIMIT) allows no more until "
                  f"{report.paused_until:%Y-%m-%d %H:%M} UTC; run `outreach send` again then.")  # fmt: skip
    for recipient, reply in report.failures[:10]:
        err.print(f"  {recipient}: {reply}", markup=False, highlight=False)
