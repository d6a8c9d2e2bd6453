"""Serving the desk with uvicorn: the socket bound first (so a busy port is one clear line), then served until
SIGINT or SIGTERM. `outreach serve` and `outreach demo` both serve this way."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from outreach.config import is_loopback
from outreach.errors import ConfigError

if TYPE_CHECKING:
    from outreach.workspace import Workspace

DEFAULT_PORT = 8025


def secure_cookies(host: str, public_url: str) -> bool:
    """Whether the desk's cookies are marked Secure: behind TLS (an https public URL), or reachable from other
    machines at all. Only plain HTTP on loopback, where the browser would not send a Secure cookie back over
    `http://127.0.0.1`, leaves the mark off; nothing leaves the machine there."""
    return public_url.startswith("https://") or not is_loopback(host)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound and listening on host:port, or a ConfigError that says why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except (OSError, UnicodeError, OverflowError) as error:  # a busy port, an unknown host, a port past 65535
        sock.close()
        said = getattr(error, "strerror", None) or error
        raise ConfigError(f"cannot listen on {host}:{port}: {said}",
                          hint="--port chooses another port, --host another address") from None  # fmt: skip
    return sock


def serve(workspace: Workspace, sock: socket.socket, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the desk of `workspace` on a bound socket until SIGINT or SIGTERM."""
    import uvicorn

    from outreach.desk.app import DeskOptions, make_app

    host, port = sock.getsockname()[:2]
    options = DeskOptions(secure_cookies=secure_cookies(host, workspace.settings.public_url))
    config = uvicorn.Config(make_app(workspace, options), log_level="warning", access_log=False, proxy_headers=True,
                            server_header=False)  # fmt: skip
    server = uvicorn.Server(config)
    if on_ready is not None:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{port}")
    with _stopped_quietly():
        server.run(sockets=[sock])


@contextmanager
def _stopped_quietly() -> Iterator[None]:
    """uvicorn stops gracefully on SIGINT or SIGTERM, then raises the signal again for the handler that was there
    before it: let that be one that ignores it, so that a desk asked to stop exits 0, as `outreach run` does, rather
    than die of the signal or print a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
