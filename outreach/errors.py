"""Errors that reach the user: each says what went wrong, where, and what to do about it."""

from __future__ import annotations


class OutreachError(Exception):
    """An error the CLI prints as one line (`where: message (hint)`) before exiting non-zero."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def format_message(self) -> str:
        """Return the one line shown to the user."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def __str__(self) -> str:
        return self.format_message()


class ConfigError(OutreachError):
    """A setting is missing or invalid."""

    exit_code = 2


class SettingsError(ConfigError):
    """Several settings are missing or invalid: each problem is kept, and one line names them all."""

    def __init__(self, problems: list[ConfigError]) -> None:
        said = (f"{problem.where}: {problem.message}" if problem.where else problem.message for problem in problems)
        hints = dict.fromkeys(problem.hint for problem in problems if problem.hint)  # each once, in order
        super().__init__("; ".join(said), hint="; ".join(hints) or None)
        self.problems = tuple(problems)


class WorkspaceError(OutreachError):
    """The workspace or its database is missing or not ready."""

    exit_code = 2


class InputError(OutreachError):
    """An input file cannot be read as a whole (encoding, broken CSV, missing email column)."""

    exit_code = 3


class RejectedRowsError(OutreachError):
    """`--strict` was given and rows were rejected."""

    exit_code = 4


class NotFoundError(OutreachError):
    """A contact, signatory or other named thing does not exist."""

    exit_code = 5


class InvalidValueError(OutreachError):
    """A value given on the command line is not valid (an address, a role, a segment)."""

    exit_code = 2


class LockedError(OutreachError):
    """Another process holds a lock this command needs (one sender per SQLite database)."""

    exit_code = 6


class NotConfirmedError(OutreachError):
    """Something that cannot be undone needs a yes, and there is no terminal to ask on (and no --yes)."""

    exit_code = 7
