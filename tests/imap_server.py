"""A real IMAP server on loopback: this machine's dovecot, run from a temporary folder with plain-text users.

How to run dovecot as root without touching the system's own: /work/shared/notes/dovecot-on-loopback.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.smtp_server import free_port

if TYPE_CHECKING:
    from imapclient import IMAPClient

USERNAME, PASSWORD = "campaign", "secret"
# A user whose password is not ASCII and holds what IMAP quoting escapes (RFC 3501 4.3: `"` and `\`).
UNICODE_USERNAME, UNICODE_PASSWORD = "unicode", 'Pässwörd "q" \\ back'
# A user every login of fails, with a reply that echoes the password it was sent, as it came and IMAP-quoted (a
# server that quotes the refused command back); dovecot's %w is the password, %E escapes `"` and `\`.
ECHO_USERNAME = "echo"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
# A test logs in with a wrong password on purpose: no delay for it, and no penalty for the logins that follow
# from the same address (the anvil socket closed to everyone turns the penalty off).
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
passdb {{
  driver = static
  args = nopassword=y nologin=y reason=[%w][%Ew]
  username_filter = {echo}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def dovecot_binary() -> str | None:
    """The dovecot program, or None when it is not installed."""
    # /usr/sbin is not on every user's PATH.
    return shutil.which("dovecot", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))


@dataclass
class Dovecot:
    """A running dovecot: where it listens (`port` in plain text, offering STARTTLS; `tls_port` with TLS from the
    first byte, RFC 8314), who may log in, and the process to stop."""

    root: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    username: str = USERNAME
    password: str = PASSWORD

    @contextmanager
    def new_folder(self, prefix: str) -> Iterator[tuple[IMAPClient, str]]:
        """A folder of the caller's own (`prefix` and a random suffix), and a connection, logged in as the campaign's
        user, to put messages in and look at it; logged out at the end."""
        from imapclient import IMAPClient

        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.username, self.password)
        try:
            folder = f"{prefix}{uuid.uuid4().hex[:10]}"
            client.create_folder(folder)
            yield client, folder
        finally:
            client.logout()

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts this server's certificate (made for 127.0.0.1) and nothing else."""
        return ssl.create_default_context(cafile=str(self.root / "cert.pem"))

    def log(self) -> str:
        """What dovecot wrote to its log so far (for a failing test's message)."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the master and every process it started (they share the process group it leads)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # The master ends its children as it stops (a second or so); a straggler of its group, and only of its
        # group, is ended here. A zombie does not count: it is only waiting for init to collect it.
        deadline = time.monotonic() + 5
        while _running_in_group(self.process.pid):
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        shutil.rmtree(self.root, ignore_errors=True)


def _running_in_group(pgid: int) -> bool:
    """True while a process of the group, other than a zombie, runs (Linux: read from /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses, so split after the last ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def start_dovecot(binary: str, timeout: float = 20.0) -> Dovecot:
    """Write a configuration into a new temporary folder, start dovecot in the foreground of a session of its own,
    and wait until it greets; raise RuntimeError with its log when it does not."""
    # Not under pytest's tmp_path: its folders are private to us (0700), and dovecot's auth and mail processes,
    # running as users of their own, must pass through every folder above theirs.
    root = Path(tempfile.mkdtemp(prefix="outreach-dovecot-"))
    for folder in ("run", "state", "mail"):
        (root / folder).mkdir(exist_ok=True)
    port = free_port()
    tls_port = next(p for p in iter(free_port, None) if p != port)
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port, tls_port=tls_port, echo=ECHO_USERNAME))
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as error:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot make a certificate with openssl: {error}") from error
    (root / "users").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n{UNICODE_USERNAME}:{{PLAIN}}{UNICODE_PASSWORD}\n",
                                encoding="utf-8")  # fmt: skip
    # The login and mail processes run as unprivileged users: they must reach the folders, and own the mail.
    for path in (root, root / "run"):
        path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root / "mail", "dovecot", "dovecot")
    # -F: stay in the foreground as our child, so that stopping it is a matter of its own pid; a session of its
    # own, and no inherited stdout, so that pytest does not wait on its output.
    process = subprocess.Popen(
        [binary, "-F", "-c", str(root / "dovecot.conf")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    server = Dovecot(root, port, tls_port, process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((server.host, port), timeout=1) as probe:
                probe.settimeout(2)
                if probe.recv(100).startswith(b"* OK"):
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"dovecot did not start on {server.host}:{port}:\n{server.log()}")
        time.sleep(0.02)
