"""The pace forecast: how long letters take to go at the configured rates, and that time said in words."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from outreach.rates import Rate

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


@dataclass(frozen=True)
class Forecast:
    """How many seconds letters need at the configured pace, and the limit that sets it: a global rate
    (`domain` None) or the rate of one recipient domain. `rate` is None when no limit holds anything back."""

    seconds: float
    rate: Rate | None = None
    domain: str | None = None

    @property
    def pace(self) -> str:
        """The limit that binds, in words: "20/hour to parliament.example.eu", "500/day in all", or ""."""
        if self.rate is None:
            return ""
        return f"{rate_in_words(self.rate)} " + (f"to {self.domain}" if self.domain else "in all")


def letters_need(letters: int, rate: Rate) -> float:
    """Seconds from the first of `letters` to the last under one limit of `count` per `seconds`, counted as a
    sliding window: each window lets `count` go, so the last goes when the window it falls in opens."""
    if letters <= rate.count:
        return 0.0
    return (math.ceil(letters / rate.count) - 1) * rate.seconds


def time_needed(per_domain: Mapping[str, int], global_rates: Sequence[Rate], domain_rates: Sequence[Rate]) -> Forecast:
    """How long sending `per_domain` letters (recipient domain -> count) takes: the global rates bound the total,
    the domain rates each domain's share; the slowest of them sets the time."""
    slowest = Forecast(0.0)
    total = sum(per_domain.values())
    for rate in global_rates:
        if (seconds := letters_need(total, rate)) > slowest.seconds:
            slowest = Forecast(seconds, rate)
    for domain, letters in sorted(per_domain.items()):
        for rate in domain_rates:
            if (seconds := letters_need(letters, rate)) > slowest.seconds:
                slowest = Forecast(seconds, rate, domain)
    return slowest


def last_goes_at(first_at: datetime, latest_due: datetime, forecast: Forecast) -> datetime:
    """When the last letter goes: the forecast's time after the first goes, or when the latest falls due if that
    is later still."""
    return max(latest_due, first_at + timedelta(seconds=forecast.seconds))


def rate_in_words(rate: Rate) -> str:
    """A rate as a campaigner writes it: "20/hour", "100/5 minutes"."""
    for unit, size in _UNITS:
        if rate.seconds % size == 0:
            multiple = int(rate.seconds // size)
            return f"{rate.count}/{unit}" if multiple == 1 else f"{rate.count}/{multiple} {unit}s"
    return f"{rate.count}/{rate.seconds:g} seconds"


def in_words(seconds: float) -> str:
    """A duration as a person says it: "under a minute", "about 4 minutes", "about 2 hours 10 minutes",
    "about 33 hours", "about 2 days 3 hours"; minutes only below ten hours, days from two days on."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {_count(minutes, 'minute')}"
    if minutes < 10 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"about {_count(hours, 'hour')}" + (f" {_count(minutes, 'minute')}" if minutes else "")
    hours = round(seconds / 3600)
    if hours < 48:
        return f"about {_count(hours, 'hour')}"
    days, hours = divmod(hours, 24)
    return f"about {_count(days, 'day')}" + (f" {_count(hours, 'hour')}" if hours else "")


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"
