"""Benchmark queueing and sending as a user runs them, against a minimal smtplib loop in the same run.

    .venv/bin/python bench/send.py                          # 10,000 messages: (a), (b) three times, (c) once (~7 min)
    .venv/bin/python bench/send.py --count 100000 --runs 1 --no-baseline --no-delayed --no-pipelining  # 100,000
    .venv/bin/python bench/send.py --json

(a) `outreach campaigns queue` of N copies of the shipped appeal, from start to exit, in copies per second.
(b) `outreach send` of those N messages through one connection to an SMTP sink on loopback that answers at once
    (`bench/sink.py`, a process of its own), from start to exit, against the baseline: smtplib's `sendmail()` in a
    loop over one connection, with the same messages rendered beforehand (`outreach send --dry-run`). Measured
    twice: with the sink as aiosmtpd is (no PIPELINING), and with the sink offering PIPELINING (RFC 2920) as real
    servers do, which outreach uses and smtplib does not.
(c) `outreach send` with 4 connections to a sink that answers each DATA after 20 ms, as a server across a network
    does, against the same one-connection baseline on that same sink (`--delayed-count` messages, 4,000 by default:
    the baseline needs about 90 seconds for them), again without and with PIPELINING offered.

Runs of (b) alternate with runs of the baseline, and the ratio is taken run by run, because this machine is shared
and noisy. After every run the sink reports what it received: the script fails unless each message arrived once.
Peak memory of `outreach send` is the peak RSS of its process (os.wait4). On Linux a child's ru_maxrss starts
from its parent's size at the fork, so the baseline runs in a process of its own and this one stays small.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import importlib.util
import json
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
OUTREACH = Path(sys.executable).parent / "outreach"
SENDER = "appeal@example.org"


def _import_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_import", HERE / "import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_import"] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """bench/sink.py in a process of its own, for one run."""

    def __init__(self, delay: float, *, pipelining: bool = False) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), "--port", str(self.port), "--delay", str(delay)]
            + (["--pipelining"] if pipelining else []),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the SMTP sink did not start")

    def stop(self) -> dict[str, int]:
        """Stop the sink and return what it received."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        return dict(json.loads(out.strip().splitlines()[-1]))


def _check(received: dict[str, int], count: int, what: str) -> None:
    if received["received"] != count or received["recipients"] != count or received["most_copies"] != 1:
        raise SystemExit(f"{what}: the sink received {received}, expected {count} messages, each once")


def baseline(folder: Path, port: int, count: int) -> float:
    """The minimal smtplib loop, in a process of its own: one connection, `sendmail()` for each of the first
    `count` pre-rendered messages (read into memory before the clock starts); returns the seconds it took."""
    done = subprocess.run(
        [sys.executable, __file__, "--baseline-of", str(folder), "--port", str(port), "--count", str(count)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout)


def _baseline_process(folder: Path, port: int, count: int) -> None:
    manifest = (folder / "recipients.tsv").read_text(encoding="utf-8").splitlines()[:count]
    pairs = (line.split("\t") for line in manifest)
    messages = [(recipient, (folder / name).read_bytes()) for name, recipient in pairs]
    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port)
    for recipient, data in messages:
        smtp.sendmail(SENDER, [recipient], data, mail_options=() if recipient.isascii() else ("SMTPUTF8",))
    smtp.quit()
    print(time.perf_counter() - started)


def _settings(workspace: Path, port: int, connections: int) -> None:
    lines = [
        f'OUTREACH_FROM="European Appeal <{SENDER}>"',
        "OUTREACH_SMTP_HOST=127.0.0.1",
        f"OUTREACH_SMTP_PORT={port}",
        "OUTREACH_SMTP_SECURITY=none",
        f"OUTREACH_SMTP_CONNECTIONS={connections}",
        "OUTREACH_RATE_LIMIT=",  # a local sink: no pace
        "OUTREACH_DOMAIN_RATE_LIMIT=",
        "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org",
    ]
    (workspace / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _requeue(workspace: Path) -> None:
    """Put every message back in the queue, as it was after `campaigns queue`."""
    with sqlite3.connect(workspace / "outreach.db") as db:
        db.execute(
            "UPDATE outbox_messages SET state = 'queued', sent_at = NULL, attempts = 0, claimed_by = NULL,"
            " lease_until = NULL, last_reply = NULL"
        )


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OUTREACH), *args], cwd=cwd, capture_output=True, text=True, check=True)


def _send(tools: ModuleType, workspace: Path, port: int, connections: int, count: int, limit: int | None) -> Any:
    _settings(workspace, port, connections)
    args = [str(OUTREACH), "send", "--yes", "--json"] + (["--limit", str(limit)] if limit else [])
    timed = tools.run_timed(args, workspace, workspace.parent)
    if timed.exit_code != 0:
        raise SystemExit(f"outreach send exited {timed.exit_code}: {timed.stderr}")
    report = json.loads(timed.stdout)
    if report["sent"] != count:
        raise SystemExit(f"outreach send sent {report['sent']} of {count}: {timed.stderr}")
    return timed


def _prerender(workspace: Path, folder: Path) -> None:
    """The messages as `outreach send` would send them (its dry run), and a manifest of their recipients."""
    _run("send", "--dry-run", "--outbox-dir", str(folder), cwd=workspace)
    with sqlite3.connect(workspace / "outreach.db") as db:
        recipients = dict(db.execute("SELECT id, recipient FROM outbox_messages"))
    files = sorted(path.name for path in folder.iterdir())
    lines = [f"{name}\t{recipients[int(name.split('-', 1)[0])]}" for name in files]
    (folder / "recipients.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed = email.message_from_bytes((folder / files[0]).read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"], "the pre-rendered messages are real messages"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages to queue and send (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of (b) and of its baseline (default 3)")
    parser.add_argument("--delayed-count", type=int, default=4_000, help="messages for (c) (default 4,000)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines (for memory at large N)")
    parser.add_argument("--no-delayed", action="store_true", help="skip (c)")
    parser.add_argument("--no-pipelining", action="store_true", help="skip the runs against a PIPELINING sink")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--baseline-of", type=Path, help=argparse.SUPPRESS)  # the baseline's own process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_of:
        _baseline_process(args.baseline_of, args.port, args.count)
        return 0
    tools = _import_bench()
    say = (lambda *a: None) if args.json else print
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-send-"))
    result: dict[str, Any] = {"benchmark": "send", "count": args.count}
    try:
        generated = folder / "contacts.csv"
        # The generator makes about 2% invalid or duplicate rows: ask for a little more to queue `count` copies.
        tools.generate(generated, int(args.count * 1.03) + 20)
        _run("init", str(folder / "ws"), cwd=folder)
        workspace = folder / "ws"
        _settings(workspace, 25, 1)
        _run("contacts", "import", str(generated), cwd=workspace)
        _run("signatories", "import", "contacts/signatories.csv", cwd=workspace)
        with sqlite3.connect(workspace / "outreach.db") as db:
            ids = [row[0] for row in db.execute("SELECT id FROM contacts WHERE status = 'active' ORDER BY id")]
            db.execute(f"UPDATE contacts SET status = 'do_not_contact' WHERE id > {ids[args.count - 1]}")
        _run("campaigns", "create", "everyone", "--template", "appeal", cwd=workspace)
        started = time.perf_counter()
        queued = json.loads(_run("campaigns", "queue", "everyone", "--json", "--yes", cwd=workspace).stdout)["queued"]
        seconds = time.perf_counter() - started
        assert queued == args.count, f"queued {queued}, expected {args.count}"
        result["queue"] = {"seconds": round(seconds, 2), "per_second": round(queued / seconds)}
        say(f"(a) campaigns queue: {queued} copies in {seconds:.2f} s: {queued / seconds:,.0f} copies/s")

        with_baseline = not args.no_baseline
        if with_baseline:
            _prerender(workspace, folder / "eml")
        runs = []
        for run in range(args.runs):
            entry: dict[str, Any] = {}
            if with_baseline:
                sink = Sink(0.0)
                entry["baseline_per_second"] = round(args.count / baseline(folder / "eml", sink.port, args.count))
                _check(sink.stop(), args.count, "baseline")
            _requeue(workspace)
            sink = Sink(0.0)
            timed = _send(tools, workspace, sink.port, 1, args.count, None)
            _check(sink.stop(), args.count, "outreach send")
            entry |= {"per_second": round(args.count / timed.seconds), "peak_rss_mb": round(timed.peak_rss_mb, 1)}
            if with_baseline:
                entry["ratio"] = round(entry["per_second"] / entry["baseline_per_second"], 2)
            if not args.no_pipelining:
                _requeue(workspace)
                sink = Sink(0.0, pipelining=True)
                timed = _send(tools, workspace, sink.port, 1, args.count, None)
                _check(sink.stop(), args.count, "outreach send, PIPELINING")
                entry["pipelining_per_second"] = round(args.count / timed.seconds)
                if with_baseline:
                    entry["pipelining_ratio"] = round(entry["pipelining_per_second"] / entry["baseline_per_second"], 2)
            runs.append(entry)
            say(f"(b) run {run + 1}: " + ", ".join(f"{key} {value}" for key, value in entry.items()))
        if runs:  # --runs 0 skips (b)
            result["send"] = {"runs": runs, "median_per_second": statistics.median(r["per_second"] for r in runs)}
        if runs and with_baseline:
            result["send"]["median_ratio"] = statistics.median(r["ratio"] for r in runs)
            said = f"(b) median ratio to the baseline: {result['send']['median_ratio']}"
            if not args.no_pipelining:
                result["send"]["median_pipelining_ratio"] = statistics.median(r["pipelining_ratio"] for r in runs)
                said += f", {result['send']['median_pipelining_ratio']} with PIPELINING"
            say(said)

        if not args.no_delayed:
            count = min(args.delayed_count, args.count)
            entry = {"count": count}
            if with_baseline:
                sink = Sink(0.02)
                entry["baseline_per_second"] = round(count / baseline(folder / "eml", sink.port, count))
                _check(sink.stop(), count, "baseline, 20 ms")
            for key, pipelining in (("per_second", False), ("pipelining_per_second", True)):
                _requeue(workspace)
                sink = Sink(0.02, pipelining=pipelining)
                timed = _send(tools, workspace, sink.port, 4, count, count)
                _check(sink.stop(), count, "outreach send, 4 connections, 20 ms")
                entry[key] = round(count / timed.seconds)
            if with_baseline:
                entry["ratio"] = round(entry["per_second"] / entry["baseline_per_second"], 2)
                entry["pipelining_ratio"] = round(entry["pipelining_per_second"] / entry["baseline_per_second"], 2)
            result["delayed"] = entry
            say(f"(c) 20 ms sink, {count} messages: outreach send with 4 connections {entry['per_second']:,}/s, "
                f"{entry['pipelining_per_second']:,}/s to a sink offering PIPELINING"
                + (f"; baseline (one connection) {entry['baseline_per_second']:,}/s; ratios {entry['ratio']} and "
                   f"{entry['pipelining_ratio']}" if with_baseline else ""))  # fmt: skip
    finally:
        if args.keep:
            say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
