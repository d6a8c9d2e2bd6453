"""Benchmark the commands a campaigner types every day, on a workspace the size of a real campaign.

    .venv/bin/python bench/commands.py [--count 10000] [--runs 3] [--json]

It makes a workspace as `bench/send.py` does (N generated contacts, the shipped signatories, the campaign `everyone`
with the shipped appeal, its N letters queued) and times whole processes, wall clock from start to exit, the
commands taking turns run after run so that a busy moment of the machine falls on all of them alike (one untimed
round first): `outreach --help` (the floor: start-up alone), listing and showing contacts, the campaign and the
outbox, the report, `templates check` of the appeal and of its reminder (every contact's copy made and checked),
`doctor` (with an SMTP sink on loopback to greet), and `campaigns refresh` with nothing changed (every queued copy
made again and compared). It prints the median and the fastest run of each, and the median's ratio to `--help`. A
command that takes seconds here takes ten times as long on a list ten times as large: the ones that make every
letter are the ones to watch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def bench_module(name: str) -> ModuleType:
    """Another script of this folder, loaded as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(workspace: Path, someone: str) -> dict[str, list[str]]:
    """What is timed: a label and the arguments to `outreach`."""
    return {
        "--help": ["--help"],
        "contacts list": ["contacts", "list"],
        "contacts list --json --limit 0": ["contacts", "list", "--json", "--limit", "0"],
        "contacts show": ["contacts", "show", someone],
        "campaigns show": ["campaigns", "show", "everyone"],
        "outbox list": ["outbox", "list"],
        "report": ["report"],
        "templates check appeal": ["templates", "check", "appeal"],
        "templates check appeal-reminder": ["templates", "check", "appeal-reminder"],
        "doctor": ["doctor"],
        "campaigns refresh (nothing changed)": ["campaigns", "refresh", "everyone"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="contacts and queued letters (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    args = parser.parse_args()
    sending, startup = bench_module("send"), bench_module("startup")
    tools = sending.import_tools()
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-commands-"))
    try:
        workspace = sending.make_workspace(tools, folder, args.count)
        sending.run("campaigns", "queue", "everyone", "--yes", cwd=workspace)
        sink = sending.Sink(0.0)  # the SMTP server `doctor` says hello to
        sending.settings(workspace, sink.port, 1)
        listed = json.loads(sending.run("contacts", "list", "--json", "--limit", "1", cwd=workspace).stdout)
        first = listed[0] if isinstance(listed, list) else listed["contacts"][0]  # a bare list before 4dd55bb
        timed = commands(workspace, first["email"])
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("OUTREACH_", "_OUTREACH_"))}
        outreach = startup.outreach_command()
        seconds: dict[str, list[float]] = {label: [] for label in timed}
        for round_ in range(args.runs + 1):  # the first round warms the caches, untimed
            for label, arguments in timed.items():
                took = startup.run_once([*outreach, *arguments], {}, environ, workspace)
                if round_:
                    seconds[label].append(took)
        sink.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {label: statistics.median(found) for label, found in seconds.items()}
    floor = medians["--help"]
    result = {
        "benchmark": "everyday commands (whole process, wall clock)",
        "contacts": args.count,
        "runs": args.runs,
        "timings": {label: {"median": round(medians[label], 3), "min": round(min(found), 3),
                            "vs_help": round(medians[label] / floor, 1)} for label, found in seconds.items()},
        "python": sys.version.split()[0],
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'outreach ...':<38}{'median':>9}{'min':>9}{'x --help':>10}")
    for label, timing in result["timings"].items():
        print(f"{label:<38}{timing['median']:>8.2f}s{timing['min']:>8.2f}s{timing['vs_help']:>9}x")
    print(f"({args.runs} runs each, {args.count:,} contacts and queued letters, Python {result['python']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
