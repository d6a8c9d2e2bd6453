"""Benchmark rendering: the full appeal rendered and built into the bytes that go on the wire, on one core.

    .venv/bin/python bench/render.py [--count N] [--json]

For N copies (default 10,000) of the shipped appeal (plain text and HTML, the signatory list of
contacts/signatories.csv, recipients with non-ASCII names in English, French and German), it times
outreach's own path (template -> copy -> MIME bytes) and, in the same run, a baseline that builds the same
messages naively with the stdlib: `EmailMessage`, `set_content`, `add_alternative`, then `as_bytes` with the
SMTP policy. Both run on one core (the process is pinned to one CPU where the system allows it). It prints
messages per second for each and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import email.policy
import json
import os
import sys
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from outreach.rendering.copies import CompiledTemplate, Letterhead, Recipient, Signatory  # noqa: E402
from outreach.rendering.environment import make_environment  # noqa: E402
from outreach.rendering.mime import Mailbox, Message, build_message, make_message_id  # noqa: E402
from outreach.rendering.salutations import shipped_forms  # noqa: E402

SENDER = Mailbox("appeal@example.org", "Appel européen pour l\u2019Ukraine")
PEOPLE = [
    ("Κυριάκος Μητσοτάκης", "head_of_government", "GR", "el", "m"),
    ("Emmanuel Macron", "head_of_state", "FR", "fr", "m"),
    ("Jürgen Müller-Lüdenscheidt", "head_of_government", "DE", "de", "m"),
    ("Олена Коваленко", "mp", "UA", "uk", None),
    ("Markéta Gregorová", "mep", "CZ", "fr", "f"),
]


def recipients(count: int) -> list[Recipient]:
    """Recipients that cycle through the sample people, each with its own address."""
    found = []
    for number in range(count):
        name, role, country, language, gender = PEOPLE[number % len(PEOPLE)]
        found.append(Recipient(f"person{number}@parliament.example.org", name=name, role=role, country=country,
                               language=language, gender=gender))  # fmt: skip
    return found


def letterhead() -> Letterhead:
    """The shipped signatories, as the database would hand them over."""
    groups: dict[str, list[Signatory]] = {}
    with (ROOT / "contacts" / "signatories.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            groups.setdefault(row["group"], []).append(Signatory(row["name"], row["line"]))
    return Letterhead("European Appeal", "European Surge for Ukraine", date(2026, 11, 29), groups)


def ours(people: list[Recipient], head: Letterhead) -> list[bytes]:
    """outreach's path: compile once, render each copy, build the bytes."""
    template = CompiledTemplate(make_environment(ROOT / "templates"), ROOT / "templates", "appeal", shipped_forms())
    now = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
    out = []
    for person in people:
        copy = template.render(person, head)
        message = Message(SENDER, Mailbox(person.email, person.name), copy.subject, copy.text,
                          make_message_id("example.org"), now, html=copy.html)  # fmt: skip
        out.append(build_message(message))
    return out


def baseline(people: list[Recipient], head: Letterhead) -> list[bytes]:
    """The same copies, rendered the same way, built naively with the stdlib's EmailMessage."""
    template = CompiledTemplate(make_environment(ROOT / "templates"), ROOT / "templates", "appeal", shipped_forms())
    policy = email.policy.SMTP
    out = []
    for person in people:
        copy = template.render(person, head)
        message = EmailMessage()
        message["From"] = f"{SENDER.name} <{SENDER.address}>"
        message["To"] = f"{person.name} <{person.email}>"
        message["Subject"] = copy.subject
        message["Message-ID"] = make_message_id("example.org")
        message.set_content(copy.text)
        message.add_alternative(copy.html or "", subtype="html")
        out.append(message.as_bytes(policy=policy))
    return out


def timed(function: object, people: list[Recipient], head: Letterhead) -> tuple[float, list[bytes]]:
    start = time.perf_counter()
    result = function(people, head)  # type: ignore[operator]
    return time.perf_counter() - start, result


def same_message(mine_bytes: bytes, their_bytes: bytes) -> None:
    """Both paths must make the same message: compare what a reader sees of it."""
    mine, theirs = (email.message_from_bytes(data, policy=email.policy.default) for data in (mine_bytes, their_bytes))
    for header in ("From", "To", "Subject"):
        # The stdlib folds "defend Ukraine's" into a plain and an encoded word, and its parser then shows a
        # double blank there: compare words.
        assert str(mine[header]).split() == str(theirs[header]).split(), header
    for kind in ("plain", "html"):
        mine_part, their_part = mine.get_body((kind,)), theirs.get_body((kind,))
        assert mine_part is not None and their_part is not None
        assert mine_part.get_content().replace("\r\n", "\n") == their_part.get_content().replace("\r\n", "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages (default 10,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--no-baseline", action="store_true", help="time outreach's path alone")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the issue asks
    people, head = recipients(args.count), letterhead()
    ours_seconds, ours_bytes = timed(ours, people, head)
    result: dict[str, Any] = {
        "benchmark": "render + build",
        "messages": args.count,
        "ours": {"seconds": round(ours_seconds, 3), "per_second": round(args.count / ours_seconds)},
        "bytes_per_message": len(ours_bytes[0]),
        "python": sys.version.split()[0],
    }
    if not args.no_baseline:
        base_seconds, base_bytes = timed(baseline, people, head)
        same_message(ours_bytes[0], base_bytes[0])
        result["baseline"] = {
            "what": "same copies, EmailMessage set_content/add_alternative, as_bytes(SMTP)",
            "seconds": round(base_seconds, 3),
            "per_second": round(args.count / base_seconds),
        }
        result["ratio"] = round(base_seconds / ours_seconds, 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ours:     {result['ours']['per_second']:>6} messages/s ({ours_seconds:.2f} s for {args.count})")
        if "baseline" in result:
            base = result["baseline"]
            print(f"baseline: {base['per_second']:>6} messages/s ({base['seconds']:.2f} s)  [stdlib EmailMessage]")
            print(f"ratio:    {result['ratio']}x   ({len(ours_bytes[0]):,} bytes a message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
