"""`outreach run`: the scheduler that queues follow-ups, sends what is due and reads the inbox, until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.output import JsonOption, YesOption, confirm, emit_json, err
from outreach.cli.responses import inbox_of
from outreach.cli.sending import build_sending, describe_first_letters, stop_on_signals
from outreach.errors import LockedError, OutreachError
from outreach.untrusted import visible

if TYPE_CHECKING:
    from outreach.outbox.sending import SendReport
    from outreach.scheduler import Jobs
    from outreach.workspace import Workspace

# The services are imported inside each function: they bring SQLAlchemy and the mail libraries, and shell completion
# and --help load this module without running the scheduler.


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Log:
    """Where the scheduler says what it does: stderr, a line at a time, without the passwords (a job's error may
    quote what a server echoed of the login)."""

    scrub: Callable[[str], str]

    def __call__(self, line: str) -> None:
        """One line on stderr, with the time it happened (UTC): the scheduler runs for days."""
        err.print(f"{_now():%H:%M:%S} {visible(self.scrub(line))}", markup=False, highlight=False)

    def error(self, job: str, error: Exception) -> None:
        """A job failed: say so once (the job tries again at its next tick)."""
        reason = error.format_message() if isinstance(error, OutreachError) else f"{type(error).__name__}: {error}"
        first = self.scrub(reason).splitlines()  # scrubbed whole: a password may hold a line break
        self(f"{job} failed: {first[0] if first else ''} (it tries again at its next run)")


@dataclass
class _Sent:
    """What the drains did, added up."""

    say: _Log
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    paused_until: datetime | None = None

    def add(self, report: SendReport) -> None:
        """Count one drain, and say what it did."""
        self.sent, self.retried = self.sent + report.sent, self.retried + report.retried
        self.failed, self.unknown = self.failed + report.failed, self.unknown + report.unknown
        if report.recovered.get("unknown"):
            self.say(f"{report.recovered['unknown']} messages were left mid-send by a stopped sender: their fate is "
                     "unknown (`outreach send --retry-unknown` sends them again; they may arrive twice).")  # fmt: skip
        if report.tried:
            self.say(f"sent {report.sent}, {report.retried} to retry later, {report.failed} failed, "
                     f"{report.unknown} unknown.")  # fmt: skip
        for recipient, reply in report.failures[:10]:
            self.say(f"  {recipient}: {reply}")
        if report.paused_until and report.paused_until != self.paused_until:
            self.say(f"the sending rate (OUTREACH_RATE_LIMIT) allows no more until "
                     f"{report.paused_until:%Y-%m-%d %H:%M} UTC; sending carries on then.")  # fmt: skip
        self.paused_until = report.paused_until


def _jobs(workspace: Workspace, sent: _Sent) -> Jobs:
    """The scheduler's jobs, as calls into the services with the workspace's settings."""
    from outreach.campaigns.queueing import queue_followups
    from outreach.outbox.sending import drain_outbox
    from outreach.responses.polling import poll
    from outreach.responses.sources import source_for
    from outreach.scheduler import Jobs

    sessions = workspace.sessions

    def follow_ups(now: datetime) -> int:
        report = queue_followups(sessions, workspace.templates, workspace.sender(), now=now,
                                 limits=workspace.render_limits())  # fmt: skip
        if report.queued or report.skipped:
            skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
            sent.say(f"queued {report.queued} follow-ups" + (f" (skipped: {skipped})" if skipped else "") + ".")
        return report.queued

    def send(stop: Callable[[], bool]) -> int:
        # A fresh Sending each time: its pacer starts from what the database says went out, and would count that
        # twice if it were kept. On SQLite, an `outreach send` at work keeps this drain out, and the other way round.
        with workspace.exclusive("send"):
            report = drain_outbox(sessions, build_sending(workspace), stop=stop)
        sent.add(report)
        return report.tried

    imap = workspace.imap_settings()
    if imap is None:
        return Jobs(follow_ups, send, None)
    settings = workspace.settings

    def poll_inbox() -> int:
        reader = source_for("imap", imap, settings.imap_move_to or None, folder=settings.imap_folder)
        try:
            report = poll(sessions, reader, inbox_of(workspace), now=_now)
        finally:
            reader.close()
        if report.recorded:
            kinds = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in report.kinds.most_common())
            sent.say(f"{reader.name}: recorded {report.recorded} new responses ({kinds}).")
        return report.recorded

    return Jobs(follow_ups, send, poll_inbox)


def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run each job until nothing is due, then exit.")] = False,
    wait: Annotated[
        bool, typer.Option(help="If another scheduler leads this database, wait to take over instead of exiting.")
    ] = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Queue follow-ups as they fall due, send what is due and read the inbox, until stopped (SIGTERM, Ctrl-C).

    Where campaigns that have sent nothing yet have first letters queued, it shows them first and asks, once, at
    the start (`--yes` answers for unattended use)."""
    from outreach.campaigns.plan import format_delay
    from outreach.outbox.claims import worker_name
    from outreach.outbox.records import first_letters
    from outreach.scheduler import INTERVALS, beat, lead, resume, run_scheduler

    workspace: Workspace = ctx.obj.workspace()
    pacer = build_sending(workspace).pacer  # a setting that cannot work stops the run before it takes the lead
    sessions = workspace.sessions
    # Asked before taking the lead: a scheduler waiting for an answer would keep another out, and one started
    # with --wait would ask only once it leads, maybe hours later.
    firsts = first_letters(sessions, due_by=None)
    if firsts:
        question = "Start, and send these first letters as they fall due?"
        confirm(describe_first_letters(firsts, pacer, _now()), question, yes)
    holder = worker_name()
    grace = workspace.settings.misfire_grace
    say = _Log(workspace.settings.scrubber())
    sent = _Sent(say)
    jobs = _jobs(workspace, sent)
    stop = threading.Event()
    lost: list[str] = []
    with lead(workspace, holder, wait=wait) as still_leads, stop_on_signals(stop):
        resumed = resume(sessions, jobs, holder, now=_now(), grace=timedelta(seconds=grace))
        if resumed.held:
            grace_text = format_delay(timedelta(seconds=grace)) if grace % 60 == 0 else f"{grace} s"
            say(f"{resumed.held} messages fell due more than {grace_text} ago while no scheduler ran: held; "
                "`outreach outbox release` sends them.")  # fmt: skip
        if not once:
            inbox = f"the inbox every {INTERVALS.poll:.0f} s" if jobs.poll else "no inbox (OUTREACH_IMAP_HOST unset)"
            say(f"running as {holder}: sending every {INTERVALS.send:.0f} s, follow-ups every "
                f"{INTERVALS.follow_ups:.0f} s, {inbox}. SIGTERM or Ctrl-C stops it.")  # fmt: skip

        def heartbeat() -> None:
            if not still_leads():  # another scheduler may lead now: stop rather than run beside it
                lost.append("the connection that held the lead broke")
                stop.set()
                return
            beat(sessions, holder, _now())

        report = run_scheduler(jobs, stop=stop, once=once, heartbeat=heartbeat, on_error=say.error, scrub=say.scrub)
        heartbeat()  # the last time it was seen alive: what falls due from now on was missed
    if lost:
        raise LockedError(f"`outreach run` stopped: {lost[0]}, so it no longer leads this database",
                          hint="start it again; what is due is sent then")  # fmt: skip
    follow_ups = resumed.follow_ups + report.follow_ups
    if json_output:
        emit_json({"held": resumed.held, "sent": sent.sent, "follow_ups": follow_ups, "polled": report.polled,
                   "rounds": report.rounds})  # fmt: skip
        return
    ended = "Nothing more is due" if once and not stop.is_set() else "Stopped"
    rounds = f"{report.rounds} {'round' if report.rounds == 1 else 'rounds'}"
    err.print(f"{ended} after {rounds}: "
              f"{sent.sent} sent ({sent.retried} to retry later, {sent.failed} failed, {sent.unknown} unknown), "
              f"{follow_ups} follow-ups queued, {report.polled} responses recorded, {resumed.held} held.")  # fmt: skip
