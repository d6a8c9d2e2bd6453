"""The `outreach` command: the root app, shared options, and the one place errors become messages."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from outreach.cli import campaigns, contacts, db, outbox, responses, signatories, templates
from outreach.cli.demo import demo
from outreach.cli.doctor import doctor
from outreach.cli.output import emit_json, err
from outreach.cli.report import report
from outreach.cli.run import run as run_command
from outreach.cli.sending import send
from outreach.errors import OutreachError
from outreach.workspace import Workspace, init_workspace, open_workspace


@dataclass
class State:
    """What every command gets from the root: where the workspace is, opened on first use."""

    root: Path
    _workspace: Workspace | None = field(default=None, repr=False)

    def workspace(self) -> Workspace:
        """Open the workspace once."""
        if self._workspace is None:
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


app.command()(demo)
app.command()(send)
app.command("run")(run_command)
app.command()(doctor)
app.command()(report)
app.add_typer(contacts.app, name="contacts")
app.add_typer(signatories.app, name="signatories")
app.add_typer(templates.app, name="templates")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(outbox.app, name="outbox")
app.add_typer(responses.app, name="responses")
app.add_typer(db.app, name="db")


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
    except SQLAlchemyError as error:
        if debug:
            _traceback(state, error)
            sys.exit(1)
        reason = state.scrub(str(getattr(error, "orig", None) or error)).splitlines()[0]
        _say(state, f"error: database: {reason} (run with --debug for details)")
        sys.exit(1)
    except Exception as error:  # a bug: its traceback, as Python would print it, without the passwords
        _traceback(state, error)
        sys.exit(1)


def _say(state: State, line: str) -> None:
    """One line on stderr, scrubbed, printed as it is (no markup)."""
    err.print(state.scrub(line), markup=False, highlight=False)


def _traceback(state: State, error: BaseException) -> None:
    """The error's traceback on stderr, scrubbed."""
    sys.stderr.write(state.scrub("".join(traceback.format_exception(error))))
    sys.stderr.flush()
