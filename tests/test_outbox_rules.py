"""The outbox's rules, without a server or a clock: states, SMTP replies, backoff, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.outbox.pacing import Pacer
from outreach.outbox.states import State, Verdict, can_move, classify_reply, enhanced_status, next_attempt_at
from outreach.rates import Rate, RateError, parse_rates

NOW = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def test_a_sent_or_cancelled_message_never_moves_again() -> None:
    for target in State:
        assert not can_move(State.SENT, target)
        assert not can_move(State.CANCELLED, target)
    assert can_move(State.COMMITTING, State.UNKNOWN)
    assert not can_move(State.QUEUED, State.SENT), "nothing is sent without being claimed and committed"
    assert can_move(State.UNKNOWN, State.QUEUED), "resent only when the campaigner asks"


@pytest.mark.parametrize(
    ("code", "text", "after_mark", "verdict"),
    [
        (250, "2.0.0 Ok: queued as 4F2", True, Verdict.SENT),
        (451, "4.3.0 Temporary lookup failure", True, Verdict.RETRY),
        (421, "4.7.0 Too many connections, slow down", False, Verdict.SLOW_DOWN),
        (452, "4.5.3 Too many recipients", False, Verdict.SLOW_DOWN),
        (450, "4.7.1 Rate limited", False, Verdict.SLOW_DOWN),
        (550, "5.1.1 <x@example.org>: Recipient address rejected: User unknown", False, Verdict.BAD_ADDRESS),
        (550, "User unknown", False, Verdict.BAD_ADDRESS),
        (554, "5.7.1 Message rejected as spam", True, Verdict.PERMANENT),
        (552, "5.3.4 Message size exceeds fixed limit", True, Verdict.PERMANENT),
        (None, "", False, Verdict.RETRY),  # dropped before the end-of-data mark: nothing was delivered
        (None, "", True, Verdict.UNKNOWN),  # dropped after it: only the server knows
    ],
)
def test_smtp_replies(code: int | None, text: str, after_mark: bool, verdict: Verdict) -> None:
    assert classify_reply(code, text, after_data_mark=after_mark) is verdict


def test_enhanced_status_codes_are_found_in_the_text() -> None:
    assert enhanced_status("550 5.1.1 <a@b>: user unknown") == "5.1.1"
    assert enhanced_status("550 Requested action not taken") is None


def test_backoff_grows_within_bounds_and_gives_up() -> None:
    rng = Random(7)
    delays = [next_attempt_at(n, NOW, rng) for n in range(1, 9)]
    assert delays[-1] is None
    bounds = [timedelta(minutes=1 << (n - 1)) for n in range(1, 8)]
    for delay, bound in zip(delays, bounds, strict=False):
        assert delay is not None
        assert min(bound, timedelta(hours=6)) / 2 <= delay - NOW <= min(bound, timedelta(hours=6))


@given(st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_never_in_the_past_nor_beyond_six_hours(attempts: int, seed: int) -> None:
    when = next_attempt_at(attempts, NOW, Random(seed))
    assert when is not None and NOW < when <= NOW + timedelta(hours=6)


def test_rates_parse_and_bad_ones_are_named() -> None:
    assert parse_rates("30/minute, 500/day") == (Rate(30, 60), Rate(500, 86400))
    assert parse_rates("1/s,100/5min") == (Rate(1, 1), Rate(100, 300))
    assert parse_rates("") == ()
    with pytest.raises(RateError, match="'30 per minute'"):
        parse_rates("30 per minute")


@pytest.mark.parametrize("text", ["²/second", "1/²minute", "٣/second", "0/second", "1/0min", "9" * 5000 + "/day"])
def test_a_rate_needs_ascii_digits_and_numbers_that_pace(text: str) -> None:
    with pytest.raises(RateError, match="rate '"):
        parse_rates(text)


def test_the_global_rate_paces_every_domain_and_the_domain_rate_its_own() -> None:
    pacer = Pacer(parse_rates("2/second"), parse_rates("1/minute"))
    assert pacer.take("parliament.example", 0.0)
    assert not pacer.take("parliament.example", 0.1), "a parliament's shared server gets one a minute"
    assert pacer.wait("parliament.example", 0.1) == pytest.approx(59.9)
    assert pacer.take("gov.example", 0.1)
    assert not pacer.take("other.example", 0.2), "two a second in all: the window is full"
    assert pacer.wait("other.example", 0.2) == pytest.approx(0.8), "until the first leaves the window"
    assert pacer.take("other.example", 1.0)


def test_a_domain_that_asks_us_to_slow_down_is_held_back() -> None:
    pacer = Pacer()
    assert pacer.take("slow.example", 0.0)
    pacer.slow_down("Slow.example", 0.0, 300)
    assert pacer.wait("slow.example", 10.0) == pytest.approx(290)
    assert pacer.take("fast.example", 10.0)
    assert pacer.take("slow.example", 300.0)


@given(st.lists(st.floats(min_value=0, max_value=10), min_size=1, max_size=200))
def test_no_window_ever_carries_more_than_the_rate_allows(offsets: list[float]) -> None:
    pacer = Pacer(parse_rates("5/second"))
    sent, now = [], 0.0
    for offset in offsets:
        now += offset / 10
        if pacer.take("example.org", now):
            sent.append(now)
    # As a provider counts "5/second": no second-long window (start included, end excluded) carries more than 5.
    for i, start in enumerate(sent):
        inside = [t for t in sent[i:] if t < start + 1.0]
        assert len(inside) <= 5


def test_a_daily_limit_is_never_passed_in_any_24_hours_and_earlier_runs_count() -> None:
    pacer = Pacer(parse_rates("500/day"))
    pacer.seed(0.0, {"example.org": [3600.0] * 100})  # 100 went an hour before this run began
    taken = sum(pacer.take(f"d{n}.example", float(n)) for n in range(1000))
    assert taken == 400, "500 in the day, the hundred of the earlier run included; not 500 more, nor a refill"
    assert pacer.wait("x.example", 1000.0) == pytest.approx(86400 - 3600 - 1000)
    assert pacer.take("x.example", 86400 - 3600.0), "a day after the earlier run, its hundred leave the window"
