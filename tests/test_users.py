"""The campaigners who may log in to the browser desk: passwords kept as scrypt hashes that name their parameters,
`outreach users` to add, list, remove them and change a password, and a login check that takes as long for a name
nobody has. Real databases and the real `outreach` command."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select as select_rows
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from outreach.db.models import User
from outreach.desk import passwords
from outreach.desk.accounts import add_user, check_login, list_users, remove_user, set_password, user_name
from outreach.desk.passwords import hash_password, needs_rehash, unmatchable_hash, verify_password
from outreach.errors import InvalidValueError, NotConfirmedError, NotFoundError

from .conftest import RUNS, Env

NOW = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def stored_hash(env: Env, name: str) -> str:
    with env.sessions() as session:
        found = session.scalar(select_rows(User.password_hash).where(User.name == name))
    assert found is not None
    return found


def feed(env: Env, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `outreach ARGS` in the workspace with `text` on its stdin (a pipe: no terminal)."""
    return RUNS.run(args, cwd=env.root, env=env.environ(), input=text, text=True, timeout=120)


# Passwords: pure, no database.


def test_a_password_verifies_against_its_hash_and_no_other_does() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("scrypt$15$8$1$")
    assert PASSWORD not in stored
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password("Correct horse battery staple", stored)
    assert not needs_rehash(stored)


def test_each_hash_has_its_own_salt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


def test_a_password_composed_differently_is_the_same_password() -> None:
    stored = hash_password("caf\u00e9 au lait, s'il vous pla\u00eet")
    assert verify_password("cafe\u0301 au lait, s'il vous plai\u0302t", stored)


@pytest.mark.parametrize(
    "stored",
    ["", "garbage", PASSWORD, "scrypt$15$8$1$", "scrypt$15$8$1$c2FsdA==$not base64!",
     "bcrypt$15$8$1$c2FsdHNhbHRzYWx0c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==",
     "scrypt$x$8$1$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==",
     "scrypt$40$8$1$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==", "scrypt$15$8$1$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==$extra",
     "scrypt$\u0661\u0665$8$1$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA=="],
)  # fmt: skip
def test_a_stored_string_that_is_no_hash_matches_nothing_and_raises_nothing(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False
    assert needs_rehash(stored)


@pytest.mark.parametrize(("password", "said"), [("", "this one has 0"), ("nine char", "this one has 9"),
                                                ("x" * 1025, "this one has 1025")])  # fmt: skip
def test_a_password_too_short_or_too_long_is_refused_with_one_clear_error(password: str, said: str) -> None:
    with pytest.raises(InvalidValueError, match=f"a password has 10 to 1024 characters; {said}"):
        hash_password(password)


def test_the_longest_password_is_hashed_and_a_longer_one_never_verifies() -> None:
    stored = hash_password("x" * 1024)
    assert verify_password("x" * 1024, stored)
    assert not verify_password("x" * 1025, stored)


def test_a_hash_with_older_parameters_still_verifies_and_asks_to_be_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(passwords, "LOG2_N", 14)
    older = hash_password(PASSWORD)
    monkeypatch.undo()
    assert older.startswith("scrypt$14$8$1$")
    assert verify_password(PASSWORD, older)
    assert needs_rehash(older)


def test_no_password_matches_the_hash_for_unknown_names() -> None:
    assert not needs_rehash(unmatchable_hash())
    assert not verify_password(PASSWORD, unmatchable_hash())


@pytest.mark.parametrize(("given", "canonical"), [("Anna", "anna"), (" anna@Example.org ", "anna@example.org"),
                                                  ("j.doe-2_x", "j.doe-2_x"), ("a" * 64, "a" * 64)])  # fmt: skip
def test_a_user_name_has_one_plain_lower_case_form(given: str, canonical: str) -> None:
    assert user_name(given) == canonical


@pytest.mark.parametrize("given", ["", "a" * 65, "anna maria", "anna/1", "zo\u00eb", "\u212a"])
def test_a_user_name_that_is_not_plain_is_refused(given: str) -> None:
    with pytest.raises(InvalidValueError, match="is not 1 to 64 letters"):
        user_name(given)


# The service, on SQLite and PostgreSQL.


def test_a_user_is_added_once_whatever_the_case_and_logs_in(env: Env) -> None:
    added = add_user(env.sessions, "Anna", PASSWORD, now=NOW)
    assert (added.name, added.created_at, added.password_changed_at) == ("anna", NOW, NOW)
    with pytest.raises(InvalidValueError, match=r"user anna exists; `outreach users password anna` changes the pass"):
        add_user(env.sessions, "ANNA", "another long password", now=NOW)
    assert check_login(env.sessions, "ANNA", PASSWORD) == "anna"
    assert check_login(env.sessions, "anna", "another long password") is None
    assert check_login(env.sessions, "bruno", PASSWORD) is None
    assert check_login(env.sessions, "not a name!", PASSWORD) is None
    assert list_users(env.sessions) == [added]
    assert verify_password(PASSWORD, stored_hash(env, "anna"))


def test_a_new_password_replaces_the_old_and_says_when(env: Env) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)
    later = NOW + timedelta(days=3)
    changed = set_password(env.sessions, "Anna", "a brand new passphrase", now=later)
    assert (changed.created_at, changed.password_changed_at) == (NOW, later)
    assert check_login(env.sessions, "anna", PASSWORD) is None
    assert check_login(env.sessions, "anna", "a brand new passphrase") == "anna"
    with pytest.raises(NotFoundError, match="no user bruno"):
        set_password(env.sessions, "bruno", PASSWORD, now=later)
    with pytest.raises(InvalidValueError, match="10 to 1024 characters"):
        set_password(env.sessions, "anna", "short", now=later)


def test_a_removed_user_no_longer_logs_in(env: Env) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)
    add_user(env.sessions, "bruno", PASSWORD, now=NOW)
    remove_user(env.sessions, "Anna")
    assert [view.name for view in list_users(env.sessions)] == ["bruno"]
    assert check_login(env.sessions, "anna", PASSWORD) is None
    with pytest.raises(NotFoundError, match="no user anna"):
        remove_user(env.sessions, "anna")


def test_a_login_makes_a_hash_with_older_parameters_again(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)
    monkeypatch.setattr(passwords, "LOG2_N", 14)
    with env.sessions.begin() as session:
        session.execute(update(User).values(password_hash=hash_password(PASSWORD)))
    monkeypatch.undo()
    assert needs_rehash(stored_hash(env, "anna"))
    assert check_login(env.sessions, "anna", "not the password") is None
    assert stored_hash(env, "anna").startswith("scrypt$14$"), "a failed login changes nothing"
    assert check_login(env.sessions, "anna", PASSWORD) == "anna"
    renewed = stored_hash(env, "anna")
    assert renewed.startswith("scrypt$15$8$1$") and verify_password(PASSWORD, renewed)
    assert list_users(env.sessions)[0].password_changed_at == NOW, "the password itself did not change"


def test_a_login_takes_as_long_for_a_name_nobody_has(env: Env) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)

    def fastest(name: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert check_login(env.sessions, name, "not the password") is None
            times.append(time.perf_counter() - start)
        return min(times)

    known, unknown = fastest("anna"), fastest("nobody")
    # Both run one scrypt of the same cost (a tenth of a second); without it, the unknown name answered in 1 ms.
    assert unknown > 0.5 * known and known > 0.5 * unknown, (known, unknown)


def test_the_migration_to_users_adds_the_table_to_a_database_at_0008_and_takes_it_away(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect, text

    from outreach.db.engine import _alembic_config, current_revision, make_engine

    engine = make_engine(database_url)
    config = _alembic_config(engine)
    try:
        command.upgrade(config, "head")  # (a new SQLite file is empty)
        command.downgrade(config, "0008")
        assert current_revision(engine) == "0008"
        assert not inspect(engine).has_table("users")
        command.upgrade(config, "0009")
        assert current_revision(engine) == "0009"
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO users (name, password_hash, created_at, password_changed_at) "
                                    "VALUES ('anna', 'h', :now, :now)"), {"now": NOW})  # fmt: skip
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text("INSERT INTO users (name, password_hash, created_at, password_changed_at) "
                                        "VALUES ('anna', 'h2', :now, :now)"), {"now": NOW})  # fmt: skip
            connection.execute(text("DELETE FROM users"))
    finally:
        command.upgrade(config, "head")
        engine.dispose()


# The command, as a user runs it.


def test_cli_add_from_stdin_list_and_a_duplicate_refused(env: Env) -> None:
    added = feed(env, PASSWORD + "\n", "users", "add", "Anna", "--password-stdin")
    assert added.returncode == 0, added.stderr
    assert "Added anna: they may log in to the desk." in added.stderr
    assert check_login(env.sessions, "anna", PASSWORD) == "anna"
    again = feed(env, "another long password\n", "users", "add", "anna", "--password-stdin")
    assert again.returncode == InvalidValueError.exit_code
    assert again.stderr.strip() == "error: user anna exists; `outreach users password anna` changes the password"
    assert feed(env, "bruno's long password\r\n", "users", "add", "bruno", "--password-stdin").returncode == 0
    assert check_login(env.sessions, "bruno", "bruno's long password") == "bruno"

    listed = env.run("users", "list", "--json")
    users = json.loads(listed.stdout)
    assert [user["name"] for user in users] == ["anna", "bruno"]
    assert set(users[0]) == {"name", "created_at", "password_changed_at"}
    assert "scrypt" not in listed.stdout + listed.stderr and "$" not in listed.stdout
    shown = env.run("users", "list")
    assert "anna" in shown.stdout and "bruno" in shown.stdout and "scrypt" not in shown.stdout
    assert "2 users" in shown.stderr


def test_cli_password_from_stdin_and_a_short_one_refused(env: Env) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)
    changed = feed(env, "a brand new passphrase\n", "users", "password", "anna", "--password-stdin", "--json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["name"] == "anna"
    assert check_login(env.sessions, "anna", "a brand new passphrase") == "anna"
    short = feed(env, "short\n", "users", "password", "anna", "--password-stdin")
    assert short.returncode == InvalidValueError.exit_code
    assert "error: a password has 10 to 1024 characters; this one has 5" in short.stderr
    empty = feed(env, "", "users", "add", "bruno", "--password-stdin")
    assert "error: --password-stdin read no password: stdin was empty" in empty.stderr
    assert [view.name for view in list_users(env.sessions)] == ["anna"]


def test_cli_without_a_terminal_or_password_stdin_refuses(env: Env) -> None:
    for args in (("users", "add", "anna"), ("users", "password", "anna")):
        result = feed(env, PASSWORD + "\n", *args)
        assert result.returncode == InvalidValueError.exit_code
        assert result.stderr.strip() == ("error: there is no terminal to ask for the password on (write it as one "
                                         "line to stdin and pass --password-stdin)")  # fmt: skip
    assert list_users(env.sessions) == []


def test_cli_remove_refuses_without_a_terminal_unless_yes(env: Env) -> None:
    add_user(env.sessions, "anna", PASSWORD, now=NOW)
    refused = env.run("users", "remove", "anna", check=False)
    assert refused.returncode == NotConfirmedError.exit_code
    assert 'error: nothing was changed: there is no terminal to ask "Remove user anna?"' in refused.stderr
    assert [view.name for view in list_users(env.sessions)] == ["anna"]
    env.run("users", "remove", "ANNA", "--yes")
    assert list_users(env.sessions) == []
    missing = env.run("users", "remove", "anna", "--yes", check=False)
    assert missing.returncode == NotFoundError.exit_code
    assert "error: no user anna (`outreach users list` shows them)" in missing.stderr


def _on_a_terminal(
    env: Env, args: tuple[str, ...], answers: list[str], *, unseen: bool
) -> subprocess.CompletedProcess[str]:
    """Run `outreach ARGS` with a terminal of its own (its controlling terminal, as a login shell's is) and type the
    answers; stdout and stderr stay pipes.

    An unseen answer is typed only once the terminal shows getpass's prompt (a space): getpass turns echo off and
    discards what was typed before (TCSAFLUSH), then writes its prompt to the terminal, as a person would wait.
    """
    controller, terminal = pty.openpty()

    def take_the_terminal() -> None:  # after setsid: stdin becomes the controlling terminal, so /dev/tty is it
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "outreach", *args], cwd=env.root, env=env.environ(), stdin=terminal,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=take_the_terminal,
        )  # fmt: skip
        shown = b""
        for asked, answer in enumerate(answers, start=1):
            while unseen and shown.count(b" ") < asked:
                ready, _, _ = select.select([controller], [], [], 60)
                assert ready, f"the command never asked; the terminal showed {shown!r}"
                shown += os.read(controller, 1024)
            os.write(controller, f"{answer}\n".encode())
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_a_terminal_add_asks_twice_unseen_and_remove_asks(env: Env) -> None:
    added = _on_a_terminal(env, ("users", "add", "anna"), [PASSWORD, PASSWORD], unseen=True)
    assert added.returncode == 0, added.stderr
    assert "Password:" in added.stderr and "Repeat for confirmation:" in added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    assert check_login(env.sessions, "anna", PASSWORD) == "anna"

    kept = _on_a_terminal(env, ("users", "remove", "anna"), ["n"], unseen=False)
    assert kept.returncode == 1 and "Remove user anna? [y/N]" in kept.stderr
    assert [view.name for view in list_users(env.sessions)] == ["anna"]
    removed = _on_a_terminal(env, ("users", "remove", "anna"), ["y"], unseen=False)
    assert removed.returncode == 0 and "Removed anna." in removed.stderr, removed.stderr
    assert list_users(env.sessions) == []
