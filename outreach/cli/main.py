"""The `outreach` command: the root app, shared options, and the one place errors become messages."""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from outreach.cli.output import emit_json, err
from outreach.errors import OutreachError

if TYPE_CHECKING:  # typer vendors click as typer._click: the types of the methods LazyGroup overrides
    from typer._click import Command, Context, HelpFormatter
    from typer._click.shell_completion import CompletionItem

    from outreach.workspace import Workspace

# The commands, in the order `outreach --help` lists them (after `init`, the root's own, below): the name, the
# module and attribute that define it (a command function or a Typer app), and the help the list shows. A module is
# imported only when its command runs, completes or shows its own help, so that `outreach --help` and shell
# completion answer at once; tests/test_startup.py checks that each help here is the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("outreach.cli.demo:demo",
             "Run the whole job on embedded defaults: import, render, queue, send to a local SMTP sink, read the "
             "answers."),
    "send": ("outreach.cli.sending:send",
             "Send the queued messages that are due, each exactly once. Before a campaign's first letters go, it "
             "shows how many, to whom, when and how long the pace needs, and asks (`--yes` answers for scripts)."),
    "run": ("outreach.cli.run:run",
            "Queue follow-ups as they fall due, send what is due and read the inbox, until stopped (SIGTERM, "
            "Ctrl-C)."),
    "doctor": ("outreach.cli.doctor:doctor",
               "Check the settings, the database, the templates, the SMTP server, the inbox and the public URL; say "
               "what is wrong."),
    "report": ("outreach.cli.report:report",
               "Per campaign and step: sent, bounced, replied, response rate and time to first reply, by role and "
               "country."),
    "contacts": ("outreach.cli.contacts:app", "The contact list."),
    "signatories": ("outreach.cli.signatories:app", "The people who signed the appeal."),
    "templates": ("outreach.cli.templates:app", "The letters: list, check, render."),
    "campaigns": ("outreach.cli.campaigns:app", "Mailings: a template, a segment, steps; queue them into the outbox."),
    "outbox": ("outreach.cli.outbox:app", "The outbox: what is queued, sent, failed or of unknown fate."),
    "responses": ("outreach.cli.responses:app",
                  "Responses: read the inbox; who replied, bounced, unsubscribed; outcomes."),
    "db": ("outreach.cli.db:app", "The database's schema."),
    "serve": ("outreach.cli.serve:serve",
              "Serve the response desk and one-click unsubscribe (RFC 8058) until stopped (Ctrl-C, SIGTERM)."),
    "users": ("outreach.cli.users:app", "Campaigners who may log in to the browser desk (`outreach serve`)."),
}  # fmt: skip


@cache
def load_command(name: str) -> Command:
    """The command named in COMMANDS, its module imported, built as `app.command()` or `app.add_typer()` would."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    found = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(found, typer.Typer):
        holder.add_typer(found, name=name)
    else:
        holder.command(name)(found)
    return typer.main.get_group(holder).commands[name]


class LazyGroup(TyperGroup):
    """The root group: it lists the commands of COMMANDS by name and help alone, and imports a command's module only
    when that command is looked up to run, to complete its arguments, or to show its own help."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, (_, help_) in COMMANDS.items():  # stand-ins, for the lists and "Did you mean" to name
            self.commands.setdefault(name, TyperCommand(name, help=help_, short_help=help_))
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The command itself; while the help or completion lists the commands, only its stand-in."""
        if self._listing or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return load_command(cmd_name)

    @contextmanager
    def _stand_ins(self) -> Iterator[None]:
        """List the commands by their stand-ins, not importing a module, while this lasts."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """`outreach --help`, listing each command by its name and help."""
        with self._stand_ins():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
        """The command names (and options) that complete what was typed, each with its help."""
        with self._stand_ins():
            return super().shell_complete(ctx, incomplete)


@dataclass
class State:
    """What every command gets from the root: where the workspace is, opened on first use."""

    root: Path
    _workspace: Workspace | None = field(default=None, repr=False)

    def workspace(self) -> Workspace:
        """Open the workspace once."""
        if self._workspace is None:
            from outreach.workspace import open_workspace  # the settings and the database load only when needed

            self._workspace = open_workspace(self.root)
        return self._workspace

    def scrub(self, text: str) -> str:
        """The text without the workspace's passwords, in any form, once its settings were read."""
        return self._workspace.settings.scrubber()(text) if self._workspace is not None else text


app = typer.Typer(
    name="outreach",
    help="Run an open appeal by email: contacts, personal copies, polite sending, follow-ups, responses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", help="The workspace folder (default: the current one).")
    ] = Path("."),
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    """Run an open appeal by email."""
    # `run()` hands in the state, so that its error boundary can scrub with the settings the command read.
    state = ctx.obj if isinstance(ctx.obj, State) else State(workspace)
    state.root = workspace
    ctx.obj = state
    ctx.call_on_close(lambda: state._workspace.close() if state._workspace else None)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")] = Path("."),
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Create a workspace: .env, templates, sample contact lists and the database. Never overwrites."""
    from outreach.workspace import init_workspace

    report = init_workspace(directory)
    if json_output:
        emit_json({"workspace": str(report.root), "created": report.created, "kept": report.kept,
                   "revision": report.revision})  # fmt: skip
        return
    for name in report.created:
        err.print(f"  created {name}")
    for name in report.kept:
        err.print(f"  kept    {name} (already there)")
    err.print(f"Workspace ready in {report.root} (database at revision {report.revision}).")
    err.print(f"Next: cd {directory} && outreach contacts import contacts/heads-of-state.csv")


def run() -> None:
    """Entry point: run the app; turn our errors into one line on stderr and an exit code.

    Typer handles usage errors and --help itself; everything else that escapes a command lands here, and what it
    prints (the traceback too) goes through the workspace's scrubber: no password shows, however it was echoed.
    """
    debug = "--debug" in sys.argv[1:]
    state = State(Path("."))
    try:
        app(prog_name="outreach", obj=state)
    except OutreachError as error:
        if debug:
            _traceback(state, error)
        else:
            _say(state, f"error: {error.format_message()}")
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as error:
        if _from_database(error) and not debug:
            reason = state.scrub(str(getattr(error, "orig", None) or error)).splitlines()[0]
            _say(state, f"error: database: {reason} (run with --debug for details)")
        else:  # a bug: its traceback, as Python would print it, without the passwords
            _traceback(state, error)
        sys.exit(1)


def _from_database(error: Exception) -> bool:
    """Whether the error is SQLAlchemy's: looked up only now, as a command that touched no database never loaded
    SQLAlchemy (and then the error cannot be one of its)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(error, errors.SQLAlchemyError)


def _say(state: State, line: str) -> None:
    """One line on stderr, scrubbed, printed as it is (no markup)."""
    err.print(state.scrub(line), markup=False, highlight=False)


def _traceback(state: State, error: BaseException) -> None:
    """The error's traceback on stderr, scrubbed."""
    sys.stderr.write(state.scrub("".join(traceback.format_exception(error))))
    sys.stderr.flush()
