"""`outreach users`: the campaigners who may log in to the browser desk, and their passwords."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.output import JsonOption, YesOption, command_group, confirm, emit_json, err, table
from outreach.errors import InvalidValueError

if TYPE_CHECKING:
    from outreach.desk.accounts import UserView

# The service is imported inside each command: it brings SQLAlchemy, and shell completion and --help load this
# module without running a command.

app = command_group("Campaigners who may log in to the browser desk (`outreach serve`).")

Name = Annotated[str, typer.Argument(help="The user's name: letters, digits and . - _ @ (case does not matter).")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin (for scripts)."),
]


def _password(from_stdin: bool) -> str:
    """The new password: the first line of stdin if asked, else typed twice, unseen, at the terminal."""
    if from_stdin:
        line = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not line:
            raise InvalidValueError("--password-stdin read no password: stdin was empty")
        return line
    if not sys.stdin.isatty():
        raise InvalidValueError("there is no terminal to ask for the password on",
                                hint="write it as one line to stdin and pass --password-stdin")  # fmt: skip
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password


def _show(view: UserView, json_output: bool, done: str) -> None:
    """The user as one JSON document on stdout, or what was done as one line on stderr."""
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(done, markup=False, highlight=False)


@app.command("add")
def add_command(
    ctx: typer.Context, name: Name, password_stdin: PasswordStdin = False, json_output: JsonOption = False
) -> None:
    """Add a campaigner who may log in to the desk, with a password of 10 characters or more."""
    from outreach.desk.accounts import add_user

    view = add_user(ctx.obj.workspace().sessions, name, _password(password_stdin), now=datetime.now(UTC))
    _show(view, json_output, f"Added {view.name}: they may log in to the desk.")


@app.command("password")
def password_command(
    ctx: typer.Context, name: Name, password_stdin: PasswordStdin = False, json_output: JsonOption = False
) -> None:
    """Change a campaigner's password."""
    from outreach.desk.accounts import set_password

    view = set_password(ctx.obj.workspace().sessions, name, _password(password_stdin), now=datetime.now(UTC))
    _show(view, json_output, f"Changed the password of {view.name}.")


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the campaigners who may log in, with when each was added and last changed their password."""
    from outreach.desk.accounts import list_users

    found = list_users(ctx.obj.workspace().sessions)
    if json_output:
        emit_json([view.as_json() for view in found])
        return
    rows = [(view.name, f"{view.created_at:%Y-%m-%d %H:%M} UTC", f"{view.password_changed_at:%Y-%m-%d %H:%M} UTC")
            for view in found]  # fmt: skip
    table(None, ["name", "added", "password changed"], rows)
    err.print("1 user" if len(found) == 1 else f"{len(found)} users")
    if not found:
        err.print("Add one with `outreach users add NAME`.", markup=False)


@app.command("remove")
def remove_command(ctx: typer.Context, name: Name, yes: YesOption = False) -> None:
    """Remove a campaigner: they can no longer log in to the desk."""
    from outreach.desk.accounts import remove_user, user_name

    canonical = user_name(name)
    confirm([f"{canonical} will no longer be able to log in to the desk."], f"Remove user {canonical}?", yes)
    remove_user(ctx.obj.workspace().sessions, canonical)
    err.print(f"Removed {canonical}.", markup=False, highlight=False)
