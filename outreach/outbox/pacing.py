"""Pacing: a global sending rate and one per recipient domain, as token buckets on a clock passed in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_UNITS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400,
          "d": 86400}  # fmt: skip
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")


class RateError(ValueError):
    """A rate setting is not `N/unit` (`30/minute, 500/day`)."""


@dataclass(frozen=True)
class Rate:
    """At most `count` messages per `seconds`."""

    count: int
    seconds: float


def parse_rates(text: str) -> tuple[Rate, ...]:
    """Parse `30/minute, 500/day` (also `1/s`, `20/hour`, `100/5min`); empty means no limit."""
    rates = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        found = _RATE.fullmatch(part.lower())
        if not found or found.group(3) not in _UNITS or int(found.group(1)) < 1:
            raise RateError(f"rate {part!r} is not N/unit, e.g. 30/minute or 500/day")
        multiple = int(found.group(2) or 1)
        rates.append(Rate(int(found.group(1)), multiple * _UNITS[found.group(3)]))
    return tuple(rates)


@dataclass
class _Bucket:
    rate: Rate
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate.count, self.tokens + (now - self.updated) * self.rate.count / self.rate.seconds)
        self.updated = now

    def wait(self, now: float) -> float:
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.rate.seconds / self.rate.count

    def spend(self, ages: Iterable[float]) -> None:
        """Count messages sent `ages` seconds ago that fall inside this bucket's window."""
        self.tokens = max(0.0, self.tokens - sum(1 for age in ages if age < self.rate.seconds))


@dataclass
class Pacer:
    """Decides when the next message to a domain may go: every global rate and every domain rate must allow it.

    Each rate is a token bucket that starts full (a burst of `count`, less what was sent within its window before
    this process began, see `seed`) and refills evenly; the clock is a number of seconds handed in, so tests need
    no sleeping. Not thread-safe: the sender calls it under its own lock.
    """

    global_rates: Sequence[Rate] = ()
    domain_rates: Sequence[Rate] = ()
    _global: list[_Bucket] = field(default_factory=list)
    _domains: dict[str, list[_Bucket]] = field(default_factory=dict)
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
        for bucket in self._global_buckets(now):
            bucket.spend(every)
        for domain, ages in ages_by_domain.items():
            for bucket in self._domain_buckets(domain, now):
                bucket.spend(ages)

    def _global_buckets(self, now: float) -> list[_Bucket]:
        if not self._started:
            self._global = [_Bucket(rate, rate.count, now) for rate in self.global_rates]
            self._started = True
        return self._global

    def _domain_buckets(self, domain: str, now: float) -> list[_Bucket]:
        domain = domain.lower()
        if domain not in self._domains:
            self._domains[domain] = [_Bucket(rate, rate.count, now) for rate in self.domain_rates]
        return self._domains[domain]

    def global_wait(self, now: float) -> float:
        """Seconds until any message may go (the global rates, or a pause the server asked for)."""
        held = max(self._all_held_until - now, 0.0)
        return max([held, *(bucket.wait(now) for bucket in self._global_buckets(now))])

    def domain_wait(self, domain: str, now: float) -> float:
        """Seconds until a message to `domain` may go as far as that domain's own limits are concerned."""
        held = max(self._held_until.get(domain.lower(), now) - now, 0.0)
        return max([held, *(bucket.wait(now) for bucket in self._domain_buckets(domain, now))])

    def wait(self, domain: str, now: float) -> float:
        """Seconds until a message to `domain` may go (0 when it may go now)."""
        return max(self.global_wait(now), self.domain_wait(domain, now))

    def take(self, domain: str, now: float) -> bool:
        """Use up one message's allowance for `domain` if it may go now; say whether it did."""
        if self.wait(domain, now) > 0:
            return False
        for bucket in (*self._global_buckets(now), *self._domain_buckets(domain, now)):
            bucket.tokens -= 1
        return True

    def slow_down(self, domain: str, now: float, seconds: float) -> None:
        """Hold a domain back for `seconds` (its server answered 452 or 4.7.x: too many, too fast)."""
        domain = domain.lower()
        self._held_until[domain] = max(self._held_until.get(domain, now), now + seconds)

    def pause(self, now: float, seconds: float) -> None:
        """Hold every message back for `seconds` (the server answered 421: it is closing the connection)."""
        self._all_held_until = max(self._all_held_until, now + seconds)
