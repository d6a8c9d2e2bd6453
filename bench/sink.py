"""An SMTP sink on loopback for the sending benchmark: accepts every message, optionally answers DATA late.

    .venv/bin/python bench/sink.py --port 2525 [--delay 0.02] [--pipelining]

It runs in a process of its own (so that it does not share an interpreter lock with the sender it measures),
prints `ready` once it listens, and on SIGTERM prints one JSON line: messages received, distinct recipients,
and the most copies any recipient got.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP


class CountingSink:
    """Counts what arrives, per recipient; answers each DATA after `delay` seconds; offers PIPELINING (RFC 2920)
    on request, as most real servers do (aiosmtpd reads pipelined commands in order but does not say so)."""

    def __init__(self, delay: float, pipelining: bool) -> None:
        self.delay = delay
        self.pipelining = pipelining
        self.received = 0
        self.recipients: Counter[str] = Counter()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received += 1
        self.recipients.update(address.lower() for address in envelope.rcpt_tos)
        return "250 2.0.0 OK"


async def serve(port: int, delay: float, pipelining: bool) -> CountingSink:
    sink = CountingSink(delay, pipelining)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, enable_SMTPUTF8=True), "127.0.0.1", port)
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    print("ready", flush=True)
    await stopped.wait()
    server.close()
    return sink


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering each DATA")
    parser.add_argument("--pipelining", action="store_true", help="offer PIPELINING in the EHLO reply")
    args = parser.parse_args()
    sink = asyncio.run(serve(args.port, args.delay, args.pipelining))
    most = max(sink.recipients.values(), default=0)
    print(json.dumps({"received": sink.received, "recipients": len(sink.recipients), "most_copies": most}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
