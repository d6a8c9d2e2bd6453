"""The feed: hands out the next message a connection may send, keeping the pace, to any number of connections."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from outreach.outbox.claims import LEASE, Claimed, claim, give_back
from outreach.outbox.pacing import Pacer
from outreach.rendering.letters import domain_of

if TYPE_CHECKING:
    from outreach.outbox.sending import Sending, SendReport

LONGEST_PAUSE = 60.0  # seconds a drain waits for the global rate; past that it stops and says when to come back
# A claim holds about this many seconds of sending, at the pace messages have been going. What a sender holds, no
# other can send: at the end of a drain the other senders would stop while this one still sends its claim (16
# messages to a server that answers in 100 ms kept the others waiting 1.6 s), and a killed sender's claim waits for
# recovery. A claim is one short transaction, a millisecond or two: a fifth of a second of messages makes it cheap.
CLAIM_SECONDS = 0.2
CLAIM_MOST = 16  # messages a claim holds at most, for each connection: a fast server needs no more


class Feed:
    """Hands out the next message a connection may send, to any number of connection threads.

    It claims small batches (as many messages as go out in CLAIM_SECONDS at the pace they have been going), keeps
    the pace (a domain over its limit gives the message back for later and goes on with other domains; the global
    rate makes everyone wait, or ends the drain when the wait is long), counts towards the limit, and gives back
    whatever is still claimed when the drain ends.
    """

    def __init__(self, sessions: sessionmaker[Session], sending: Sending, report: SendReport,
                 campaign: str | None, limit: int | None, stop: Callable[[], bool]) -> None:  # fmt: skip
        self.sessions, self.sending, self.report = sessions, sending, report
        self.limit, self.stop = limit, stop
        self.lock = threading.Lock()
        self.buffer: deque[Claimed] = deque()
        self.campaign = campaign
        self.handed = 0
        self.finished = False
        self.error: BaseException | None = None
        self.most = CLAIM_MOST * sending.connections
        self.claimed_at = sending.clock()
        self.gap: float | None = None  # seconds between two messages done, averaged; None until one is
        self.done_at = sending.monotonic()

    def next(self, *, block: bool = True) -> Claimed | None:
        """The next message to send, or None when the drain is over (or, with `block` False,
        when the global rate would make it wait first, or another connection is busy in the feed)."""
        if not self.lock.acquire(blocking=block):
            return None
        try:
            return self._next(block)
        finally:
            self.lock.release()

    def _next(self, block: bool) -> Claimed | None:
        """`next`, under the lock."""
        while not (self.finished or self.stop() or (self.limit is not None and self.handed >= self.limit)):
            if self.buffer and self.sending.clock() - self.claimed_at > LEASE / 2:
                self._give_back_all()  # a slow pace kept these long: claim afresh rather than outlive the lease
            if not self.buffer and not self._fill():
                self.finished = True
                break
            message = self.buffer[0]
            domain = domain_of(message.recipient)
            pacer, now = self.sending.pacer, self.sending.monotonic()
            wait = pacer.global_wait(now)
            if wait > LONGEST_PAUSE:
                self.report.paused_until = self.sending.clock() + timedelta(seconds=wait)
                self.finished = True
                break
            if wait > 0:
                if not block:
                    return None
                self._pause(wait)  # everyone waits for the global rate: the lock is held on purpose
                continue
            self.buffer.popleft()
            wait = pacer.domain_wait(domain, now)
            if wait > 0:
                # Not now for this domain: give the message back with its time, go on with other domains.
                give_back(self.sessions, self.sending.worker,
                           [(message.id, self.sending.clock() + timedelta(seconds=wait))],
                           self.sending.clock())  # fmt: skip
                self.report.deferred += 1
                continue
            pacer.take(domain, now)
            self.handed += 1
            return message
        return None

    def batch(self) -> int:
        """How many messages the next claim takes: CLAIM_SECONDS of sending at the pace seen so far, between one a
        connection (until a message is done, the pace is not known) and CLAIM_MOST a connection."""
        if self.gap is None:
            return self.sending.connections
        return max(1, min(self.most, round(CLAIM_SECONDS / max(self.gap, 1e-6))))

    def _fill(self) -> bool:
        room = self.batch() if self.limit is None else min(self.batch(), self.limit - self.handed)
        self.claimed_at = self.sending.clock()
        claimed = claim(self.sessions, self.sending.worker, self.claimed_at, self.campaign, room)
        self.buffer.extend(claimed)
        return bool(claimed)

    def _give_back_all(self) -> None:
        """Give back what was claimed and not tried, due as it was (under the lock)."""
        left = [(message.id, message.next_attempt_at) for message in self.buffer]
        self.buffer.clear()
        give_back(self.sessions, self.sending.worker, left, self.sending.clock())

    def _pause(self, seconds: float) -> None:
        """Sleep, in short steps so that a stop request is heard."""
        end = self.sending.monotonic() + seconds
        while not self.stop() and (left := end - self.sending.monotonic()) > 0:
            self.sending.sleep(min(left, 0.2))

    def record(self, update_report: Callable[[SendReport], None], progress: Callable[[SendReport], None] | None,
               slow_down: Callable[[Pacer, float], None] | None = None) -> None:  # fmt: skip
        """Update the report (and the pace) under the lock, and tell the progress display; the time since the
        message before was done tells how large a claim should be."""
        with self.lock:
            now = self.sending.monotonic()
            gap, self.done_at = now - self.done_at, now
            # An average over about the last eight messages: one slow answer does not shrink the next claim to one.
            self.gap = gap if self.gap is None else self.gap + (gap - self.gap) / 8
            update_report(self.report)
            if slow_down:
                slow_down(self.sending.pacer, self.sending.monotonic())
            if progress:
                progress(self.report)

    def fail(self, error: BaseException) -> None:
        """A connection thread hit an error: remember the first, and stop handing out messages."""
        with self.lock:
            self.error = self.error or error
            self.finished = True

    def close(self) -> None:
        """Give back what was claimed and not tried, due as it was."""
        with self.lock:
            self._give_back_all()
