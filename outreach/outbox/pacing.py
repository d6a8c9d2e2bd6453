"""Pacing: a global sending rate and one per recipient domain, as sliding windows on a clock passed in.

A limit of N per period is counted the way mail providers count it: at most N messages in any period-long
window, so "500/day" never lets a 501st message go within 24 hours of the first (a token bucket starting full
would let through a full bucket and then its refill: nearly twice the limit in the first period). The rates
arrive parsed (outreach/rates.py, when the settings are loaded).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from outreach.rates import Rate


@dataclass
class _Window:
    """One limit: when each message of the current window went, oldest first (at most `count` of them)."""

    rate: Rate
    sent: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        """Seconds until the window has room for one more message."""
        while self.sent and self.sent[0] <= now - self.rate.seconds:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.rate.count else self.sent[0] + self.rate.seconds - now

    def take(self, now: float) -> None:
        """Count a message that goes now."""
        self.sent.append(now)

    def spend(self, now: float, ages: Iterable[float]) -> None:
        """Count messages sent `ages` seconds ago that fall inside this window."""
        self.sent.extend(now - age for age in sorted(ages, reverse=True) if age < self.rate.seconds)
        while len(self.sent) > self.rate.count:  # more than the limit went before: only the latest count
            self.sent.popleft()


@dataclass
class Pacer:
    """Decides when the next message to a domain may go: every global rate and every domain rate must allow it.

    Each rate is a sliding window that starts with what was sent within it before this process began (`seed`); the
    clock is a number of seconds handed in, so tests need no sleeping. Not thread-safe: the sender calls it under
    its own lock.
    """

    global_rates: Sequence[Rate] = ()
    domain_rates: Sequence[Rate] = ()
    _global: list[_Window] = field(default_factory=list)
    _domains: dict[str, list[_Window]] = field(default_factory=dict)
    _held_until: dict[str, float] = field(default_factory=dict)
    _all_held_until: float = 0.0
    _started: bool = False

    @property
    def window(self) -> float:
        """The longest window of any rate, in seconds (0 without limits): how far back `seed` needs to look."""
        return max((rate.seconds for rate in (*self.global_rates, *self.domain_rates)), default=0.0)

    def seed(self, now: float, ages_by_domain: Mapping[str, Sequence[float]]) -> None:
        """Start from what earlier runs sent: for each domain, how many seconds ago each message went out."""
        every = [age for ages in ages_by_domain.values() for age in ages]
        for window in self._global_windows(now):
            window.spend(now, every)
        for domain, ages in ages_by_domain.items():
            for window in self._domain_windows(domain, now):
                window.spend(now, ages)

    def _global_windows(self, now: float) -> list[_Window]:
        if not self._started:
            self._global = [_Window(rate) for rate in self.global_rates]
            self._started = True
        return self._global

    def _domain_windows(self, domain: str, now: float) -> list[_Window]:
        domain = domain.lower()
        if domain not in self._domains:
            self._domains[domain] = [_Window(rate) for rate in self.domain_rates]
        return self._domains[domain]

    def global_wait(self, now: float) -> float:
        """Seconds until any message may go (the global rates, or a pause the server asked for)."""
        held = max(self._all_held_until - now, 0.0)
        return max([held, *(window.wait(now) for window in self._global_windows(now))])

    def domain_wait(self, domain: str, now: float) -> float:
        """Seconds until a message to `domain` may go as far as that domain's own limits are concerned."""
        held = max(self._held_until.get(domain.lower(), now) - now, 0.0)
        return max([held, *(window.wait(now) for window in self._domain_windows(domain, now))])

    def wait(self, domain: str, now: float) -> float:
        """Seconds until a message to `domain` may go (0 when it may go now)."""
        return max(self.global_wait(now), self.domain_wait(domain, now))

    def take(self, domain: str, now: float) -> bool:
        """Use up one message's allowance for `domain` if it may go now; say whether it did."""
        if self.wait(domain, now) > 0:
            return False
        for window in (*self._global_windows(now), *self._domain_windows(domain, now)):
            window.take(now)
        return True

    def slow_down(self, domain: str, now: float, seconds: float) -> None:
        """Hold a domain back for `seconds` (its server answered 452 or 4.7.x: too many, too fast)."""
        domain = domain.lower()
        self._held_until[domain] = max(self._held_until.get(domain, now), now + seconds)

    def pause(self, now: float, seconds: float) -> None:
        """Hold every message back for `seconds` (the server answered 421: it is closing the connection)."""
        self._all_held_until = max(self._all_held_until, now + seconds)
