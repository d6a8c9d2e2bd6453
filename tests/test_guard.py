"""What keeps the desk safe, rule by rule (outreach/desk/guard.py and the cookie decision of desk/server.py)."""

from __future__ import annotations

import pytest

from outreach.config import is_loopback
from outreach.desk.guard import RateLimit, derived_key, local_path, new_csrf_token, same_token
from outreach.desk.server import secure_cookies


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_limit_counts_per_key_in_a_sliding_window() -> None:
    clock = Clock()
    limit = RateLimit(3, 60, clock)
    assert [limit.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("10.0.0.2")  # another client has its own count
    assert 1 <= limit.retry_after("10.0.0.1") <= 61
    clock.now += 30
    assert not limit.allow("10.0.0.1")  # a refused attempt is not counted, and the window has not passed
    clock.now += 31
    assert limit.allow("10.0.0.1")
    assert limit.retry_after("never seen") == 0


def test_a_rate_limit_forgets_idle_clients_instead_of_growing() -> None:
    clock = Clock()
    limit = RateLimit(1, 10, clock)
    for n in range(10_001):
        limit.allow(f"client {n}")
    clock.now += 11
    limit.allow("one more")
    assert len(limit._events) == 1


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/responses/4", "/responses/4"),
        ("/responses?kind=reply&page=2", "/responses?kind=reply&page=2"),
        ("//evil.example/x", "/home"),
        ("/\\evil.example", "/home"),
        ("https://evil.example/", "/home"),
        ("javascript:alert(1)", "/home"),
        ("/ok\r\nSet-Cookie: x=1", "/home"),
        ("", "/home"),
        (None, "/home"),
    ],
)
def test_after_login_only_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert local_path(target, "/home") == expected


def test_csrf_tokens_are_fresh_and_compared_whole() -> None:
    token = new_csrf_token()
    assert token != new_csrf_token() and len(token) >= 40
    assert same_token(token, token)
    assert not same_token(token[:-1], token) and not same_token(None, token) and not same_token("", "")
    assert not same_token("\udcff", token)  # what a broken form field may hold: refused, not an exception


def test_each_purpose_has_its_own_key() -> None:
    secret = b"s" * 32
    assert derived_key(secret, "session cookie") != derived_key(secret, "something else")
    assert derived_key(secret, "session cookie") != derived_key(b"t" * 32, "session cookie")


@pytest.mark.parametrize(
    ("host", "public_url", "secure"),
    [
        ("127.0.0.1", "", False),  # plain http on this machine: a Secure cookie would never come back
        ("::1", "http://127.0.0.1:8025", False),
        ("127.0.0.1", "https://appeal.example.org", True),  # behind a TLS proxy on the same machine
        ("0.0.0.0", "", True),
        ("192.0.2.7", "", True),
    ],
)
def test_cookies_are_secure_except_over_plain_http_on_loopback(host: str, public_url: str, secure: bool) -> None:
    assert secure_cookies(host, public_url) is secure
    assert is_loopback(host) is (host in ("127.0.0.1", "::1"))
