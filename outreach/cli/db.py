"""`outreach db`: the database's schema."""

from __future__ import annotations

import typer

from outreach.cli.output import JsonOption, emit_json, err
from outreach.db.engine import current_revision, head_revision, upgrade

app = typer.Typer(help="The database's schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Apply the migrations the database has not had yet."""
    before, after = upgrade(ctx.obj.workspace().engine)
    if json_output:
        emit_json({"before": before, "after": after})
    elif before == after:
        err.print(f"The database is up to date (revision {after}).")
    else:
        err.print(f"Upgraded the database from revision {before or 'empty'} to {after}.")


@app.command("status")
def status_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the database's revision and the one the code expects."""
    current = current_revision(ctx.obj.workspace().engine)
    head = head_revision()
    if json_output:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        err.print(f"database at {current or 'empty'}, code expects {head}" + ("" if current == head else
                  " (run `outreach db upgrade`)"))  # fmt: skip
