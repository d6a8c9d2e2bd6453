"""A workspace: the folder with `.env`, templates, contact lists and (by default) the SQLite database."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from outreach.config import ENV_FILE, Settings, load_settings
from outreach.db.engine import make_engine, make_session_factory, require_current, upgrade
from outreach.db.models import Suppression
from outreach.errors import ConfigError, SettingsError, WorkspaceError

if TYPE_CHECKING:  # the adapters and the template engine load when a command asks for them, not with the workspace
    from outreach.outbox.signing import DkimSigner
    from outreach.outbox.smtp import SmtpSettings
    from outreach.rendering.environment import RenderLimits
    from outreach.rendering.letters import Sender
    from outreach.responses.sources import ImapSettings

ENV_EXAMPLE = ".env.example"
SHIPPED_FOLDERS = ("contacts", "templates")
# The workspace's secret: the key of the suppression list's hashes (outreach/contacts/addresses.py). A file of its
# own beside `.env`, not a setting in it: `.env` is the file people edit, rewrite from a template or copy from
# another workspace, and a secret lost or swapped that way would silently let every address suppressed under it
# come back. Made once by `outreach init` or `outreach db upgrade`, readable by its owner only, never overwritten.
SECRET_FILE = "secret.key"
_SECRET_BYTES = 32
_SECRET_NOTE = (
    "# outreach: the key of this workspace's address hashes (the suppression list, and what `contacts forget`\n"
    "# keeps). Keep it with the database's backups and never share it: without it, an address suppressed or\n"
    "# forgotten is no longer recognised. Every workspace that uses the same database needs the same file.\n"
)


@dataclass
class Workspace:
    """What services need, built once from the settings: the engine and the session factory."""

    settings: Settings
    _checked: bool = field(default=False, repr=False)

    @property
    def root(self) -> Path:
        """The workspace folder."""
        return self.settings.workspace

    @cached_property
    def engine(self) -> Engine:
        """The database engine."""
        return make_engine(self.settings.database_url)

    @cached_property
    def secret(self) -> bytes:
        """The workspace's secret (secret.key), which keys the hashes of the suppression list."""
        return read_secret(self.root)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, once the schema is known to be current and the secret is there."""
        if not self._checked:
            require_current(self.engine)
            _ = self.secret  # refused here, before any work, rather than at the first address to hash
            self._checked = True
        return make_session_factory(self.engine, secret=self.secret)

    @property
    def templates(self) -> Path:
        """The folder of the workspace's templates."""
        return self.root / "templates"

    def render_limits(self) -> RenderLimits:
        """What rendering one copy may take, as the settings say."""
        from outreach.rendering.environment import RenderLimits

        return RenderLimits(seconds=self.settings.render_seconds, size=self.settings.render_bytes)

    def sender(self) -> Sender:
        """Who the letters come from, as the settings say."""
        from outreach.rendering.letters import Sender, parse_mailbox

        s = self.settings
        return Sender(
            parse_mailbox(s.sender, "OUTREACH_FROM"),
            s.organization,
            parse_mailbox(s.reply_to, "OUTREACH_REPLY_TO"),
            return_path=s.return_path,
            unsubscribe_mailto=s.unsubscribe_mailto,
            public_url=s.public_url,
        )

    def smtp_settings(self, *, timeout: float = 60.0) -> SmtpSettings:
        """Where and how to reach the SMTP server."""
        from outreach.outbox.smtp import SmtpSettings

        s = self.settings
        return SmtpSettings(s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_username, s.smtp_password, timeout)

    def imap_settings(self, *, timeout: float = 60.0) -> ImapSettings | None:
        """Where and how to reach the IMAP server, or None when OUTREACH_IMAP_HOST is not set."""
        from outreach.responses.sources import ImapSettings

        s = self.settings
        if not s.imap_host:
            return None
        return ImapSettings(s.imap_host, s.imap_port, s.imap_security, s.imap_username, s.imap_password, timeout)

    def dkim_signers(self) -> dict[str, DkimSigner]:
        """A DKIM signer for each domain that has a key, by lower-case domain, each key checked by signing once;
        every key that cannot sign is named in the one ConfigError raised."""
        from outreach.outbox.signing import load_dkim_signer

        s = self.settings
        signers: dict[str, DkimSigner] = {}
        problems: list[ConfigError] = []
        for domain, path in s.dkim_keys:
            try:
                signers[domain] = load_dkim_signer(self.root / path, s.dkim_selector, domain)
            except ConfigError as error:
                problems.append(error)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise SettingsError(problems)
        return signers

    def exclusive(self, job: str, *, wait: float = 0) -> AbstractContextManager[None]:
        """One `job` at a time on a SQLite database (a lock file beside it); PostgreSQL shares the work itself."""
        url = make_url(self.settings.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return nullcontext()
        from outreach.locks import exclusive  # here: the commands that take no lock need not load filelock

        return exclusive(Path(f"{url.database}.{job}.lock"), f"`outreach {job}`", wait=wait)

    def close(self) -> None:
        """Release the database connections."""
        if "engine" in self.__dict__:
            self.engine.dispose()


def open_workspace(root: Path, environ: Mapping[str, str] | None = None) -> Workspace:
    """Open an existing workspace; a folder without `.env` is not one."""
    root = root.resolve()
    if not (root / ENV_FILE).is_file():
        raise WorkspaceError(
            f"{root} is not an outreach workspace (it has no {ENV_FILE})",
            hint="run `outreach init DIR` and work inside DIR, or pass --workspace",
        )
    return Workspace(load_settings(root, environ))


def read_secret(root: Path) -> bytes:
    """The secret in the workspace's secret.key; a missing or damaged file is an error that says what to do."""
    path = root / SECRET_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise WorkspaceError(
            f"{root} has no {SECRET_FILE}, the key of its suppression list",
            hint="restore it from a backup; a workspace that never had one gets it from `outreach db upgrade`",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorkspaceError(f"cannot read it: {getattr(error, 'strerror', None) or error}", where=str(path)) from None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        secret = bytes.fromhex(lines[0]) if len(lines) == 1 else b""
    except ValueError:
        secret = b""
    if len(secret) != _SECRET_BYTES:  # the message never quotes the file: it is a secret, even when damaged
        raise WorkspaceError(f"it does not hold one key of {_SECRET_BYTES * 2} hex digits", where=str(path),
                             hint="restore it from a backup")  # fmt: skip
    return secret


def make_secret(root: Path) -> bool:
    """Make the workspace's secret.key (mode 0600) unless it has one; return whether it was made."""
    try:
        # O_EXCL: never overwrite a key, not even one another process made a moment ago.
        descriptor = os.open(root / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(_SECRET_NOTE + secrets.token_hex(_SECRET_BYTES) + "\n")
    return True


@dataclass(frozen=True)
class UpgradeReport:
    """What `db upgrade` did: the schema's revisions, and whether it made the workspace's secret.key.

    `earlier_suppressions` counts the suppressions the database held when the key was made: those written before
    hashes were keyed are still recognised; any written under a key since lost are not (hence a warning).
    """

    before: str | None
    after: str
    secret_made: bool
    earlier_suppressions: int


def upgrade_workspace(workspace: Workspace) -> UpgradeReport:
    """Apply the migrations the database has not had yet, and make the workspace's secret.key if it has none."""
    before, after = upgrade(workspace.engine)
    made = make_secret(workspace.root)
    earlier = 0
    if made:
        with workspace.engine.connect() as connection:
            earlier = connection.scalar(select(func.count()).select_from(Suppression)) or 0
    return UpgradeReport(before, after, made, earlier)


def shipped_files() -> Path:
    """The folder of files `init` copies into a new workspace (package data, also in an installed wheel)."""
    return Path(str(resources.files("outreach") / "shipped"))


@dataclass(frozen=True)
class InitReport:
    """What `init` created and what it found already there."""

    root: Path
    created: list[str]
    kept: list[str]
    revision: str


def init_workspace(root: Path, environ: Mapping[str, str] | None = None) -> InitReport:
    """Create a workspace (or complete one): `.env`, shipped folders, the database. Never overwrites."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    created: list[str] = []
    kept: list[str] = []
    shipped = shipped_files()
    env = root / ENV_FILE
    if env.exists():
        kept.append(ENV_FILE)
    else:
        shutil.copyfile(shipped / ENV_EXAMPLE, env)
        created.append(ENV_FILE)
    for folder in SHIPPED_FOLDERS:
        for source in sorted((shipped / folder).rglob("*")):
            if not source.is_file():
                continue
            relative = source.relative_to(shipped)
            target = root / relative
            if target.exists():
                kept.append(str(relative))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            created.append(str(relative))
    (created if make_secret(root) else kept).append(SECRET_FILE)
    workspace = Workspace(load_settings(root, environ))
    try:
        _, revision = upgrade(workspace.engine)
    finally:
        workspace.close()
    return InitReport(root, created, kept, revision)
