"""Pacing: a global sending rate and one per recipient domain, as token buckets on a clock passed in."""

from __future__ import annotations

import re
from collections.abc import Sequence
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


@dataclass
class Pacer:
    """Decides when the next message to a domain may go: every global rate and every domain rate must allow it.

    Each rate is a token bucket that starts full (a burst of `count`) and refills evenly; the clock is a number
    of seconds handed in, so tests need no sleeping.
    """

    global_rates: Sequence[Rate] = ()
    domain_rates: Sequence[Rate] = ()
    _global: list[_Bucket] = field(default_factory=list)
    _domains: dict[str, list[_Bucket]] = field(default_factory=dict)
    _held_until: dict[str, float] = field(default_factory=dict)
    _started: bool = False

    def _buckets(self, domain: str, now: float) -> list[_Bucket]:
        if not self._started:
            self._global = [_Bucket(rate, rate.count, now) for rate in self.global_rates]
            self._started = True
        if domain not in self._domains:
            self._domains[domain] = [_Bucket(rate, rate.count, now) for rate in self.domain_rates]
        return self._global + self._domains[domain]

    def wait(self, domain: str, now: float) -> float:
        """Seconds until a message to `domain` may go (0 when it may go now)."""
        domain = domain.lower()
        held = max(self._held_until.get(domain, now) - now, 0.0)
        return max([held, *(bucket.wait(now) for bucket in self._buckets(domain, now))])

    def take(self, domain: str, now: float) -> bool:
        """Use up one message's allowance for `domain` if it may go now; say whether it did."""
        if self.wait(domain, now) > 0:
            return False
        for bucket in self._buckets(domain.lower(), now):
            bucket.tokens -= 1
        return True

    def slow_down(self, domain: str, now: float, seconds: float) -> None:
        """Hold a domain back for `seconds` (its server answered 421 or 4.7.x)."""
        domain = domain.lower()
        self._held_until[domain] = max(self._held_until.get(domain, now), now + seconds)
