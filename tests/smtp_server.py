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
    data_reply: str | None = None  # e.g. "451 4.3.0 try later"
    drop_after_data: bool = False
    delay: float = 0.0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
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


def start_server(handler: FaultyHandler, users: dict[str, str] | None = None) -> Controller:
    """Start a server on 127.0.0.1 and a free port; the caller stops it."""
    options: dict[str, Any] = {"enable_SMTPUTF8": True}
    if users is not None:
        options |= {"authenticator": _authenticator(users), "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller
