"""Benchmark start-up: how long a whole `outreach` process takes for a command that does (almost) nothing.

    .venv/bin/python bench/startup.py [--runs N] [--json]

It makes an empty workspace (`outreach init`) in a temporary folder, then times N runs (default 5) of each whole
process, wall clock from start to exit: `python -c pass` and `python -c "import typer"` (an interpreter, and the CLI
library alone), the `--help` of a Typer app of one command (the floor of any Typer CLI's help: the rich help brings
rich's Markdown, Pygments and tracebacks), `outreach --help`, `outreach -w DIR contacts list` (settings, database,
one query), and the shell completion of `outreach campaigns queue ` (what a TAB costs). The commands take turns,
run after run, so that a busy moment of the machine falls on all of them alike; one untimed run of each goes first.
It prints the median and the fastest run of each, and the median's ratio to those of `python -c pass` and
`import typer`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The smallest Typer CLI with a help page like outreach's: a callback and one command.
TYPER_APP = """
import typer
app = typer.Typer()
@app.callback()
def root() -> None:
    "A tool."
@app.command()
def hello() -> None:
    "Say hello."
app()
"""


def outreach_command() -> list[str]:
    """The `outreach` console script beside this Python (as a user runs it), or `python -m outreach` without one."""
    script = Path(sys.executable).with_name("outreach")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "outreach"]


def commands(workspace: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """What is timed: a label, the command line and the environment variables it adds."""
    outreach = outreach_command()
    completing = {"_OUTREACH_COMPLETE": "complete_bash", "COMP_WORDS": "outreach campaigns queue ", "COMP_CWORD": "3"}
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "python -c 'import typer'": ([sys.executable, "-c", "import typer"], {}),
        "a one-command Typer app --help": ([sys.executable, "-c", TYPER_APP, "--help"], {}),
        "outreach --help": ([*outreach, "--help"], {}),
        "outreach contacts list": ([*outreach, "-w", str(workspace), "contacts", "list"], {}),
        "complete `campaigns queue `": ([*outreach, "-w", str(workspace)], completing),
    }


def run_once(command: list[str], extra: dict[str, str], environ: dict[str, str], cwd: Path) -> float:
    """One whole process, its output thrown away; return its wall time in seconds (a failure stops the bench)."""
    start = time.perf_counter()
    result = subprocess.run(command, env={**environ, **extra}, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr.decode(errors='replace')}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    args = parser.parse_args()
    # The workspace's own settings only: none of this shell's OUTREACH_* (a database elsewhere, a server).
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("OUTREACH_", "_OUTREACH_"))}
    with tempfile.TemporaryDirectory(prefix="outreach-bench-") as folder:
        workspace = Path(folder) / "workspace"
        run_once([*outreach_command(), "init", str(workspace)], {}, environ, Path(folder))
        timed = commands(workspace)
        seconds: dict[str, list[float]] = {label: [] for label in timed}
        for round_ in range(args.runs + 1):  # the first round warms the caches (bytecode, the file system) untimed
            for label, (command, extra) in timed.items():
                took = run_once(command, extra, environ, workspace)
                if round_:
                    seconds[label].append(took)
    medians = {label: statistics.median(found) for label, found in seconds.items()}
    floor, typer = medians["python -c pass"], medians["python -c 'import typer'"]
    result = {
        "benchmark": "start-up (whole process, wall clock)",
        "runs": args.runs,
        "timings": {
            label: {"median": round(medians[label], 4), "min": round(min(found), 4),
                    "vs_python": round(medians[label] / floor, 1), "vs_typer": round(medians[label] / typer, 2)}
            for label, found in seconds.items()
        },
        "python": sys.version.split()[0],
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'':<30}{'median':>9}{'min':>9}{'x pass':>9}{'x typer':>9}")
    for label, timing in result["timings"].items():
        print(f"{label:<30}{timing['median'] * 1000:>7.0f}ms{timing['min'] * 1000:>7.0f}ms"
              f"{timing['vs_python']:>8}x{timing['vs_typer']:>8}x")  # fmt: skip
    print(f"({args.runs} runs each, Python {result['python']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
