"""An SMTP sink on loopback for the sending benchmark: accepts every message, optionally answers DATA late.

    .venv/bin/python bench/sink.py --port 2525 [--delay 0.02] [--pipelining] [--ids FILE]

It runs in a process of its own (so that it does not share an interpreter lock with the sender it measures),
prints `ready` once it listens, and on SIGTERM prints one JSON line: messages received, distinct recipients,
and the most copies any recipient got. With `--ids FILE` it also reads each message's Message-ID, writes every
one it received to FILE (one a line, in the order they came, a duplicate as often as it came) and adds the
distinct Message-IDs and the most copies of any one to the line: several senders to one recipient must still
deliver each message once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

# The Message-ID field of a header section, with any folded lines after it (RFC 5322 2.2.3, 3.6.4).
MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def message_id(content: bytes) -> str:
    """The Message-ID of a message as received (angle brackets and blanks dropped), or "" when it has none."""
    header = content.split(b"\r\n\r\n", 1)[0]
    found = MESSAGE_ID.search(header)
    return b"".join(found[1].split()).decode("ascii", "replace").strip("<>") if found else ""


class CountingSink:
    """Counts what arrives, per recipient; answers each DATA after `delay` seconds; offers PIPELINING (RFC 2920)
    on request, as most real servers do (aiosmtpd reads pipelined commands in order but does not say so)."""

    def __init__(self, delay: float, pipelining: bool, with_ids: bool = False) -> None:
        self.delay = delay
        self.pipelining = pipelining
        self.with_ids = with_ids
        self.received = 0
        self.recipients: Counter[str] = Counter()
        self.ids: list[str] = []  # Message-IDs as they came, with `with_ids`

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
        if self.with_ids:
            self.ids.append(message_id(envelope.original_content or envelope.content))
        return "250 2.0.0 OK"


async def serve(port: int, delay: float, pipelining: bool, with_ids: bool) -> CountingSink:
    sink = CountingSink(delay, pipelining, with_ids)
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
    parser.add_argument("--ids", type=Path, help="write the Message-ID of every message received to this file")
    args = parser.parse_args()
    sink = asyncio.run(serve(args.port, args.delay, args.pipelining, args.ids is not None))
    most = max(sink.recipients.values(), default=0)
    summary: dict[str, int] = {"received": sink.received, "recipients": len(sink.recipients), "most_copies": most}
    if args.ids is not None:
        ids = Counter(sink.ids)
        summary |= {"message_ids": len(ids), "most_copies_of_id": max(ids.values(), default=0)}
        args.ids.write_text("".join(f"{found}\n" for found in sink.ids), encoding="ascii")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
