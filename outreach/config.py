"""Settings from OUTREACH_* environment variables and the workspace's `.env`, read and validated once."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from outreach.errors import ConfigError

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
    "OUTREACH_UNSUBSCRIBE_URL": "",  # https endpoint for one-click unsubscribe (RFC 8058); empty: none
    "OUTREACH_RETURN_PATH": "",  # envelope sender, where bounces go; `{token}` in it: VERP; empty: OUTREACH_FROM
    "OUTREACH_DKIM_KEY": "",  # path to a PEM private key; empty: no DKIM signature
    "OUTREACH_DKIM_SELECTOR": "outreach",  # the selector its public key is published under
    "OUTREACH_DKIM_DOMAIN": "",  # the signing domain; empty: the domain of OUTREACH_FROM
    "OUTREACH_IMAP_HOST": "",  # the server responses are read from; empty: none (read a Maildir or mbox instead)
    "OUTREACH_IMAP_PORT": "",  # empty: 993 for tls, 143 for starttls and none
    "OUTREACH_IMAP_SECURITY": "tls",  # none, starttls or tls
    "OUTREACH_IMAP_USERNAME": "",
    "OUTREACH_IMAP_PASSWORD": "",
    "OUTREACH_IMAP_FOLDER": "INBOX",
    "OUTREACH_IMAP_MOVE_TO": "",  # folder a recorded message is moved to; empty: it stays where it is
    "OUTREACH_SOFT_BOUNCE_LIMIT": "3",  # soft bounces of one address before it counts as bounced
    "OUTREACH_MISFIRE_GRACE": "1h",  # what fell due longer ago while no scheduler ran is held, not sent
}


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
    rate_limit: str = "1/second, 500/day"
    domain_rate_limit: str = "20/hour"
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""
    return_path: str = ""
    dkim_key: str = ""
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

    def __repr__(self) -> str:
        # A database URL can carry a password, and the SMTP and IMAP passwords are ones: never show them.
        imap = f"{self.imap_username or '-'}@{self.imap_host}:{self.imap_port}/{self.imap_security}"
        return (
            f"Settings(workspace={self.workspace!s}, database_url={redact_url(self.database_url)}, "
            f"smtp={self.smtp_username or '-'}@{self.smtp_host}:{self.smtp_port}/{self.smtp_security}, "
            f"imap={imap if self.imap_host else '-'})"
        )


def process_environment() -> dict[str, str]:
    """Return the OUTREACH_* variables of this process's environment (the only place that reads it)."""
    return {key: value for key, value in os.environ.items() if key.startswith(PREFIX)}


def load_settings(workspace: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `.env` in the workspace, let the environment override it, and validate the result."""
    environ = process_environment() if environ is None else environ
    env_path = workspace / ENV_FILE
    values: dict[str, str] = {}
    if env_path.is_file():
        for key, value in dotenv_values(env_path).items():
            if not key.startswith(PREFIX):
                continue
            if key not in KNOWN:
                close = get_close_matches(key, KNOWN, n=1)
                raise ConfigError(
                    f"unknown setting {key}",
                    where=str(env_path),
                    hint=f"did you mean {close[0]}?" if close else "see .env.example for the settings",
                )
            values[key] = value or ""
    values.update({key: value for key, value in environ.items() if key in KNOWN})
    return Settings(
        workspace=workspace,
        database_url=database_url(workspace, values.get("OUTREACH_DATABASE_URL", "")),
        sender=values.get("OUTREACH_FROM", "").strip(),
        reply_to=values.get("OUTREACH_REPLY_TO", "").strip(),
        organization=values.get("OUTREACH_ORGANIZATION", "").strip(),
        **_smtp(values),
        **_imap(values),
        misfire_grace=_duration(
            values.get("OUTREACH_MISFIRE_GRACE") or KNOWN["OUTREACH_MISFIRE_GRACE"], "OUTREACH_MISFIRE_GRACE"
        ),
    )


def _smtp(values: Mapping[str, str]) -> dict[str, Any]:
    """The SMTP and pacing settings, checked."""

    def get(key: str) -> str:
        return (values.get(key) or KNOWN[key]).strip()

    security, port = _security_and_port(get, "OUTREACH_SMTP", tls_port=465, plain_port=25)
    connections = get("OUTREACH_SMTP_CONNECTIONS")
    if not connections.isdigit() or not 1 <= int(connections) <= 32:
        raise ConfigError(f"OUTREACH_SMTP_CONNECTIONS is {connections!r}", hint="use a number from 1 to 32")
    url = get("OUTREACH_UNSUBSCRIBE_URL")
    if url and not url.startswith("https://"):
        raise ConfigError(f"OUTREACH_UNSUBSCRIBE_URL is {url!r}", hint="one-click unsubscribe needs an https:// URL")
    return {
        "smtp_host": get("OUTREACH_SMTP_HOST"),
        "smtp_port": port,
        "smtp_security": security,
        "smtp_username": get("OUTREACH_SMTP_USERNAME"),
        "smtp_password": values.get("OUTREACH_SMTP_PASSWORD", ""),
        "smtp_connections": int(connections),
        # A rate set to nothing means no limit; one not set at all gets the polite default.
        "rate_limit": values.get("OUTREACH_RATE_LIMIT", KNOWN["OUTREACH_RATE_LIMIT"]).strip(),
        "domain_rate_limit": values.get("OUTREACH_DOMAIN_RATE_LIMIT", KNOWN["OUTREACH_DOMAIN_RATE_LIMIT"]).strip(),
        "unsubscribe_mailto": get("OUTREACH_UNSUBSCRIBE_MAILTO"),
        "unsubscribe_url": url,
        "return_path": _return_path(get("OUTREACH_RETURN_PATH")),
        "dkim_key": get("OUTREACH_DKIM_KEY"),
        "dkim_selector": get("OUTREACH_DKIM_SELECTOR"),
        "dkim_domain": get("OUTREACH_DKIM_DOMAIN").lower(),
    }


def _security_and_port(get: Callable[[str], str], prefix: str, *, tls_port: int, plain_port: int) -> tuple[str, int]:
    """A server's PREFIX_SECURITY (none, starttls or tls) and PREFIX_PORT (by default the one for that security)."""
    security = get(f"{prefix}_SECURITY").lower()
    if security not in ("none", "starttls", "tls"):
        raise ConfigError(f"{prefix}_SECURITY is {security!r}", hint="use none, starttls or tls")
    port_text = get(f"{prefix}_PORT") or str(tls_port if security == "tls" else plain_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{prefix}_PORT is {port_text!r}, not a port number")
    return security, int(port_text)


def _imap(values: Mapping[str, str]) -> dict[str, Any]:
    """The IMAP settings, checked."""

    def get(key: str) -> str:
        return (values.get(key) or KNOWN[key]).strip()

    security, port = _security_and_port(get, "OUTREACH_IMAP", tls_port=993, plain_port=143)
    return {
        "imap_host": get("OUTREACH_IMAP_HOST"),
        "imap_port": port,
        "imap_security": security,
        "imap_username": get("OUTREACH_IMAP_USERNAME"),
        "imap_password": values.get("OUTREACH_IMAP_PASSWORD", ""),
        "imap_folder": get("OUTREACH_IMAP_FOLDER"),
        "imap_move_to": get("OUTREACH_IMAP_MOVE_TO"),
        "soft_bounce_limit": _count(get("OUTREACH_SOFT_BOUNCE_LIMIT"), "OUTREACH_SOFT_BOUNCE_LIMIT"),
    }


def _return_path(value: str) -> str:
    """An envelope sender, with at most one `{token}` (VERP) in its local part."""
    if value and not re.fullmatch(r"[^@\s{}<>]*(\{token\})?[^@\s{}<>]*@[A-Za-z0-9.-]+", value):
        hint = "an address, with {token} at most once before the @: bounces+{token}@example.org"
        raise ConfigError(f"OUTREACH_RETURN_PATH is {value!r}", hint=hint)
    return value


def _count(value: str, key: str) -> int:
    """A whole number of at least 1."""
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{key} is {value!r}", hint="use a whole number, 1 or more")
    return int(value)


_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str, key: str) -> int:
    """Seconds, from a number of them ("3600") or a number with its unit ("90m", "1h", "2d")."""
    found = re.fullmatch(r"(\d+)\s*([smhd]?)", value.strip().lower())
    if not found:
        raise ConfigError(f"{key} is {value!r}", hint='use seconds, or a number with s, m, h or d: "90m", "1h", "2d"')
    return int(found[1]) * _SECONDS[found[2]]


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


def redact_url(url: str) -> str:
    """Hide the password in a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
