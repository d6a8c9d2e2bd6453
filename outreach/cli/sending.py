"""`outreach send`: drain the outbox through the SMTP server, at the configured pace."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from outreach.cli.completion import complete_campaign
from outreach.cli.output import JsonOption, YesOption, confirm, count_progress, emit_json, err, in_zone, tally
from outreach.outbox.forecast import Forecast, in_words, last_goes_at, time_needed
from outreach.outbox.pacing import Pacer
from outreach.untrusted import visible

if TYPE_CHECKING:
    from outreach.outbox.records import FirstLetters, Waiting
    from outreach.outbox.sending import Sending, SendReport
    from outreach.workspace import Workspace

# The services are imported inside each function: they bring SQLAlchemy, Jinja2 and smtplib, and shell completion
# and --help load this module without sending anything.


def _now() -> datetime:
    return datetime.now(UTC)


def build_sending(workspace: Workspace) -> Sending:
    """Everything a drain needs, from the workspace's settings; a setting that cannot work is a ConfigError."""
    from outreach.outbox.sending import Sending
    from outreach.outbox.smtp import SmtpTransport

    settings = workspace.settings
    pacer = Pacer(list(settings.rate_limits), list(settings.domain_rate_limits))
    smtp = workspace.smtp_settings()
    signers = {domain: signer.sign for domain, signer in workspace.dkim_signers().items()}
    return Sending(lambda: SmtpTransport(smtp), pacer, _now, time.monotonic, connections=settings.smtp_connections,
                   signers=signers)  # fmt: skip


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
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.", autocompletion=complete_campaign)] = None,
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
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Send the queued messages that are due, each exactly once. Before a campaign's first letters go, it shows
    how many, to whom, when and how long the pace needs, and asks (`--yes` answers for scripts)."""
    from outreach.campaigns.staleness import stale_steps
    from outreach.outbox.claims import count_due
    from outreach.outbox.records import first_letters, requeue, waiting_messages
    from outreach.outbox.sending import drain_outbox, write_due_letters

    workspace: Workspace = ctx.obj.workspace()
    sending = build_sending(workspace)
    sessions = workspace.sessions
    if dry_run:
        written = write_due_letters(sessions, outbox_dir, _now(), campaign=campaign, limit=limit)
        if json_output:
            emit_json({"dry_run": True, "written": [str(path) for path in written]})
        else:
            err.print(
                f"Dry run: wrote {len(written)} messages to {outbox_dir}, as the server would receive them but for"
                " the DKIM signature; the outbox is as it was."
            )
        return
    now = _now()
    stale = stale_steps(sessions, workspace.templates, campaign)
    if not json_output:
        for step in stale:
            err.print(step.notice(), markup=False, highlight=False)
    firsts = first_letters(sessions, due_by=now, campaign=campaign)
    if firsts:
        confirm(describe_first_letters(firsts, sending.pacer, now), "Send these first letters now?", yes)
    with workspace.exclusive("send", wait=-1 if wait else 0), stop_on_signals() as stop:
        if retry_unknown_:
            again = requeue(sessions, _now(), states=("unknown",), campaign=campaign)
            err.print(f"Queued again {again} messages of unknown fate.")
        with count_progress("Sending") as update:
            due = count_due(sessions, _now(), campaign)
            update(0, due if limit is None else min(due, limit))

            def show(report: SendReport) -> None:
                update(report.tried, note=f"{report.sent} sent, {report.failed} failed")

            report = drain_outbox(sessions, sending, campaign=campaign, limit=limit, progress=show, stop=stop)
    waiting, now = waiting_messages(sessions, campaign=campaign), _now()
    if json_output:
        emit_json({**report.as_json(), **_waiting_json(waiting, sending.pacer, report.paused_until, now),
                   "stale": [step.as_json() for step in stale]})  # fmt: skip
    else:
        _print_report(report)
        if waiting.count:
            err.print(_waiting_line(waiting, sending.pacer, report.paused_until, now), markup=False, highlight=False)


def describe_first_letters(found: list[FirstLetters], pacer: Pacer, now: datetime) -> list[str]:
    """What is about to go for the first time, per campaign: how many letters, by language, role and country,
    when the first goes (in the campaign's zone) and how long the configured pace needs for them all."""
    lines = []
    for letters in found:
        pace = time_needed(letters.domains, pacer.global_rates, pacer.domain_rates)
        start = max(letters.first_at, now)
        first = "now" if start == now else f"at {in_zone(start, letters.time_zone)}"
        lines += [
            f"Campaign {letters.campaign!r} has sent nothing yet: {letters.count} first "
            f"{'letter' if letters.count == 1 else 'letters'}, the first {first}"
            + ("." if letters.count == 1 else f", {_the_last(start, letters.last_at, pace, now, letters.time_zone)}."),
            f"  by language: {tally(letters.languages)}",
            f"  by role: {tally(letters.roles)}",
            f"  by country: {tally(letters.countries)}",
        ]  # fmt: skip
    return lines


def _the_last(start: datetime, latest_due: datetime, pace: Forecast, now: datetime, zone: str) -> str:
    """When the last of some letters goes, in words: at the configured pace, or when it falls due if later."""
    last = last_goes_at(start, latest_due, pace)
    if pace.rate is not None and last > latest_due:
        return f"the last in {in_words((last - now).total_seconds())} at the configured pace ({pace.pace})"
    if latest_due > now:
        return f"the last at {in_zone(latest_due, zone)}, when it falls due"
    return "the last now too"


def _waiting_json(waiting: Waiting, pacer: Pacer, paused_until: datetime | None, now: datetime) -> dict[str, Any]:
    """What still waits, for --json: how many, when the next is due, and when the last goes at the pace."""
    next_due, last = None, None
    if waiting.next_at is not None and waiting.last_at is not None:
        next_due = max(waiting.next_at, paused_until or waiting.next_at)  # the global rate may hold it back longer
        pace = time_needed(waiting.domains, pacer.global_rates, pacer.domain_rates)
        last = last_goes_at(max(next_due, now), waiting.last_at, pace)
    return {"waiting": waiting.count, "next_due": next_due.isoformat() if next_due else None,
            "estimated_last": last.isoformat() if last else None}  # fmt: skip


def _waiting_line(waiting: Waiting, pacer: Pacer, paused_until: datetime | None, now: datetime) -> str:
    """What still waits, in words: "312 letters wait: the next at 2026-12-04 09:30 UTC, the last in about 15 hours
    at the configured pace (20/hour to parliament.example.eu)"."""
    if waiting.next_at is None or waiting.last_at is None:
        return ""
    start = max(waiting.next_at, paused_until or waiting.next_at, now)
    when = "now" if start == now else f"at {in_zone(start, 'UTC')}"
    if waiting.count == 1:
        return f"1 letter waits, due {when}."
    pace = time_needed(waiting.domains, pacer.global_rates, pacer.domain_rates)
    return f"{waiting.count} letters wait: the next {when}, {_the_last(start, waiting.last_at, pace, now, 'UTC')}."


def _print_report(report: SendReport) -> None:
    if report.recovered.get("unknown"):
        err.print(
            f"[yellow]{report.recovered['unknown']} messages were left mid-send by a stopped sender: their fate is "
            "unknown[/yellow] (`outreach send --retry-unknown` sends them again; they may arrive twice)."
        )
    counts = f"{report.sent} sent, {report.retried} to retry later, {report.failed} failed, {report.unknown} unknown"
    err.print(counts + ".")
    if report.paused_until:
        err.print(f"The sending rate (OUTREACH_RATE_LIMIT) allows no more until "
                  f"{report.paused_until:%Y-%m-%d %H:%M} UTC; run `outreach send` again then.")  # fmt: skip
    for recipient, reply in report.failures[:10]:
        err.print(visible(f"  {recipient}: {reply}"), markup=False, highlight=False)  # the server's words
