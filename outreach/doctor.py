"""The doctor: check the settings, the database, the templates, the SMTP and IMAP servers and the public URL, and
send nothing.

Each check ends in a plain `Check`, whatever became of the others: an SMTP server that is down still leaves the
database and the templates checked. Nothing here prints; `outreach doctor` shows the checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from outreach.config import is_loopback
from outreach.contacts.directory import count_contacts
from outreach.contacts.segments import Segment
from outreach.db.engine import SCHEMA_HEAD
from outreach.db.models import OutboxMessage
from outreach.errors import ConfigError, OutreachError, SettingsError
from outreach.outbox.signing import DkimSigner
from outreach.outbox.smtp import SmtpConnection, SmtpError, SmtpSettings
from outreach.outbox.states import State
from outreach.rendering.environment import RenderLimits
from outreach.rendering.folders import FALLBACK_LANGUAGE, SUBJECT, first_letter_of, template_names
from outreach.rendering.letters import Sender
from outreach.rendering.previewing import check_template, compile_template
from outreach.responses.sources import ImapError, ImapSettings, ImapSource
from outreach.scrubbing import redact_url
from outreach.workspace import Workspace

SMTP_TIMEOUT = 10.0  # seconds: a doctor should answer soon, not wait out the adapter's 60 s for sending
HTTP_TIMEOUT = 5.0  # seconds: `outreach serve` answers /health at once, or not at all
SHOWN_PROBLEMS = 3  # a check's detail names this many problems at most


class Status(StrEnum):
    """How a check came out."""

    OK = "ok"
    WARNING = "warning"  # works, but something deserves a look
    FAILED = "failed"  # sending would not work, or would go wrong


@dataclass(frozen=True)
class Check:
    """One named check: its status, one plain line of detail, and what to do about it when it is not ok."""

    name: str
    status: Status
    detail: str
    hint: str | None = None


def diagnose(workspace: Workspace, *, now: datetime, smtp_timeout: float = SMTP_TIMEOUT) -> list[Check]:
    """Run every check in turn (settings, database, templates, SMTP, IMAP, the public URL); one failing never
    stops the others. No password shows in what they say, in any form a server may have echoed it."""
    database, sessions = _database(workspace)
    checks = [
        _settings(workspace),
        database,
        _templates(workspace, sessions, now=now),
        _smtp(workspace.smtp_settings(timeout=smtp_timeout)),
        _imap(workspace.imap_settings(timeout=smtp_timeout), workspace.settings.imap_folder),
        _public_url(workspace.settings.public_url, timeout=HTTP_TIMEOUT),
    ]
    scrub = workspace.settings.scrubber()
    return [replace(check, detail=scrub(check.detail), hint=scrub.optional(check.hint)) for check in checks]


def unloadable_settings(error: ConfigError) -> Check:
    """The settings check for settings that did not load at all (the other checks need them): every problem."""
    return _failed(error.problems if isinstance(error, SettingsError) else (error,))


def _settings(workspace: Workspace) -> Check:
    """What sending needs of the loaded settings (a sender, DKIM keys that sign) and what bulk mail should have
    (List-Unsubscribe, a DKIM key for the sender's domain, a pace): the latter missing is a warning."""
    settings = workspace.settings
    problems: list[ConfigError] = []
    sender = None
    try:
        sender = workspace.sender()
    except ConfigError as error:
        problems.append(error)
    else:
        if sender.mailbox is None:
            problems.append(ConfigError("OUTREACH_FROM is not set", hint='add OUTREACH_FROM="Name <address>" to .env'))
    signers: dict[str, DkimSigner] = {}
    try:
        signers = workspace.dkim_signers()  # the same full check `outreach send` makes at its start
    except ConfigError as error:
        for problem in error.problems if isinstance(error, SettingsError) else (error,):
            where = f"{problem.where}: " if problem.where else ""
            problems.append(ConfigError(f"OUTREACH_DKIM_KEY: {where}{problem.message}", hint=problem.hint))
    if problems:
        return _failed(problems)
    assert sender is not None and sender.mailbox is not None
    mailbox = sender.mailbox
    details = [
        f"from {f'{mailbox.name} <{mailbox.address}>' if mailbox.name else mailbox.address}",
        f"pace {settings.rate_limit or 'unlimited'}, {settings.domain_rate_limit or 'unlimited'} per domain",
    ]
    warnings: list[tuple[str, str]] = []  # what deserves a look, and the hint for it
    unsubscribe = [way for way, setting in (("one-click at OUTREACH_PUBLIC_URL", settings.public_url),
                                            ("mail", settings.unsubscribe_mailto)) if setting]  # fmt: skip
    if unsubscribe:
        details.append(f"List-Unsubscribe by {' and '.join(unsubscribe)}")
    else:
        warnings.append((
            "no List-Unsubscribe (OUTREACH_UNSUBSCRIBE_MAILTO and OUTREACH_PUBLIC_URL are empty)",
            "large mailbox providers expect List-Unsubscribe from bulk senders: set OUTREACH_UNSUBSCRIBE_MAILTO, "
            "and OUTREACH_PUBLIC_URL where `outreach serve` answers for one-click",
        ))  # fmt: skip
    if signers:
        keys = "keys" if len(signers) > 1 else "key"
        details.append(f"DKIM {keys} for {', '.join(signers)} (selector {settings.dkim_selector})")
        if sender.domain not in signers:
            warnings.append((
                f"no DKIM key for {sender.domain}, the domain of OUTREACH_FROM",
                f"its letters would go unsigned: add {sender.domain}=PATH to OUTREACH_DKIM_KEY",
            ))  # fmt: skip
    else:
        warnings.append((
            "no DKIM key (OUTREACH_DKIM_KEY is empty)",
            "large mailbox providers expect bulk mail to be signed: set OUTREACH_DKIM_KEY, and publish its public key "
            "at SELECTOR._domainkey.DOMAIN",
        ))  # fmt: skip
    if not settings.rate_limits and not is_loopback(settings.smtp_host):  # .env.example: off for a local server
        warnings.append((
            "OUTREACH_RATE_LIMIT is empty, so nothing limits the pace",
            "a mail server may throttle or block a sender that goes too fast: e.g. 1/second, 500/day",
        ))  # fmt: skip
    detail = "; ".join(details + [warning for warning, _ in warnings])
    if warnings:
        return Check("settings", Status.WARNING, detail, "; ".join(hint for _, hint in warnings))
    return Check("settings", Status.OK, detail)


def _failed(problems: Sequence[ConfigError]) -> Check:
    """A failed settings check that names every problem, with each different hint."""
    error = problems[0] if len(problems) == 1 else SettingsError(list(problems))
    detail = f"{error.where}: {error.message}" if error.where else error.message
    return Check("settings", Status.FAILED, detail, error.hint or "see .env.example for the settings")


def _database(workspace: Workspace) -> tuple[Check, sessionmaker[Session] | None]:
    """The database opens and its schema is the code's; return the session factory when it can be used."""
    place = redact_url(workspace.settings.database_url)
    try:
        engine = workspace.engine
        place = _place(engine)
        missing = _missing_sqlite_file(engine)
        if missing:
            # Connecting would create an empty file; a doctor changes nothing.
            return Check(
                "database", Status.FAILED, f"{place} does not exist",
                "run `outreach db upgrade` in the workspace, or check OUTREACH_DATABASE_URL",
            ), None  # fmt: skip
        sessions = workspace.sessions  # raises when the schema is missing or not the code's
        contacts = count_contacts(sessions, Segment())
        with sessions() as session:
            queued = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == State.QUEUED)
            )
    except OutreachError as error:
        return Check("database", Status.FAILED, error.message, error.hint), None
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        return Check("database", Status.FAILED, f"{place}: {reason}", "is OUTREACH_DATABASE_URL right?"), None
    detail = f"{place}, revision {SCHEMA_HEAD}: {contacts} contacts, {queued or 0} queued outbox messages"
    return Check("database", Status.OK, detail), sessions


def _place(engine: Engine) -> str:
    """Where the database is, for people: a SQLite file or a PostgreSQL host; never a password."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database or ':memory:'}"
    if url.get_backend_name() == "postgresql":
        return f"PostgreSQL {url.database} on {url.host or 'localhost'}:{url.port or 5432}"
    return redact_url(str(url))


def _missing_sqlite_file(engine: Engine) -> bool:
    """True for a SQLite database whose file is not there."""
    database = engine.url.database
    in_memory = not database or database == ":memory:" or engine.url.query.get("mode") == "memory"
    return engine.url.get_backend_name() == "sqlite" and not in_memory and not Path(database or "").exists()


def _templates(workspace: Workspace, sessions: sessionmaker[Session] | None, *, now: datetime) -> Check:
    """Every template compiles and, with a usable database, renders for every contact, as `templates check`."""
    root = workspace.templates
    names = template_names(root)
    # A folder without the fallback subject is not listed as a template at all: say so rather than skip it.
    strays = sorted(
        p.name for p in root.iterdir() if p.is_dir() and p.name not in names and not p.name.startswith(("_", "."))
    ) if root.is_dir() else []  # fmt: skip
    if not names and not strays:
        return Check("templates", Status.WARNING, f"no templates in {root}",
                     "`outreach init` copies the shipped ones; a template is a folder with en/subject.txt")  # fmt: skip
    try:
        sender = workspace.sender()
    except ConfigError:
        sender = Sender(None, workspace.settings.organization)  # the settings check reports it
    failures: list[str] = []
    copies = 0
    for name in names:
        checked, found = _template_problems(root, name, sessions, sender, now, workspace.render_limits())
        copies += checked
        failures += found
    listed = ", ".join(names)
    if failures:
        more = len(failures) - SHOWN_PROBLEMS
        detail = "; ".join(failures[:SHOWN_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        return Check("templates", Status.FAILED, detail, "fix what is named, then run `outreach doctor` again")
    if strays:
        not_templates = "; ".join(f"{stray}/ has no {FALLBACK_LANGUAGE}/{SUBJECT}, so it is not a template"
                                  for stray in strays)  # fmt: skip
        return Check("templates", Status.WARNING, f"{listed or 'no templates'}; {not_templates}",
                     "every template needs the English fallback: NAME/en/subject.txt")  # fmt: skip
    if sessions is None:
        return Check("templates", Status.WARNING, f"{listed} compile; not rendered for contacts",
                     "the database cannot be used (see above), so no copy was rendered")  # fmt: skip
    rendered = f"{copies} copies rendered, none failed" if copies else "no contacts to render them for yet"
    return Check("templates", Status.OK, f"{listed}: {rendered}")


def _template_problems(
    root: Path, name: str, sessions: sessionmaker[Session] | None, sender: Sender, now: datetime, limits: RenderLimits
) -> tuple[int, list[str]]:
    """Check one template as `outreach templates check NAME` does; return the copies rendered and the problems."""
    try:
        if sessions is None:
            compile_template(root, name, limits)
            return 0, []
        report = check_template(sessions, root, name, Segment(), sender, now=now, follows=first_letter_of(root, name),
                                limits=limits)  # fmt: skip
    except OutreachError as error:  # a syntax error, or the first letter of a follow-up missing
        return 0, [f"{name}: {error.format_message()}"]
    except (OSError, UnicodeError) as error:  # unreadable, or a file in another encoding than UTF-8
        return 0, [f"{name}: cannot read it: {error}"]
    except SQLAlchemyError as error:
        return 0, [f"{name}: the database failed while rendering ({type(error).__name__})"]
    return report.checked, [
        f"{name}: {problem} (for {len(emails)} contacts, first {emails[0]})" for problem, emails in report.grouped()
    ]


# SmtpError says what failed in words, not in kinds. A refused login and a host name that is none come with hints of
# their own; for a connection that failed, the message names the library's exception ("cannot use the SMTP server:
# ConnectionRefusedError: ..."), and these words are looked for in that name only, never in what a server said.
_SMTP_FAILURE = "cannot use the SMTP server: "
_SMTP_HINTS = (
    ("ConnectionRefused", "nothing listens there: is the server running, and are OUTREACH_SMTP_HOST and "
                          "OUTREACH_SMTP_PORT right?"),
    ("gaierror", "the host name is not known: check OUTREACH_SMTP_HOST"),
    ("TimeoutError", "no answer in time: check OUTREACH_SMTP_HOST and OUTREACH_SMTP_PORT (a firewall may drop it)"),
    ("SSL", "TLS failed: port 465 wants OUTREACH_SMTP_SECURITY=tls, ports 25 and 587 want starttls"),
)  # fmt: skip
_SECURITY = {"none": "no encryption", "starttls": "STARTTLS", "tls": "TLS"}


def _smtp(smtp: SmtpSettings) -> Check:
    """Connect, EHLO, STARTTLS and AUTH as the settings say, then QUIT; the password is never shown."""
    where = f"{smtp.host}:{smtp.port}"
    try:
        connection = SmtpConnection(smtp)
        try:
            connection.open()
            smtputf8 = connection.supports_smtputf8
            pipelining = connection.offers("pipelining")
        finally:
            connection.close()
    except SmtpError as error:
        detail = f"{error.where}: {error.message}" if error.where else error.message
        return Check("smtp", Status.FAILED, detail, _smtp_hint(error))
    detail = (
        f"{where}, {_SECURITY.get(smtp.security, smtp.security)}, "
        + (f"logged in as {smtp.username!r}" if smtp.username else "no login (OUTREACH_SMTP_USERNAME is empty)")
        + (", SMTPUTF8 offered" if smtputf8 else ", SMTPUTF8 not offered")
        + (", PIPELINING offered" if pipelining else "")
    )
    if smtp.security == "none" and not is_loopback(smtp.host):
        return Check("smtp", Status.WARNING, detail + "; letters would cross the network unencrypted",
                     "set OUTREACH_SMTP_SECURITY=starttls (ports 25, 587) or tls (port 465)")  # fmt: skip
    return Check("smtp", Status.OK, detail)


def _smtp_hint(error: SmtpError) -> str:
    """The error's own hint, else the one for the exception a failed connection names, else a general one."""
    if error.hint:
        return error.hint
    if error.message.startswith(_SMTP_FAILURE):
        kind = error.message.removeprefix(_SMTP_FAILURE).split(":", 1)[0]
        for words, hint in _SMTP_HINTS:
            if words in kind:
                return hint
    return "check the OUTREACH_SMTP_* settings"


def _imap(imap: ImapSettings | None, folder: str) -> Check:
    """Connect and log in to the inbox responses are read from, and look at its folder; the password is never
    shown. Without OUTREACH_IMAP_HOST there is nothing to check: sending does not need it, and responses can be
    read from files."""
    if imap is None:
        return Check("imap", Status.OK, "not set up (OUTREACH_IMAP_HOST is empty): `outreach responses poll "
                     "--source maildir:PATH` or `mbox:PATH` reads replies from files")  # fmt: skip
    source = ImapSource(imap, folder)
    try:
        messages, unseen = source.probe()
    except ImapError as error:
        detail = f"{error.where}: {error.message}" if error.where else error.message
        return Check("imap", Status.FAILED, detail, error.hint or "check the OUTREACH_IMAP_* settings")
    finally:
        source.close()
    detail = (f"{imap.host}:{imap.port}, {_SECURITY.get(imap.security, imap.security)}, logged in as "
              f"{imap.username!r}; {folder} holds {messages} messages, {unseen} unseen")  # fmt: skip
    return Check("imap", Status.OK, detail)


def _public_url(public_url: str, *, timeout: float) -> Check:
    """With OUTREACH_PUBLIC_URL set, `outreach serve` answers PUBLIC_URL/health with 200 (after any redirect):
    else the one-click links in the letters lead nowhere."""
    if not public_url:
        return Check("web", Status.OK, "not set (OUTREACH_PUBLIC_URL is empty): letters offer no one-click "
                     "unsubscribe")  # fmt: skip
    health = f"{public_url}/health"
    try:
        with urlopen(Request(health, headers={"User-Agent": "outreach doctor"}), timeout=timeout) as answer:
            status = answer.status
    except HTTPError as error:
        status, reason = error.code, f"HTTP {error.code} {error.reason}"
    except (URLError, HTTPException, OSError, ValueError) as error:
        status, reason = 0, str(getattr(error, "reason", None) or error) or type(error).__name__
    else:
        reason = f"HTTP {status}"
    if status == 200:
        return Check("web", Status.OK, f"{health} answers: one-click unsubscribe is served")
    detail = f"OUTREACH_PUBLIC_URL {public_url} does not answer: GET /health: {reason}"
    return Check("web", Status.FAILED, detail, "start `outreach serve` behind it")
