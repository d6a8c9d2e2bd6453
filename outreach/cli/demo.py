"""`outreach demo`: the whole job a campaigner would do, on embedded defaults, in a new workspace.

It imports the sample lists, renders and queues the appeal, sends it with the real sending code to an SMTP sink
it runs on loopback in this process, lets the world answer into a local Maildir (replies, an out-of-office, a
bounce, an unsubscribe request, built from the messages the sink received), polls them with the real response
log, marks one reply as signed, prints the report and writes its HTML page, and leaves nothing running.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.output import count_progress, err, file_progress, out, table
from outreach.cli.report import print_report
from outreach.cli.responses import inbox_of
from outreach.cli.sending import build_sending
from outreach.errors import InvalidValueError
from outreach.vocabulary import GROUPS

if TYPE_CHECKING:
    from outreach.outbox.sending import SendReport
    from outreach.sandbox import SmtpSink
    from outreach.workspace import Workspace

# The services are imported inside each step: they bring SQLAlchemy, Jinja2 and the mail libraries, and shell
# completion and --help load this module without running the demo.

DEMO_SENDER = "European Appeal (demo) <appeal@example.org>"
CAMPAIGN = "appeal-heads"
HEADS = "role:head_of_state,monarch,head_of_government"
DESK_USER = "demo"
# Only who the letters come from may be taken from the environment; everything else is the demo's own.
_FROM_ENVIRONMENT = ("OUTREACH_FROM", "OUTREACH_REPLY_TO", "OUTREACH_ORGANIZATION")


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the demo workspace (default: a new temporary folder)."),
    ] = None,
    desk: Annotated[
        bool | None,
        typer.Option("--desk/--no-desk", help="Then serve the response desk until Ctrl-C (default: on a terminal)."),
    ] = None,
) -> None:
    """Run the whole job on embedded defaults: import, render, queue, send to a local SMTP sink, read the answers."""
    from outreach.config import process_environment
    from outreach.desk.server import DEFAULT_PORT, listening_socket
    from outreach.errors import ConfigError
    from outreach.sandbox import UNSUBSCRIBE_MAILBOX, SmtpSink, answer
    from outreach.workspace import init_workspace, open_workspace

    started = time.monotonic()
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise InvalidValueError(f"{directory} is not empty", hint="give --dir a new or empty folder")
    root = directory or Path(tempfile.mkdtemp(prefix="outreach-demo-"))
    # Embedded defaults whatever the environment says: its own SQLite file, its own SMTP sink, no DKIM key.
    environ = {key: value for key, value in process_environment().items() if key in _FROM_ENVIRONMENT}
    environ.setdefault("OUTREACH_FROM", DEMO_SENDER)
    report = init_workspace(root, environ)
    err.print(f"[bold]1. outreach init[/bold] {report.root}: {len(report.created)} files and a SQLite database")
    serving = desk if desk is not None else sys.stdin.isatty() and err.is_terminal
    # The desk's port is taken first, so that the letters' one-click links (OUTREACH_PUBLIC_URL/u/TOKEN) name it.
    try:
        desk_socket = listening_socket("127.0.0.1", DEFAULT_PORT)
    except ConfigError:  # another desk, or another program, has it
        desk_socket = listening_socket("127.0.0.1", 0)
    desk_url = f"http://127.0.0.1:{desk_socket.getsockname()[1]}"
    sink = SmtpSink()
    workspace: Workspace | None = None
    try:
        port = sink.start()
        environ |= {
            "OUTREACH_SMTP_HOST": "127.0.0.1", "OUTREACH_SMTP_PORT": str(port), "OUTREACH_SMTP_SECURITY": "none",
            "OUTREACH_SMTP_CONNECTIONS": "4",
            # No pace: the sink is ours. (A real server gets the polite defaults of .env.)
            "OUTREACH_RATE_LIMIT": "", "OUTREACH_DOMAIN_RATE_LIMIT": "",
            "OUTREACH_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE_MAILBOX, "OUTREACH_PUBLIC_URL": desk_url,
        }  # fmt: skip
        _remember_sender(root, environ)
        workspace = open_workspace(root, environ)
        _prepare(workspace)
        _send(workspace, sink, port)
        answers = answer(workspace.root / "inbox", sink.messages, datetime.now(UTC))
        err.print(f"[bold]12. The world answers[/bold] into inbox/ (a Maildir): {answers}")
        signed = _read_answers(workspace)
        html = _report(workspace)
        password = _campaigner(workspace)
    except BaseException:
        desk_socket.close()
        raise
    finally:
        sink.stop()
        if workspace is not None:
            workspace.close()
    err.print(f"\nDone in {time.monotonic() - started:.1f} s. The demo workspace is {root}, and the HTML report "
              f"{html}: open it in a browser.")  # fmt: skip
    err.print(f"Try: cd {root} && outreach report {CAMPAIGN}; outreach responses list; "
              f"outreach responses show {signed}; outreach campaigns show {CAMPAIGN}")  # fmt: skip
    login = f"log in as {DESK_USER} with the password {password}"
    if not serving:
        port = desk_socket.getsockname()[1]
        desk_socket.close()
        err.print(f"The response desk: cd {root} && outreach serve --port {port}, then open {desk_url} and {login}. "
                  "Nothing is left running.")  # fmt: skip
        return
    from outreach.desk.server import serve

    workspace = open_workspace(root, environ)
    try:
        serve(
            workspace,
            desk_socket,
            on_ready=lambda address: err.print(
                f"[bold]17. outreach serve[/bold]: the response desk answers at {address}: {login}. Ctrl-C stops it."
            ),
        )
    finally:
        workspace.close()


def _campaigner(workspace: Workspace) -> str:
    """Step 17's campaigner, who may log in to the desk; return their new password."""
    from outreach.desk.accounts import add_user

    password = secrets.token_urlsafe(12)
    add_user(workspace.sessions, DESK_USER, password, now=datetime.now(UTC))
    return password


def _remember_sender(root: Path, environ: dict[str, str]) -> None:
    """Write who the letters come from into the workspace's .env, so that the commands tried next in the demo's
    workspace (queueing a follow-up, `outreach run`) have a sender; the SMTP sink's settings die with the demo."""
    keys = (*_FROM_ENVIRONMENT, "OUTREACH_UNSUBSCRIBE_MAILTO", "OUTREACH_PUBLIC_URL")
    lines = [f'{key}="{environ[key]}"' for key in keys if environ.get(key)]
    with (root / ".env").open("a", encoding="utf-8") as env:
        env.write("\n# Set by `outreach demo`\n" + "\n".join(lines) + "\n")


def _prepare(workspace: Workspace) -> None:
    """Steps 2 to 10: the lists, the signatories, the template checked and rendered, the campaign queued."""
    from outreach.campaigns.catalog import add_follow_up, create_campaign
    from outreach.campaigns.queueing import queue_step
    from outreach.contacts.directory import count_contacts, list_contacts
    from outreach.contacts.importer import ImportOptions, import_contacts
    from outreach.contacts.segments import parse_segment
    from outreach.contacts.signatories import import_signatories
    from outreach.contacts.tokens import NO_ONE, unsubscribe_token
    from outreach.rendering.eml import write_eml
    from outreach.rendering.letters import compose, mailbox_of
    from outreach.rendering.previewing import check_template, compile_template, render_for
    from outreach.vocabulary import FOLLOW_UP_UNLESS

    root, sessions, now = workspace.root, workspace.sessions, datetime.now(UTC)
    for step, (name, options) in enumerate(
        [
            ("heads-of-state.csv", ImportOptions()),
            ("prospects.csv", ImportOptions(role="prospect", tags=("wave-1",))),
        ],
        start=2,
    ):
        path = root / "contacts" / name
        summary = import_contacts(sessions, path, options, now=now)
        err.print(f"[bold]{step}. outreach contacts import[/bold] contacts/{name}: "
                  f"{summary.imported} imported, {summary.rejected} rejected")  # fmt: skip
    path = root / "contacts" / "signatories.csv"
    with file_progress(path, "Importing signatories") as binary:
        signed = import_signatories(sessions, binary, path, now=now)
    err.print(f"[bold]4. outreach signatories import[/bold] contacts/signatories.csv: {signed.imported} imported")
    err.print("   " + _signatory_counts(workspace))
    segment = parse_segment(HEADS)
    err.print(f"[bold]5. outreach contacts list[/bold] --segment \"{segment}\": "
              f"{count_contacts(sessions, segment)} contacts")  # fmt: skip
    heads = list_contacts(sessions, parse_segment("role:head_of_state,monarch country:FR,DE,GB,PL,SE"))
    table(None, ["email", "name", "position", "country", "language"],
          [(c.email, c.name, c.position, c.country, c.language) for c in heads])  # fmt: skip
    report_check = check_template(sessions, workspace.templates, "appeal", segment, workspace.sender(), now=now)
    err.print(f"[bold]6. outreach templates check[/bold] appeal --segment \"{segment}\": "
              f"{report_check.checked} copies, {len(report_check.failures)} failed, "
              + ", ".join(f"{n} in {lang}" for lang, n in sorted(report_check.languages.items())))  # fmt: skip
    copy, recipient = render_for(sessions, workspace.templates, "appeal", "elysee@example.org",
                                 workspace.sender(), now=now)  # fmt: skip
    eml = root / "appeal-elysee.eml"
    token = unsubscribe_token(workspace.secret, NO_ONE, None)  # as `templates render -f eml`: it names no one
    write_eml(eml, compose(copy, mailbox_of(recipient), workspace.sender(), unsubscribe_token=token).data, now)
    err.print(f"[bold]7. outreach templates render[/bold] appeal --contact elysee@example.org -f eml -o {eml.name}")
    preview = [line for line in copy.text.splitlines() if line.strip()][:4]
    out.print("\n".join(f"   | {line[:100]}" for line in [f"Subject: {copy.subject}", *preview]),
              markup=False, highlight=False)  # fmt: skip

    compile_template(workspace.templates, "appeal-reminder")  # as `campaigns followup` does: refused now if broken
    create_campaign(sessions, CAMPAIGN, "appeal", HEADS, sender=None, reply_to=None, now=now)
    err.print(f'[bold]8. outreach campaigns create[/bold] {CAMPAIGN} --template appeal --segment "{segment}"')
    followup = add_follow_up(sessions, CAMPAIGN, "appeal-reminder", "7d", ",".join(FOLLOW_UP_UNLESS), now=now).steps[-1]
    err.print(f"[bold]9. outreach campaigns followup[/bold] {CAMPAIGN} --after 7d --template appeal-reminder: "
              f"step {followup['position']}, unless {', '.join(followup['unless'])}")  # fmt: skip
    with count_progress("Queueing") as update:
        queued = queue_step(sessions, workspace.templates, CAMPAIGN, workspace.sender(), now=now, progress=update)
    languages = ", ".join(f"{n} in {language}" for language, n in sorted(queued.languages.items()))
    err.print(f"[bold]10. outreach campaigns queue[/bold] {CAMPAIGN}: {queued.queued} queued ({languages})")


def _send(workspace: Workspace, sink: SmtpSink, port: int) -> None:
    """Step 11: drain the outbox into the sink with the real sending code, then stop the sink."""
    from outreach.outbox.claims import count_due
    from outreach.outbox.sending import drain_outbox

    sessions, sending = workspace.sessions, build_sending(workspace)
    began = time.monotonic()
    with count_progress("Sending") as update:
        update(0, count_due(sessions, datetime.now(UTC)))

        def show(report: SendReport) -> None:
            update(report.tried, note=f"{report.sent} sent, {report.failed} failed")

        sent = drain_outbox(sessions, sending, progress=show)
    seconds = time.monotonic() - began
    sink.stop()
    err.print(f"[bold]11. outreach send[/bold] to the demo's SMTP sink on 127.0.0.1:{port} "
              f"({sending.connections} connections, no pace): {sent.sent} sent, {sent.failed} failed "
              f"in {seconds:.1f} s; the sink received {len(sink.messages)} messages and is stopped")  # fmt: skip


def _read_answers(workspace: Workspace) -> int:
    """Steps 13 to 15: poll the Maildir with the real response log, list what it recorded, mark a signature;
    return the response marked signed."""
    from outreach.contacts.signatories import list_signatories
    from outreach.responses.polling import poll
    from outreach.responses.recording import mark_outcome
    from outreach.responses.sources import MaildirSource
    from outreach.responses.views import list_responses
    from outreach.sandbox import SIGNER

    sessions = workspace.sessions
    source = MaildirSource(workspace.root / "inbox")
    try:
        polled = poll(sessions, source, inbox_of(workspace), now=lambda: datetime.now(UTC))
    finally:
        source.close()
    kinds = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in polled.kinds.most_common())
    err.print(f"[bold]13. outreach responses poll[/bold] --source maildir:inbox: read {polled.read}, "
              f"recorded {polled.recorded} new ({kinds}), {polled.unmatched} matched no contact")  # fmt: skip
    responses = list_responses(sessions, campaign=CAMPAIGN)
    err.print(f"[bold]14. outreach responses list[/bold] --campaign {CAMPAIGN}: {len(responses)} responses")
    table(None, ["id", "kind", "from", "text", "effects"],
          [(v.id, v.kind.replace("_", " "), v.contact or v.sender, " ".join((v.text or "").split())[:70],
            "; ".join(v.effects)) for v in reversed(responses)])  # fmt: skip
    signing = next(v for v in responses if v.kind == "reply" and v.contact == SIGNER)
    mark_outcome(sessions, signing.id, "signed", now=datetime.now(UTC))
    name = next(s.name for s in list_signatories(sessions) if s.email == SIGNER)
    err.print(f"[bold]15. outreach responses mark[/bold] {signing.id} --outcome signed: {name} is now a signatory")
    err.print("   " + _signatory_counts(workspace))
    return signing.id


def _report(workspace: Workspace) -> Path:
    """Step 16: the campaign's figures, as `outreach report` prints them, and its HTML page; return where that is."""
    from outreach.reports.collect import collect_report
    from outreach.reports.html import render_html

    found = collect_report(workspace.sessions, CAMPAIGN, now=datetime.now(UTC))
    html = workspace.root / "report.html"
    html.write_text(render_html(found), encoding="utf-8")
    err.print(f"[bold]16. outreach report[/bold] {CAMPAIGN} --html {html.name}")
    print_report(found)
    return html


def _signatory_counts(workspace: Workspace) -> str:
    """The signatories by group, in words."""
    from outreach.contacts.signatories import list_signatories

    by_group = {group: 0 for group in GROUPS}
    for signatory in list_signatories(workspace.sessions):
        by_group[signatory.group] += 1
    return ", ".join(f"{count} {group.replace('_', ' ')}" for group, count in by_group.items())
