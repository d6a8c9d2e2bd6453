"""The tests' runs of `outreach` (tests/cli_server.py) are what a new process gives: the same output, exit code and
streams, nothing carried from one run to the next, a run that hangs killed at its timeout, and a run in the
background a process that signals reach."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_server import ForkServer
from .conftest import RUNS, Env
from .smtp_server import free_port

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def fresh(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """The same run, started as a new interpreter."""
    return subprocess.run([sys.executable, "-m", "outreach", *args], cwd=env.root, env=env.environ(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("contacts", "list", "--country", "FR"),  # a table, as wide as COLUMNS says
        ("contacts", "list", "--json"),
        ("campaigns", "show", "nope"),  # one line on stderr, exit code 5
        ("users", "add", "alice", "--password-stdin"),  # stdin is empty, as subprocess.DEVNULL makes it
        ("contacts", "forget", "elysee@example.org"),  # asks first: without a terminal, it refuses
        ("--help",),
    ],
)
def test_a_run_says_and_exits_as_a_new_process_does(env: Env, args: tuple[str, ...]) -> None:
    env.run("contacts", "import", "contacts/heads-of-state.csv")
    forked, started = env.run(*args, check=False), fresh(env, *args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (started.returncode, started.stdout, started.stderr)
    assert forked.args == started.args


def test_nothing_is_carried_from_one_run_to_the_next(env: Env) -> None:
    env.write(".env", "OUTREACH_FROM=First <first@example.org>\n")
    first = env.run("doctor", "--json", check=False).stdout
    env.write(".env", "OUTREACH_FROM=Second <second@example.org>\n")
    second = env.run("doctor", "--json", check=False).stdout
    assert "first@example.org" in first and "second@example.org" in second and "first@" not in second


def test_a_run_that_does_not_end_is_killed_at_its_timeout_and_the_next_one_runs(env: Env) -> None:
    server = ForkServer()
    try:
        with pytest.raises(subprocess.TimeoutExpired) as waited:
            server.run(["serve", "--port", str(free_port())], cwd=env.root, env=env.environ(), timeout=3)
        assert waited.value.timeout == 3
        after = server.run(["contacts", "list", "--json"], cwd=env.root, env=env.environ(), text=True)
        assert after.returncode == 0 and json.loads(after.stdout)["total"] == 0
    finally:
        server.stop()


def test_a_run_with_other_interpreter_settings_is_started_afresh(env: Env, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nprint('a new interpreter', file=sys.stderr)\n")
    environ = {**env.environ(), "PYTHONPATH": str(tmp_path)}  # read as an interpreter starts, and only then
    result = RUNS.run(["contacts", "list", "--json"], cwd=env.root, env=environ, text=True)
    assert result.returncode == 0 and json.loads(result.stdout)["total"] == 0
    assert result.stderr.startswith("a new interpreter")
    assert "a new interpreter" not in env.run("contacts", "list", "--json").stderr


def test_a_background_run_is_a_process_of_its_own_that_signals_reach(env: Env) -> None:
    serve = ["serve", "--port", str(free_port())]
    process = RUNS.popen(serve, cwd=env.root, env=env.environ(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)  # fmt: skip
    with process:
        assert process.poll() is None and process.pid != os.getpid()
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    assert process.stdout is not None and process.stdout.closed
