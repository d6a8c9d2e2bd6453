"""`outreach responses`: read the inbox, and the log of who answered what."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from outreach.cli.completion import complete_campaign
from outreach.cli.output import LISTED, JsonOption, LimitOption, Listing, command_group, emit_json, err, out, table
from outreach.errors import ConfigError, InvalidValueError
from outreach.untrusted import visible
from outreach.vocabulary import CHANNELS, ERASED, OUTCOMES, RESPONSE_KINDS

if TYPE_CHECKING:
    from outreach.responses.polling import Inbox
    from outreach.responses.views import ResponseView
    from outreach.workspace import Workspace

# The services are imported inside each command: reading mail pulls in the classifiers, flufl.bounce and
# imapclient, which every other command would otherwise pay for at start-up (and shell completion on every TAB).

app = command_group("Responses: read the inbox; who replied, bounced, unsubscribed; outcomes.")


def _now() -> datetime:
    return datetime.now(UTC)


def inbox_of(workspace: Workspace) -> Inbox:
    """Our List-Unsubscribe mailbox (mail to it is an unsubscribe request), the VERP return path whose token
    names the message a bounce is about, and the soft-bounce limit."""
    from outreach.responses.polling import Inbox

    settings = workspace.settings
    mailto = settings.unsubscribe_mailto.strip().removeprefix("mailto:").split("?", 1)[0]
    verp = settings.return_path if "{token}" in settings.return_path else None
    return Inbox(unsubscribe_addresses=(mailto,) if mailto else (), token_address=verp,
                 soft_bounce_limit=settings.soft_bounce_limit)  # fmt: skip


@app.command("poll")
def poll_command(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option(help="imap (the default, from OUTREACH_IMAP_*), maildir:PATH or mbox:PATH.")
    ] = None,
    move_to: Annotated[
        str | None, typer.Option(help="Move each message read to this folder (default: OUTREACH_IMAP_MOVE_TO).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Read what is new in the inbox and record each message once: run it again at any time."""
    from outreach.responses.polling import PollReport, poll
    from outreach.responses.sources import source_for

    workspace: Workspace = ctx.obj.workspace()
    spec = source or "imap"
    imap = workspace.imap_settings()
    if spec == "imap" and imap is None:
        raise ConfigError("no inbox to read: OUTREACH_IMAP_HOST is not set",
                          hint="set OUTREACH_IMAP_* in .env, or give --source maildir:PATH or mbox:PATH")  # fmt: skip
    moving = move_to if move_to is not None else (workspace.settings.imap_move_to or None)
    reader = source_for(spec, imap, moving, folder=workspace.settings.imap_folder)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True,
                      disable=not err.is_terminal) as progress:  # fmt: skip
            task = progress.add_task(f"Reading {reader.name}")

            def show(report: PollReport) -> None:
                progress.update(task, description=f"Reading {reader.name}: {report.read} read, "
                                f"{report.recorded} new")  # fmt: skip

            report = poll(workspace.sessions, reader, inbox_of(workspace), now=_now, progress=show)
    finally:
        reader.close()
    if json_output:
        emit_json(report.as_json())
        return
    kinds = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in report.kinds.most_common())
    err.print(f"{reader.name}: read {report.read}, recorded {report.recorded} new"
              + (f" ({kinds})" if kinds else "") + f", {report.already} seen before.")  # fmt: skip
    if report.unmatched:
        err.print(f"{report.unmatched} matched no contact (`outreach responses list` shows them).")
    if report.kinds["unreadable"]:
        err.print(f"{report.kinds['unreadable']} could not be read: each is kept with the error and its raw message "
                  "(`outreach responses list --kind unreadable`, `outreach responses show ID --raw`).")  # fmt: skip


_LISTING = Listing("responses", "newest first")


@app.command("list")
def list_command(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.", autocompletion=complete_campaign)] = None,
    kind: Annotated[str | None, typer.Option(help=f"Only this kind: {', '.join(RESPONSE_KINDS)}.")] = None,
    contact: Annotated[str | None, typer.Option(help="Only this contact's address.")] = None,
    since: Annotated[str | None, typer.Option(help="Only since this date (YYYY-MM-DD, UTC).")] = None,
    limit: LimitOption = LISTED,
    json_output: JsonOption = False,
) -> None:
    """The response log, newest first."""
    from outreach.responses.views import count_responses, list_responses

    sessions = ctx.obj.workspace().sessions
    narrowed: dict[str, Any] = {"campaign": campaign, "kind": kind, "contact": contact, "since": _date(since)}
    views = list_responses(sessions, **narrowed, limit=_LISTING.limit(limit))
    total = _LISTING.total(len(views), limit, lambda: count_responses(sessions, **narrowed))
    if json_output:
        emit_json(_LISTING.json([view.as_json() for view in views], total))
        return
    table(
        None,
        ["id", "received", "kind", "from", "campaign", "outcome", "text"],
        [[v.id, f"{v.received_at:%Y-%m-%d %H:%M}", v.kind, v.contact or v.sender, v.campaign, v.outcome,
          " ".join((v.text or "").split())[:70]] for v in views],
    )  # fmt: skip
    if not views:
        err.print("No responses yet: `outreach responses poll` reads the inbox.")
    _LISTING.say_shown(len(views), total)


@app.command("show")
def show_command(
    ctx: typer.Context,
    response_id: Annotated[int, typer.Argument(help="The response (see `responses list`).")],
    raw: Annotated[bool, typer.Option(help="Print the raw message as it arrived instead.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="With --raw: write the message's exact bytes to FILE.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """One response: its text, what it answered, and what it caused."""
    from outreach.responses.views import raw_message, show_response

    sessions = ctx.obj.workspace().sessions
    if output is not None and not raw:
        raise InvalidValueError("--output writes the raw message: give --raw too")
    if raw:
        data = raw_message(sessions, response_id)
        if data is None:
            shown = show_response(sessions, response_id)
            if ERASED in (shown.sender, shown.text):
                raise InvalidValueError(f"response {response_id} was erased (`contacts forget`): its message is gone")
            raise InvalidValueError(f"response {response_id} was logged by hand: it has no message")
        if output is not None:  # the stored bytes exactly, whatever they hold
            try:
                output.write_bytes(data)
            except OSError as error:
                raise InvalidValueError(f"cannot write {output}: {error.strerror or error}") from None
            err.print(f"Wrote the {len(data)} bytes of response {response_id}'s message to {output}.", markup=False,
                      highlight=False)  # fmt: skip
        elif sys.stdout.isatty():  # a stranger's bytes: shown, not obeyed (ESC sequences, bidi overrides)
            typer.echo(visible(data.decode("utf-8", "replace"), lines=True))
        else:  # into a file or a pipe: the message exactly as it arrived
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        return
    view = show_response(sessions, response_id)
    if json_output:
        emit_json(view.as_json())
        return
    _print(view)


def _print(view: ResponseView) -> None:
    """A response for people, on stdout."""
    kind = view.kind + (f" (detected as {view.detected_kind})" if view.detected_kind not in (None, view.kind) else "")
    lines = [
        ("response", f"{view.id}, {view.channel}, received {view.received_at:%Y-%m-%d %H:%M} UTC"),
        ("kind", kind + (f", status {view.status}" if view.status else "")
         + (f", told by {view.sub_kind}" if view.sub_kind else "")),
        ("why", view.reason), ("from", view.sender), ("contact", view.contact), ("campaign", view.campaign),
        ("answers", view.answered and f"{view.answered} (matched by {view.matched_by})"),
        ("names", view.original and not view.answered
         and f"{view.original['message_id']} (in {view.original['found_in']}), not a letter of ours"),
        ("bounced", "; ".join(f"{b['address']} ({', '.join(filter(None, (b['action'], b['status'])))})"
                              for b in view.bounced)),
        ("dated", view.date_header and f"{view.date_header:%Y-%m-%d %H:%M} UTC (its Date header)"),
        ("read from", view.source and ", ".join(f"{key} {value}" for key, value in view.source.items())),
        ("subject", view.subject), ("outcome", view.outcome), ("effects", "; ".join(view.effects) or "none"),
    ]  # fmt: skip
    # What a stranger wrote reaches the terminal shown, not obeyed: escape sequences and bidi overrides made visible.
    for label, value in lines:
        if value:
            out.print(f"{label:>10}: {visible(value)}", markup=False, highlight=False)
    if view.text:
        out.print("", visible(view.text, lines=True), sep="\n", markup=False, highlight=False)


@app.command("add")
def add_command(
    ctx: typer.Context,
    contact: Annotated[str, typer.Option(help="The contact's address.")],
    channel: Annotated[str, typer.Option(help=f"How it came: {', '.join(CHANNELS)}.")],
    note: Annotated[str, typer.Option(help="What was said.")],
    outcome: Annotated[str | None, typer.Option(help=f"What it came to: {', '.join(OUTCOMES)}.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Log an answer that came another way: a call, a letter, a meeting."""
    from outreach.responses.recording import add_response

    view = add_response(ctx.obj.workspace().sessions, contact, channel, note, now=_now(), outcome=outcome)
    _said(view, json_output, f"Logged response {view.id} from {view.contact} ({view.channel}).")


@app.command("mark")
def mark_command(
    ctx: typer.Context,
    response_id: Annotated[int, typer.Argument(help="The response (see `responses list`).")],
    outcome: Annotated[str, typer.Option(help=f"What it came to: {', '.join(OUTCOMES)}.")],
    json_output: JsonOption = False,
) -> None:
    """Say what a response came to; `signed` adds the contact to the signatories."""
    from outreach.responses.recording import mark_outcome

    marked = mark_outcome(ctx.obj.workspace().sessions, response_id, outcome, now=_now())
    view, signatory = marked.response, marked.signatory
    said = f"Response {view.id} marked {outcome}"
    if signatory is not None:
        printed = f"{signatory.name} ({signatory.line})" if signatory.line else signatory.name
        said += f"; {printed} {'was already' if marked.already else 'is now'} a signatory"
    _said(view, json_output, said + ".")


@app.command("reclassify")
def reclassify_command(
    ctx: typer.Context,
    response_id: Annotated[int, typer.Argument(help="The response (see `responses list`).")],
    kind: Annotated[str, typer.Argument(help=f"What it really is: {', '.join(RESPONSE_KINDS)}.")],
    json_output: JsonOption = False,
) -> None:
    """Correct a response's kind; the effects follow (a suppression it caused is lifted, the new kind's applied)."""
    from outreach.responses.recording import reclassify

    view = reclassify(ctx.obj.workspace().sessions, response_id, kind, now=_now())
    _said(view, json_output, f"Response {view.id} is now {view.kind}; effects: {'; '.join(view.effects) or 'none'}.")


def _said(view: ResponseView, json_output: bool, message: str) -> None:
    """The changed response as JSON, or a line for people."""
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(visible(message), markup=False, highlight=False)


def _date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidValueError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None
