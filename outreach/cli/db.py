"""`outreach db`: the database's schema."""

from __future__ import annotations

import typer

from outreach.cli.output import JsonOption, command_group, emit_json, err

# The database layer is imported inside each command: it brings SQLAlchemy and Alembic, and shell completion and
# --help load this module without running a command.

app = command_group("The database's schema.")


@app.command("upgrade")
def upgrade_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Apply the migrations the database has not had yet, and make the workspace's secret.key if it has none."""
    from outreach.workspace import SECRET_FILE, upgrade_workspace

    report = upgrade_workspace(ctx.obj.workspace())
    before, after = report.before, report.after
    if json_output:
        emit_json({"before": before, "after": after, "secret_made": report.secret_made})
        return
    if before == after:
        err.print(f"The database is up to date (revision {after}).")
    else:
        err.print(f"Upgraded the database from revision {before or 'empty'} to {after}.")
    if report.secret_made:
        err.print(f"Made {SECRET_FILE}, the key of the suppression list's hashes: keep it with the database's backups.")
    if report.earlier_suppressions:
        err.print(f"The database holds {report.earlier_suppressions} suppressions from before: those made before "
                  f"hashes were keyed are still recognised; if this workspace had a {SECRET_FILE} that was lost, "
                  "restore it from a backup, or the addresses suppressed under it can come back.")  # fmt: skip


@app.command("status")
def status_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the database's revision and the one the code expects."""
    from outreach.db.engine import current_revision, head_revision

    current = current_revision(ctx.obj.workspace().engine)
    head = head_revision()
    if json_output:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        err.print(f"database at {current or 'empty'}, code expects {head}" + ("" if current == head else
                  " (run `outreach db upgrade`)"))  # fmt: skip
