"""A workspace: the folder with `.env`, templates, contact lists and (by default) the SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from outreach.config import ENV_FILE, Settings, load_settings
from outreach.db.engine import make_engine, make_session_factory, require_current, upgrade
from outreach.errors import ConfigError, SettingsError, WorkspaceError
from outreach.locks import exclusive
from outreach.outbox.signing import DkimSigner, load_dkim_signer
from outreach.outbox.smtp import SmtpSettings
from outreach.rendering.letters import Sender
from outreach.rendering.previewing import parse_mailbox
from outreach.responses.sources import ImapSettings

ENV_EXAMPLE = ".env.example"
SHIPPED_FOLDERS = ("contacts", "templates")


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

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, once the schema is known to be current."""
        if not self._checked:
            require_current(self.engine)
            self._checked = True
        return make_session_factory(self.engine)

    @property
    def templates(self) -> Path:
        """The folder of the workspace's templates."""
        return self.root / "templates"

    def sender(self) -> Sender:
        """Who the letters come from, as the settings say."""
        s = self.settings
        return Sender(
            parse_mailbox(s.sender, "OUTREACH_FROM"),
            s.organization,
            parse_mailbox(s.reply_to, "OUTREACH_REPLY_TO"),
            return_path=s.return_path,
            unsubscribe_mailto=s.unsubscribe_mailto,
            unsubscribe_url=s.unsubscribe_url,
        )

    def smtp_settings(self, *, timeout: float = 60.0) -> SmtpSettings:
        """Where and how to reach the SMTP server."""
        s = self.settings
        return SmtpSettings(s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_username, s.smtp_password, timeout)

    def imap_settings(self, *, timeout: float = 60.0) -> ImapSettings | None:
        """Where and how to reach the IMAP server, or None when OUTREACH_IMAP_HOST is not set."""
        s = self.settings
        if not s.imap_host:
            return None
        return ImapSettings(s.imap_host, s.imap_port, s.imap_security, s.imap_username, s.imap_password, timeout)

    def dkim_signers(self) -> dict[str, DkimSigner]:
        """A DKIM signer for each domain that has a key, by lower-case domain, each key checked by signing once;
        every key that cannot sign is named in the one ConfigError raised."""
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
    workspace = Workspace(load_settings(root, environ))
    try:
        _, revision = upgrade(workspace.engine)
    finally:
        workspace.close()
    return InitReport(root, created, kept, revision)
