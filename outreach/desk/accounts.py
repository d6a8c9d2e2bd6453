"""The campaigners who may log in to the desk: add, list, remove, change a password, check a login."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from outreach.db.models import User, as_utc
from outreach.desk.passwords import hash_password, needs_rehash, unmatchable_hash, verify_password
from outreach.errors import InvalidValueError, NotFoundError

# Plain names only: one a person types the same way on any keyboard, that shows the same in any terminal or page,
# and that has one lower-case form (`Alice` and `alice` are one user).
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


@dataclass(frozen=True)
class UserView:
    """A campaigner as shown: never the password's hash."""

    name: str
    created_at: datetime
    password_changed_at: datetime

    def as_json(self) -> dict[str, Any]:
        """Return the user as JSON-ready values."""
        return {"name": self.name, "created_at": self.created_at.isoformat(),
                "password_changed_at": self.password_changed_at.isoformat()}  # fmt: skip


def user_name(value: str) -> str:
    """The canonical (lower-case) form of a user's name; refuse one that is not 1 to 64 letters, digits or .-_@."""
    name = value.strip()
    # Checked before lower(), which turns some letters beyond ASCII into ASCII ones (the Kelvin sign into `k`).
    if not name.isascii() or not _NAME.fullmatch(name):
        raise InvalidValueError(
            f"user name {value!r} is not 1 to 64 letters (a-z), digits or the characters . - _ @",
            hint="e.g. `anna` or `anna@example.org`",
        )
    return name.lower()


def _view(row: User) -> UserView:
    return UserView(row.name, as_utc(row.created_at), as_utc(row.password_changed_at))


def add_user(sessions: sessionmaker[Session], name: str, password: str, *, now: datetime) -> UserView:
    """Add a user with a password; refuse a name that is taken."""
    name = user_name(name)
    stored = hash_password(password)  # before the transaction: it takes a tenth of a second
    exists = InvalidValueError(
        f"user {name} exists; `outreach users password {name}` changes the password"
    )  # fmt: skip
    try:
        with sessions.begin() as session:
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise exists
            row = User(name=name, password_hash=stored, created_at=now, password_changed_at=now)
            session.add(row)
            session.flush()
            return _view(row)
    except IntegrityError:  # added by another process between the look and the insert
        raise exists from None


def set_password(sessions: sessionmaker[Session], name: str, password: str, *, now: datetime) -> UserView:
    """Change a user's password."""
    name = user_name(name)
    stored = hash_password(password)
    with sessions.begin() as session:
        row = session.scalar(select(User).where(User.name == name))
        if row is None:
            raise _unknown(name)
        row.password_hash = stored
        row.password_changed_at = now
        return _view(row)


def remove_user(sessions: sessionmaker[Session], name: str) -> None:
    """Remove a user: they can no longer log in."""
    name = user_name(name)
    with sessions.begin() as session:
        if session.execute(delete(User).where(User.name == name)).rowcount == 0:  # type: ignore[attr-defined]
            raise _unknown(name)


def list_users(sessions: sessionmaker[Session]) -> list[UserView]:
    """Return the users by name."""
    with sessions() as session:
        return [_view(row) for row in session.scalars(select(User).order_by(User.name))]


def check_login(sessions: sessionmaker[Session], name: str, password: str) -> str | None:
    """The user's canonical name if the password is theirs, else None.

    An unknown name costs the same scrypt as a known one (its password is checked against a hash no password
    matches), so the time an answer takes does not tell who has an account. A hash made with older parameters is
    made again with the password just proven.
    """
    try:
        canonical = user_name(name)
    except InvalidValueError:
        canonical = None
    with sessions() as session:
        row = None if canonical is None else session.scalar(select(User).where(User.name == canonical))
        stored = unmatchable_hash() if row is None else row.password_hash
    if not verify_password(password, stored) or row is None:
        return None
    if needs_rehash(stored):
        renewed = hash_password(password)
        with sessions.begin() as session:  # only if the password was not changed meanwhile
            found = session.scalar(select(User).where(User.id == row.id, User.password_hash == stored))
            if found is not None:
                found.password_hash = renewed
    return row.name


def _unknown(name: str) -> NotFoundError:
    return NotFoundError(f"no user {name}", hint="`outreach users list` shows them")
