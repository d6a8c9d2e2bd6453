"""`outreach demo` as a user runs it: a new workspace, the sample lists, a rendered copy."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_as_a_process_and_leaves_a_message_to_open(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")} | {"COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "outreach", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "60 imported, 0 rejected" in result.stderr
    assert "25 signatories, 4 parliamentarians, 6 military officials" in result.stderr
    assert "60 copies, 0 failed" in result.stderr
    message = email.message_from_bytes(
        (tmp_path / "demo" / "appeal-elysee.eml").read_bytes(), policy=email.policy.default
    )
    assert message["To"] == "Emmanuel Macron <elysee@example.org>"
    assert message["Subject"].startswith("Lettre ouverte")
