"""When a letter may go: delays, office hours and time zones, read in the recipient's own time.

Everything here takes instants and returns aware UTC instants; the zone of a person is applied only to decide, as
STYLE.md asks. Wall-clock arithmetic follows PEP 495: a wall time in the spring-forward gap is read with the offset
from before the change (so it lands the gap's length later), and one in the autumn fold is the first of its two
occurrences unless that has already passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.core import get_global

from outreach.errors import InvalidValueError

_DELAY_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# Each unit once, largest first: "1d12h", "2w", "90m"; spaces between the parts are tolerated ("1d 12h").
_DELAY = re.compile(r"(?:(\d+)w)?\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?")
# A follow-up a year after the letter before it is a new campaign, and the cap keeps datetime arithmetic in range.
_LONGEST_DELAY = timedelta(days=365)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_AT = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T]+(\d{1,2}):(\d{2}))?")
# Days `place` looks ahead: a weekend, plus the odd day a DST gap swallows a window, with room to spare.
_HORIZON = 15
_SECOND = timedelta(seconds=1)

# Babel (CLDR) lists a country's zones in no useful order: US starts with America/Adak, RU with Europe/Astrakhan, ES
# with Africa/Ceuta, PT with Atlantic/Madeira. A letter to a head of state or an MP goes to the seat of government,
# so a country with several zones gets the zone of its capital (Canberra keeps Sydney's time, Brasilia Sao Paulo's,
# Ottawa Toronto's, Astana Almaty's, Ramallah Hebron's). tests/test_plan.py keeps this table in step with Babel's.
# AQ and UM are left out on purpose: no government of their own, so their contacts get the fallback zone.
CAPITAL_ZONES: dict[str, str] = {
    "AR": "America/Argentina/Buenos_Aires", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
    "CA": "America/Toronto", "CD": "Africa/Kinshasa", "CL": "America/Santiago", "CN": "Asia/Shanghai",
    "CY": "Asia/Nicosia", "DE": "Europe/Berlin", "EC": "America/Guayaquil", "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei", "GL": "America/Nuuk", "ID": "Asia/Jakarta", "KI": "Pacific/Tarawa", "KZ": "Asia/Almaty",
    "MH": "Pacific/Majuro", "MN": "Asia/Ulaanbaatar", "MX": "America/Mexico_City", "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland", "PF": "Pacific/Tahiti", "PG": "Pacific/Port_Moresby", "PS": "Asia/Hebron",
    "PT": "Europe/Lisbon", "RU": "Europe/Moscow", "UA": "Europe/Kyiv", "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}  # fmt: skip
# Keys a zoneinfo directory holds that name this machine's setting rather than a place.
_NOT_PLACES = frozenset({"localtime", "posixrules"})


def parse_delay(text: str, *, what: str = "--after") -> timedelta:
    """Read a delay such as `7d`, `36h`, `2w`, `90m` or `1d12h` (weeks, days, hours, minutes), longer than zero."""
    found = _DELAY.fullmatch(text.strip().lower())
    if not found or not any(found.groups()):
        raise InvalidValueError(f"{what} {text!r} is not a delay: use 7d, 36h, 2w or 90m", hint="units combine: 1d12h")
    delay = sum(
        (int(count) * unit for count, unit in zip(found.groups(), _DELAY_UNITS.values(), strict=True) if count),
        timedelta(),
    )
    if delay <= timedelta():
        raise InvalidValueError(f"{what} {text!r} is no delay at all", hint="a follow-up needs a delay such as 7d")
    if delay > _LONGEST_DELAY:
        raise InvalidValueError(f"{what} {text!r} is longer than a year", hint="start a new campaign instead")
    return delay


def format_delay(delta: timedelta) -> str:
    """Write a delay for people and for `parse_delay`: whole days, then the rest in hours, or in minutes if it is not
    a whole number of hours ("7d", "1d12h", "90m"); zero is "0m" (a campaign's first letter)."""
    if delta < timedelta() or delta % timedelta(minutes=1):
        raise ValueError(f"delay {delta} is not a whole number of minutes from zero up")
    days, rest = divmod(delta, timedelta(days=1))
    text = f"{days}d" if days else ""
    if rest % timedelta(hours=1) == timedelta():
        text += f"{rest // timedelta(hours=1)}h" if rest else ""
    else:
        text += f"{rest // timedelta(minutes=1)}m"
    return text or "0m"


def parse_clock(text: str, what: str) -> time:
    """Read a time of day `HH:MM` (24-hour clock; `9:30` too); `what` names the option in the error."""
    found = _CLOCK.fullmatch(text.strip())
    if found and int(found.group(1)) < 24 and int(found.group(2)) < 60:
        return time(int(found.group(1)), int(found.group(2)))
    raise InvalidValueError(f"{what} {text!r} is not a time of day: use HH:MM, e.g. 09:30", hint="24-hour clock")


@dataclass(frozen=True)
class Window:
    """Office hours: from `start` (included) to `end` (excluded), the same day, on the recipient's wall clock."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise InvalidValueError(f"--window {self} does not end after it starts", hint="e.g. 09:00-17:00")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def __contains__(self, moment: time) -> bool:
        return self.start <= moment < self.end


def parse_window(text: str, *, what: str = "--window") -> Window:
    """Read office hours `HH:MM-HH:MM` (`09:00-17:00`); a window runs within one day, so it must end after it starts."""
    start, dash, end = text.strip().partition("-")
    if not dash:
        raise InvalidValueError(f"{what} {text!r} is not a window: use HH:MM-HH:MM, e.g. 09:00-17:00")
    return Window(parse_clock(start, what), parse_clock(end, what))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name` (`Europe/Paris`), or an error naming it."""
    found = _place_zone(name.strip())
    if found is None:
        raise InvalidValueError(f"time zone {name!r} is not an IANA zone such as Europe/Paris", hint="see `tzselect`")
    return found


@lru_cache(maxsize=1024)
def _place_zone(name: str) -> ZoneInfo | None:
    """The zone called `name`, or None: ZoneInfo refuses unknown and malformed keys in several ways."""
    if not name or name in _NOT_PLACES:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "zone.tab" is a ValueError
        return None


def zone_for(time_zone: str | None, country: str | None, fallback: ZoneInfo) -> ZoneInfo:
    """The zone a contact lives by: their own if it is a valid IANA name, else their country's, else `fallback`."""
    own = _place_zone(time_zone.strip()) if time_zone else None
    if own is not None:
        return own
    found = country_zone(country.strip().upper()) if country else None
    return found if found is not None else fallback


@lru_cache(maxsize=512)
def country_zone(code: str) -> ZoneInfo | None:
    """The main zone of an ISO 3166 alpha-2 country (Babel's data, see CAPITAL_ZONES), or None if it has none."""
    if len(code) != 2 or not code.isalpha() or code == "ZZ":  # ZZ is CLDR's unknown region: Etc/GMT+N, no place
        return None
    territories: Mapping[str, list[str]] = get_global("territory_zones")
    aliases: Mapping[str, list[str]] = get_global("territory_aliases")
    if code not in territories and len(aliases.get(code, [])) == 1:  # a retired code with one heir: UK -> GB
        code = aliases[code][0]
    names = territories.get(code, [])
    name = CAPITAL_ZONES.get(code) or (names[0] if len(names) == 1 else None)
    return _zone_or_alias(name) if name else None


def _zone_or_alias(name: str) -> ZoneInfo | None:
    """Load a zone by its CLDR name, or by an older name where this machine's tz database predates it (Europe/Kiev)."""
    zone_aliases: Mapping[str, str] = get_global("zone_aliases")
    for candidate in (name, *(old for old, new in zone_aliases.items() if new == name)):
        found = _place_zone(candidate)
        if found is not None:
            return found
    return None


def parse_at(text: str, tz: ZoneInfo, *, what: str = "--at") -> datetime:
    """Read `2025-04-10 09:00` (or `2025-04-10T09:00`, or `2025-04-10` for midnight) on the wall clock of `tz`, as
    an aware UTC instant.

    A wall time that does not exist (the spring-forward gap) moves forward by the gap: 02:30 on 2025-03-30 in
    Europe/Paris is 03:30 CEST. An ambiguous one (the autumn fold) is its first occurrence (fold=0, PEP 495).
    """
    found = _AT.fullmatch(text.strip())
    try:
        if not found:
            raise ValueError(text)
        year, month, day, hour, minute = (int(part) if part else 0 for part in found.groups())
        return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):  # no such date (2025-02-30), or beyond what datetime holds in UTC
        raise InvalidValueError(
            f"{what} {text!r} is not a date and time: use YYYY-MM-DD HH:MM, e.g. 2025-04-10 09:00"
        ) from None


@dataclass(frozen=True)
class Placement:
    """Where in a recipient's day a letter may go: at `local_time`, within `window`, on weekdays only; none of these
    means whenever it falls due."""

    local_time: time | None = None
    window: Window | None = None
    weekdays_only: bool = False

    def __post_init__(self) -> None:
        if self.local_time is not None and self.window is not None and self.local_time not in self.window:
            raise InvalidValueError(
                f"--local-time {self.local_time:%H:%M} is outside --window {self.window}",
                hint="choose a time within the window",
            )

    def allows_day(self, day: date) -> bool:
        """True when letters may go on `day` (Monday to Friday only, if asked)."""
        return not self.weekdays_only or day.weekday() < 5


def place(earliest: datetime, zone: ZoneInfo, placement: Placement) -> datetime:
    """The first instant at or after `earliest` when a letter may go to someone in `zone`, in UTC.

    With `local_time`, the first moment the recipient's clock shows it on an allowed day (in a spring-forward gap,
    the gap's length later: 02:30 becomes 03:30); the window, which contains it, adds nothing. With a window only (or
    only weekdays, a window of the whole day), `earliest` itself if it falls inside, else the moment the window
    next opens on an allowed day: when the clock reaches its start, or jumps past it at a DST change.
    """
    start = _as_utc(earliest)
    if placement.local_time is None and placement.window is None and not placement.weekdays_only:
        return start
    first_day = start.astimezone(zone).date()
    for offset in range(_HORIZON):
        day = first_day + timedelta(days=offset)
        found = [moment for moment in _candidates(day, start, zone, placement) if moment >= start]
        found = [moment for moment in found if _allowed(moment, zone, placement)]
        if found:
            return min(found)
    raise InvalidValueError(f"no time within {_HORIZON} days of {start:%Y-%m-%d %H:%M} UTC fits the schedule")


def _candidates(day: date, start: datetime, zone: ZoneInfo, placement: Placement) -> list[datetime]:
    """The instants of local `day` at which a letter may first become allowed: where the earliest allowed instant
    of the day must be, if there is one."""
    if placement.local_time is not None:
        return list(_occurrences(day, placement.local_time, zone))
    opening = placement.window.start if placement.window else time(0)
    # A window opens when the clock reaches its start, when a DST change makes the clock jump into it, or (on the
    # first day) it is already open.
    begin, end = (_occurrences(day + timedelta(days=n), time(0), zone)[0] for n in (0, 1))
    return [start, *_occurrences(day, opening, zone), *_transitions(max(begin, start), end, zone)]


def _allowed(moment: datetime, zone: ZoneInfo, placement: Placement) -> bool:
    """True when a letter may go at `moment`; with a local time, only for the instants `_occurrences` gave."""
    local = moment.astimezone(zone)
    if not placement.allows_day(local.date()):
        return False
    if placement.local_time is not None or placement.window is None:
        return True
    return local.time() in placement.window


def _occurrences(day: date, clock: time, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants when the clock in `zone` shows `clock` on `day`: one; two in the autumn fold, earlier first;
    in the spring gap, where it never does, the gap's length later (fold=0 reads it with the offset before)."""
    wall = datetime.combine(day, clock, tzinfo=zone)
    first, second = wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
    return (first, second) if first < second else (first,)


def _transitions(begin: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instant in [begin, end] (one day at most) at which `zone` changes its UTC offset, if it does: found by
    halving down to the second, as zoneinfo does not publish its transitions and tz changes fall on whole seconds."""
    low, high = begin.replace(microsecond=0), end
    if _offset(low, zone) == _offset(high, zone):
        return []
    while high - low > _SECOND:
        middle = low + _SECOND * ((high - low) // _SECOND // 2)
        if _offset(middle, zone) == _offset(low, zone):
            low = middle
        else:
            high = middle
    return [high]


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta | None:
    """The UTC offset of `zone` at `moment`."""
    return moment.astimezone(zone).utcoffset()


def _as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is a caller's bug (an instant read back from SQLite needs `as_utc`)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; instants are aware")
    return moment.astimezone(UTC)


def first_send_time(send_at: datetime | None, now: datetime, zone: ZoneInfo, placement: Placement) -> datetime:
    """When a campaign's first letter goes to someone in `zone`: not before `send_at` nor `now`, then placed."""
    return place(max(send_at if send_at is not None else now, now), zone, placement)


def follow_up_due(previous_sent_at: datetime, delay: timedelta, zone: ZoneInfo, placement: Placement) -> datetime:
    """When a follow-up falls due: `delay` after the contact's previous letter was sent, then placed."""
    return place(previous_sent_at + delay, zone, placement)
