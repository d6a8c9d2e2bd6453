"""`outreach doctor`: check the settings, the database, the templates and the SMTP server; send nothing."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from outreach.cli.output import JsonOption, emit_json, err
from outreach.errors import ConfigError
from outreach.untrusted import visible

if TYPE_CHECKING:
    from outreach.doctor import Check

# The checks are imported inside the command: they bring SQLAlchemy, Jinja2 and the mail libraries, and shell
# completion and --help load this module without running it. So the marks are keyed by each Status's value.
MARKS = {"ok": "[green]ok[/green]", "warning": "[yellow]warning[/yellow]", "failed": "[red]failed[/red]"}
MARK_WIDTH = max(len(status) for status in MARKS)
NAME_WIDTH = len("templates")


def doctor(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Check the settings, the database, the templates, the SMTP server, the inbox and the public URL; say what is
    wrong."""
    from outreach.doctor import Status, diagnose, unloadable_settings

    try:
        workspace = ctx.obj.workspace()
    except ConfigError as error:  # the other checks need the settings; this one can still say what is wrong
        checks = [unloadable_settings(error)]
    else:
        checks = diagnose(workspace, now=datetime.now(UTC))
    failed = [check for check in checks if check.status is Status.FAILED]
    if json_output:
        emit_json({"ok": not failed, "checks": [asdict(check) for check in checks]})
    else:
        _show(checks)
    if failed:
        raise typer.Exit(1)


def _show(checks: list[Check]) -> None:
    """One line a check, with its hint underneath when it is not ok, then one line in sum."""
    from outreach.doctor import Status

    for check in checks:
        padding = " " * (MARK_WIDTH - len(check.status))
        err.print(f"{MARKS[check.status]}{padding}  {check.name:<{NAME_WIDTH}}  {escape(visible(check.detail))}",
                  highlight=False)  # fmt: skip
        if check.hint and check.status is not Status.OK:
            err.print(f"{'':<{MARK_WIDTH + NAME_WIDTH + 4}}hint: {escape(visible(check.hint))}", highlight=False)
    failed = sum(check.status is Status.FAILED for check in checks)
    warnings = sum(check.status is Status.WARNING for check in checks)
    if failed:
        err.print(f"{failed} of {len(checks)} checks failed; nothing was sent.")
    elif warnings:
        err.print(f"Nothing failed; {warnings} {'warning' if warnings == 1 else 'warnings'} to read. Nothing was sent.")
    else:
        err.print("Everything is ready to send; nothing was sent.")
