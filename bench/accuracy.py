"""Measure how well inbound mail is read, against the corpus of real messages in tests/corpus/.

    .venv/bin/python bench/accuracy.py            # the tables (a few seconds)
    .venv/bin/python bench/accuracy.py --misses   # and every message outreach reads wrong, with why
    .venv/bin/python bench/accuracy.py --json     # one JSON object on stdout, nothing else

Every record of tests/corpus/expected-*.jsonl names a message kept as found (bounces, delay warnings,
automatic replies, complaints, people's replies) and the answer a person wrote for it by reading it. Four readers
run over the same raw bytes in the same run:

- outreach: `outreach.responses.reading.understand`, what `outreach responses poll` records;
- flufl.bounce alone: `all_failures` on the parsed message. A message is a bounce when it names addresses;
  permanent failures say hard, temporary ones soft or delayed (flufl.bounce does not tell those two apart, so
  either counts as right for both). It never says reply, auto-reply or complaint: for those kinds it is right
  when it names nobody;
- talon (`talon.quotations.extract_from_plain`) and email-reply-parser (`EmailReplyParser.parse_reply`), for the
  new text of replies only, given the same plain text outreach reads (`outreach.responses.inbound.body_text`).

Reported: accuracy per expected kind and overall; bounced-address recall and precision (over the messages
expected to be bounces; an address counts when the reader says bounce and names it); hard/soft agreement on the
messages expected to be hard or soft bounces that the reader calls a failure; and for records with `new_text`,
exact match after normalising white space and token F1 (lower-cased words, counted with repeats).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
KINDS = ("reply", "auto_reply", "hard_bounce", "soft_bounce", "delayed", "unsubscribe", "complaint", "unknown")
BOUNCES = ("hard_bounce", "soft_bounce", "delayed")
FAILURES = ("hard_bounce", "soft_bounce")
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Tally:
    """Counts for one reader."""

    right: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    found: int = 0  # bounced addresses named and expected
    named: int = 0  # bounced addresses named
    expected: int = 0  # bounced addresses expected
    hard_soft_agree: int = 0
    hard_soft_called: int = 0
    exact: int = 0
    f1: float = 0.0
    texts: int = 0
    misses: list[str] = field(default_factory=list)


def records() -> list[dict[str, Any]]:
    """Every expected answer, in file order."""
    found = []
    for path in sorted(CORPUS.glob("expected-*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                record = json.loads(line)
                record["_where"] = f"{path.name}:{number}"
                found.append(record)
    return found


def normalised(text: str | None) -> str:
    return " ".join((text or "").split())


def token_f1(got: str | None, want: str) -> float:
    """F1 of the lower-cased words of `got` against `want`, repeats counted."""
    have, need = Counter(WORD.findall((got or "").lower())), Counter(WORD.findall(want.lower()))
    if not have and not need:
        return 1.0
    common = sum((have & need).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(have.values()), common / sum(need.values())
    return 2 * precision * recall / (precision + recall)


def read_outreach(raw: bytes) -> tuple[str, set[str], str | None]:
    from outreach.responses.reading import understand

    understood = understand(raw)
    classification = understood.classification
    return classification.kind, {address.lower() for address in classification.recipients}, understood.text


def read_flufl(raw: bytes) -> tuple[str, set[str], str | None]:
    from flufl.bounce import all_failures

    message = message_from_bytes(raw, policy=compat32)
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        return "none", set(), None
    as_text = {address.decode("ascii", "replace").lower() for address in permanent | temporary}
    return ("hard_bounce" if permanent else "soft_bounce" if temporary else "none"), as_text, None


def _plain(raw: bytes) -> str:
    from outreach.responses.inbound import body_text, read_message

    return body_text(read_message(raw))


def text_by_talon(raw: bytes) -> str | None:
    from talon import quotations

    return str(quotations.extract_from_plain(_plain(raw)))


def text_by_reply_parser(raw: bytes) -> str | None:
    from email_reply_parser import EmailReplyParser

    return str(EmailReplyParser.parse_reply(_plain(raw)))


def kind_right(reader: str, got: str, want: str) -> bool:
    if reader != "flufl.bounce":
        return got == want
    if want == "hard_bounce":
        return got == "hard_bounce"
    if want in ("soft_bounce", "delayed"):
        return got == "soft_bounce"
    return got == "none"


def measure(only: set[str] | None = None) -> tuple[dict[str, Tally], dict[str, Any]]:
    """Run every reader over every record; return the tallies and what was available."""
    readers: dict[str, Callable[[bytes], tuple[str, set[str], str | None]]] = {"outreach": read_outreach}
    texts: dict[str, Callable[[bytes], str | None]] = {}
    notes: dict[str, Any] = {}
    for name, module, reader in (("flufl.bounce", "flufl.bounce", None), ("talon", "talon", text_by_talon),
                                 ("email-reply-parser", "email-reply-parser", text_by_reply_parser)):  # fmt: skip
        try:
            notes[name] = importlib.metadata.version(module)
            if reader is None:
                readers[name] = read_flufl
            else:
                __import__("talon.quotations" if name == "talon" else "email_reply_parser")
                texts[name] = reader
        except Exception as error:
            notes[name] = f"not available: {type(error).__name__}: {error}"
    tallies = {name: Tally() for name in [*readers, *texts]}
    started = time.perf_counter()
    corpus = records()
    for record in corpus:
        if only and record["kind"] not in only:
            continue
        raw = (CORPUS / record["file"]).read_bytes()
        want_kind = record["kind"]
        want = {address.lower() for address in record["recipients"]} if want_kind in BOUNCES else set()
        for name, read in readers.items():
            tally = tallies[name]
            got_kind, got, text = read(raw)
            tally.seen[want_kind] += 1
            if kind_right(name, got_kind, want_kind):
                tally.right[want_kind] += 1
            elif name == "outreach":
                tally.misses.append(f"{record['file']}: expected {want_kind}, read {got_kind}")
            says_bounce = got_kind in BOUNCES
            if want_kind in BOUNCES:
                tally.expected += len(want)
                if says_bounce:
                    tally.found += len(got & want)
                    tally.named += len(got)
                    if name == "outreach" and got != want and want:
                        tally.misses.append(f"{record['file']}: recipients {sorted(got)}, expected {sorted(want)}")
            elif says_bounce:
                tally.named += len(got)
            if want_kind in FAILURES and got_kind in FAILURES:
                tally.hard_soft_called += 1
                tally.hard_soft_agree += got_kind == want_kind
            if record.get("new_text") is not None and name == "outreach":
                score(tally, text, record["new_text"])
        if record.get("new_text") is not None:
            for name, extract in texts.items():
                score(tallies[name], extract(raw), record["new_text"])
    notes["records"] = len(corpus)
    notes["seconds"] = round(time.perf_counter() - started, 2)
    notes["sources"] = dict(Counter(record["file"].split("/")[1] for record in corpus))
    return tallies, notes


def score(tally: Tally, got: str | None, want: str) -> None:
    tally.texts += 1
    tally.exact += normalised(got) == normalised(want)
    tally.f1 += token_f1(got, want)


def ratio(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def summary(tallies: dict[str, Tally]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, tally in tallies.items():
        seen = sum(tally.seen.values())
        out[name] = {
            "kinds": {kind: [tally.right[kind], tally.seen[kind]] for kind in KINDS if tally.seen[kind]},
            "overall": [sum(tally.right.values()), seen],
            "address_recall": [tally.found, tally.expected],
            "address_precision": [tally.found, tally.named],
            "hard_soft_agreement": [tally.hard_soft_agree, tally.hard_soft_called],
            "text_exact": [tally.exact, tally.texts],
            "text_token_f1": round(tally.f1 / tally.texts, 3) if tally.texts else None,
        }
    return out


def print_tables(tallies: dict[str, Tally], notes: dict[str, Any]) -> None:
    results = summary(tallies)
    classifiers = [name for name in ("outreach", "flufl.bounce") if name in results]
    print(f"corpus: {notes['records']} records ({', '.join(f'{k} {v}' for k, v in sorted(notes['sources'].items()))})")
    print(f"versions: flufl.bounce {notes.get('flufl.bounce')}, talon {notes.get('talon')}, "
          f"email-reply-parser {notes.get('email-reply-parser')}; {notes['seconds']} s")  # fmt: skip
    print()
    print(f"| expected kind | messages | {' | '.join(classifiers)} |")
    print(f"|---|---:|{'---:|' * len(classifiers)}")
    for kind in KINDS:
        count = tallies["outreach"].seen[kind]
        if count:
            cells = " | ".join(ratio(tallies[name].right[kind], count) for name in classifiers)
            print(f"| {kind} | {count} | {cells} |")
    total = sum(tallies["outreach"].seen.values())
    cells = " | ".join(f"**{ratio(sum(tallies[name].right.values()), total)}**" for name in classifiers)
    print(f"| **all** | {total} | {cells} |")
    print()
    print(f"| bounces | {' | '.join(classifiers)} |")
    print(f"|---|{'---:|' * len(classifiers)}")
    for label, key in (("address recall", "address_recall"), ("address precision", "address_precision"),
                       ("hard/soft agreement", "hard_soft_agreement")):  # fmt: skip
        cells = " | ".join(f"{ratio(*results[name][key])} ({results[name][key][0]}/{results[name][key][1]})"
                           for name in classifiers)  # fmt: skip
        print(f"| {label} | {cells} |")
    texts = [name for name in ("outreach", "talon", "email-reply-parser") if name in results]
    if tallies["outreach"].texts:
        print()
        print(f"| reply text ({tallies['outreach'].texts} replies) | {' | '.join(texts)} |")
        print(f"|---|{'---:|' * len(texts)}")
        print(f"| exact match | {' | '.join(ratio(tallies[n].exact, tallies[n].texts) for n in texts)} |")
        print(f"| token F1 | {' | '.join(str(results[n]['text_token_f1']) for n in texts)} |")
    for name in ("talon", "email-reply-parser"):
        if str(notes.get(name, "")).startswith("not available"):
            print(f"{name}: {notes[name]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    parser.add_argument("--misses", action="store_true", help="list the messages outreach reads wrong")
    parser.add_argument("--kind", action="append", help="only records expected to be of this kind")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    tallies, notes = measure(set(args.kind) if args.kind else None)
    if args.json:
        print(json.dumps({"notes": notes, "results": summary(tallies)}, indent=2))
        return 0
    print_tables(tallies, notes)
    if args.misses:
        print()
        print("\n".join(tallies["outreach"].misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
