"""A fork server for the tests' runs of `outreach`: each run is a process of its own, forked from this one.

Most of a short command's second goes to importing its libraries (SQLAlchemy, Typer with pydantic, Rich, Jinja2,
Babel), and the suite runs `python -m outreach` well over a thousand times. This process imports those libraries
once, none of outreach's own modules, then for each request forks a child that becomes the run: its own process,
standard streams, working folder, environment and arguments, `python -m outreach ARGS` as runpy runs it, and a
normal interpreter exit (atexit included). The same idea as multiprocessing's "forkserver" with its preload list.

Requests are JSON lines on stdin: {"args", "env", "cwd", "stdout", "stderr"} (the last two: files the child's
output goes to). For each, the server answers the child's pid on a line, then its exit code (negative: the signal
that ended it), as subprocess reports it. `conftest.Env.run` is the client.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import locale
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

# Third-party libraries only: they read no settings when imported. outreach's modules are imported by each run.
PRELOAD = (
    "sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg",
    "typer", "typer.main", "typer._adapters", "pydantic", "click", "rich.console", "rich.table", "rich.progress",
    "rich.markup", "dotenv", "email_validator", "jinja2", "jinja2.sandbox", "babel.dates", "babel.numbers",
    "babel.languages", "pycountry", "email.message", "email.policy", "email.parser", "smtplib", "imapclient",
    "dkim", "alembic", "alembic.command", "zoneinfo", "markupsafe", "flufl.bounce", "httpx", "starlette",
)  # fmt: skip


def _stream(fd: int, template: TextIO, *, line_buffering: bool) -> TextIO:
    """A standard stream on `fd` as a new interpreter makes it (encoding and errors as this one's)."""
    return open(fd, "r" if fd == 0 else "w", buffering=1 if line_buffering else -1, encoding=template.encoding,
                errors=template.errors, closefd=False)  # fmt: skip


def _become(request: dict[str, Any]) -> None:
    """In the child: become `python -m outreach ARGS` with the request's streams, folder and environment."""
    streams = (os.devnull, request["stdout"], request["stderr"])
    for fd, path in enumerate(streams):
        opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        stream = _stream(fd, getattr(sys, f"__{name}__"), line_buffering=name == "stderr")
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]  # as `python -m` puts it
    sys.argv = ["-m", *request["args"]]
    runpy.run_module("outreach", run_name="__main__", alter_sys=True)
    sys.exit(0)


def main() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()  # what is loaded stays out of the children's collections (and their pages shared)
    requests, answers = sys.stdin, sys.stdout
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become(request)  # never returns: the child exits as the run ends
        answers.write(f"{pid}\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(f"{os.waitstatus_to_exitcode(status)}\n")
        answers.flush()


# What a new interpreter reads as it starts (its encodings, its paths, its modes): a run whose environment differs
# from the server's in any of these is not forked but started afresh.
_INTERPRETER = ("PYTHON", "LANG", "LC_")


class ForkServer:
    """The client: one server per test process, started at the first run, stopped at the end."""

    def __init__(self) -> None:
        self.server: subprocess.Popen[str] | None = None
        self.environ: dict[str, str] = {}

    def run(self, args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """`python -m outreach ARGS`, as subprocess.run(..., capture_output=True, text=True, stdin=DEVNULL) runs it."""
        command = [sys.executable, "-m", "outreach", *args]
        if _interpreter_settings(env) != _interpreter_settings(os.environ):
            return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=timeout)  # fmt: skip
        server = self._started()
        with tempfile.TemporaryDirectory(prefix="outreach-run-") as folder:
            out, err = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"args": args, "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            if not select.select([server.stdout], [], [], timeout)[0]:
                os.kill(pid, signal.SIGKILL)
                server.stdout.readline()
                raise subprocess.TimeoutExpired(command, timeout, _text(out), _text(err))
            code = int(server.stdout.readline())
            return subprocess.CompletedProcess(command, code, _text(out), _text(err))

    def _started(self) -> subprocess.Popen[str]:
        if self.server is None or self.server.poll() is not None:
            self.server = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           text=True)  # fmt: skip
        return self.server

    def stop(self) -> None:
        """End the server (it ends as its requests do)."""
        if self.server is not None:
            with self.server:  # closes its pipes, and waits for it
                pass


def _interpreter_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(_INTERPRETER)}


def _text(path: Path) -> str:
    """A file's bytes as subprocess's text mode reads them: the locale's encoding, universal newlines."""
    data = path.read_bytes() if path.exists() else b""
    encoding = "utf-8" if sys.flags.utf8_mode else locale.getencoding()
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


if __name__ == "__main__":
    main()
