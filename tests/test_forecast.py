"""The pace forecast and time in words, with fixed numbers."""

from __future__ import annotations

import pytest

from outreach.outbox.forecast import Forecast, in_words, letters_need, rate_in_words, time_needed
from outreach.rates import Rate, parse_rates

HOUR, DAY = 3600, 86400


def test_658_letters_to_one_parliament_at_20_an_hour_take_32_hours() -> None:
    forecast = time_needed({"parliament.example.eu": 658}, (), parse_rates("20/hour"))
    # 33 windows of an hour: the last 18 letters go when the 33rd opens, 32 hours after the first.
    assert forecast == Forecast(32 * HOUR, Rate(20, HOUR), "parliament.example.eu")
    assert forecast.pace == "20/hour to parliament.example.eu"
    assert in_words(forecast.seconds) == "about 32 hours"


@pytest.mark.parametrize(
    ("letters", "rate", "seconds"),
    [(0, "20/hour", 0), (1, "20/hour", 0), (20, "20/hour", 0), (21, "20/hour", HOUR), (40, "20/hour", HOUR),
     (41, "20/hour", 2 * HOUR), (300, "1/second", 299), (1000, "500/day", DAY), (7, "2/5min", 3 * 300)],
)  # fmt: skip
def test_a_window_of_c_lets_c_go_and_the_next_waits_for_the_next_window(letters: int, rate: str, seconds: int) -> None:
    [parsed] = parse_rates(rate)
    assert letters_need(letters, parsed) == seconds


def test_the_global_rate_binds_the_total_and_the_slowest_limit_sets_the_time() -> None:
    domains = {f"parliament{n}.example.org": 10 for n in range(30)}  # 300 letters, 10 to each domain
    forecast = time_needed(domains, parse_rates("1/second, 500/day"), parse_rates("20/hour"))
    assert (forecast.seconds, forecast.domain, forecast.pace) == (299, None, "1/second in all")
    forecast = time_needed(domains, parse_rates("100/minute"), parse_rates("5/hour"))
    assert (forecast.seconds, forecast.domain) == (HOUR, "parliament0.example.org"), "the first domain named"
    assert forecast.pace == "5/hour to parliament0.example.org"


def test_without_limits_or_letters_nothing_binds() -> None:
    assert time_needed({"a.example.org": 5000}, (), ()) == Forecast(0.0)
    assert time_needed({}, parse_rates("1/second"), parse_rates("20/hour")) == Forecast(0.0)
    assert Forecast(0.0).pace == ""


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "under a minute"), (59, "under a minute"), (60, "about 1 minute"), (4 * 60 + 10, "about 4 minutes"),
     (59 * 60 + 40, "about 1 hour"), (90 * 60, "about 1 hour 30 minutes"), (2 * HOUR + 60, "about 2 hours 1 minute"),
     (15 * HOUR + 1200, "about 15 hours"), (33 * HOUR, "about 33 hours"), (47.6 * HOUR, "about 2 days"),
     (2 * DAY + 3 * HOUR, "about 2 days 3 hours"), (9 * DAY + HOUR + 10, "about 9 days 1 hour")],
)  # fmt: skip
def test_time_is_said_in_words(seconds: float, words: str) -> None:
    assert in_words(seconds) == words


@pytest.mark.parametrize(
    ("rate", "words"),
    [("1/s", "1/second"), ("30/minute", "30/minute"), ("20/hour", "20/hour"), ("500/day", "500/day"),
     ("100/5min", "100/5 minutes"), ("100/90min", "100/90 minutes"), ("10/2d", "10/2 days")],
)  # fmt: skip
def test_a_rate_is_said_as_a_campaigner_writes_it(rate: str, words: str) -> None:
    [parsed] = parse_rates(rate)
    assert rate_in_words(parsed) == words
