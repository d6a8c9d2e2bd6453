"""`outreach serve` as a real process on a free loopback port, for the desk's tests (httpx and Chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import RUNS
from tests.smtp_server import free_port

CHROMIUM = os.environ.get("OUTREACH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass(frozen=True)
class Desk:
    """A desk that answers at `url`."""

    url: str
    process: subprocess.Popen[str]


@contextmanager
def serving(root: Path, environ: Mapping[str, str], *extra: str) -> Iterator[Desk]:
    """Start `outreach serve` in the workspace at `root`, wait until it answers, and stop it at the end."""
    port = free_port()
    log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed with the process, below
    process = RUNS.popen(
        ["serve", "--port", str(port), *extra],
        cwd=root, env=dict(environ), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"outreach serve exited {process.returncode}: {log.read()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("outreach serve did not answer within 30 s")
            time.sleep(0.1)
        yield Desk(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def logged_in(url: str, name: str, password: str) -> Iterator[httpx.Client]:
    """An HTTP client with a desk session, logged in as a browser would: the form's CSRF token first."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"csrf": token, "name": name, "password": password, "next": "/responses"})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    marker = 'name="csrf" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
