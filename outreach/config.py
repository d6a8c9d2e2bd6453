"""Settings from OUTREACH_* environment variables and the workspace's `.env`, read and validated once.

Every setting is parsed and checked here, when it is loaded, and every problem found is reported together, one line
each: nothing about a setting fails later, halfway through a send. What takes more than the settings to check (that
a DKIM key signs, that the SMTP server takes the login) is checked where it is used, at the start of the command,
and by `outreach doctor`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from email_validator import EmailNotValidError, validate_email

from outreach.errors import ConfigError, SettingsError
from outreach.rates import Rate, RateError, parse_rates
from outreach.scrubbing import Scrubber, redact_url, url_password

ENV_FILE = ".env"
DATABASE_FILE = "outreach.db"
PREFIX = "OUTREACH_"

# Every variable the tool reads, with its default; `.env.example` documents each one.
KNOWN = {
    "OUTREACH_DATABASE_URL": "",  # empty: a SQLite file `outreach.db` in the workspace
    "OUTREACH_FROM": "",  # `Name <address>` the letters come from
    "OUTREACH_REPLY_TO": "",  # where replies should go, if not to OUTREACH_FROM
    "OUTREACH_ORGANIZATION": "",  # printed under the sender's name
    "OUTREACH_SMTP_HOST": "localhost",
    "OUTREACH_SMTP_PORT": "",  # empty: 25 for none and starttls, 465 for tls
    "OUTREACH_SMTP_SECURITY": "starttls",  # none, starttls or tls
    "OUTREACH_SMTP_USERNAME": "",
    "OUTREACH_SMTP_PASSWORD": "",
    "OUTREACH_SMTP_CONNECTIONS": "1",  # connections used side by side, each reused for many messages
    "OUTREACH_RATE_LIMIT": "1/second, 500/day",
    "OUTREACH_DOMAIN_RATE_LIMIT": "20/hour",
    "OUTREACH_UNSUBSCRIBE_MAILTO": "",  # address for List-Unsubscribe; empty: none
    "OUTREACH_PUBLIC_URL": "",  # where `outreach serve` answers, https; letters then offer one-click unsubscribe
    "OUTREACH_RETURN_PATH": "",  # envelope sender, where bounces go; `{token}` in it: VERP; empty: OUTREACH_FROM
    "OUTREACH_DKIM_KEY": "",  # a PEM private key's path, or domain=path pairs; empty: no DKIM signature
    "OUTREACH_DKIM_SELECTOR": "outreach",  # the selector the public keys are published under
    "OUTREACH_DKIM_DOMAIN": "",  # the domain of a single key; empty: the domain of OUTREACH_FROM
    "OUTREACH_IMAP_HOST": "",  # the server responses are read from; empty: none (read a Maildir or mbox instead)
    "OUTREACH_IMAP_PORT": "",  # empty: 993 for tls, 143 for starttls and none
    "OUTREACH_IMAP_SECURITY": "tls",  # none, starttls or tls
    "OUTREACH_IMAP_USERNAME": "",
    "OUTREACH_IMAP_PASSWORD": "",
    "OUTREACH_IMAP_FOLDER": "INBOX",
    "OUTREACH_IMAP_MOVE_TO": "",  # folder a recorded message is moved to; empty: it stays where it is
    "OUTREACH_SOFT_BOUNCE_LIMIT": "3",  # soft bounces of one address before it counts as bounced
    "OUTREACH_MISFIRE_GRACE": "1h",  # what fell due longer ago while no scheduler ran is held, not sent
    "OUTREACH_RENDER_SECONDS": "2",  # the longest one copy of a template may take to render
    "OUTREACH_RENDER_BYTES": "2097152",  # the most one copy (subject, text and HTML together) may hold: 2 MiB
}

# Settings no longer read, with what took their place: set to something, they are refused with that hint (set to
# nothing, as `.env.example` once wrote them, they are passed over).
RETIRED = {
    "OUTREACH_UNSUBSCRIBE_URL": "one-click unsubscribe is now served by `outreach serve`: remove "
    "OUTREACH_UNSUBSCRIBE_URL and set OUTREACH_PUBLIC_URL to the https address it answers at",
}

DKIM_KEY_MAX_BYTES = 64 * 1024  # a 4096-bit RSA key in PEM has about 3.3 KB; no reading /dev/zero until memory ends
MAX_MISFIRE_GRACE = 365 * 86400  # seconds: longer means always; a huge value would overflow timedelta

_DEFAULT_RATE_LIMITS = parse_rates(KNOWN["OUTREACH_RATE_LIMIT"])
_DEFAULT_DOMAIN_RATE_LIMITS = parse_rates(KNOWN["OUTREACH_DOMAIN_RATE_LIMIT"])
_MAX_DIGITS = 9  # of a number setting: int() refuses thousands of digits, and no setting needs ten
_SHOWN = 60  # characters of a value quoted in a message
# A header line may hold 998 octets (RFC 5322 2.1.1); mime.build_message keeps each URL whole on a line of its own.
# The one-click URL is PUBLIC_URL/u/TOKEN, its token 44 characters (outreach/contacts/tokens.py TOKEN_LENGTH, which
# this module may not import: settings are read below the rooms; a test holds the two together).
_MAX_LINE = 998
_ONE_CLICK_PATH = "/u/"
_TOKEN_LENGTH = 44
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Blanks and controls would be folded away or start a header (RFC 2369 2: no blanks inside the brackets); an
# angle bracket would end the URL early; `=?` would read as an RFC 2047 encoded word.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f<>\u2028\u2029]|=\?")
_DNS_NAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*"
)
_DURATION = re.compile(r"([0-9]+)\s*([smhd]?)")  # ASCII digits: "²".isdigit() is True, and int() refuses it
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DKIM_KEY_HINT = "OUTREACH_DKIM_KEY is a PEM private key's path (relative to the workspace), or domain=path pairs"


@dataclass(frozen=True)
class Settings:
    """What the tool needs to know about its surroundings, validated."""

    workspace: Path
    database_url: str
    sender: str = ""
    reply_to: str = ""
    organization: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_connections: int = 1
    rate_limit: str = "1/second, 500/day"  # as written, to show; the pace uses rate_limits
    domain_rate_limit: str = "20/hour"
    rate_limits: tuple[Rate, ...] = _DEFAULT_RATE_LIMITS  # empty: no limit
    domain_rate_limits: tuple[Rate, ...] = _DEFAULT_DOMAIN_RATE_LIMITS
    unsubscribe_mailto: str = ""
    public_url: str = ""  # no trailing slash; empty: not served, no one-click unsubscribe
    return_path: str = ""
    # (domain, path) for each DKIM key: the domain in lower-case ASCII (IDNA), the path as written (relative
    # paths are in the workspace); a file that is there, regular and small enough, not yet read.
    dkim_keys: tuple[tuple[str, str], ...] = ()
    dkim_selector: str = "outreach"
    dkim_domain: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_security: str = "tls"
    imap_username: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    imap_move_to: str = ""
    soft_bounce_limit: int = 3
    misfire_grace: int = 3600  # seconds
    render_seconds: int = 2
    render_bytes: int = 2 * 1024 * 1024

    def __repr__(self) -> str:
        # A database URL can carry a password, and the SMTP and IMAP passwords are ones: never show them.
        imap = f"{self.imap_username or '-'}@{self.imap_host}:{self.imap_port}/{self.imap_security}"
        return (
            f"Settings(workspace={self.workspace!s}, database_url={redact_url(self.database_url)}, "
            f"smtp={self.smtp_username or '-'}@{self.smtp_host}:{self.smtp_port}/{self.smtp_security}, "
            f"imap={imap if self.imap_host else '-'})"
        )

    def scrubber(self) -> Scrubber:
        """What hides the SMTP, IMAP and database passwords, in every form, in a text about to be shown."""
        return Scrubber([
            (self.smtp_username, self.smtp_password),
            (self.imap_username, self.imap_password),
            ("", url_password(self.database_url)),
        ])  # fmt: skip


def process_environment() -> dict[str, str]:
    """Return the OUTREACH_* variables of this process's environment (the only place that reads it)."""
    return {key: value for key, value in os.environ.items() if key.startswith(PREFIX)}


def load_settings(workspace: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `.env` in the workspace, let the environment override it, and validate the result: every problem found
    is raised at once (a SettingsError when there are several)."""
    problems: list[ConfigError] = []
    settings = _Reader(_values(workspace, environ, problems), problems).settings(workspace)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise SettingsError(problems)
    return settings


def _values(workspace: Path, environ: Mapping[str, str] | None, problems: list[ConfigError]) -> dict[str, str]:
    """The OUTREACH_* values as they stand: the workspace's `.env`, overridden by the environment."""
    environ = process_environment() if environ is None else environ
    values = _env_file(workspace / ENV_FILE, problems)
    values.update({key: value for key, value in environ.items() if key in KNOWN or key in RETIRED})
    for key, hint in RETIRED.items():
        if values.pop(key, "").strip():
            problems.append(ConfigError(f"{key} is no longer read", hint=hint))
    return values


def _env_file(path: Path, problems: list[ConfigError]) -> dict[str, str]:
    """The OUTREACH_* values in the workspace's `.env`, if it has one; an unknown name is a problem."""
    if not path.is_file():
        return {}
    try:
        found = dotenv_values(path)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"cannot read it: byte {error.object[error.start]:#04x} at offset {error.start} is not UTF-8",
            where=str(path),
            hint="save it as UTF-8 text; .env.example shows what it holds",
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror or error}", where=str(path)) from None
    values: dict[str, str] = {}
    for key, value in found.items():
        if not key.startswith(PREFIX):
            continue
        if key in KNOWN or key in RETIRED:
            values[key] = value or ""
            continue
        close = get_close_matches(key, KNOWN, n=1)
        problems.append(
            ConfigError(
                f"unknown setting {key}",
                where=str(path),
                hint=f"did you mean {close[0]}?" if close else "see .env.example for the settings",
            )
        )
    return values


@dataclass
class _Reader:
    """Parses each setting of `values`; what is wrong goes to `problems`, and a stand-in value takes its place
    (never seen: load_settings raises the problems instead of returning the settings)."""

    values: Mapping[str, str]
    problems: list[ConfigError]

    def settings(self, workspace: Path) -> Settings:
        """Every setting, parsed and checked (its problems in about the order of KNOWN)."""
        database = self.database_url(workspace)
        sender, from_domain = self.mailbox("OUTREACH_FROM")
        reply_to, _ = self.mailbox("OUTREACH_REPLY_TO")
        smtp_security, smtp_port = self.security_and_port("OUTREACH_SMTP", tls_port=465, plain_port=25)
        dkim_domain = self.domain("OUTREACH_DKIM_DOMAIN")
        imap_security, imap_port = self.security_and_port("OUTREACH_IMAP", tls_port=993, plain_port=143)
        return Settings(
            workspace=workspace,
            database_url=database,
            sender=sender,
            reply_to=reply_to,
            organization=self.get("OUTREACH_ORGANIZATION"),
            smtp_host=self.get("OUTREACH_SMTP_HOST"),
            smtp_port=smtp_port,
            smtp_security=smtp_security,
            smtp_username=self.get("OUTREACH_SMTP_USERNAME"),
            smtp_password=self.values.get("OUTREACH_SMTP_PASSWORD", ""),
            smtp_connections=self.number("OUTREACH_SMTP_CONNECTIONS", 1, 32),
            rate_limit=self.text("OUTREACH_RATE_LIMIT"),
            domain_rate_limit=self.text("OUTREACH_DOMAIN_RATE_LIMIT"),
            rate_limits=self.rates("OUTREACH_RATE_LIMIT"),
            domain_rate_limits=self.rates("OUTREACH_DOMAIN_RATE_LIMIT"),
            unsubscribe_mailto=self.unsubscribe_mailto(),
            public_url=self.public_url(),
            return_path=self.return_path(),
            dkim_keys=self.dkim_keys(workspace, dkim_domain, from_domain),
            dkim_selector=self.selector(),
            dkim_domain=dkim_domain or "",
            imap_host=self.get("OUTREACH_IMAP_HOST"),
            imap_port=imap_port,
            imap_security=imap_security,
            imap_username=self.get("OUTREACH_IMAP_USERNAME"),
            imap_password=self.values.get("OUTREACH_IMAP_PASSWORD", ""),
            imap_folder=self.get("OUTREACH_IMAP_FOLDER"),
            imap_move_to=self.get("OUTREACH_IMAP_MOVE_TO"),
            soft_bounce_limit=self.number("OUTREACH_SOFT_BOUNCE_LIMIT", 1, None),
            misfire_grace=self.duration("OUTREACH_MISFIRE_GRACE", most=MAX_MISFIRE_GRACE),
            render_seconds=self.number("OUTREACH_RENDER_SECONDS", 1, 3600),
            render_bytes=self.number("OUTREACH_RENDER_BYTES", 1024, 100_000_000),
        )

    def get(self, key: str) -> str:
        """The setting, stripped; empty or not set, its default."""
        return (self.values.get(key) or KNOWN[key]).strip()

    def text(self, key: str) -> str:
        """The setting, stripped; set to nothing it stays empty (a rate set to nothing is no limit), not set at
        all it is its default."""
        return self.values.get(key, KNOWN[key]).strip()

    def refuse(self, message: str, hint: str | None = None) -> None:
        """Note what is wrong with a setting; the message names it."""
        self.problems.append(ConfigError(message, hint=hint))

    def database_url(self, workspace: Path) -> str:
        """OUTREACH_DATABASE_URL, or the SQLite file in the workspace."""
        try:
            return database_url(workspace, self.values.get("OUTREACH_DATABASE_URL", ""))
        except ConfigError as error:
            self.problems.append(error)
            return database_url(workspace, "")

    def mailbox(self, key: str) -> tuple[str, str | None]:
        """A `Name <address>` setting and its address's domain in lower-case ASCII: "" when the setting is empty,
        None when it is no address (a problem then)."""
        from email.utils import parseaddr  # here, not above: shell completion imports this module

        text = self.get(key)
        if not text:
            return "", ""
        if "\r" in text or "\n" in text:
            self.refuse(f"{key} holds a line break, which would start a header of its own")
            return "", None
        address = parseaddr(text)[1]
        try:
            checked = validate_email(address, check_deliverability=False, allow_quoted_local=False)
        except EmailNotValidError as error:
            self.refuse(f"{key} is {_shown(text)}: {_said(error)}", hint='write it as "Name <address@example.org>"')
            return "", None
        return text, checked.ascii_domain.lower()

    def domain(self, key: str) -> str | None:
        """A domain setting in lower-case ASCII (IDNA): "" when empty, None when it is no domain (a problem)."""
        text = self.get(key)
        if not text:
            return ""
        found = _ascii_domain(text)
        if found is None:
            self.refuse(f"{key} is {_shown(text)}, not a domain name", hint="write the domain alone: example.org")
        return found

    def security_and_port(self, prefix: str, *, tls_port: int, plain_port: int) -> tuple[str, int]:
        """A server's PREFIX_SECURITY (none, starttls or tls) and PREFIX_PORT (by default the one for that
        security)."""
        security = self.get(f"{prefix}_SECURITY").lower()
        if security not in ("none", "starttls", "tls"):
            self.refuse(f"{prefix}_SECURITY is {_shown(security)}", hint="use none, starttls or tls")
            security = KNOWN[f"{prefix}_SECURITY"]
        default = tls_port if security == "tls" else plain_port
        port_text = self.get(f"{prefix}_PORT")
        port = _whole(port_text) if port_text else default
        if port is None or not 0 < port < 65536:
            self.refuse(f"{prefix}_PORT is {_shown(port_text)}, not a port number", hint="use a number from 1 to 65535")
            port = default
        return security, port

    def number(self, key: str, least: int, most: int | None) -> int:
        """A whole number from `least` to `most` (no upper bound: None)."""
        text = self.get(key)
        number = _whole(text)
        if number is None or number < least or (most is not None and number > most):
            within = f"from {least} to {most}" if most is not None else f"{least} or more"
            self.refuse(f"{key} is {_shown(text)}", hint=f"use a whole number, {within}")
            return int(KNOWN[key])
        return number

    def duration(self, key: str, *, most: int) -> int:
        """Seconds, from a number of them ("3600") or a number with its unit ("90m", "1h", "2d"), at most `most`."""
        text = self.get(key)
        found = _DURATION.fullmatch(text.lower())
        if not found:
            hint = 'use seconds, or a number with s, m, h or d: "90m", "1h", "2d"'
            self.refuse(f"{key} is {_shown(text)}", hint=hint)
            return 0
        days = most // 86400
        if len(found[1]) > _MAX_DIGITS or int(found[1]) * _SECONDS[found[2]] > most:
            self.refuse(f"{key} is {_shown(text)}, more than {days} days", hint=f"use {days}d or less")
            return 0
        return int(found[1]) * _SECONDS[found[2]]

    def rates(self, key: str) -> tuple[Rate, ...]:
        """Rates, `1/second, 500/day`; set to nothing, no limit."""
        try:
            return parse_rates(self.text(key))
        except RateError as error:
            self.refuse(f"{key}: {error}", hint="write a rate as N/unit, several with commas: 1/second, 500/day")
            return parse_rates(KNOWN[key])

    def unsubscribe_mailto(self) -> str:
        """The List-Unsubscribe mailbox (RFC 2369): one plain ASCII address, or nothing."""
        key = "OUTREACH_UNSUBSCRIBE_MAILTO"
        value = self.get(key)
        if not value:
            return ""
        problem = _header_problem(key, value)
        if problem is None and ("@" not in value or any(ch in value for ch in ",?&")):
            problem = f"{key} is {_shown(value)}: it must be one address"
        if problem is None:
            try:
                validate_email(value, check_deliverability=False, allow_quoted_local=False)
            except EmailNotValidError as error:
                problem = f"{key} is {_shown(value)}: {_said(error)}"
        if problem:
            self.refuse(problem, hint="write the address alone: unsubscribe@example.org")
            return ""
        return value

    def public_url(self) -> str:
        """Where `outreach serve` answers, without a trailing slash: letters carry PUBLIC_URL/u/TOKEN as their
        one-click unsubscribe URL (RFC 8058), which must be https (3.1); plain http is let through for a loopback
        host alone (127.0.0.1, ::1, localhost), where tests and the demo serve it. A path is kept (a server that
        serves the desk under /appeal); a query, a fragment, a login or a placeholder are refused: the token
        follows the URL."""
        key = "OUTREACH_PUBLIC_URL"
        value = self.get(key).rstrip("/")
        if not value:
            return ""
        problem = _header_problem(key, value)
        if problem is None and (wrong := _public_url_problem(value)):
            problem = f"{key} is {_shown(value)}: {wrong}"
        if problem is None and _longest_line(value) > _MAX_LINE:
            problem = f"{key} is too long: with a token it passes a header line's {_MAX_LINE} octets"
        if problem:
            self.refuse(problem, hint="the https address `outreach serve` answers at: https://appeal.example.org")
            return ""
        return value

    def return_path(self) -> str:
        """An envelope sender, with at most one `{token}` (VERP) in its local part."""
        value = self.get("OUTREACH_RETURN_PATH")
        if value and not re.fullmatch(r"[^@\s{}<>]*(\{token\})?[^@\s{}<>]*@[A-Za-z0-9.-]+", value):
            hint = "an address, with {token} at most once before the @: bounces+{token}@example.org"
            self.refuse(f"OUTREACH_RETURN_PATH is {_shown(value)}", hint=hint)
            return ""
        return value

    def dkim_keys(
        self, workspace: Path, dkim_domain: str | None, from_domain: str | None
    ) -> tuple[tuple[str, str], ...]:
        """OUTREACH_DKIM_KEY as (domain, path) pairs: one path (the key of OUTREACH_DKIM_DOMAIN, or else of
        OUTREACH_FROM's domain) or `domain=path` pairs separated by commas; each file checked without reading it."""
        key = "OUTREACH_DKIM_KEY"
        text = self.get(key)
        if not text:
            return ()
        pairs: list[tuple[str, str]] = []
        paths: list[str] = []  # every path given, checked even when its domain is wrong
        if "=" not in text:
            paths.append(text)
            domain = dkim_domain if dkim_domain != "" else from_domain
            if domain == "":
                self.refuse(f"{key} is one key for no domain: OUTREACH_DKIM_DOMAIN and OUTREACH_FROM are empty",
                            hint="set OUTREACH_DKIM_DOMAIN, or write the key as DOMAIN=PATH")  # fmt: skip
            elif domain is not None:  # None: the setting it comes from is wrong, and named already
                pairs.append((domain, text))
        else:
            if dkim_domain:
                self.refuse(f"OUTREACH_DKIM_DOMAIN is {_shown(dkim_domain)}, but {key} names each key's domain",
                            hint="leave OUTREACH_DKIM_DOMAIN empty with domain=path pairs")  # fmt: skip
            for part in filter(None, (p.strip() for p in text.split(","))):
                name, _, path = (piece.strip() for piece in part.partition("="))
                if path:
                    paths.append(path)
                domain = _ascii_domain(name) if name and path else None
                if domain is None:
                    self.refuse(f"{key}: {_shown(part)} is not DOMAIN=PATH", hint=_DKIM_KEY_HINT)
                elif domain in dict(pairs):
                    self.refuse(f"{key} names two keys for {domain}", hint="one key for each domain")
                else:
                    pairs.append((domain, path))
        for path in paths:
            problem = _key_file_problem(workspace / path)
            if problem:
                self.refuse(f"{key}: {problem}", hint=_DKIM_KEY_HINT)
        return tuple(pairs)

    def selector(self) -> str:
        """The DKIM selector: a DNS name, under which `SELECTOR._domainkey.DOMAIN` publishes the public key."""
        text = self.get("OUTREACH_DKIM_SELECTOR")
        if not _DNS_NAME.fullmatch(text):
            self.refuse(f"OUTREACH_DKIM_SELECTOR is {_shown(text)}, not an ASCII DNS name",
                        hint="letters, digits, hyphens and dots, as in outreach2026")  # fmt: skip
            return KNOWN["OUTREACH_DKIM_SELECTOR"]
        return text


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (an IPv6 one with or without its brackets): what only this
    machine reaches, where AUTH without encryption harms no one and the desk may serve plain HTTP."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(value: str) -> str:
    """A value quoted for a message: on one line, whatever it holds, and cut short when it is long."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def _said(error: Exception) -> str:
    """A library's error message as part of ours: one line, without its full stop."""
    return " ".join(str(error).split()).rstrip(".")


def _whole(text: str) -> int | None:
    """A whole number in ASCII digits, or None: "²".isdigit() is True, and int() refuses thousands of digits."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS else None


def _ascii_domain(text: str) -> str | None:
    """A domain name in lower-case ASCII (IDNA, as email-validator checks a domain), or None."""
    try:
        return validate_email(f"postmaster@{text}", check_deliverability=False).ascii_domain.lower()
    except EmailNotValidError:
        return None


def _header_problem(key: str, value: str) -> str | None:
    """What would make a value break the List-Unsubscribe header or inject another one (None: nothing)."""
    if "\r" in value or "\n" in value:
        return f"{key} holds a line break, which would start a header of its own"
    if not value.isascii() or _UNSAFE.search(value):
        return f"{key} is {_shown(value)}: it must be ASCII without blanks, controls, angle brackets or `=?`"
    return None


def _public_url_problem(url: str) -> str | None:
    """What makes a URL no base for one-click URLs (None: nothing): see _Reader.public_url."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname or "", parts.port  # .port raises ValueError for one that is no port number
    except ValueError:  # also a broken IPv6 literal
        return "it is no URL"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        return "it is no https URL with a host"
    if scheme == "http" and host.lower() not in _LOOPBACK_HOSTS:
        return "one-click unsubscribe needs https (RFC 8058 3.1); http is for 127.0.0.1 and localhost alone"
    if "?" in url or "#" in url:
        return "it must end in a host or a path, with no query or fragment"
    if parts.username is not None or "{" in url or "}" in url:
        return "it must hold no login and no placeholder"
    return None


def _longest_line(public_url: str) -> int:
    """The octets of a List-Unsubscribe line that holds the one-click URL of a public URL, the field name and a
    comma (rendering/letters.py: PUBLIC_URL/u/TOKEN)."""
    return len("List-Unsubscribe: <>,") + len(public_url) + len(_ONE_CLICK_PATH) + _TOKEN_LENGTH


def _key_file_problem(path: Path) -> str | None:
    """What makes the file at path no DKIM private key, found without reading it (None: nothing)."""
    try:
        info = path.stat()  # stat, not open: opening a FIFO would wait for a writer
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        return f"{path}: cannot read the DKIM private key: {getattr(error, 'strerror', None) or error}"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if info.st_size > DKIM_KEY_MAX_BYTES:
        return f"{path} has {info.st_size:,} bytes, too many for a PEM private key (at most {DKIM_KEY_MAX_BYTES:,})"
    return None


def find_database_url(workspace: Path, environ: Mapping[str, str] | None = None) -> str:
    """Return the database URL as load_settings finds it (the environment's OUTREACH_DATABASE_URL, else the one in
    `.env`, else the SQLite file in the workspace) without checking any other setting: shell completion
    needs the URL alone, at once."""
    return database_url(workspace, _values(workspace, environ, []).get("OUTREACH_DATABASE_URL", ""))


def database_url(workspace: Path, configured: str) -> str:
    """Return the database URL: the configured one, or a SQLite file in the workspace."""
    url = configured.strip()
    if not url:
        return f"sqlite:///{(workspace / DATABASE_FILE).resolve()}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        # A relative SQLite path is relative to the workspace, not to wherever the command runs.
        return f"sqlite:///{(workspace / url.removeprefix('sqlite:///')).resolve()}"
    if not url.startswith(("sqlite:", "postgresql")):
        raise ConfigError(
            f"OUTREACH_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL, not {redact_url(url)}"
        )
    return url
