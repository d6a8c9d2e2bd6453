"""What keeps the desk safe to put on a network: keys for its cookies, CSRF tokens, rate limits, response headers.

Pure: no web framework, no database. The keys are derived from the workspace's secret (`secret.key`), one for each
purpose, so that a session cookie's key can never sign an unsubscribe token or a suppression hash, and a new
secret logs everyone out. References: OWASP's CSRF prevention (synchronizer token), its session management cheat
sheet (HttpOnly, Secure, SameSite cookies), CSP Level 3.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

# Every page: nothing but the desk's own stylesheet and forms posting back to the desk. No script at all, so no
# inline script either; no frames, so no clickjacking; no referrer, so an unsubscribe token in a URL stays there.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# The HTML report is one self-contained page with its CSS inline (outreach/reports/html.py): still no script.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def derived_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the workspace's secret (HMAC-SHA256 as a key derivation function)."""
    return hmac.new(secret, f"outreach desk: {purpose}".encode(), hashlib.sha256).digest()


def new_csrf_token() -> str:
    """A fresh token for a session's forms (the synchronizer token pattern)."""
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str | None) -> bool:
    """True when a form carries its session's token; in constant time."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def local_path(target: str | None, default: str) -> str:
    """Where to go after logging in: a path on this site, never another site (`//evil`, `/\\evil`, `https:`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(
        ord(ch) < 0x21 for ch in target
    ):  # fmt: skip
        return default
    return target


class RateLimit:
    """At most `limit` events per key within `window` seconds (a sliding window kept in memory, per process)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one event for `key`; False when it goes over the limit (the event is not counted then)."""
        now = self.clock()
        if len(self._events) > 10_000:  # forget idle keys, so that many clients cannot grow this without bound
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again."""
        events = self._events.get(key)
        if not events:
            return 0
        return max(1, int(events[0] + self.window - self.clock()) + 1)
