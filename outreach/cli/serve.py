"""`outreach serve`: the response desk and one-click unsubscribe, in a browser."""

from __future__ import annotations

from typing import Annotated

import typer

from outreach.cli.output import err


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The address to listen on; other than loopback, put TLS in front.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8025,
) -> None:
    """Serve the response desk and one-click unsubscribe (RFC 8058) until stopped (Ctrl-C, SIGTERM)."""
    from outreach.config import is_loopback
    from outreach.desk.accounts import list_users
    from outreach.desk.server import listening_socket, serve

    workspace = ctx.obj.workspace()
    users = list_users(workspace.sessions)  # also checks the database before the port is taken
    sock = listening_socket(host, port)
    if not is_loopback(host) and not workspace.settings.public_url.startswith("https://"):
        err.print(f"Warning: the desk listens on {host}, beyond this machine: put a TLS proxy in front of it and "
                  "set OUTREACH_PUBLIC_URL to its https address (README: The desk behind a proxy).",
                  markup=False)  # fmt: skip
    if not users:
        err.print("No campaigner can log in yet: `outreach users add NAME` adds one.", markup=False)

    def ready(address: str) -> None:
        public = workspace.settings.public_url
        err.print(f"The desk answers at {address}" + (f" (public: {public})" if public else "")
                  + "; Ctrl-C stops it.", markup=False, highlight=False)  # fmt: skip

    serve(workspace, sock, on_ready=ready)
