"""Benchmark `outreach campaigns queue` as a user runs it: N copies of the full appeal into the outbox.

    .venv/bin/python bench/queue.py [--contacts N] [--json]

Generates N contacts with bench/import.py's generator, imports them and the shipped signatories into a fresh
SQLite workspace, creates a campaign for everyone with the shipped appeal, then times the whole command
`outreach campaigns queue` (start to exit) and prints copies per second. This is part (a) of the sending
benchmark of issue 4; sending itself is not built yet.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTREACH = Path(sys.executable).parent / "outreach"


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("bench_import", HERE / "import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_import"] = module
    spec.loader.exec_module(module)
    return module


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    return subprocess.run([str(OUTREACH), *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000, help="contacts to generate (default 10,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-queue-"))
    try:
        _generator().generate(folder / "contacts.csv", args.contacts)  # type: ignore[attr-defined]
        run("init", str(folder / "ws"), cwd=folder)
        workspace = folder / "ws"
        with (workspace / ".env").open("a", encoding="utf-8") as env_file:
            env_file.write('OUTREACH_FROM="European Appeal <appeal@example.org>"\n')
        run("contacts", "import", str(folder / "contacts.csv"), cwd=workspace)
        run("signatories", "import", "contacts/signatories.csv", cwd=workspace)
        run("campaigns", "create", "everyone", "--template", "appeal", cwd=workspace)
        start = time.perf_counter()
        report = json.loads(run("campaigns", "queue", "everyone", "--json", cwd=workspace).stdout)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"benchmark": "campaigns queue", "contacts": args.contacts, "queued": report["queued"],
              "seconds": round(seconds, 3), "per_second": round(report["queued"] / seconds),
              "languages": report["languages"]}  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        print(f"queued {report['queued']} copies in {seconds:.2f} s: {result['per_second']} copies/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
