#!/usr/bin/env python3
"""Set up a virtual environment in .venv (once, and again when pyproject.toml changes) and run a task in it.

python3 dev.py demo     the demo: the whole job on embedded defaults, in a new temporary workspace
python3 dev.py test     the test suite (SQLite, and this machine's PostgreSQL on 127.0.0.1:5432)
python3 dev.py check    ruff and mypy, as CI runs them
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".outreach-installed"

TASKS = {
    "demo": [[str(BIN / "outreach"), "demo"]],
    "test": [[str(BIN / "python"), "-m", "pytest"]],
    "check": [
        [str(BIN / "ruff"), "check", "outreach", "tests", "bench", "dev.py"],
        [str(BIN / "ruff"), "format", "--check", "outreach", "tests", "bench", "dev.py"],
        [str(BIN / "mypy")],
        [str(BIN / "lint-imports")],
    ],
}


def ensure_environment() -> None:
    """Create .venv and install the package with its test tools, unless pyproject.toml is unchanged."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must say so on an older Python, not crash
        sys.exit(f"outreach needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating .venv ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    print("Installing outreach and its test tools into .venv ...", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def compile_bytecode() -> None:
    """Compile outreach's modules, as pip does for a regular install (an editable one is left to compile itself).
    Where PYTHONDONTWRITEBYTECODE is set, as on this project's CI machine, Python would otherwise compile every
    module it imports from source again at every command: 40-60 ms of each command's start. Files compiled already
    are skipped; a syntax error is left for the task to report."""
    subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", "-q", str(ROOT / "outreach")], check=False)


def main(argv: list[str]) -> int:
    """Run the task named on the command line, with any further arguments passed on."""
    if not argv or argv[0] not in TASKS:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_environment()
    compile_bytecode()
    task, extra = TASKS[argv[0]], argv[1:]
    for index, command in enumerate(task):
        result = subprocess.run(command + (extra if index == len(task) - 1 else []), cwd=ROOT)
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
