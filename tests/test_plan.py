"""When a letter may go, without a clock: delays, windows, zones, and placing a letter in the recipient's day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.core import get_global
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.campaigns.plan import (
    CAPITAL_ZONES,
    Placement,
    Window,
    first_send_time,
    follow_up_due,
    format_delay,
    parse_at,
    parse_clock,
    parse_delay,
    parse_window,
    place,
    zone,
    zone_for,
)
from outreach.errors import InvalidValueError

PARIS, NEW_YORK, TOKYO = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")
LOS_ANGELES, AUCKLAND = ZoneInfo("America/Los_Angeles"), ZoneInfo("Pacific/Auckland")
OFFICE = Window(time(9), time(17))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m", timedelta(days=9, hours=3, minutes=4)),
        ("  7d ", timedelta(days=7)),
        ("1d 12h", timedelta(days=1, hours=12)),
        ("7D", timedelta(days=7)),
    ],
)
def test_delays(text: str, delay: timedelta) -> None:
    assert parse_delay(text) == delay


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7x", "--after '7x' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("", "--after '' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("7", "--after '7' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("-7d", "--after '-7d' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("12h1d", "--after '12h1d' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("1.5d", "--after '1.5d' is not a delay: use 7d, 36h, 2w or 90m (units combine: 1d12h)"),
        ("0d", "--after '0d' is no delay at all (a follow-up needs a delay such as 7d)"),
        ("0h0m", "--after '0h0m' is no delay at all (a follow-up needs a delay such as 7d)"),
        ("400d", "--after '400d' is longer than a year (start a new campaign instead)"),
    ],
)
def test_what_is_not_a_delay(text: str, message: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        parse_delay(text)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("delay", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "1d12h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(weeks=2), "14d"),
        (timedelta(hours=3), "3h"),
        (timedelta(days=1, minutes=30), "1d30m"),
        (timedelta(), "0m"),
    ],
)
def test_delays_are_written_back(delay: timedelta, text: str) -> None:
    assert format_delay(delay) == text


@given(st.integers(min_value=1, max_value=365 * 24 * 60))
def test_a_written_delay_reads_back_the_same(minutes: int) -> None:
    delay = timedelta(minutes=minutes)
    assert parse_delay(format_delay(delay)) == delay


@pytest.mark.parametrize("delay", [timedelta(seconds=90), timedelta(days=-1)])
def test_only_whole_minutes_are_written(delay: timedelta) -> None:
    with pytest.raises(ValueError, match="not a whole number of minutes"):
        format_delay(delay)


@pytest.mark.parametrize(
    ("text", "clock"), [("09:30", time(9, 30)), ("9:30", time(9, 30)), (" 00:00 ", time(0)), ("23:59", time(23, 59))]
)
def test_clocks(text: str, clock: time) -> None:
    assert parse_clock(text, "--local-time") == clock


@pytest.mark.parametrize("text", ["24:00", "09:60", "9h30", "09:30:00", "0930", "", "noon", "-1:00", "009:30"])
def test_what_is_not_a_clock(text: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        parse_clock(text, "--local-time")
    assert str(error.value) == f"--local-time {text!r} is not a time of day: use HH:MM, e.g. 09:30 (24-hour clock)"


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("09:00-17:00", Window(time(9), time(17))),
        (" 8:30 - 12:00 ", Window(time(8, 30), time(12))),
        ("00:00-23:59", Window(time(0), time(23, 59))),
    ],
)
def test_windows(text: str, window: Window) -> None:
    assert parse_window(text) == window
    assert str(parse_window(str(window))) == str(window)


def test_a_window_is_written_as_it_is_typed() -> None:
    assert str(parse_window("9:00-17:00")) == "09:00-17:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("09:00", "--window '09:00' is not a window: use HH:MM-HH:MM, e.g. 09:00-17:00"),
        ("9-17", "--window '9' is not a time of day: use HH:MM, e.g. 09:30 (24-hour clock)"),
        ("17:00-09:00", "--window 17:00-09:00 does not end after it starts (e.g. 09:00-17:00)"),
        ("09:00-09:00", "--window 09:00-09:00 does not end after it starts (e.g. 09:00-17:00)"),
        ("09:00-24:00", "--window '24:00' is not a time of day: use HH:MM, e.g. 09:30 (24-hour clock)"),
    ],
)
def test_what_is_not_a_window(text: str, message: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        parse_window(text)
    assert str(error.value) == message


def test_zones_by_name() -> None:
    assert zone("Europe/Paris") is PARIS
    assert zone(" UTC ") == ZoneInfo("UTC")


@pytest.mark.parametrize("name", ["Mars/Base", "", "Europe", "europe/paris", "localtime", "../etc/passwd", "zone.tab"])
def test_unknown_zones(name: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        zone(name)
    assert str(error.value) == f"time zone {name!r} is not an IANA zone such as Europe/Paris (see `tzselect`)"


FALLBACK = ZoneInfo("Etc/GMT+3")


@pytest.mark.parametrize(
    ("time_zone", "country", "expected"),
    [
        ("Asia/Tokyo", "FR", "Asia/Tokyo"),  # the contact's own zone wins
        (" America/Los_Angeles ", "US", "America/Los_Angeles"),
        (None, "FR", "Europe/Paris"),
        (None, "DE", "Europe/Berlin"),
        (None, "ES", "Europe/Madrid"),  # not Africa/Ceuta, Babel's first
        (None, "PT", "Europe/Lisbon"),  # not Atlantic/Madeira
        (None, "GB", "Europe/London"),
        (None, "PL", "Europe/Warsaw"),
        (None, "UA", "Europe/Kyiv"),
        (None, "RU", "Europe/Moscow"),  # not Europe/Astrakhan
        (None, "US", "America/New_York"),  # not America/Adak
        (None, "AU", "Australia/Sydney"),
        (None, "JP", "Asia/Tokyo"),
        ("", "fr", "Europe/Paris"),
        ("Mars/Base", "PT", "Europe/Lisbon"),  # an invalid own zone falls back to the country's
        ("localtime", "PL", "Europe/Warsaw"),  # the machine's zone is not the contact's
        (None, "UK", "Europe/London"),  # a retired code with one heir
        (None, "ZZ", "Etc/GMT+3"),  # CLDR's unknown region: the fallback, not one of its Etc/GMT zones
        (None, "AQ", "Etc/GMT+3"),  # several zones and no capital
        (None, "XX", "Etc/GMT+3"),
        (None, "FRA", "Etc/GMT+3"),
        (None, "001", "Etc/GMT+3"),
        (None, None, "Etc/GMT+3"),
        ("Mars/Base", None, "Etc/GMT+3"),
    ],
)
def test_the_zone_a_contact_lives_by(time_zone: str | None, country: str | None, expected: str) -> None:
    assert zone_for(time_zone, country, FALLBACK).key == expected


def test_every_country_with_several_zones_has_its_capital_s() -> None:
    territories: Mapping[str, list[str]] = get_global("territory_zones")
    several = {code for code, names in territories.items() if len(names) > 1 and len(code) == 2}
    assert several - set(CAPITAL_ZONES) == {"ZZ", "AQ", "UM"}
    for code, name in CAPITAL_ZONES.items():
        assert name in territories[code], code


def test_every_country_babel_knows_has_a_zone_here() -> None:
    territories: Mapping[str, list[str]] = get_global("territory_zones")
    lost = [code for code in territories if len(code) == 2 and zone_for(None, code, FALLBACK) is FALLBACK]
    assert sorted(lost) == ["AQ", "UM", "ZZ"]


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2025-04-10 09:00", PARIS, utc(2025, 4, 10, 7, 0)),
        ("2025-04-10T09:00", PARIS, utc(2025, 4, 10, 7, 0)),
        (" 2025-04-10  9:00 ", PARIS, utc(2025, 4, 10, 7, 0)),
        ("2025-04-10", PARIS, utc(2025, 4, 9, 22, 0)),  # midnight in Paris
        ("2025-01-10 09:00", PARIS, utc(2025, 1, 10, 8, 0)),
        ("2025-04-10 09:00", TOKYO, utc(2025, 4, 10, 0, 0)),
        ("2025-03-30 02:30", PARIS, utc(2025, 3, 30, 1, 30)),  # in the gap: moved to 03:30 CEST
        ("2025-10-26 02:30", PARIS, utc(2025, 10, 26, 0, 30)),  # in the fold: 02:30 CEST, the first
        ("2025-03-09 02:30", NEW_YORK, utc(2025, 3, 9, 7, 30)),  # in the gap: 03:30 EDT
        ("2025-11-02 01:30", NEW_YORK, utc(2025, 11, 2, 5, 30)),  # in the fold: 01:30 EDT
    ],
)
def test_a_moment_on_someone_s_clock(text: str, tz: ZoneInfo, expected: datetime) -> None:
    at = parse_at(text, tz)
    assert at == expected
    assert at.tzinfo is UTC


def test_a_gap_time_lands_the_gap_s_length_later() -> None:
    assert parse_at("2025-03-30 02:30", PARIS).astimezone(PARIS).strftime("%H:%M %Z") == "03:30 CEST"


@pytest.mark.parametrize("text", ["2025-02-30 09:00", "2025-04-10 25:00", "10/04/2025", "2025-04-10 09", "tomorrow"])
def test_what_is_not_a_moment(text: str) -> None:
    with pytest.raises(InvalidValueError) as error:
        parse_at(text, PARIS)
    assert str(error.value) == f"--at {text!r} is not a date and time: use YYYY-MM-DD HH:MM, e.g. 2025-04-10 09:00"


def test_a_local_time_outside_the_window_is_refused() -> None:
    with pytest.raises(InvalidValueError) as error:
        Placement(local_time=time(8, 30), window=OFFICE)
    assert str(error.value) == "--local-time 08:30 is outside --window 09:00-17:00 (choose a time within the window)"
    with pytest.raises(InvalidValueError):
        Placement(local_time=time(17), window=OFFICE)  # the end is not in the window
    assert Placement(local_time=time(9), window=OFFICE).local_time == time(9)


AT_0930 = Placement(local_time=time(9, 30))
AT_0230 = Placement(local_time=time(2, 30))
OFFICE_DAYS = Placement(window=OFFICE, weekdays_only=True)


@pytest.mark.parametrize(
    ("earliest", "where", "placement", "expected"),
    [
        # nothing asked: the moment itself, in UTC
        (datetime(2025, 4, 12, 3, 7, 11, tzinfo=PARIS), PARIS, Placement(), utc(2025, 4, 12, 1, 7, 11)),
        # a window: inside stays, before waits for the start, after goes to the next day; the end is excluded
        (utc(2025, 4, 10, 10, 17, 23), PARIS, Placement(window=OFFICE), utc(2025, 4, 10, 10, 17, 23)),
        (utc(2025, 4, 10, 5, 0), PARIS, Placement(window=OFFICE), utc(2025, 4, 10, 7, 0)),
        (utc(2025, 4, 10, 16, 0), PARIS, Placement(window=OFFICE), utc(2025, 4, 11, 7, 0)),
        (utc(2025, 4, 10, 15, 0), PARIS, Placement(window=OFFICE), utc(2025, 4, 11, 7, 0)),
        (utc(2025, 4, 10, 14, 59), PARIS, Placement(window=OFFICE), utc(2025, 4, 10, 14, 59)),
        (utc(2025, 4, 12, 10, 0), PARIS, Placement(window=OFFICE), utc(2025, 4, 12, 10, 0)),  # Saturday is fine
        # weekdays and a window: Friday 18:00 in Paris -> Monday 09:00
        (utc(2025, 4, 11, 16, 0), PARIS, OFFICE_DAYS, utc(2025, 4, 14, 7, 0)),
        (utc(2025, 4, 12, 8, 0), PARIS, OFFICE_DAYS, utc(2025, 4, 14, 7, 0)),
        # weekdays only: the moment on a weekday, else Monday 00:00 local
        (utc(2025, 4, 10, 2, 0), PARIS, Placement(weekdays_only=True), utc(2025, 4, 10, 2, 0)),
        (utc(2025, 4, 12, 10, 0), PARIS, Placement(weekdays_only=True), utc(2025, 4, 13, 22, 0)),
        (utc(2025, 4, 11, 22, 30), PARIS, Placement(weekdays_only=True), utc(2025, 4, 13, 22, 0)),  # Sat 00:30 local
        (utc(2025, 4, 11, 21, 59), PARIS, Placement(weekdays_only=True), utc(2025, 4, 11, 21, 59)),  # Fri 23:59 local
        # a local time: today if it has not passed, else tomorrow
        (utc(2025, 4, 10, 6, 0), PARIS, AT_0930, utc(2025, 4, 10, 7, 30)),
        (utc(2025, 4, 10, 7, 30), PARIS, AT_0930, utc(2025, 4, 10, 7, 30)),
        (utc(2025, 4, 10, 7, 31), PARIS, AT_0930, utc(2025, 4, 11, 7, 30)),
        # the same instant is 09:00 on Thursday in Tokyo and 17:00 on Wednesday in Los Angeles
        (utc(2025, 4, 10, 0, 0), TOKYO, AT_0930, utc(2025, 4, 10, 0, 30)),
        (utc(2025, 4, 10, 0, 0), LOS_ANGELES, AT_0930, utc(2025, 4, 10, 16, 30)),
        # Friday 10:00 in Los Angeles, 09:30 on weekdays: Monday 09:30 PDT
        (utc(2025, 4, 11, 17, 0), LOS_ANGELES, Placement(time(9, 30), weekdays_only=True), utc(2025, 4, 14, 16, 30)),
        # with a window too, the local time decides
        (utc(2025, 4, 10, 7, 45), PARIS, Placement(time(9, 30), OFFICE), utc(2025, 4, 11, 7, 30)),
        # Paris springs forward on 2025-03-30 (02:00 CET -> 03:00 CEST): 09:30 is 08:30Z before, 07:30Z after
        (utc(2025, 3, 29, 0, 0), PARIS, AT_0930, utc(2025, 3, 29, 8, 30)),
        (utc(2025, 3, 29, 12, 0), PARIS, AT_0930, utc(2025, 3, 30, 7, 30)),
        (utc(2025, 3, 30, 0, 0), PARIS, AT_0230, utc(2025, 3, 30, 1, 30)),  # 02:30 does not exist: 03:30 CEST
        (utc(2025, 3, 29, 22, 0), PARIS, Placement(window=OFFICE), utc(2025, 3, 30, 7, 0)),
        # a window opening in the gap opens when the clock jumps into it; one wholly in the gap waits a day
        (utc(2025, 3, 30, 0, 30), PARIS, Placement(window=Window(time(2, 30), time(4))), utc(2025, 3, 30, 1, 0)),
        (utc(2025, 3, 30, 0, 30), PARIS, Placement(window=Window(time(2), time(2, 30))), utc(2025, 3, 31, 0, 0)),
        # Paris falls back on 2025-10-26 (03:00 CEST -> 02:00 CET): 09:30 is 07:30Z before, 08:30Z after
        (utc(2025, 10, 25, 12, 0), PARIS, AT_0930, utc(2025, 10, 26, 8, 30)),
        (utc(2025, 10, 26, 0, 0), PARIS, AT_0230, utc(2025, 10, 26, 0, 30)),  # 02:30 CEST, the first one
        (utc(2025, 10, 26, 0, 45), PARIS, AT_0230, utc(2025, 10, 26, 1, 30)),  # missed it: 02:30 CET comes again
        (utc(2025, 10, 26, 1, 45), PARIS, AT_0230, utc(2025, 10, 27, 1, 30)),
        # at 02:40 CEST the window 02:00-02:30 is over, but the clock goes back to 02:00 at 01:00Z
        (utc(2025, 10, 26, 0, 40), PARIS, Placement(window=Window(time(2), time(2, 30))), utc(2025, 10, 26, 1, 0)),
        # New York springs forward on 2025-03-09 (02:00 EST -> 03:00 EDT), a Sunday
        (utc(2025, 3, 8, 20, 0), NEW_YORK, AT_0930, utc(2025, 3, 9, 13, 30)),
        (utc(2025, 3, 8, 12, 0), NEW_YORK, AT_0930, utc(2025, 3, 8, 14, 30)),
        (utc(2025, 3, 9, 5, 0), NEW_YORK, AT_0230, utc(2025, 3, 9, 7, 30)),  # 03:30 EDT
        (utc(2025, 3, 7, 23, 0), NEW_YORK, OFFICE_DAYS, utc(2025, 3, 10, 13, 0)),  # Friday 18:00 EST -> Monday EDT
        # year ends: Friday 2027-12-31 after hours -> Monday 2028-01-03
        (utc(2027, 12, 31, 17, 0), PARIS, OFFICE_DAYS, utc(2028, 1, 3, 8, 0)),
        (utc(2025, 12, 31, 23, 30), PARIS, AT_0930, utc(2026, 1, 1, 8, 30)),
        # Auckland, UTC+12 in April: Friday 18:00 there is 06:00Z; Monday 09:00 there is Sunday 21:00Z
        (utc(2025, 4, 11, 6, 0), AUCKLAND, OFFICE_DAYS, utc(2025, 4, 13, 21, 0)),
        (utc(2025, 4, 10, 22, 0), AUCKLAND, OFFICE_DAYS, utc(2025, 4, 10, 22, 0)),  # Friday 10:00 there
        # Auckland springs forward on 2025-09-28 (02:00 NZST -> 03:00 NZDT)
        (utc(2025, 9, 27, 12, 0), AUCKLAND, AT_0930, utc(2025, 9, 27, 20, 30)),  # Sunday 09:30 NZDT
    ],
)
def test_place(earliest: datetime, where: ZoneInfo, placement: Placement, expected: datetime) -> None:
    placed = place(earliest, where, placement)
    assert placed == expected, f"{placed.astimezone(where):%a %Y-%m-%d %H:%M %Z}"
    assert placed.tzinfo is UTC


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        place(datetime(2025, 4, 10, 9, 0), PARIS, OFFICE_DAYS)


NOW = utc(2025, 4, 10, 10, 0)


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        (None, utc(2025, 4, 10, 10, 0)),  # at once, it is 12:00 in Paris
        (utc(2025, 4, 1, 7, 0), utc(2025, 4, 10, 10, 0)),  # a past send_at is now
        (utc(2025, 4, 12, 7, 0), utc(2025, 4, 14, 7, 0)),  # Saturday: Monday at 09:00
        (utc(2025, 4, 10, 12, 0), utc(2025, 4, 10, 12, 0)),
    ],
)
def test_first_send_time(send_at: datetime | None, expected: datetime) -> None:
    assert first_send_time(send_at, NOW, PARIS, OFFICE_DAYS) == expected


def test_a_follow_up_falls_due_after_its_delay_in_office_hours() -> None:
    sent = utc(2025, 4, 4, 15, 30)  # Friday 17:30 in Paris
    assert follow_up_due(sent, parse_delay("7d"), PARIS, OFFICE_DAYS) == utc(2025, 4, 14, 7, 0)
    assert follow_up_due(sent, parse_delay("36h"), PARIS, Placement()) == utc(2025, 4, 6, 3, 30)
    assert follow_up_due(sent, parse_delay("3d"), TOKYO, AT_0930) == utc(2025, 4, 8, 0, 30)


# The property: zones east and west, half-hour offsets, DST north and south, one that changes at midnight
# (Santiago), one whose DST is half an hour (Lord Howe), one with negative DST in its rules (Dublin).
ZONES = [ZoneInfo(name) for name in ("Europe/Paris", "America/New_York", "Asia/Tokyo", "America/Los_Angeles",
         "Pacific/Auckland", "UTC", "Asia/Kolkata", "America/Santiago", "Australia/Lord_Howe", "Europe/Dublin",
         "America/St_Johns")]  # fmt: skip


def _changes(where: ZoneInfo, year: int) -> list[datetime]:
    """The first hours of `year` with a new UTC offset in `where` (near enough its DST changes), hour by hour."""
    hours = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(365 * 24)]
    offsets = [hour.astimezone(where).utcoffset() for hour in hours]
    return [hour for hour, before, after in zip(hours[1:], offsets, offsets[1:], strict=False) if before != after]


CHANGES = {where: _changes(where, 2025) for where in ZONES}


@st.composite
def cases(draw: st.DrawFn) -> tuple[datetime, ZoneInfo, Placement]:
    """An instant, a zone and a placement; half the time the instant lies within a day and a half of one of the
    zone's DST changes, and the placement's clock times within an hour and a half of the change's wall time."""
    where = draw(st.sampled_from(ZONES))
    clock = st.integers(min_value=0, max_value=24 * 60 - 1)
    near_a_change: bool = draw(st.booleans())
    if CHANGES[where] and near_a_change:
        change = draw(st.sampled_from(CHANGES[where]))
        earliest = change + timedelta(seconds=draw(st.integers(min_value=-36 * 3600, max_value=36 * 3600)))
        wall = change.astimezone(where)
        near = wall.hour * 60 + wall.minute
        clock = st.integers(min_value=max(near - 90, 0), max_value=min(near + 90, 24 * 60 - 1))
    else:
        earliest = draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)))
    window = None
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(clock, min_size=2, max_size=2, unique=True)))
        window = Window(time(*divmod(start, 60)), time(*divmod(end, 60)))
    local_time = None
    if draw(st.booleans()):
        local_time = time(*divmod(draw(clock), 60))
        if window is not None and local_time not in window:
            local_time = window.start
    return earliest, where, Placement(local_time, window, draw(st.booleans()))


def _exists(day: date, clock: time, where: ZoneInfo) -> bool:
    """True when the clock in `where` shows `clock` on `day` (it does not in a spring-forward gap)."""
    wall = datetime.combine(day, clock, tzinfo=where)
    return wall.astimezone(UTC).astimezone(where).replace(tzinfo=None) == wall.replace(tzinfo=None)


def _may_go(moment: datetime, where: ZoneInfo, placement: Placement) -> bool:
    """What the placement asks, checked on the wall clock alone (a local time in a gap is checked apart)."""
    local = moment.astimezone(where)
    if placement.weekdays_only and local.weekday() >= 5:
        return False
    if placement.local_time is not None:
        return local.time() == placement.local_time
    return placement.window is None or placement.window.start <= local.time() < placement.window.end


@settings(max_examples=200, deadline=None)
@given(cases())
def test_place_finds_the_first_moment_the_placement_allows(case: tuple[datetime, ZoneInfo, Placement]) -> None:
    earliest, where, placement = case
    placed = place(earliest, where, placement)
    assert placed >= earliest
    assert placed - earliest < timedelta(days=8)
    local = placed.astimezone(where)
    if placement.local_time is not None and local.time() != placement.local_time:
        # only where the local time does not exist that day, and then the gap's length later
        assert not _exists(local.date(), placement.local_time, where)
        assert placed == datetime.combine(local.date(), placement.local_time, tzinfo=where).astimezone(UTC)
        assert not placement.weekdays_only or local.weekday() < 5
    else:
        assert _may_go(placed, where, placement)
    # nothing earlier would do, at minute granularity
    moment = earliest.replace(second=0, microsecond=0)
    while moment < placed:
        assert moment < earliest or not _may_go(moment, where, placement), moment
        moment += timedelta(minutes=1)
