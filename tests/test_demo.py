"""`outreach demo` as a user runs it: a new workspace, the sample lists, a rendered copy, the appeal sent to an SMTP
sink on loopback, the answers read back from a Maildir, the report and its HTML page, and nothing left running."""

from __future__ import annotations

import contextlib
import email
import email.policy
import importlib.util
import mailbox
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def run_demo(folder: Path) -> tuple[subprocess.CompletedProcess[str], float, set[tuple[int, float]]]:
    """Run the demo as a process; return what it printed, how long it took, and the processes it started (with
    psutil, when it is installed: (pid, creation time) of each child seen while it ran)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")} | {"COLUMNS": "200"}
    command = [sys.executable, "-m", "outreach", "demo", "--dir", str(folder)]
    began = time.monotonic()
    if importlib.util.find_spec("psutil") is None:
        result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                                timeout=60)  # fmt: skip
        return result, time.monotonic() - began, set()
    import psutil

    children: set[tuple[int, float]] = set()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True, env=env) as process:  # fmt: skip
        watched = psutil.Process(process.pid)
        while process.poll() is None and time.monotonic() - began < 60:
            with contextlib.suppress(psutil.Error):  # the demo or a child ended meanwhile
                children |= {(child.pid, child.create_time()) for child in watched.children(recursive=True)}
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=max(1.0, 60 - (time.monotonic() - began)))
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), time.monotonic() - began, children


def still_running(children: set[tuple[int, float]]) -> list[int]:
    """The processes of `children` that are still alive (the same process: a reused pid is another one)."""
    if not children:
        return []
    import psutil

    alive = []
    for pid, created in children:
        try:
            if psutil.Process(pid).create_time() == created:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_the_demo_runs_the_whole_job_and_leaves_nothing_running(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result, seconds, children = run_demo(folder)
    assert result.returncode == 0, result.stderr
    assert seconds < 60
    said = result.stderr
    # The lists, the signatories and the template, as before sending.
    assert "60 imported, 0 rejected" in said
    assert "12 imported, 0 rejected" in said
    assert "25 signatories, 4 parliamentarians, 6 military officials" in said
    assert "60 copies, 0 failed" in said
    message = email.message_from_bytes((folder / "appeal-elysee.eml").read_bytes(), policy=email.policy.default)
    assert message["To"] == "Emmanuel Macron <elysee@example.org>"
    assert message["Subject"].startswith("Lettre ouverte")
    # The campaign, queued and sent to the sink.
    assert "8. outreach campaigns create appeal-heads" in said
    assert "9. outreach campaigns followup appeal-heads --after 7d --template appeal-reminder: step 1" in said
    assert (
        "10. outreach campaigns queue appeal-heads: "
        "60 queued (4 in de, 40 in en, 2 in es, 4 in fr, 2 in it, 4 in nl, 2 in pl, 2 in pt)"
    ) in said
    assert "60 sent, 0 failed" in said
    assert "the sink received 60 messages and is stopped" in said
    # The answers, written into the workspace's Maildir and recorded.
    assert len(mailbox.Maildir(folder / "inbox", create=False)) == 6
    recorded = re.search(r"recorded 6 new \(([^)]*)\), 0 matched no contact", said)
    assert recorded is not None, said
    assert sorted(recorded.group(1).split(", ")) == ["1 auto reply", "1 hard bounce", "1 unsubscribe", "3 reply"]
    for shown in ("hard bounce", "auto reply", "unsubscribe", "statsministeriet@example.org", "Le Président de la",
                  "der Herr Bundespräsident", "Thank you for your letter to the Taoiseach"):  # fmt: skip
        assert shown in result.stdout
    assert "--outcome signed: Alexander Van der Bellen is now a signatory" in said
    assert "26 signatories, 4 parliamentarians, 6 military officials" in said
    # The report, printed as `outreach report` prints it, and its HTML page in the workspace.
    assert "16. outreach report appeal-heads --html report.html" in said
    assert "Campaign appeal-heads" in result.stdout
    assert f"the HTML report {folder / 'report.html'}" in said
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "appeal-heads" in page
    assert "der Herr Bundespräsident" in page
    # Without a terminal, the desk is not served but offered: its address, and a campaigner to log in as.
    offered = re.search(r"outreach serve --port (\d+), then open (\S+) and log in as demo with the password (\S+)\.",
                        said)  # fmt: skip
    assert offered is not None, said
    assert f'OUTREACH_PUBLIC_URL="{offered.group(2)}"' in (folder / ".env").read_text()
    # Nothing left running: no process it started, and the sink's port is closed and free.
    assert still_running(children) == []
    port = re.search(r"SMTP sink on 127\.0\.0\.1:(\d+)", said)
    assert port is not None, said
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", int(port.group(1))), 2):
        pass
    with socket.socket() as probe:
        # With SO_REUSEADDR, as servers bind: the connections the sink closed after QUIT stay in TIME-WAIT on this
        # port for a while (RFC 9293 3.6), which is TCP's doing, not a listener left behind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(port.group(1))))
        probe.listen()


def test_the_demo_wants_a_new_folder(tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_text("mine\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    result = subprocess.run([sys.executable, "-m", "outreach", "demo", "--dir", str(tmp_path)], capture_output=True,
                            text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert f"{tmp_path} is not empty" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["something.txt"]


def test_the_demo_serves_its_desk_and_the_letters_one_click_links_work(tmp_path: Path) -> None:
    import httpx

    folder = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")} | {"COLUMNS": "200"}
    log = tmp_path / "demo.log"
    with log.open("w") as written, subprocess.Popen(
        [sys.executable, "-m", "outreach", "demo", "--dir", str(folder), "--desk"], stdout=written,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
    ) as process:  # fmt: skip
        try:
            began = time.monotonic()
            while (served := re.search(r"desk answers at (\S+): log in as demo", log.read_text())) is None:
                assert process.poll() is None and time.monotonic() - began < 60, log.read_text()
                time.sleep(0.1)
            url = served.group(1)
            sent = email.message_from_bytes((folder / "appeal-elysee.eml").read_bytes())
            assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            with sqlite(folder) as db:
                letter = db.execute(
                    "SELECT letter FROM outbox_bodies JOIN outbox_messages USING (message_id) WHERE recipient = ?",
                    ("taoiseach@example.org",),
                ).fetchone()[0]
            link = re.search(r"<(http[^>]+/u/[^>]+)>", email.message_from_bytes(letter)["List-Unsubscribe"])
            assert link is not None and link.group(1).startswith(url + "/u/")
            assert httpx.post(link.group(1), data={"List-Unsubscribe": "One-Click"}).status_code == 200
            with sqlite(folder) as db:
                status = db.execute("SELECT status FROM contacts WHERE email = 'taoiseach@example.org'").fetchone()
            assert status == ("unsubscribed",)
        finally:
            process.terminate()
        assert process.wait(timeout=20) == 0


@contextlib.contextmanager
def sqlite(folder: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(folder / "outreach.db")
    try:
        yield connection
    finally:
        connection.close()
