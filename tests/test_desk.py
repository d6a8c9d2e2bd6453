"""The desk over HTTP, as a real `outreach serve` process answers it: one-click unsubscribe (RFC 8058) as a mail
provider posts it, and the login, CSRF, headers and pages as a client without a browser sees them."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from outreach.contacts.tokens import unsubscribe_token
from outreach.db.models import Contact, Response, Suppression
from outreach.workspace import read_secret

from .conftest import RUNS, Env
from .desk_server import csrf_of, logged_in, serving

PASSWORD = "correct horse battery staple"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def add_user(env: Env, name: str = "alice", password: str = PASSWORD) -> None:
    RUNS.run(["users", "add", name, "--password-stdin"], input=password + "\n", cwd=env.root, env=env.environ(),
             check=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def with_contact(env: Env) -> Iterator[tuple[Env, int]]:
    env.run("contacts", "add", "ana@example.org", "--name", "Ana Member", "--role", "mp", "--country", "PT")
    with env.sessions() as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.email == "ana@example.org"))
    assert contact_id is not None
    yield env, contact_id


def _state(env: Env, contact_id: int) -> tuple[str, int, int]:
    with env.sessions() as session:
        status = session.scalar(select(Contact.status).where(Contact.id == contact_id))
        responses = session.scalar(select(func.count()).select_from(Response).where(Response.contact_id == contact_id))
        suppressed = session.scalar(select(func.count()).select_from(Suppression))
    return status or "", responses or 0, suppressed or 0


def test_one_click_unsubscribes_once_and_a_get_never_does(with_contact: tuple[Env, int]) -> None:
    env, contact_id = with_contact
    token = unsubscribe_token(read_secret(env.root), contact_id, None)
    with serving(env.root, env.environ()) as desk:
        # A link scanner follows the GET: a page with a button, and nothing changes.
        page = httpx.get(f"{desk.url}/u/{token}")
        assert page.status_code == 200 and "Unsubscribe</button>" in page.text
        assert _state(env, contact_id) == ("active", 0, 0)
        # The mail provider's POST (RFC 8058 3.2): the contact is suppressed; nothing to read in the answer.
        posted = httpx.post(f"{desk.url}/u/{token}", data=ONE_CLICK)
        assert (posted.status_code, posted.content) == (200, b"")
        assert _state(env, contact_id) == ("unsubscribed", 1, 1)
        again = httpx.post(f"{desk.url}/u/{token}", data=ONE_CLICK)
        assert (again.status_code, again.content) == (200, b"")
        assert _state(env, contact_id) == ("unsubscribed", 1, 1)
        # A person pressing the page's button sees that it worked.
        pressed = httpx.post(f"{desk.url}/u/{token}", data={**ONE_CLICK, "from": "page"})
        assert pressed.status_code == 200 and "You are unsubscribed" in pressed.text
    listed = json.loads(env.run("responses", "list", "--json").stdout)["responses"]
    assert [(r["kind"], r["matched_by"]) for r in listed] == [("unsubscribe", "one-click")]


def test_a_forged_or_altered_token_is_refused(with_contact: tuple[Env, int]) -> None:
    env, contact_id = with_contact
    token = unsubscribe_token(read_secret(env.root), contact_id, None)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    forged = unsubscribe_token(b"another workspace's secret key!!", contact_id, None)
    someone_else = unsubscribe_token(read_secret(env.root), contact_id + 1000, None)
    with serving(env.root, env.environ()) as desk:
        for bad in (altered, forged, token[:20], "x" * 500, someone_else):
            answer = httpx.post(f"{desk.url}/u/{bad}", data=ONE_CLICK)
            assert answer.status_code == 404 and "names no one" in answer.text, bad
            if bad != someone_else:  # well signed: the GET's page, which reads no database, offers the button
                assert httpx.get(f"{desk.url}/u/{bad}").status_code == 404
        wrong_body = httpx.post(f"{desk.url}/u/{token}", data={"List-Unsubscribe": "yes"})
        assert wrong_body.status_code == 400
    assert _state(env, contact_id) == ("active", 0, 0)


def test_the_desk_is_behind_a_login_with_csrf_on_every_form(with_contact: tuple[Env, int]) -> None:
    env, _ = with_contact
    add_user(env)
    with serving(env.root, env.environ()) as desk, httpx.Client(base_url=desk.url) as anonymous:
        for path in ("/responses", "/campaigns", "/report", "/responses/new"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
        login = anonymous.get("/login")
        policy = login.headers["content-security-policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
        assert login.headers["x-frame-options"] == "DENY" and login.headers["referrer-policy"] == "no-referrer"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        # Without its CSRF token, even the right password is refused; a wrong password is refused with it.
        no_token = anonymous.post("/login", data={"name": "alice", "password": PASSWORD})
        assert no_token.status_code == 403 and "security token" in no_token.text
        token = csrf_of(anonymous.get("/login").text)
        wrong = anonymous.post("/login", data={"csrf": token, "name": "alice", "password": "not the password"})
        assert wrong.status_code == 401 and "do not match" in wrong.text
        assert anonymous.get("/responses").status_code == 303
        # Logged in: a new session (the token planted before is worth nothing), and forms still need theirs.
        with logged_in(desk.url, "alice", PASSWORD) as client:
            assert client.get("/responses").status_code == 200
            added = client.post("/responses/new", data={"contact": "ana@example.org", "channel": "phone", "note": "x"})
            assert added.status_code == 403
            stale = client.post("/responses/new", data={"csrf": token, "contact": "ana@example.org", "channel": "phone",
                                                        "note": "x"})  # fmt: skip
            assert stale.status_code == 403
            # Log out: the session is gone.
            fresh = csrf_of(client.get("/responses").text)
            assert client.post("/logout", data={"csrf": fresh}).status_code == 303
            assert client.get("/responses").status_code == 303


def test_outside_text_is_escaped_and_made_visible(with_contact: tuple[Env, int]) -> None:
    env, _ = with_contact
    add_user(env)
    note = "<script>alert(1)</script> Yes \u202eevil\u202c and \x1b[2J done"
    env.run("responses", "add", "--contact", "ana@example.org", "--channel", "phone", "--note", note)
    with serving(env.root, env.environ()) as desk, logged_in(desk.url, "alice", PASSWORD) as client:
        listed = client.get("/responses")
        assert listed.status_code == 200 and "1\u20131 of 1" in listed.text
        assert "Ana Member<br>" in listed.text, "the contact's name, above the address"
        response_id = re.search(r'href="/responses/(\d+)"', listed.text)
        assert response_id is not None
        page = client.get(f"/responses/{response_id.group(1)}").text
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "\u202e" not in page and "\\u202e" in page and "\x1b" not in page and "\\x1b[2J" in page


def test_a_campaigner_logs_a_call_marks_it_signed_with_an_edited_line(with_contact: tuple[Env, int]) -> None:
    env, _ = with_contact
    add_user(env)
    with serving(env.root, env.environ()) as desk, logged_in(desk.url, "alice", PASSWORD) as client:
        form = client.get("/responses/new")
        added = client.post("/responses/new", data={"csrf": csrf_of(form.text), "contact": "ANA@example.org",
                                                    "channel": "phone", "note": "She will sign."})  # fmt: skip
        assert added.status_code == 303
        path = added.headers["location"]
        page = client.get(path).text
        asked = client.post(f"{path}/outcome", data={"csrf": csrf_of(page), "outcome": "signed"})
        assert asked.status_code == 303 and asked.headers["location"] == f"{path}/sign"
        sign = client.get(f"{path}/sign").text
        assert 'value="Ana Member"' in sign and "parliamentarians" in sign
        bad = client.post(f"{path}/sign", data={"csrf": csrf_of(sign), "name": "", "line": "x", "group": "signatories"})
        assert bad.status_code == 400 and "no name" in bad.text
        done = client.post(f"{path}/sign", data={"csrf": csrf_of(sign), "name": "Ana Member",
                                                 "line": "MP, Lisbon", "group": "parliamentarians"})  # fmt: skip
        assert done.status_code == 200 and "A new signatory" in done.text
    signatories = json.loads(env.run("signatories", "list", "--json").stdout)
    assert [(s["name"], s["line"]) for s in signatories if s["name"] == "Ana Member"] == [("Ana Member", "MP, Lisbon")]


def test_login_is_rate_limited(with_contact: tuple[Env, int]) -> None:
    env, _ = with_contact
    add_user(env)
    with serving(env.root, env.environ()) as desk, httpx.Client(base_url=desk.url) as client:
        codes = []
        for _ in range(11):
            token = csrf_of(client.get("/login").text)
            codes.append(client.post("/login", data={"csrf": token, "name": "alice", "password": "wrong"}).status_code)
        assert codes == [401] * 10 + [429]
        token = csrf_of(client.get("/login").text)
        right = client.post("/login", data={"csrf": token, "name": "alice", "password": PASSWORD})
        assert right.status_code == 429 and int(right.headers["retry-after"]) > 0


def test_the_unanswered_download_is_the_no_reply_segment(tmp_path: Path) -> None:
    from .test_demo import run_demo

    folder = tmp_path / "demo"
    result, _, _ = run_demo(folder)
    assert result.returncode == 0, result.stderr
    demo = Env(folder, f"sqlite:///{folder / 'outreach.db'}", None)  # type: ignore[arg-type]
    add_user(demo)
    environ = {k: v for k, v in demo.environ().items() if k != "OUTREACH_DATABASE_URL"}
    with serving(folder, environ) as desk, logged_in(desk.url, "alice", PASSWORD) as client:
        page = client.get("/campaigns/appeal-heads")
        assert page.status_code == 200 and "Not answered" in page.text
        download = client.get("/campaigns/appeal-heads/unanswered.csv")
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert client.get("/campaigns/nothing-such").status_code == 404
        report = client.get("/report")
        assert report.status_code == 200 and "appeal-heads" in report.text
        assert "script" not in report.headers["content-security-policy"]
    exported = demo.run("contacts", "export", "--segment", "campaign:appeal-heads=no-reply").stdout
    assert sorted(r["email"] for r in rows) == sorted(r["email"] for r in csv.DictReader(io.StringIO(exported)))
    # Sixty written to; a reply, a bounce or an unsubscribe from five of them (an out-of-office is no answer).
    assert len(rows) == 55
