"""Benchmark several `outreach send` processes draining one PostgreSQL outbox together (issue 18).

    .venv/bin/python bench/scale.py                           # 2,400 messages; 1, 2, 4 and 8 senders (~9 minutes)
    .venv/bin/python bench/scale.py --count 400 --senders 1,4 --json
    .venv/bin/python bench/scale.py --keep                    # keep the folder and the database for a look

It makes a database of its own on the PostgreSQL server (`--postgres`: an administrator's URL, by default the
local server), a fresh workspace on it with N contacts (bench/import.py's generator, bench/send.py's setup), and
queues the shipped appeal for all of them. Then for each number K of senders: every message is put back in the
queue, a new sink (bench/sink.py, a process of its own) answers each message 100 ms after its data as a server
across a network does, and K `outreach send` processes start at once, each with one connection and no pace. It
times the whole, from the first start to the last exit. The sink writes down the Message-ID of every message it
received: each of the N must be there exactly once (no duplicate, no loss), and the outbox must show each sent.

One sender sends at most 10 messages a second to such a server, so K senders could send K times as fast: the
ratio to one sender shows what sharing the outbox through the database costs (claims, row locks, the last
messages of the run, and each process's start-up).
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
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

HERE = Path(__file__).resolve().parent
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DELAY = 0.1  # seconds the sink takes to answer each message's data
TARGETS = {4: 3.7, 8: 7.0}  # issue 18: K senders at least this many times as fast as one


def _import_send() -> ModuleType:
    """bench/send.py, for its workspace setup and its sink (it brings bench/import.py along)."""
    spec = importlib.util.spec_from_file_location("bench_send", HERE / "send.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_send"] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Finished:
    """One `outreach send` process of a run, once it exited."""

    seconds: float  # from the start of the run's first process to this one's exit
    exit_code: int
    stdout: str
    stderr: str

    @property
    def sent(self) -> int:
        """What the process says it sent (its --json report)."""
        return int(json.loads(self.stdout)["sent"]) if self.exit_code == 0 else 0


def senders_at_once(outreach: Path, workspace: Path, senders: int, env: dict[str, str]) -> list[Finished]:
    """Start `senders` `outreach send` processes at once and wait until the last one exits."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen([str(outreach), "send", "--yes", "--json"], cwd=workspace, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(senders)
    ]  # fmt: skip
    finished: list[Finished] = []

    def wait(process: subprocess.Popen[str]) -> None:
        out, err = process.communicate()
        finished.append(Finished(time.perf_counter() - started, process.returncode, out, err))  # under the GIL

    waiting = [threading.Thread(target=wait, args=(process,)) for process in processes]
    for thread in waiting:
        thread.start()
    for thread in waiting:
        thread.join()
    return sorted(finished, key=lambda one: one.seconds)


def outbox_ids(send: ModuleType, workspace: Path, url: str) -> set[str]:
    """The Message-IDs of the outbox, without their angle brackets."""
    with send.database(workspace, url) as db:
        return {found.strip("<>") for found in db.scalars(text("SELECT message_id FROM outbox_messages"))}


def outbox_states(send: ModuleType, workspace: Path, url: str) -> dict[str, int]:
    """How many outbox messages are in each state."""
    with send.database(workspace, url) as db:
        return {state: count for state, count in db.execute(text(
            "SELECT state, count(*) FROM outbox_messages GROUP BY state"))}  # fmt: skip


def reset(send: ModuleType, workspace: Path, url: str) -> None:
    """Every message queued again, and the table's dead rows cleared, so that each run starts alike."""
    send.requeue(workspace, url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
    try:
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE outbox_messages"))
    finally:
        engine.dispose()


def one_run(
    send: ModuleType, folder: Path, workspace: Path, url: str, senders: int, expected: set[str]
) -> dict[str, Any]:
    """Reset the outbox, start a sink and `senders` senders, and say what came of it."""
    reset(send, workspace, url)
    ids_file = folder / f"received-{senders}.txt"
    sink = send.Sink(DELAY, ids=ids_file)
    try:
        send.settings(workspace, sink.port, 1, url)
        finished = senders_at_once(send.OUTREACH, workspace, senders, send.import_tools().child_env())
    finally:
        summary = sink.stop()
    received = Counter(ids_file.read_text(encoding="ascii").split())
    seconds = finished[-1].seconds
    failed = [f"exit {one.exit_code}: {one.stderr.strip()[-500:]}" for one in finished if one.exit_code != 0]
    return {
        "senders": senders,
        "messages": sum(received.values()),
        "seconds": round(seconds, 2),
        "per_second": round(len(expected) / seconds, 2),
        "duplicates": sum(copies - 1 for copies in received.values()),
        "losses": len(expected - received.keys()),
        "strangers": len(received.keys() - expected),  # received, but not in the outbox: never expected
        "outbox": outbox_states(send, workspace, url),
        "sent_by_sender": [one.sent for one in finished],
        "exits": [round(one.seconds, 2) for one in finished],
        "sink": summary,
        "failures": failed,
    }


def checked(run: dict[str, Any], count: int) -> list[str]:
    """What is wrong with a run: anything but each message delivered once and recorded as sent."""
    problems = [f"{run['senders']} senders: {failure}" for failure in run["failures"]]
    for key in ("duplicates", "losses", "strangers"):
        if run[key]:
            problems.append(f"{run['senders']} senders: {run[key]} {key}")
    if run["outbox"] != {"sent": count}:
        problems.append(f"{run['senders']} senders: the outbox shows {run['outbox']}, not {count} sent")
    if sum(run["sent_by_sender"]) != count:
        problems.append(f"{run['senders']} senders: the senders report {sum(run['sent_by_sender'])} sent")
    return problems


def described(run: dict[str, Any]) -> str:
    """One line for a run."""
    ratio = f", {run['ratio']}x one sender" if run["ratio"] else ""
    each = "/".join(map(str, run["sent_by_sender"]))
    exits = ", ".join(f"{seconds:.1f}" for seconds in run["exits"])
    return (f"{run['senders']} senders: {run['messages']} messages in {run['seconds']:.2f} s: {run['per_second']:.1f}"
            f" msg/s{ratio}; duplicates {run['duplicates']}, losses {run['losses']}; sent by each {each}, exits at"
            f" {exits} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2_400, help="messages each run sends (default 2,400)")
    parser.add_argument("--senders", default="1,2,4,8", help="numbers of senders to run, in order (default 1,2,4,8)")
    parser.add_argument("--postgres", default=ADMIN_URL, help=f"a URL to create the database with ({ADMIN_URL})")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and the database")
    args = parser.parse_args()
    counts = [int(number) for number in args.senders.split(",")]
    say = (lambda *a: None) if args.json else print
    send = _import_send()
    name = f"outreach_bench_scale_{os.getpid()}"
    try:
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except ModuleNotFoundError as error:
        raise SystemExit(f"{error.name} is not installed: pip install -e '.[postgres]'") from None
    except OperationalError as error:
        raise SystemExit(f"cannot create a database with {args.postgres}: {error.orig}") from None
    url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-scale-"))
    result: dict[str, Any] = {"benchmark": "scale", "count": args.count, "delay": DELAY, "runs": []}
    problems: list[str] = []
    try:
        workspace = send.make_workspace(send.import_tools(), folder, args.count, url)
        queued = json.loads(send.run("campaigns", "queue", "everyone", "--json", "--yes", cwd=workspace).stdout)
        assert queued["queued"] == args.count, f"queued {queued['queued']}, expected {args.count}"
        expected = outbox_ids(send, workspace, url)
        say(f"{args.count} messages queued on PostgreSQL; the sink answers each after {DELAY * 1000:.0f} ms")
        for senders in counts:
            run = one_run(send, folder, workspace, url, senders, expected)
            first = result["runs"][0] if result["runs"] and result["runs"][0]["senders"] == 1 else None
            run["ratio"] = round(run["per_second"] / first["per_second"], 2) if first else None
            result["runs"].append(run)
            problems += checked(run, args.count)
            say(described(run))
        ratios = {run["senders"]: run["ratio"] for run in result["runs"] if run["ratio"]}
        result["targets"] = {
            f"{senders} senders >= {least}x": ratios[senders] >= least for senders, least in TARGETS.items()
            if senders in ratios
        }  # fmt: skip
        for target, met in result["targets"].items():
            say(f"target {target}: {'met' if met else 'NOT met'}")
    finally:
        if args.keep:
            say(f"kept {folder} and the database {url}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    result["problems"] = problems
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
