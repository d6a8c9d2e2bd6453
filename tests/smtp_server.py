"""A real SMTP server on loopback (aiosmtpd) that records what it receives and can misbehave on request."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class FaultyHandler:
    """What the server does: reject chosen recipients, answer DATA with a chosen reply, drop the line, dawdle."""

    received: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # recipient -> reply to RCPT
    hang_up_at: set[str] = field(default_factory=set)  # recipients whose RCPT makes the server drop the line
    data_reply: str | None = None  # e.g. "451 4.3.0 try later"
    drop_after_data: bool = False
    delay: float = 0.0
    peers: set[Any] = field(default_factory=set)  # one per connection that got as far as RCPT
    active: int = 0
    most_active: int = 0  # the most DATA commands answered at once

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.peers.add(session.peer)
        if address in self.hang_up_at:
            server.transport.close()
            return "421 closing"
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            return await self._answer_data(server, envelope)
        finally:
            self.active -= 1

    async def _answer_data(self, server: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.drop_after_data:
            server.transport.close()
            return "421 closing"
        if self.data_reply:
            return self.data_reply
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK queued"


def _authenticator(users: dict[str, str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and users.get(data.login.decode()) == data.password.decode()
        return AuthResult(success=ok, handled=False)  # not handled: the server itself answers 535

    return check


def start_server(handler: FaultyHandler, users: dict[str, str] | None = None, **tls: Any) -> Controller:
    """Start a server on 127.0.0.1 and a free port; the caller stops it. `tls` takes aiosmtpd's TLS options:
    `tls_context` (STARTTLS), `require_starttls`, or `ssl_context` (TLS from the first byte)."""
    options: dict[str, Any] = {"enable_SMTPUTF8": True, **tls}
    if users is not None:
        # AUTH only over STARTTLS when the server offers it; aiosmtpd does not count TLS from the first byte as
        # TLS for this check, so there it is left to the client (which refuses AUTH in plain text itself).
        options |= {"authenticator": _authenticator(users), "auth_require_tls": "tls_context" in tls}
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


class PipeliningHandler(FaultyHandler):
    """The same server, offering PIPELINING (RFC 2920) as most real ones do: aiosmtpd reads pipelined commands
    in order but does not say so itself."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]
