"""A fork server for the tests' runs of `outreach`: each run is a process of its own, forked from this one.

Most of a short command's second goes to importing its libraries (SQLAlchemy, Typer with pydantic, Rich, Jinja2,
Babel), and the suite runs `python -m outreach` hundreds of times. This process imports those libraries once, and
outreach's modules below the CLI, then for each request forks a child that becomes the run: its own
process and pid, its standard streams (the descriptors the test passed), working folder, environment and
arguments, `python -m outreach ARGS` as runpy runs it, and a normal interpreter exit (atexit included). The same
idea as multiprocessing's "forkserver" with its preload list.

The client (`ForkServer`, one per test process) talks to it over a Unix socket of packets: a request carries JSON
(args, env, cwd) and the three descriptors of the child's stdin, stdout and stderr; the server answers
"started PID", and "exited PID CODE" when the child ends (CODE negative: the signal that ended it). `ForkServer.popen`
gives a `subprocess.Popen` for such a child (pipes, files, wait, poll, signals, communicate, as Popen does them), and
`ForkServer.run` what `subprocess.run` gives. A run whose interpreter settings (PYTHON*, LANG, LC_*) differ from the
server's is started afresh instead: those are read as an interpreter starts. So is a run that asks Popen for more
than streams, folder and environment (a new session, a preexec_fn), and every run on a system other than Linux.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import pkgutil
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

# Third-party libraries, which read no settings when imported; then every module of outreach below the CLI (`below`).
PRELOAD = (
    "sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg",
    "typer", "typer.main", "typer._adapters", "pydantic", "click", "rich.console", "rich.table", "rich.progress",
    "rich.markup", "dotenv", "email_validator", "jinja2", "jinja2.sandbox", "babel.dates", "babel.numbers",
    "babel.languages", "pycountry", "email.message", "email.policy", "email.parser", "smtplib", "imapclient",
    "dkim", "alembic", "alembic.command", "zoneinfo", "markupsafe", "flufl.bounce", "httpx", "starlette",
    "starlette.applications", "uvicorn", "filelock",
)  # fmt: skip
# Not preloaded: the CLI makes its Rich consoles, which read the terminal and the environment, as it is imported;
# `python -m outreach` is the run itself; the migrations' env.py runs Alembic as it is imported.
_NOT_PRELOADED = ("outreach.cli", "outreach.__main__", "outreach.db.migrations")
_PACKET = 1 << 16
_INTERPRETER = ("PYTHON", "LANG", "LC_")
# What a forked child can be given as Popen gives it; anything else (a new session, a preexec_fn) starts afresh.
# Linux: fork without exec is safe there for a process with one thread, and Unix sockets carry packets.
_CAN_FORK = sys.platform.startswith("linux")
_FORKABLE = {"cwd", "env", "stdin", "stdout", "stderr", "text", "encoding", "errors", "universal_newlines", "bufsize"}


# The server.


def _stream(fd: int, template: TextIO, *, line_buffering: bool) -> TextIO:
    """A standard stream on `fd` as a new interpreter makes it (encoding and errors as this one's)."""
    return open(fd, "r" if fd == 0 else "w", buffering=1 if line_buffering else -1, encoding=template.encoding,
                errors=template.errors, closefd=False)  # fmt: skip


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """In the child: become `python -m outreach ARGS` with the request's streams, folder and environment."""
    for fd, passed in enumerate(fds):
        os.dup2(passed, fd)
    for passed in set(fds) - {0, 1, 2}:
        os.close(passed)
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


def serve(channel: socket.socket) -> None:
    """Fork a child for each request until the client goes; then end what is left of them."""
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop below
    children: set[int] = set()
    events = selectors.DefaultSelector()
    events.register(channel, selectors.EVENT_READ)
    events.register(wakeup_read, selectors.EVENT_READ)
    while True:
        for key, _ in events.select(timeout=1.0):
            if key.fileobj == wakeup_read:
                os.read(wakeup_read, 4096)
                continue
            data, fds, _, _ = socket.recv_fds(channel, _PACKET, 3)
            if not data:  # the client is gone: nothing of ours may outlive it
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return
            pid = os.fork()
            if pid == 0:  # the child keeps nothing of the server's (closed through their owners, closed once)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                events.close()
                channel.close()
                os.close(wakeup_read)
                os.close(wakeup_write)
                _become(json.loads(data), fds)  # never returns: the child exits as the run ends
            for fd in fds:
                os.close(fd)
            children.add(pid)
            channel.send(f"started {pid}".encode())
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            channel.send(f"exited {pid} {os.waitstatus_to_exitcode(status)}".encode())


def below() -> list[str]:
    """outreach's modules below the CLI. They read no settings as they are imported (settings are read by
    `outreach.config.load_settings`, when called) and know no terminal (the import contracts in pyproject.toml)."""
    import outreach

    found, packages = [], [(outreach.__path__, "outreach.")]
    while packages:
        path, prefix = packages.pop()
        for module in pkgutil.iter_modules(path, prefix):
            if not module.name.startswith(_NOT_PRELOADED):
                found.append(module.name)
                if module.ispkg:
                    packages.append(([str(Path(path[0], module.name.rsplit(".", 1)[1]))], f"{module.name}."))
    return found


def main() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for name in below():
        importlib.import_module(name)
    gc.freeze()  # what is loaded stays out of the children's collections (and their pages shared)
    serve(socket.socket(fileno=int(sys.argv[1])))


# The client.


class ForkServer:
    """One server for a test process, started at its first run, ended at the end of the session."""

    def __init__(self) -> None:
        self.server: subprocess.Popen[bytes] | None = None
        self.channel: socket.socket | None = None
        self.lock = threading.Lock()  # one request at a time: its "started" answer is the next one
        self.started: list[int] = []
        self.answered = threading.Condition()
        self.exits: dict[int, int] = {}
        self.gone = False  # the server has ended (or died): nothing more will be answered

    def popen(self, args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """`subprocess.Popen([python, -m, outreach, *args], **options)`, forked from the server."""
        command = [sys.executable, "-m", "outreach", *args]
        env = options.get("env")
        if (not _CAN_FORK or set(options) - _FORKABLE or env is None
                or _interpreter_settings(env) != _interpreter_settings(os.environ)):  # fmt: skip
            return subprocess.Popen(command, **options)  # a new session, a preexec_fn ...: as Popen does them
        return _Forked(self, command, **options)

    def run(self, args: Sequence[str], *, input: str | bytes | None = None, timeout: float | None = None,
            check: bool = False, **options: Any) -> subprocess.CompletedProcess[Any]:  # fmt: skip
        """`subprocess.run([python, -m, outreach, *args], capture_output=True, **options)`, forked from the server."""
        if input is None and "stdin" not in options:
            options["stdin"] = subprocess.DEVNULL
        elif input is not None:
            options["stdin"] = subprocess.PIPE
        with self.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options) as process:
            try:
                out, err = process.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
        if check and process.returncode:
            raise subprocess.CalledProcessError(process.returncode, process.args, out, err)
        return subprocess.CompletedProcess(process.args, process.returncode or 0, out, err)

    def fork(self, request: dict[str, Any], fds: list[int]) -> int:
        """Ask for a child with these streams; return its pid."""
        with self.lock:
            channel = self._channel()
            socket.send_fds(channel, [json.dumps(request).encode()], fds)
            with self.answered:
                self.answered.wait_for(lambda: bool(self.started) or self.gone, timeout=60)
                if not self.started:
                    raise RuntimeError("the fork server did not answer")
                return self.started.pop()

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The child's exit code once it has ended, waiting up to `timeout` (None: as long as it takes)."""
        with self.answered:
            self.answered.wait_for(lambda: pid in self.exits or self.gone, timeout=timeout)
            return self.exits.get(pid)

    def _channel(self) -> socket.socket:
        if self.channel is None or self.gone:
            self.gone = False
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.server = subprocess.Popen([sys.executable, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # fmt: skip
            theirs.close()
            self.channel = ours
            threading.Thread(target=self._listen, args=(ours,), name="fork-server", daemon=True).start()
        return self.channel

    def _listen(self, channel: socket.socket) -> None:
        while data := channel.recv(_PACKET):
            word, *numbers = data.decode().split()
            with self.answered:
                if word == "started":
                    self.started.append(int(numbers[0]))
                else:
                    self.exits[int(numbers[0])] = int(numbers[1])
                self.answered.notify_all()
        with self.answered:
            self.gone = True
            self.answered.notify_all()

    def stop(self) -> None:
        """End the server (and with it any child still running)."""
        if self.channel is not None and self.server is not None:
            self.channel.shutdown(socket.SHUT_RDWR)
            self.server.wait(timeout=30)
            self.channel.close()
            self.channel = self.server = None


class _Forked(subprocess.Popen):  # type: ignore[type-arg]
    """A Popen whose child comes from the fork server: Popen sets up the pipes and files, the server forks."""

    def __init__(self, server: ForkServer, command: list[str], **options: Any) -> None:
        self._server = server
        super().__init__(command, **options)

    def _execute_child(self, args: list[str], executable: Any, preexec_fn: Any, close_fds: Any, pass_fds: Any,
                       cwd: Any, env: Mapping[str, str], startupinfo: Any, creationflags: Any, shell: Any,
                       p2cread: int, p2cwrite: int, c2pread: int, c2pwrite: int, errread: int, errwrite: int,
                       *_: Any) -> None:  # fmt: skip
        fds = [p2cread if p2cread != -1 else 0, c2pwrite if c2pwrite != -1 else 1, errwrite if errwrite != -1 else 2]
        request = {"args": args[3:], "env": dict(env), "cwd": str(Path(cwd or os.getcwd()).resolve())}
        try:
            self.pid = self._server.fork(request, fds)
        finally:
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]

    def _internal_poll(self, _deadstate: int | None = None, *_: Any, **__: Any) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid, timeout=0)
        return self.returncode

    def _wait(self, timeout: float | None) -> int:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid, timeout)
            if self.returncode is None and self._server.gone:
                raise RuntimeError(f"the fork server ended before its child {self.pid} did")
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode


def _interpreter_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(_INTERPRETER)}


if __name__ == "__main__":
    main()
