"""`outreach outbox`: the messages by state; failed, unknown or held ones queued again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from outreach.cli.completion import complete_campaign
from outreach.cli.output import LISTED, JsonOption, LimitOption, Listing, command_group, emit_json, err, table
from outreach.outbox.states import State

# The outbox's records are imported inside each command: they bring SQLAlchemy, and shell completion and --help load
# this module without running a command.

app = command_group("The outbox: what is queued, sent, failed or of unknown fate.")

CampaignOption = Annotated[
    str | None, typer.Option("--campaign", help="Only this campaign.", autocompletion=complete_campaign)
]


_LISTING = Listing("messages", "the most recently changed first")


@app.command("list")
def list_command(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only messages in this state (repeatable): failed, unknown ...")
    ] = None,
    campaign: CampaignOption = None,
    limit: LimitOption = LISTED,
    json_output: JsonOption = False,
) -> None:
    """List outbox messages with their state, attempts and the server's last answer, the most recently changed
    first."""
    from outreach.outbox.records import list_outbox

    entries, counts = list_outbox(ctx.obj.workspace().sessions, states=state or (), campaign=campaign,
                                  limit=_LISTING.limit(limit))  # fmt: skip
    total = sum(count for name, count in counts.items() if not state or name in state)
    if json_output:
        emit_json({"counts": counts, **_LISTING.json([entry.as_json() for entry in entries], total)})
        return
    table(
        None,
        ["id", "campaign", "step", "recipient", "state", "attempts", "when", "last answer"],
        [
            [e.id, e.campaign, e.step, e.recipient, e.state, e.attempts,
             f"{(e.sent_at or e.next_attempt_at):%Y-%m-%d %H:%M}" if (e.sent_at or e.next_attempt_at) else "",
             (e.last_reply or "")[:60]]
            for e in entries
        ],
    )  # fmt: skip
    err.print(", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "The outbox is empty.")
    _LISTING.say_shown(len(entries), total)


@app.command("retry")
def retry_command(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="The messages to queue again (see `outbox list`).")] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Every message in this state: failed, unknown or held.")
    ] = None,
    campaign: CampaignOption = None,
    json_output: JsonOption = False,
) -> None:
    """Queue failed, unknown or held messages again, due now (an unknown one may arrive twice)."""
    from outreach.outbox.records import requeue

    if not ids and not state:
        raise typer.BadParameter("name the messages, or a --state (failed, unknown or held)")
    now = datetime.now(UTC)
    moved = requeue(ctx.obj.workspace().sessions, now, states=state or (), ids=ids or (), campaign=campaign)
    if json_output:
        emit_json({"queued": moved})
    else:
        err.print(f"Queued again {moved} messages; `outreach send` sends them.")


@app.command("release")
def release_command(ctx: typer.Context, campaign: CampaignOption = None, json_output: JsonOption = False) -> None:
    """Queue again the messages held back (they missed their time), due now."""
    from outreach.outbox.records import requeue

    moved = requeue(ctx.obj.workspace().sessions, datetime.now(UTC), states=(State.HELD,), campaign=campaign)
    if json_output:
        emit_json({"queued": moved})
    else:
        err.print(f"Released {moved} held messages; `outreach send` sends them.")
