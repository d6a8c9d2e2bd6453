"""`outreach run`: a few fixed APScheduler jobs over a schedule that lives in the database, one leader at a time.

The schedule is the outbox (`next_attempt_at`) and the campaigns' steps, so the scheduler keeps nothing of its own
(STYLE 11): interval jobs with fixed ids read the tables (queue the follow-ups that fell due, send what is due,
read the inbox, say it is alive), and a restart carries on from where the database stands. One scheduler leads a
database at a time: a PostgreSQL advisory lock, or the workspace's lock file on SQLite. What fell due while no
scheduler ran is sent on start if it fell due within the grace period (OUTREACH_MISFIRE_GRACE), else held until the
campaigner releases it: a letter meant for Monday morning should not go out on Thursday night unasked.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from sqlalchemy import Connection, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import SchedulerLease, as_utc
from outreach.errors import LockedError
from outreach.outbox.records import hold_missed
from outreach.workspace import Workspace

LEASE = "run"  # the row of `scheduler_leases` the leader keeps
# The PostgreSQL advisory lock every scheduler asks for: a fixed bigint, so that all of them ask for the same one.
LEAD_KEY = zlib.crc32(b"outreach run")
JOBS = ("follow-ups", "send", "poll")  # the order of a round: what falls due is queued, then sent, then answered
_TAKE_OVER = "stop it first, or start this one with --wait to take over when it stops"
# The loggers that may print while the scheduler runs: its own, and those APScheduler's executors log a job's
# escaped exception to (a traceback whose text may quote what a server echoed).
_LOGGERS = ("outreach.scheduler", "apscheduler.executors.default", "apscheduler.executors.heartbeat")


@dataclass(frozen=True)
class Intervals:
    """Seconds between two runs of each job."""

    send: float = 5.0
    follow_ups: float = 60.0
    poll: float = 300.0
    heartbeat: float = 30.0


INTERVALS = Intervals()


@dataclass
class Jobs:
    """The work, as calls into the services; each says how much it did, so that `--once` knows when to stop."""

    follow_ups: Callable[[datetime], int]  # queue the follow-ups that fell due by then; how many were queued
    send: Callable[[Callable[[], bool]], int]  # drain what is due until told to stop; how many were tried
    poll: Callable[[], int] | None  # read the inbox; how many responses were recorded (None: no inbox configured)


@dataclass
class RunReport:
    """What the jobs did while the scheduler ran."""

    follow_ups: int = 0
    tried: int = 0
    polled: int = 0
    rounds: int = 0  # how many times the send job ran


@dataclass(frozen=True)
class Resumed:
    """What taking over the schedule found: when the last scheduler was last alive, and what it did about it."""

    last_seen: datetime | None
    follow_ups: int
    held: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _nothing() -> None:
    return None


def _unchanged(text: str) -> str:
    return text


@contextmanager
def lead(workspace: Workspace, holder: str, *, wait: bool) -> Iterator[Callable[[], bool]]:
    """Lead the workspace's database while the block runs, or raise LockedError naming the scheduler that leads
    it (with `wait`, wait for it to stop instead). The block gets a check that the lead is still held."""
    if workspace.engine.dialect.name == "postgresql":
        with _advisory_lead(workspace, holder, wait=wait) as still_leads:
            yield still_leads
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(workspace.exclusive("run", wait=-1 if wait else 0))
        except LockedError as error:  # only the lock's own: the block's errors pass untouched
            raise LockedError(error.message, where=error.where, hint=_TAKE_OVER) from None
        yield lambda: True  # a lock file held by this process stays held while it runs


@contextmanager
def _advisory_lead(workspace: Workspace, holder: str, *, wait: bool) -> Iterator[Callable[[], bool]]:
    """A session-level advisory lock on a connection of its own, held for the scheduler's lifetime: it goes with
    the session, so a scheduler that is killed (or loses its connection) leaves the lead free at once."""
    # Autocommit: the connection sits idle for hours, and must not do so inside a transaction (which
    # idle_in_transaction_session_timeout would end, and the lock with it).
    connection = workspace.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        # Shown in pg_stat_activity, so that a look at the server says which scheduler holds the lead.
        connection.execute(text("SELECT set_config('application_name', :name, false)"),
                           {"name": f"outreach run {holder}"[:63]})  # fmt: skip
        while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEAD_KEY}).scalar_one():
            if not wait:
                raise LockedError(f"another `outreach run` is running on this database ({_leader(connection)})",
                                  hint=_TAKE_OVER)  # fmt: skip
            time.sleep(1.0)
        try:
            yield lambda: _holds(connection)
        finally:
            with suppress(SQLAlchemyError):  # a broken connection has let the lock go already
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEAD_KEY})
    finally:
        connection.close()


def _holds(connection: Connection) -> bool:
    """True while the lock connection is alive and still holds the lead: were the connection to break (a server
    restart, a network cut), the lock would be gone with its session and another scheduler could lead."""
    held = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = 0 AND objid::bigint = :key AND objsubid = 1 AND granted)")  # fmt: skip
    try:
        return bool(connection.execute(held, {"key": LEAD_KEY}).scalar_one())
    except SQLAlchemyError:
        return False


def _leader(connection: Connection) -> str:
    """Who leads, as its lease row says: the process and since when."""
    row = connection.execute(text("SELECT holder, started_at FROM scheduler_leases WHERE name = :name"),
                             {"name": LEASE}).first()  # fmt: skip
    if row is None:
        return "another process"
    return f"process {row.holder}, since {row.started_at.astimezone(UTC).isoformat(timespec='seconds')}"


def resume(sessions: sessionmaker[Session], jobs: Jobs, holder: str, *, now: datetime, grace: timedelta) -> Resumed:
    """Take over the schedule where the last scheduler left it, before anything is sent: queue the follow-ups that
    fell due meanwhile, hold what fell due while no scheduler ran and longer than `grace` ago, and take the lease.

    The follow-ups are queued first, each due when it fell due, so that the same rule holds them too. On the first
    run ever (no lease yet) nothing is held: there is no telling what was missed.
    """
    with sessions() as session:
        lease = session.get(SchedulerLease, LEASE)
        last_seen = as_utc(lease.seen_at) if lease is not None else None
    follow_ups = jobs.follow_ups(now)
    held = hold_missed(sessions, since=last_seen, before=now - grace, now=now) if last_seen is not None else 0
    with sessions.begin() as session:
        lease = session.get(SchedulerLease, LEASE)
        if lease is None:
            session.add(SchedulerLease(name=LEASE, holder=holder, started_at=now, seen_at=now))
        else:
            lease.holder, lease.started_at, lease.seen_at = holder, now, now
    return Resumed(last_seen, follow_ups, held)


def beat(sessions: sessionmaker[Session], holder: str, now: datetime) -> bool:
    """Record that the scheduler `holder` is alive at `now`; False when the lease is no longer its own."""
    with sessions.begin() as session:
        moved = session.execute(
            update(SchedulerLease).where(SchedulerLease.name == LEASE, SchedulerLease.holder == holder)
            .values(seen_at=now)
        ).rowcount  # type: ignore[attr-defined]  # fmt: skip
    return bool(moved)


class _Runner:
    """Runs the jobs by name and counts what they did; in the long-running mode, a job's error is reported (once,
    until the job works again) and the job tries again at its next tick."""

    def __init__(self, jobs: Jobs, stop: threading.Event, clock: Callable[[], datetime],
                 heartbeat: Callable[[], object], on_error: Callable[[str, Exception], None] | None,
                 once: bool) -> None:  # fmt: skip
        self.jobs, self.stop, self.clock, self.heartbeat = jobs, stop, clock, heartbeat
        self.on_error, self.once = on_error, once
        self.report = RunReport()
        self.lock = threading.Lock()
        self.failing: dict[str, str] = {}  # job -> the error last reported

    def run(self, job: str) -> int:
        """Run one job, unless a stop was asked for (a tick queued behind a long drain then does nothing)."""
        if self.stop.is_set():
            return 0
        try:
            done = self._call(job)
        except Exception as error:
            if self.once or self.on_error is None:
                raise
            if self.failing.get(job) != str(error):
                self.failing[job] = str(error)
                self.on_error(job, error)
            return 0
        self.failing.pop(job, None)
        return done

    def _call(self, job: str) -> int:
        if job == "heartbeat":
            self.heartbeat()
            return 0
        if job == "follow-ups":
            done = self.jobs.follow_ups(self.clock())
        elif job == "send":
            done = self.jobs.send(self.stop.is_set)
        else:
            done = self.jobs.poll() if self.jobs.poll is not None else 0
        with self.lock:
            report = self.report
            if job == "follow-ups":
                report.follow_ups += done
            elif job == "send":
                report.tried, report.rounds = report.tried + done, report.rounds + 1
            else:
                report.polled += done
        return done

    def burst(self) -> RunReport:
        """Run the jobs in turn until a whole round does nothing (rq's `work(burst=True)`)."""
        while not self.stop.is_set():
            done = 0
            for job in JOBS:
                done += self.run(job)
            self.run("heartbeat")
            if done == 0:
                break
        return self.report


def _tick(runner: _Runner, job: str) -> None:
    """What APScheduler runs: one job, by its id."""
    runner.run(job)


def run_scheduler(
    jobs: Jobs,
    *,
    stop: threading.Event,
    intervals: Intervals = INTERVALS,
    once: bool = False,
    heartbeat: Callable[[], object] = _nothing,
    clock: Callable[[], datetime] = _utcnow,
    on_error: Callable[[str, Exception], None] | None = None,
    scrub: Callable[[str], str] = _unchanged,
) -> RunReport:
    """Run the jobs until `stop` is set (with `once`, until a round finds nothing to do), and say what they did.

    On stop, the send in progress is told to stop (its transaction in flight finishes, nothing new starts) and
    waited for; so is any other job that is running. What the scheduler's loggers print meanwhile goes through
    `scrub` (the workspace's passwords out).
    """
    runner = _Runner(jobs, stop, clock, heartbeat, on_error, once)
    if once:
        return runner.burst()
    # One worker for the work, so that jobs take turns: on SQLite they would only wait for each other's writes,
    # and the follow-ups a round queues are best sent by the send that follows. The heartbeat has a worker of its
    # own, so that a drain that takes an hour (at 1/second) does not look like a scheduler that died.
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(1), "heartbeat": ThreadPoolExecutor(1)},
        timezone=UTC,
        # APScheduler warns at every tick that finds the job still running (max_instances): expected here, as a
        # drain outlasts many 5-second ticks. Job errors are reported by the runner, so nothing is lost.
        logger=_quiet_logger(),
    )
    start = datetime.now(UTC)
    every = {"follow-ups": intervals.follow_ups, "send": intervals.send, "poll": intervals.poll,
             "heartbeat": intervals.heartbeat}  # fmt: skip
    for order, job in enumerate((*JOBS, "heartbeat")):
        if job == "poll" and jobs.poll is None:
            continue
        scheduler.add_job(
            _tick, "interval", args=(runner, job), id=job, name=job, seconds=every[job],
            next_run_time=start + timedelta(milliseconds=10 * order),  # at once, in the order of a round
            executor="heartbeat" if job == "heartbeat" else "default",
            replace_existing=True, max_instances=1, coalesce=True,
            # Every job reads what is due from the database, so running late loses nothing: a job that missed its
            # ticks (the previous run was long, the machine slept) runs, however late, and only once (coalesce).
            misfire_grace_time=None,
        )  # fmt: skip
    scrubbing = _Scrubbing(scrub)
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addFilter(scrubbing)
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stop.set()  # a second Ctrl-C lands here too: the drain hears the stop and finishes what is in flight
        scheduler.shutdown(wait=True)
        for logger in loggers:
            logger.removeFilter(scrubbing)
    return runner.report


class _Scrubbing(logging.Filter):
    """Passes every record on with its text, and its traceback's, scrubbed."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message and traceback by their scrubbed text; keep the record."""
        record.msg, record.args = self.scrub(record.getMessage()), None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def _quiet_logger() -> logging.Logger:
    """The scheduler's logger: errors only."""
    logger = logging.getLogger("outreach.scheduler")
    logger.setLevel(logging.ERROR)
    return logger
