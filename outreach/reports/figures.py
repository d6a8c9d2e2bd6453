"""The figures of a report, computed from plain records of what was sent, skipped and answered.

Every count is of contacts (people), never of messages. For a step, each targeted contact is in exactly one of
queued, sent, failed, unknown, cancelled or skipped, so those add up to `targeted`. For a campaign, a contact
counts once in each figure that any of its steps gives them (a contact sent the first letter and skipped for the
follow-up counts in both `sent` and `skipped`), so there they need not add up. Response figures of a step are
the responses that answer that step's letter; a campaign's are all the responses matched to it. `replied` is a
person's reply (by mail, phone, letter or meeting), never an out-of-office. The response rate is replied / sent;
the median time to first reply runs from a contact's first letter (of the step, or of the campaign) being sent
to their first reply. Days are UTC dates.

Each campaign also lists who has not answered, so their offices can be phoned: the contacts of
`--segment campaign:NAME=no-reply` (sent, and no reply, bounce, unsubscribe or complaint; see
outreach/contacts/segments.py), heads of state, monarchs and heads of government first, then by role, country and
name, each with the day their first letter went. A big campaign would make a page of thousands: the list stops at
`unanswered_limit` and says how many more there are (the segment exports them all).

The CSV (`Report.as_csv`) has one row per campaign, step and breakdown, with these columns:
  campaign          the campaign's name
  step              the step's position (0 is the first letter); empty for the campaign as a whole
  template          the step's template; empty for the campaign as a whole
  breakdown         `all`, `role` or `country`
  value             the role or country of the row (`'-` for contacts without one); empty for `all`
  targeted          contacts the step was queued or skipped for
  queued            not sent yet: queued, held, or in a sender's hands at this moment
  sent, failed, unknown, cancelled, skipped    contacts whose copy is in that state (skipped: never queued)
  hard_bounced, soft_bounced, replied, auto_replied, unsubscribed, complained    contacts with such a response
  response_rate     replied / sent, 4 decimals; empty when nothing was sent
  median_reply_seconds   median time from the first letter to the first reply, in whole seconds; empty without

A cell that would start a spreadsheet formula (`=`, `+`, `-`, `@`) starts with a `'` (outreach/spreadsheets.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from statistics import median
from typing import Any, TypeVar

from outreach.spreadsheets import quote_formula
from outreach.vocabulary import OUTCOMES, RESPONSE_KINDS, ROLES

MISSING = "-"  # the role or country of contacts who have none
# How an outbox state counts: what has not gone yet, and what might still go this minute, is `queued`.
_STATE = {"queued": "queued", "held": "queued", "sending": "queued", "committing": "queued", "sent": "sent",
          "failed": "failed", "unknown": "unknown", "cancelled": "cancelled"}  # fmt: skip
# The response figures, each the contacts with at least one response of that kind.
_KIND_FIGURES = {"hard_bounced": "hard_bounce", "soft_bounced": "soft_bounce", "replied": "reply",
                 "auto_replied": "auto_reply", "unsubscribed": "unsubscribe", "complained": "complaint"}  # fmt: skip
OUTCOME_FIGURES = tuple(outcome for outcome in OUTCOMES if outcome != "none")
# How many of a campaign's contacts who have not answered the report names; the rest it counts.
UNANSWERED_LIMIT = 100

K = TypeVar("K")
T = TypeVar("T")


# What the report is computed from: plain records, as the service reads them from the database.


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign to report on."""

    id: int
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class StepRecord:
    """A step of a campaign."""

    id: int
    campaign_id: int
    position: int
    template: str


@dataclass(frozen=True)
class MessageRecord:
    """An outbox message: one step's copy for one contact, with the contact's role and country."""

    campaign_id: int
    step_id: int
    contact_id: int
    state: str
    sent_at: datetime | None
    role: str | None
    country: str | None


@dataclass(frozen=True)
class SkipRecord:
    """A follow-up not sent to a contact (they had replied, bounced or unsubscribed)."""

    campaign_id: int
    step_id: int
    contact_id: int
    reason: str
    role: str | None
    country: str | None


@dataclass(frozen=True)
class ResponseRecord:
    """A response matched to a campaign, with the step of the letter it answers and who sent it."""

    id: int
    campaign_id: int
    step_id: int | None  # None when the letter it answered is gone
    contact_id: int | None
    kind: str
    channel: str
    outcome: str | None
    received_at: datetime
    role: str | None
    country: str | None
    contact: str | None  # `Name <address>`, or the sender's address
    text: str | None


@dataclass(frozen=True)
class UnansweredRecord:
    """A contact a campaign's letter reached who has not answered (`campaign:NAME=no-reply`)."""

    campaign_id: int
    contact_id: int
    name: str | None
    position: str | None
    role: str | None
    country: str | None
    email: str | None
    sent_at: datetime | None  # when the campaign's first letter to them went


@dataclass(frozen=True)
class Records:
    """Everything a report is computed from; `signed` holds when each signatory signed (or was added)."""

    campaigns: Sequence[CampaignRecord] = ()
    steps: Sequence[StepRecord] = ()
    messages: Sequence[MessageRecord] = ()
    skips: Sequence[SkipRecord] = ()
    responses: Sequence[ResponseRecord] = ()
    signed: Sequence[datetime] = ()
    unanswered: Sequence[UnansweredRecord] = ()


# What the report says.


@dataclass(frozen=True)
class Counts:
    """The figures of one campaign, step, role or country (see the module's docstring for each)."""

    targeted: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    skipped: int = 0
    hard_bounced: int = 0
    soft_bounced: int = 0
    replied: int = 0
    auto_replied: int = 0
    unsubscribed: int = 0
    complained: int = 0
    response_rate: float | None = None
    median_reply_seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return asdict(self)


COUNT_FIELDS = tuple(item.name for item in fields(Counts))
CSV_COLUMNS = ("campaign", "step", "template", "breakdown", "value", *COUNT_FIELDS)


@dataclass(frozen=True)
class Breakdown:
    """The figures for everyone, and the same per role and per country (roles in their usual order)."""

    total: Counts
    by_role: dict[str, Counts] = field(default_factory=dict)
    by_country: dict[str, Counts] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"total": self.total.as_json(),
                "by_role": {key: counts.as_json() for key, counts in self.by_role.items()},
                "by_country": {key: counts.as_json() for key, counts in self.by_country.items()}}  # fmt: skip

    def rows(self) -> list[tuple[str, str, Counts]]:
        """(breakdown, value, counts) for everyone, each role and each country: the rows of a table."""
        return [("all", "", self.total),
                *(("role", key, counts) for key, counts in self.by_role.items()),
                *(("country", key, counts) for key, counts in self.by_country.items())]  # fmt: skip


@dataclass(frozen=True)
class StepReport:
    """One step's figures."""

    position: int
    template: str
    figures: Breakdown

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"position": self.position, "template": self.template, "figures": self.figures.as_json()}


@dataclass(frozen=True)
class Reply:
    """A person's reply, for the list of what people wrote."""

    received_at: datetime
    campaign: str
    contact: str | None
    kind: str
    channel: str
    outcome: str | None
    text: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**asdict(self), "received_at": self.received_at.isoformat()}


@dataclass(frozen=True)
class DayCount:
    """How many responses of each kind came in on one day (kinds with none left out)."""

    day: date
    counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"day": self.day.isoformat(), "counts": dict(self.counts)}


@dataclass(frozen=True)
class GrowthPoint:
    """The signatory list at the end of a day on which it grew."""

    day: date
    added: int
    total: int

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"day": self.day.isoformat(), "added": self.added, "total": self.total}


@dataclass(frozen=True)
class UnansweredContact:
    """Someone to phone: sent the letter, no answer yet."""

    name: str | None
    position: str | None
    role: str | None
    country: str | None
    email: str | None
    sent_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {**asdict(self), "sent_at": self.sent_at.isoformat() if self.sent_at else None}


@dataclass(frozen=True)
class Unanswered:
    """Who has not answered a campaign: `total` of them, the first `contacts` (heads first), and `more` unnamed."""

    total: int = 0
    contacts: list[UnansweredContact] = field(default_factory=list)

    @property
    def more(self) -> int:
        """How many the list leaves out."""
        return self.total - len(self.contacts)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"total": self.total, "more": self.more, "contacts": [c.as_json() for c in self.contacts]}


@dataclass(frozen=True)
class CampaignReport:
    """One campaign: its figures and its steps', the outcomes, responses per day, the replies (newest first), and
    who has not answered."""

    name: str
    status: str
    created_at: datetime
    figures: Breakdown
    steps: list[StepReport]
    outcomes: dict[str, int]  # contacts with a response marked signed, declined, interested
    responses_by_day: list[DayCount]
    replies: list[Reply]
    unanswered: Unanswered = field(default_factory=Unanswered)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"name": self.name, "status": self.status, "created_at": self.created_at.isoformat(),
                "figures": self.figures.as_json(), "steps": [step.as_json() for step in self.steps],
                "outcomes": dict(self.outcomes),
                "responses_by_day": [day.as_json() for day in self.responses_by_day],
                "replies": [reply.as_json() for reply in self.replies],
                "unanswered": self.unanswered.as_json()}  # fmt: skip


@dataclass(frozen=True)
class Report:
    """The report on one campaign (`campaign`) or on all (`campaign` None), with the signatory list's growth."""

    generated_at: datetime
    campaign: str | None
    campaigns: list[CampaignReport]
    signatories: list[GrowthPoint]

    def as_json(self) -> dict[str, Any]:
        """JSON-ready values: one document."""
        return {"generated_at": self.generated_at.isoformat(), "campaign": self.campaign,
                "campaigns": [campaign.as_json() for campaign in self.campaigns],
                "signatories": [point.as_json() for point in self.signatories]}  # fmt: skip

    def csv_rows(self) -> list[dict[str, str]]:
        """One row per campaign, step and breakdown, with the columns of CSV_COLUMNS."""
        rows: list[dict[str, str]] = []
        for campaign in self.campaigns:
            scopes = [("", "", campaign.figures)]
            scopes += [(str(step.position), step.template, step.figures) for step in campaign.steps]
            for step, template, figures in scopes:
                for breakdown, value, counts in figures.rows():
                    rows.append({"campaign": campaign.name, "step": step, "template": template,
                                 "breakdown": breakdown, "value": value, **_csv_counts(counts)})  # fmt: skip
        return rows

    def as_csv(self) -> str:
        """The CSV document (header, then csv_rows), as a spreadsheet reads it."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        # A campaign, template or breakdown value is text the campaigner chose: a spreadsheet must not run it.
        writer.writerows({key: quote_formula(value) for key, value in row.items()} for row in self.csv_rows())
        return buffer.getvalue()


def _csv_counts(counts: Counts) -> dict[str, str]:
    values = {name: str(value) for name, value in asdict(counts).items()}
    rate, wait = counts.response_rate, counts.median_reply_seconds
    values["response_rate"] = "" if rate is None else f"{rate:.4f}"
    values["median_reply_seconds"] = "" if wait is None else str(round(wait))
    return values


# The computation.


@dataclass
class _Tally:
    """What one contact's scope (a step or a campaign) holds for them."""

    role: str
    country: str
    targeted: bool = False
    states: set[str] = field(default_factory=set)  # queued, sent, failed, unknown, cancelled, skipped
    first_sent: datetime | None = None
    kinds: set[str] = field(default_factory=set)
    first_reply: datetime | None = None

    def copy_letters(self) -> _Tally:
        """What it says of letters, without the responses (which a campaign counts on its own)."""
        return _Tally(self.role, self.country, self.targeted, set(self.states), self.first_sent)


def build_report(
    records: Records, *, now: datetime, campaign: str | None = None, unanswered_limit: int = UNANSWERED_LIMIT
) -> Report:
    """The report on the campaigns of `records`: `campaign` names the one asked for (None: all of them); each lists
    at most `unanswered_limit` of those who have not answered."""
    steps_of: dict[int, list[StepRecord]] = {}
    for step in sorted(records.steps, key=lambda s: (s.campaign_id, s.position)):
        steps_of.setdefault(step.campaign_id, []).append(step)
    messages_of = _grouped(records.messages, lambda m: m.step_id)
    skips_of = _grouped(records.skips, lambda s: s.step_id)
    responses_of = _grouped(records.responses, lambda r: r.campaign_id)
    unanswered_of = _grouped(records.unanswered, lambda u: u.campaign_id)
    reports = [
        _campaign_report(record, steps_of.get(record.id, []), messages_of, skips_of, responses_of.get(record.id, []),
                         unanswered(unanswered_of.get(record.id, []), unanswered_limit))
        for record in records.campaigns
    ]  # fmt: skip
    return Report(now, campaign, reports, signatory_growth(records.signed))


def unanswered(records: Iterable[UnansweredRecord], limit: int) -> Unanswered:
    """Who has not answered, heads of state and government first (the order of ROLES), then by country and name;
    the first `limit` of them named, all of them counted."""
    rank = {role: index for index, role in enumerate(ROLES)}
    ordered = sorted(records, key=lambda r: (rank.get(r.role or "", len(ROLES)), r.country or "~",
                                             (r.name or r.email or "").casefold(), r.contact_id))  # fmt: skip
    shown = [UnansweredContact(r.name, r.position, r.role, r.country, r.email, r.sent_at) for r in ordered[:limit]]
    return Unanswered(len(ordered), shown)


def _grouped(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    found: dict[K, list[T]] = {}
    for item in items:
        found.setdefault(key(item), []).append(item)
    return found


def _campaign_report(
    campaign: CampaignRecord, steps: list[StepRecord], messages_of: dict[int, list[MessageRecord]],
    skips_of: dict[int, list[SkipRecord]], responses: list[ResponseRecord], not_answered: Unanswered,
) -> CampaignReport:  # fmt: skip
    """A campaign's figures: each step's from its copies and their answers; the campaign's from all of them."""
    whole: dict[int, _Tally] = {}
    step_reports = []
    answers_of = _grouped(responses, lambda r: r.step_id)
    for step in steps:
        letters = _letters(messages_of.get(step.id, []), skips_of.get(step.id, []))
        for contact_id, tally in letters.items():
            _merge(whole.setdefault(contact_id, _Tally(tally.role, tally.country)), tally)
        tallies = {contact_id: tally.copy_letters() for contact_id, tally in letters.items()}
        _add_responses(tallies, answers_of.get(step.id, []))
        step_reports.append(StepReport(step.position, step.template, _breakdown(tallies.values())))
    _add_responses(whole, responses)
    return CampaignReport(
        name=campaign.name, status=campaign.status, created_at=campaign.created_at,
        figures=_breakdown(whole.values()), steps=step_reports, outcomes=_outcomes(responses),
        responses_by_day=responses_by_day(responses), replies=_replies(campaign.name, responses),
        unanswered=not_answered,
    )  # fmt: skip


def _letters(messages: list[MessageRecord], skips: list[SkipRecord]) -> dict[int, _Tally]:
    """Each contact of one step with the state of their copy: a live copy wins over one cancelled before it."""
    tallies: dict[int, _Tally] = {}
    for message in messages:
        tally = tallies.setdefault(message.contact_id, _Tally(_key(message.role), _key(message.country)))
        tally.targeted = True
        state = _STATE.get(message.state, "queued")
        if state == "cancelled" and tally.states:
            continue
        tally.states = {state}
        if message.sent_at is not None:
            tally.first_sent = _earliest(tally.first_sent, message.sent_at)
    for skip in skips:
        tally = tallies.setdefault(skip.contact_id, _Tally(_key(skip.role), _key(skip.country)))
        tally.targeted = True
        tally.states.add("skipped")
    return tallies


def _merge(into: _Tally, step: _Tally) -> None:
    """Add one step's letters to the campaign's view of a contact."""
    into.targeted |= step.targeted
    into.states |= step.states
    if step.first_sent is not None:
        into.first_sent = _earliest(into.first_sent, step.first_sent)


def _add_responses(tallies: dict[int, _Tally], responses: Iterable[ResponseRecord]) -> None:
    """Note each contact's response kinds and first reply (responses tied to no contact count for no one)."""
    for response in responses:
        if response.contact_id is None:
            continue
        tally = tallies.get(response.contact_id)
        if tally is None:  # answered, though no letter of this scope is theirs any more
            tally = tallies[response.contact_id] = _Tally(_key(response.role), _key(response.country))
        tally.kinds.add(response.kind)
        if response.kind == "reply":
            tally.first_reply = _earliest(tally.first_reply, response.received_at)


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _key(value: str | None) -> str:
    return value or MISSING


def _breakdown(tallies: Iterable[_Tally]) -> Breakdown:
    """The figures of a scope, for everyone and per role and country."""
    everyone = list(tallies)
    roles = _grouped(everyone, lambda t: t.role)
    countries = _grouped(everyone, lambda t: t.country)
    role_order = {role: index for index, role in enumerate(ROLES)}
    return Breakdown(
        total=_counts(everyone),
        by_role={key: _counts(roles[key]) for key in sorted(roles, key=lambda k: (role_order.get(k, len(ROLES)), k))},
        by_country={key: _counts(countries[key]) for key in sorted(countries, key=lambda k: (k == MISSING, k))},
    )


def _counts(tallies: list[_Tally]) -> Counts:
    """The figures of a group of contacts."""

    def having(state: str) -> int:
        return sum(state in tally.states for tally in tallies)

    kinds = {figure: sum(kind in tally.kinds for tally in tallies) for figure, kind in _KIND_FIGURES.items()}
    sent = having("sent")
    # A reply dated before the letter went (a sender's clock running slow) counts as immediate, not negative.
    waits = [max(0.0, (tally.first_reply - tally.first_sent).total_seconds())
             for tally in tallies if tally.first_reply is not None and tally.first_sent is not None]  # fmt: skip
    return Counts(
        targeted=sum(tally.targeted for tally in tallies), queued=having("queued"), sent=sent,
        failed=having("failed"), unknown=having("unknown"), cancelled=having("cancelled"), skipped=having("skipped"),
        **kinds, response_rate=kinds["replied"] / sent if sent else None,
        median_reply_seconds=float(median(waits)) if waits else None,
    )  # fmt: skip


def _outcomes(responses: Iterable[ResponseRecord]) -> dict[str, int]:
    """The contacts with a response marked with each outcome (a response tied to no contact counts by itself)."""
    who: dict[str, set[tuple[str, int]]] = {outcome: set() for outcome in OUTCOME_FIGURES}
    for response in responses:
        if response.outcome in who:
            person = ("contact", response.contact_id) if response.contact_id is not None else ("response", response.id)
            who[response.outcome].add(person)
    return {outcome: len(people) for outcome, people in who.items()}


def responses_by_day(responses: Iterable[ResponseRecord]) -> list[DayCount]:
    """How many responses of each kind came in each day (UTC), oldest first; days without any are left out."""
    days: dict[date, dict[str, int]] = {}
    for response in responses:
        counts = days.setdefault(response.received_at.astimezone(UTC).date(), {})
        counts[response.kind] = counts.get(response.kind, 0) + 1
    order = {kind: index for index, kind in enumerate(RESPONSE_KINDS)}
    return [DayCount(day, dict(sorted(days[day].items(), key=lambda item: order.get(item[0], len(order)))))
            for day in sorted(days)]  # fmt: skip


def _replies(campaign: str, responses: Iterable[ResponseRecord]) -> list[Reply]:
    """The people's replies, newest first."""
    replies = sorted((r for r in responses if r.kind == "reply"), key=lambda r: (r.received_at, r.id), reverse=True)
    return [Reply(r.received_at, campaign, r.contact, r.kind, r.channel, r.outcome, r.text or "") for r in replies]


def signatory_growth(signed: Iterable[datetime]) -> list[GrowthPoint]:
    """The signatory list day by day (UTC): how many signed that day and how many there were by its end."""
    per_day: dict[date, int] = {}
    for instant in signed:
        day = instant.astimezone(UTC).date()
        per_day[day] = per_day.get(day, 0) + 1
    points, total = [], 0
    for day in sorted(per_day):
        total += per_day[day]
        points.append(GrowthPoint(day, per_day[day], total))
    return points


def format_duration(seconds: float | None) -> str:
    """A duration for people, to the minute: `2d 3h`, `1d`, `5h 12m`, `12m`, `<1m`; `-` for none."""
    if seconds is None:
        return MISSING
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


def format_rate(rate: float | None) -> str:
    """A response rate for people: `27.3%`; `-` when nothing was sent."""
    return MISSING if rate is None else f"{rate * 100:.1f}%"
