"""Lock files: one `outreach send` (and, later, one scheduler) at a time where the database cannot share the work.

SQLite has one writer at a time; two senders on one SQLite file would spend their time waiting on each other's
writes and risk "database is locked". A lock file beside the database makes the second one wait or exit with a
message that says who holds it. PostgreSQL needs none: senders share its outbox through row locks.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from outreach.errors import LockedError


def _holder(path: Path) -> str:
    """Who holds the lock, as that process wrote it (the lock file itself is truncated by every attempt)."""
    try:
        found = json.loads(path.with_suffix(".holder").read_text(encoding="utf-8"))
        return f"process {found['pid']} on {found['host']}, since {found['since']}"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def exclusive(path: Path, job: str, *, wait: float = 0) -> Iterator[None]:
    """Hold the lock file `path` for `job` while the block runs; wait up to `wait` seconds (-1: for ever)."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise LockedError(
            f"another {job} is running on this database ({_holder(path)})",
            where=str(path),
            hint="wait for it to finish, or stop it; with PostgreSQL several senders can share the outbox",
        ) from None
    holder = path.with_suffix(".holder")
    try:
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}))
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
