"""A command line that answers as fast as a person types (issue 18): `outreach --help` and shell completion load no
database, template or mail library, and each command's module loads only when that command is used. Real processes,
each asked afterwards which modules it imported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from outreach.cli.main import COMMANDS, load_command
from outreach.rendering.folders import template_names

from .conftest import Env

# What the services bring; none of it may load before a command that needs it runs.
HEAVY = ("sqlalchemy", "jinja2", "email", "dkim", "imapclient", "alembic")

# Runs the real entry point with the arguments given, then writes every module the process imported to the file
# named first (stdout and stderr stay the command's own).
PROBE = """
import json, sys
from outreach.cli.main import run
modules, sys.argv = sys.argv[1], ["outreach", *sys.argv[2:]]
try:
    run()
finally:
    with open(modules, "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""

# Imports every module of outreach/cli, then prints every module the process imported.
IMPORT_CLI = """
import json, pkgutil, sys
import outreach.cli
for found in pkgutil.iter_modules(outreach.cli.__path__):
    __import__(f"outreach.cli.{found.name}")
print(json.dumps(sorted(sys.modules)))
"""


def probe(
    tmp_path: Path, *args: str, cwd: Path | None = None, environ: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `outreach ARGS` in a new process; return what it printed and the modules it imported."""
    modules = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "_OUTREACH_"))}
    env |= {"COLUMNS": "200", **(environ or {})}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(modules), *args], cwd=cwd or tmp_path, env=env, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    return result, set(json.loads(modules.read_text()))


def heavy(modules: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    """The modules of HEAVY among these, but for those allowed."""
    return sorted(m for m in modules - allowed if m.split(".")[0] in HEAVY)


def listed_commands(help_text: str) -> list[str]:
    """The command names a help lists (plain help: a "Commands:" section, one name at the start of a line)."""
    return re.findall(r"^  (\w+) ", help_text.partition("\nCommands:\n")[2], re.MULTILINE)


def completing(env: Env, line: str) -> dict[str, str]:
    """The environment in which `outreach` completes the last word of `line` for bash, in the workspace of env."""
    cword = str(len(line.split(" ")) - 1)
    return {**env.environ(), "_OUTREACH_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": cword}


@cache
def typers_own() -> frozenset[str]:
    """The parts of the email package that typer itself loads to complete or run a command: it checks each
    parameter with pydantic, which loads importlib.metadata, which reads package metadata with `email.message`."""
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata, json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return frozenset(m for m in json.loads(found.stdout) if m.split(".")[0] == "email")


def test_help_lists_every_command_with_its_help_and_imports_none_of_them(tmp_path: Path) -> None:
    result, modules = probe(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert heavy(modules) == []
    assert sorted(m for m in modules if m.startswith("outreach.cli.")) == [
        "outreach.cli.main", "outreach.cli.output"
    ]  # fmt: skip
    assert listed_commands(result.stdout) == ["init", *COMMANDS]
    shown = " ".join(result.stdout.split())
    for name, (_, help_) in COMMANDS.items():
        assert f"{name} {help_}" in shown


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_help_the_list_shows_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    first_paragraph = (command.help or "").split("\n\n")[0]
    assert " ".join(first_paragraph.split()) == COMMANDS[name][1]


def test_a_group_shows_its_own_help(tmp_path: Path) -> None:
    result, _ = probe(tmp_path, "contacts", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: outreach contacts [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert "The contact list." in result.stdout
    listed = listed_commands(result.stdout)
    assert listed == ["import", "list", "show", "add", "edit", "tag", "suppress", "export", "forget"]


def test_an_unknown_command_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    result, modules = probe(tmp_path, "contact", "list")
    assert result.returncode == 2
    assert "Usage: outreach [OPTIONS] COMMAND [ARGS]..." in result.stderr
    assert "No such command 'contact'. Did you mean 'contacts'?" in result.stderr
    assert heavy(modules, typers_own()) == []


def test_every_cli_module_imports_no_service(tmp_path: Path) -> None:
    # Shell completion loads the module of the group whose arguments it completes: the services wait for a command.
    found = subprocess.run([sys.executable, "-c", IMPORT_CLI], capture_output=True, text=True, check=True, cwd=tmp_path)
    modules = set(json.loads(found.stdout))
    assert {"outreach.cli.campaigns", "outreach.cli.demo", "outreach.cli.sending"} <= modules
    assert heavy(modules) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_completion_offers_the_campaigns_and_templates_of_the_workspace(env: Env, tmp_path: Path) -> None:
    env.run("campaigns", "create", "appeal-heads", "--template", "appeal", "--segment", "role:head_of_state")
    env.run("campaigns", "create", "appeal-mps", "--template", "appeal", "--segment", "role:mp")
    env.run("campaigns", "create", "reminders", "--template", "appeal-reminder")
    database = Path(env.url.removeprefix("sqlite:///"))
    before = sorted(database.parent.glob(f"{database.name}*"))
    for line, offered in [
        ("outreach campaigns queue ", ["appeal-heads", "appeal-mps", "reminders"]),
        ("outreach campaigns show appeal-", ["appeal-heads", "appeal-mps"]),
        ("outreach outbox list --campaign r", ["reminders"]),
        ("outreach report ", ["appeal-heads", "appeal-mps", "reminders"]),
        ("outreach campaigns create new --template ", template_names(env.root / "templates")),
        ("outreach templates render ", ["appeal", "appeal-reminder"]),
        ("outreach templates check appeal-", ["appeal-reminder"]),
        ("outreach campaigns create ", []),  # a new name: nothing to offer
    ]:
        result, modules = probe(tmp_path, cwd=env.root, environ=completing(env, line))
        assert (result.returncode, result.stderr) == (0, ""), line
        assert result.stdout.split() == offered, line
        assert heavy(modules, typers_own()) == [], line
    assert sorted(database.parent.glob(f"{database.name}*")) == before, "completion leaves no file beside the database"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_completion_names_the_commands_without_importing_them(env: Env, tmp_path: Path) -> None:
    result, modules = probe(tmp_path, cwd=env.root, environ=completing(env, "outreach "))
    assert result.stdout.split() == ["init", *COMMANDS]
    assert "outreach.cli.campaigns" not in modules and heavy(modules, typers_own()) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_completion_offers_nothing_and_says_nothing_when_the_database_cannot_be_read(env: Env, tmp_path: Path) -> None:
    garbage = env.write("garbage.db", "not a database, only text long enough to hold a header\n" * 4)
    for url in (f"sqlite:///{garbage}", f"sqlite:///{tmp_path / 'missing.db'}", "postgresql+psycopg://nobody@x/y"):
        environ = completing(env, "outreach campaigns queue ") | {"OUTREACH_DATABASE_URL": url}
        result, _ = probe(tmp_path, cwd=env.root, environ=environ)
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", ""), url
    assert not (tmp_path / "missing.db").exists()
    outside = completing(env, "outreach campaigns queue ")  # a folder that is no workspace
    result, _ = probe(tmp_path, cwd=tmp_path, environ=outside)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "", "")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_error_is_still_one_line(env: Env, tmp_path: Path) -> None:
    garbage = env.write("garbage.db", "not a database, only text long enough to hold a header\n" * 4)
    environ = {**env.environ(), "OUTREACH_DATABASE_URL": f"sqlite:///{garbage}"}
    result, modules = probe(tmp_path, "contacts", "list", cwd=env.root, environ=environ)
    assert result.returncode == 1
    assert result.stderr == "error: database: file is not a database (run with --debug for details)\n"
    assert "sqlalchemy" in modules, "the command itself loads the database, as it should"
    debug, _ = probe(tmp_path, "--debug", "contacts", "list", cwd=env.root, environ=environ)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_command_loads_only_the_libraries_it_uses(env: Env, tmp_path: Path) -> None:
    """SQLAlchemy's PostgreSQL dialect (about 30 ms to load) is for PostgreSQL workspaces only: the models' JSONB
    and partial index name it only when a PostgreSQL connection asks. Commands that list make no letter, so they
    load no template engine (Jinja2, about 40 ms), and filelock (8 ms) loads only for a sender's lock file."""
    env.run(
        "campaigns",
        "create",
        "appeal-heads",
        "--template",
        "appeal",
        "--segment",
        "role:head_of_state",
        "--from",
        "European Appeal <appeal@example.org>",
    )
    listing = [("contacts", "list"), ("campaigns", "list"), ("outbox", "list"), ("report",)]
    making = [
        ("campaigns", "queue", "appeal-heads", "--yes"),
        ("send", "--dry-run", "--outbox-dir", str(tmp_path / "eml")),
    ]
    for args in listing + making:
        result, modules = probe(tmp_path, *args, cwd=env.root, environ=env.environ())
        assert result.returncode == 0, (args, result.stderr)
        assert "sqlalchemy.orm" in modules and "sqlalchemy.dialects.sqlite" in modules, args
        assert not any(m.startswith("sqlalchemy.dialects.postgresql") for m in modules), args
        assert ("jinja2" in modules) == (args[:2] == ("campaigns", "queue")), args
        assert "filelock" not in modules, "only a sender takes the lock file, and a dry run sends nothing"
