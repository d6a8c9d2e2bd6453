"""Sending rates as written in the settings (`30/minute, 500/day`), parsed into plain values.

Pure, and below the rooms: config.py parses OUTREACH_RATE_LIMIT and OUTREACH_DOMAIN_RATE_LIMIT with it when the
settings are loaded, and outbox/pacing.py keeps each rate as a sliding window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400,
          "d": 86400}  # fmt: skip
# ASCII digits only: `\d` would take other scripts' digits, and str.isdigit() even superscripts ("²").
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*)\s*([a-z]+)\s*")
_MAX_DIGITS = 9  # a billion a second is no limit at all; int() of thousands of digits would fail


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
        if not found or found[3] not in _UNITS:
            raise RateError(f"rate {_shown(part)} is not N/unit, e.g. 30/minute or 500/day")
        count, multiple = found[1], found[2] or "1"
        if len(count) > _MAX_DIGITS or len(multiple) > _MAX_DIGITS or int(count) < 1 or int(multiple) < 1:
            raise RateError(f"rate {_shown(part)} needs whole numbers from 1 to {10**_MAX_DIGITS - 1:,}")
        rates.append(Rate(int(count), int(multiple) * _UNITS[found[3]]))
    return tuple(rates)


def _shown(part: str) -> str:
    """The part quoted for a message, cut short when it is long."""
    return repr(part if len(part) <= 40 else part[:40] + "…")
