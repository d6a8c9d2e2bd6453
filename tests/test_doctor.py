"""`outreach doctor` against a real SMTP server on loopback and real databases: what a user sees, and no password."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from outreach.db.engine import make_engine, make_session_factory
from outreach.workspace import init_workspace

from .conftest import Env
from .imap_server import Dovecot
from .smtp_server import FaultyHandler, free_port, start_server
from .test_import import do_import
from .test_signing import make_key

PASSWORD = "s3cret-pw-7731"
WRONG = "wrong-pw-4410"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    """A real aiosmtpd on loopback that wants AUTH as campaign / PASSWORD."""
    controller = start_server(FaultyHandler(), users={"campaign": PASSWORD})
    yield controller.port
    controller.stop()


def configure(env: Env, port: int, password: str = PASSWORD, extra: str = "") -> None:
    """Write the workspace's .env: a sender, the pace, a List-Unsubscribe mailbox, and the SMTP server on loopback
    with a login (no DKIM key: the settings check warns of it)."""
    env.write(".env", (
        'OUTREACH_FROM="European Appeal <appeal@example.org>"\n'
        "OUTREACH_RATE_LIMIT=10/second\nOUTREACH_DOMAIN_RATE_LIMIT=20/hour\n"
        "OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n"
        f"OUTREACH_SMTP_HOST=127.0.0.1\nOUTREACH_SMTP_PORT={port}\nOUTREACH_SMTP_SECURITY=none\n"
        f"OUTREACH_SMTP_USERNAME=campaign\nOUTREACH_SMTP_PASSWORD={password}\n" + extra
    ))  # fmt: skip


@contextmanager
def health_server(status: int = 200) -> Iterator[int]:
    """A real HTTP server on loopback (its port) that answers GET /health as `outreach serve` does: 200, "ok"; or
    with `status`."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/health" else 404
            body = b"ok" if code == 200 else b"not here"
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows stderr of a failure
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def with_contacts(env: Env) -> Env:
    do_import(env, env.write("list.csv", "email,name,country,language,role\n"
                                         "elysee@example.org,Emmanuel Macron,FR,fr,head_of_state\n"
                                         "mp1@example.org,Jane Doe,GB,en,mp\n"
                                         "mp2@example.org,Max Muster,DE,de,mp\n"))  # fmt: skip
    return env


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The lines of the human report, by check name (the hint, if any, appended after a newline)."""
    found: dict[str, str] = {}
    name = ""
    for line in result.stderr.splitlines():
        words = line.split(maxsplit=2)
        if line.startswith(" ") and name:
            found[name] += "\n" + line.strip()
        elif len(words) == 3 and words[1] in ("settings", "database", "templates", "smtp", "imap", "web"):
            name = words[1]
            found[name] = f"{words[0]} {words[2]}"
    return found


def test_everything_ok_against_a_server_that_takes_the_login(env: Env, smtp_port: int) -> None:
    (env.root / "keys").mkdir()
    key = make_key(env.root / "keys").pem.relative_to(env.root)
    configure(with_contacts(env), smtp_port, extra=f"OUTREACH_DKIM_KEY={key}\n")
    result = env.run("doctor")
    assert result.stdout == ""
    report = lines(result)
    assert report["settings"] == (
        "ok from European Appeal <appeal@example.org>; pace 10/second, 20/hour per domain; List-Unsubscribe by mail; "
        "DKIM key for example.org (selector outreach)"
    )
    place = (
        f"SQLite {env.url.removeprefix('sqlite:///')}" if env.url.startswith("sqlite") else "PostgreSQL outreach_test_"
    )
    assert report["database"].startswith(f"ok {place}")
    assert report["database"].endswith(": 3 contacts, 0 queued outbox messages")
    assert report["templates"] == "ok appeal, appeal-reminder: 6 copies rendered, none failed"
    assert report["smtp"] == f"ok 127.0.0.1:{smtp_port}, no encryption, logged in as 'campaign', SMTPUTF8 offered"
    assert result.stderr.splitlines()[-1] == "Everything is ready to send; nothing was sent."


def test_a_wrong_password_fails_smtp_and_is_shown_nowhere(env: Env, smtp_port: int) -> None:
    configure(env, smtp_port, password=WRONG)
    result = env.run("doctor", check=False)
    assert result.returncode == 1
    report = lines(result)
    assert report["smtp"] == (
        f"failed 127.0.0.1:{smtp_port}: the server refused the login for 'campaign' (535 5.7.8 Authentication "
        "credentials invalid)\n"
        "hint: check OUTREACH_SMTP_USERNAME and OUTREACH_SMTP_PASSWORD"
    )
    assert report["database"].startswith("ok ") and report["templates"].startswith("ok ")
    as_json = env.run("doctor", "--json", check=False)
    assert as_json.returncode == 1
    for shown in (result.stdout, result.stderr, as_json.stdout, as_json.stderr):
        assert WRONG not in shown and PASSWORD not in shown


def test_nothing_listening_fails_smtp_plainly_and_the_rest_is_still_checked(env: Env) -> None:
    port = free_port()
    configure(with_contacts(env), port)
    result = env.run("doctor", check=False)
    assert result.returncode == 1
    report = lines(result)
    assert report["smtp"].startswith(f"failed 127.0.0.1:{port}: cannot use the SMTP server: ConnectionRefusedError")
    assert report["smtp"].endswith(
        "hint: nothing listens there: is the server running, and are OUTREACH_SMTP_HOST and OUTREACH_SMTP_PORT right?"
    )
    assert report["settings"].startswith("warning from European Appeal <appeal@example.org>; ")
    assert report["database"].startswith("ok ") and report["database"].endswith(
        ": 3 contacts, 0 queued outbox messages"
    )
    assert report["templates"] == "ok appeal, appeal-reminder: 6 copies rendered, none failed"
    assert result.stderr.splitlines()[-1] == "1 of 6 checks failed; nothing was sent."


def test_a_template_with_a_syntax_error_fails_naming_the_file_and_line(env: Env, smtp_port: int) -> None:
    configure(env, smtp_port)
    (env.root / "templates" / "broken" / "en").mkdir(parents=True)
    env.write("templates/broken/en/subject.txt", "A letter")
    env.write("templates/broken/en/body.txt", "{{ greeting.salutation }}\nDear {{ contact.name }\n")
    result = env.run("doctor", check=False)
    assert result.returncode == 1
    report = lines(result)
    body = env.root / "templates" / "broken" / "en" / "body.txt"
    assert report["templates"] == (
        f"failed broken: {body}:2: template syntax: unexpected '}}'\n"
        "hint: fix what is named, then run `outreach doctor` again"
    )
    assert all(report[name].startswith("ok ") for name in ("database", "smtp"))
    assert report["settings"].startswith("warning ")


def test_json_is_one_document_with_every_check(env: Env, smtp_port: int) -> None:
    configure(env, smtp_port)
    result = env.run("doctor", "--json")
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [(c["name"], c["status"]) for c in document["checks"]] == [
        ("settings", "warning"), ("database", "ok"), ("templates", "ok"), ("smtp", "ok"), ("imap", "ok"), ("web", "ok"),
    ]  # fmt: skip
    assert all(set(c) == {"name", "status", "detail", "hint"} for c in document["checks"])
    assert document["checks"][2]["detail"] == "appeal, appeal-reminder: no contacts to render them for yet"


def test_settings_that_cannot_work_are_all_named(env: Env, smtp_port: int) -> None:
    configure(env, smtp_port, extra="OUTREACH_RATE_LIMIT=fast\nOUTREACH_DKIM_KEY=keys/dkim.pem\n"
                                    "OUTREACH_MISFIRE_GRACE=\u00b2h\n")  # fmt: skip
    env.write(".env", (env.root / ".env").read_text().replace('OUTREACH_FROM="European Appeal <appeal@example.org>"',
                                                              "OUTREACH_FROM=appeal-at-example.org"))  # fmt: skip
    result = env.run("doctor", "--json", check=False)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    [settings] = document["checks"]  # the other checks need settings that load
    assert settings["status"] == "failed" and document["ok"] is False
    assert settings["detail"].startswith("OUTREACH_FROM is 'appeal-at-example.org': ")
    assert "; OUTREACH_RATE_LIMIT: rate 'fast' is not N/unit, e.g. 30/minute or 500/day; " in settings["detail"]
    assert (f"; OUTREACH_DKIM_KEY: {env.root / 'keys' / 'dkim.pem'}: cannot read the DKIM private key: No such file "
            "or directory; OUTREACH_MISFIRE_GRACE is '\u00b2h'") in settings["detail"]  # fmt: skip
    assert settings["hint"].startswith('write it as "Name <address@example.org>"; write a rate as N/unit')
    human = env.run("doctor", check=False)
    assert lines(human)["settings"] == f"failed {settings['detail']}\nhint: {settings['hint']}"
    assert human.stderr.splitlines()[-1] == "1 of 1 checks failed; nothing was sent."

    (env.root / "keys").mkdir()
    env.write("keys/dkim.pem", "not a key\n")
    env.write(".env", (env.root / ".env").read_text().replace("OUTREACH_FROM=appeal-at-example.org",
                                                              "OUTREACH_FROM=appeal@example.org")
                                                     .replace("OUTREACH_RATE_LIMIT=fast\n", "")
                                                     .replace("OUTREACH_MISFIRE_GRACE=\u00b2h\n", ""))  # fmt: skip
    document = json.loads(env.run("doctor", "--json", check=False).stdout)
    settings = document["checks"][0]
    assert settings["detail"] == (
        f"OUTREACH_DKIM_KEY: {env.root / 'keys' / 'dkim.pem'}: not an unencrypted RSA private key in PEM "
        "(Private key not found)"
    )
    assert settings["hint"].startswith("make one with `openssl genpkey")
    assert [c["status"] for c in document["checks"][1:]] == ["ok", "ok", "ok", "ok", "ok"]
    (env.root / "keys" / "dkim.pem").unlink()
    make_key(env.root / "keys").pem.rename(env.root / "keys" / "dkim.pem")
    settings = json.loads(env.run("doctor", "--json").stdout)["checks"][0]
    assert (settings["status"], settings["hint"]) == ("ok", None)
    assert settings["detail"] == (
        "from appeal@example.org; pace 10/second, 20/hour per domain; List-Unsubscribe by mail; "
        "DKIM key for example.org (selector outreach)"
    )


def test_no_list_unsubscribe_and_no_dkim_key_are_warnings(env: Env, smtp_port: int) -> None:
    configure(env, smtp_port)
    env.write(".env", (env.root / ".env").read_text().replace("OUTREACH_UNSUBSCRIBE_MAILTO=unsubscribe@example.org\n",
                                                              ""))  # fmt: skip
    result = env.run("doctor")
    assert result.returncode == 0, "a warning is no failure"
    assert lines(result)["settings"] == (
        "warning from European Appeal <appeal@example.org>; pace 10/second, 20/hour per domain; no List-Unsubscribe "
        "(OUTREACH_UNSUBSCRIBE_MAILTO and OUTREACH_PUBLIC_URL are empty); no DKIM key (OUTREACH_DKIM_KEY is "
        "empty)\nhint: large mailbox providers expect List-Unsubscribe from bulk senders: set "
        "OUTREACH_UNSUBSCRIBE_MAILTO, and OUTREACH_PUBLIC_URL where `outreach serve` answers for one-click; large "
        "mailbox providers expect bulk mail to be signed: set OUTREACH_DKIM_KEY, and publish its public key at "
        "SELECTOR._domainkey.DOMAIN"
    )
    assert result.stderr.splitlines()[-1] == "Nothing failed; 1 warning to read. Nothing was sent."
    with health_server() as port:
        configure(env, smtp_port, extra=f"OUTREACH_PUBLIC_URL=http://127.0.0.1:{port}\n")
        settings = json.loads(env.run("doctor", "--json").stdout)["checks"][0]
    assert settings["status"] == "warning"
    assert settings["detail"].endswith("; List-Unsubscribe by one-click at OUTREACH_PUBLIC_URL and mail; no DKIM key "
                                      "(OUTREACH_DKIM_KEY is empty)")  # fmt: skip
    assert settings["hint"].startswith("large mailbox providers expect bulk mail to be signed")


def test_keys_for_several_domains_are_shown_and_a_sender_without_one_is_a_warning(env: Env, smtp_port: int) -> None:
    for domain in ("example.org", "campaign.example.net"):
        (env.root / "keys" / domain).mkdir(parents=True)
        make_key(env.root / "keys" / domain)
    net = "campaign.example.net=keys/campaign.example.net/dkim-2048.pem"
    configure(env, smtp_port, extra=f"OUTREACH_DKIM_KEY={net}\nOUTREACH_DKIM_SELECTOR=outreach2026\n")
    settings = json.loads(env.run("doctor", "--json").stdout)["checks"][0]
    assert (settings["status"], settings["detail"], settings["hint"]) == (
        "warning",
        "from European Appeal <appeal@example.org>; pace 10/second, 20/hour per domain; List-Unsubscribe by mail; "
        "DKIM key for campaign.example.net (selector outreach2026); no DKIM key for example.org, the domain of "
        "OUTREACH_FROM",
        "its letters would go unsigned: add example.org=PATH to OUTREACH_DKIM_KEY",
    )
    both = f"OUTREACH_DKIM_KEY=example.org=keys/example.org/dkim-2048.pem, {net}\n"
    configure(env, smtp_port, extra=both)
    settings = json.loads(env.run("doctor", "--json").stdout)["checks"][0]
    assert (settings["status"], settings["detail"]) == (
        "ok",
        "from European Appeal <appeal@example.org>; pace 10/second, 20/hour per domain; List-Unsubscribe by mail; "
        "DKIM keys for example.org, campaign.example.net (selector outreach)",
    )
    env.write("keys/example.org/dkim-2048.pem", "not a key\n")
    env.write("keys/campaign.example.net/dkim-2048.pem", "")
    settings = json.loads(env.run("doctor", "--json", check=False).stdout)["checks"][0]
    assert settings["status"] == "failed"
    keys = env.root / "keys"
    assert settings["detail"] == (
        f"OUTREACH_DKIM_KEY: {keys / 'example.org' / 'dkim-2048.pem'}: not an unencrypted RSA private key in PEM "
        f"(Private key not found); OUTREACH_DKIM_KEY: {keys / 'campaign.example.net' / 'dkim-2048.pem'}: not an "
        "unencrypted RSA private key in PEM (Private key not found)"
    )


def test_settings_that_do_not_load_are_a_failed_check(env: Env) -> None:
    env.write(".env", "OUTREACH_SMTP_HOTS=mail.example.org\n")
    result = env.run("doctor", "--json", check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"ok": False, "checks": [{
        "name": "settings", "status": "failed", "detail": f"{env.root / '.env'}: unknown setting OUTREACH_SMTP_HOTS",
        "hint": "did you mean OUTREACH_SMTP_HOST?",
    }]}  # fmt: skip


def test_a_missing_sqlite_file_is_reported_not_created_and_templates_still_compile(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    init_workspace(root, {"OUTREACH_DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}"})
    missing = tmp_path / "missing.db"
    engine = make_engine(f"sqlite:///{missing}")
    env = Env(root, f"sqlite:///{missing}", make_session_factory(engine))
    configure(env, free_port())
    result = env.run("doctor", check=False)
    engine.dispose()
    report = lines(result)
    assert report["database"] == (
        f"failed SQLite {missing} does not exist\n"
        "hint: run `outreach db upgrade` in the workspace, or check OUTREACH_DATABASE_URL"
    )
    assert not missing.exists()
    assert report["templates"].startswith("warning appeal, appeal-reminder compile; not rendered for contacts")
    assert report["smtp"].startswith("failed ")
    assert result.stderr.splitlines()[-1] == "2 of 6 checks failed; nothing was sent."


def test_the_inbox_is_checked_when_one_is_set_up_and_its_password_shown_nowhere(
    env: Env, smtp_port: int, dovecot: Dovecot
) -> None:
    imap = (f"OUTREACH_IMAP_HOST={dovecot.host}\nOUTREACH_IMAP_PORT={dovecot.port}\nOUTREACH_IMAP_SECURITY=none\n"
            f"OUTREACH_IMAP_USERNAME={dovecot.username}\n")  # fmt: skip
    configure(env, smtp_port, extra=imap + f"OUTREACH_IMAP_PASSWORD={dovecot.password}\n")
    report = lines(env.run("doctor"))
    assert report["imap"].startswith(f"ok {dovecot.host}:{dovecot.port}, no encryption, logged in as 'campaign'; INBOX")
    configure(env, smtp_port, extra=imap + f"OUTREACH_IMAP_PASSWORD={WRONG}\nOUTREACH_IMAP_FOLDER=Nowhere\n")
    failed = env.run("doctor", check=False)
    assert failed.returncode == 1
    assert lines(failed)["imap"].startswith(f"failed {dovecot.host}:{dovecot.port}: the server refused the login")
    assert WRONG not in failed.stderr + failed.stdout


def test_the_public_url_is_checked_by_its_health_page(env: Env, smtp_port: int) -> None:
    with health_server() as port:
        configure(env, smtp_port, extra=f"OUTREACH_PUBLIC_URL=http://127.0.0.1:{port}/\n")
        result = env.run("doctor")
    assert lines(result)["web"] == f"ok http://127.0.0.1:{port}/health answers: one-click unsubscribe is served"
    with health_server(status=503) as port:
        configure(env, smtp_port, extra=f"OUTREACH_PUBLIC_URL=http://127.0.0.1:{port}\n")
        failed = env.run("doctor", check=False)
    assert failed.returncode == 1
    assert lines(failed)["web"] == (
        f"failed OUTREACH_PUBLIC_URL http://127.0.0.1:{port} does not answer: GET /health: HTTP 503 Service "
        "Unavailable\nhint: start `outreach serve` behind it"
    )
    nobody = free_port()
    configure(env, smtp_port, extra=f"OUTREACH_PUBLIC_URL=http://localhost:{nobody}\n")
    refused = lines(env.run("doctor", check=False))["web"]
    assert refused.startswith(f"failed OUTREACH_PUBLIC_URL http://localhost:{nobody} does not answer: GET /health: ")
    assert "Connection refused" in refused and refused.endswith("hint: start `outreach serve` behind it")
