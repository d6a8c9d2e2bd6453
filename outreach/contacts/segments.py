"""Segments: `role:mp,mep country:FR,DE tag:wave-1 -status:bounced campaign:appeal=no-reply` parsed into clauses.

A `campaign:NAME=STATE[,STATE]` clause selects contacts by what happened to them in one campaign; what each state
means, exactly, is CAMPAIGN_STATES below (the SQL is outreach/contacts/selecting.py). The campaign is named as it is
stored; whether it exists is checked where the segment meets the database (selecting.check_segment).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from outreach.contacts import values
from outreach.errors import InvalidValueError
from outreach.vocabulary import ROLES, STATUSES


def _status(value: str) -> str:
    found = value.strip().lower().replace("-", "_")
    if found not in STATUSES:
        raise values.InvalidValueError(f"status {value!r} is not one of {', '.join(STATUSES)}")
    return found


def _tag(value: str) -> str:
    found = values.tags(value)
    if len(found) != 1:
        raise values.InvalidValueError(f"tag {value!r} is not one tag")
    return found[0]


# What can have happened to a contact in a campaign, for `campaign:NAME=STATE`. "For that campaign" below means a
# letter of the campaign went to the contact, or a response was matched to the campaign (the message it answers,
# or, for one logged by hand, the contact's last letter, is one of the campaign's) and to the contact.
CAMPAIGN_STATES: dict[str, str] = {
    # `unknown` (the connection died after the end of data: delivered or not, nobody knows) is not sent, nor are
    # queued, held, failed or cancelled letters.
    "sent": "at least one letter of the campaign was sent: the server accepted it (outbox state sent)",
    # Any channel: an email reply, or one logged by hand (phone, letter, meeting). Never an out-of-office.
    "replied": "a person's reply for the campaign (any channel: email, phone, letter, meeting)",
    # The people to phone: sent, and nothing says the letter did not arrive or that they answered or refused.
    # An auto-reply, a delay warning or an unclassified message does not count as an answer.
    "no-reply": "sent, and no reply, bounce (hard or soft), unsubscribe or complaint for the campaign",
    # The letter came back: a hard bounce, or a soft one (returned undelivered for a temporary reason). A letter
    # the server refused while sending is `failed` in the outbox, neither sent nor bounced; a delay warning is not
    # a bounce.
    "bounced": "a hard or soft bounce for the campaign",
    "auto-replied": "an automatic reply (out of office and the like) for the campaign",
    # The suppression an unsubscribe causes points back at that response (and goes when it is reclassified), so
    # the response is the record of both. An address suppressed by hand belongs to no campaign: `status:`.
    "unsubscribed": "a request to unsubscribe for the campaign",
}
# The shape of a campaign's name (outreach/campaigns/catalog.py checks it when a campaign is created).
_CAMPAIGN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_CAMPAIGN_HINT = f"campaign:NAME=STATE[,STATE], STATE one of {', '.join(CAMPAIGN_STATES)}"


def _campaign_state(value: str) -> str:
    found = value.strip().lower().replace("_", "-")
    if found not in CAMPAIGN_STATES:
        raise values.InvalidValueError(f"campaign state {value!r} is not one of {', '.join(CAMPAIGN_STATES)}")
    return found


# Each field a segment can select on, with the function that checks and normalizes one value.
FIELDS: dict[str, Callable[[str], str]] = {
    "role": values.role,
    "country": values.country,
    "language": values.language,
    "tag": _tag,
    "status": _status,
    "campaign": _campaign_state,  # campaign:NAME=STATE: the states, after the campaign's name
}


@dataclass(frozen=True)
class Clause:
    """Contacts whose `field` is one of `choices` (or none of them, when negated); for the field `campaign`, the
    contacts to whom one of the states `choices` applies in the campaign named `campaign`."""

    field: str
    choices: tuple[str, ...]
    negated: bool = False
    campaign: str | None = None

    def __str__(self) -> str:
        value = ",".join(self.choices) if self.campaign is None else f"{self.campaign}={','.join(self.choices)}"
        return f"{'-' if self.negated else ''}{self.field}:{value}"


@dataclass(frozen=True)
class Segment:
    """All clauses must hold. An empty segment selects every contact."""

    clauses: tuple[Clause, ...] = ()

    def __str__(self) -> str:
        return " ".join(str(clause) for clause in self.clauses) or "all contacts"

    def campaigns(self) -> tuple[str, ...]:
        """The campaigns its clauses name, each once, in the order they come."""
        return tuple(dict.fromkeys(clause.campaign for clause in self.clauses if clause.campaign is not None))


def parse_segment(text: str | None) -> Segment:
    """Parse a segment expression; a bad one raises InvalidValueError naming the clause."""
    clauses: list[Clause] = []
    for word in (text or "").split():
        negated = word.startswith("-")
        name, colon, rest = word.removeprefix("-").partition(":")
        name = name.lower()
        if not colon or name not in FIELDS or not rest:
            raise InvalidValueError(
                f"segment clause {word!r} is not FIELD:VALUE[,VALUE]",
                hint=f"fields: {', '.join(FIELDS)}; roles: {', '.join(ROLES)}; {_CAMPAIGN_HINT}",
            )
        campaign: str | None = None
        if name == "campaign":
            campaign, equals, rest = rest.rpartition("=")
            if not equals or not campaign or not rest:
                raise InvalidValueError(f"segment clause {word!r} is not {_CAMPAIGN_HINT}")
            if not _CAMPAIGN_NAME.fullmatch(campaign):  # so no campaign has it: say so before asking the database
                raise InvalidValueError(f"segment clause {word!r}: no campaign {campaign!r}",
                                        hint="`outreach campaigns list` shows them")  # fmt: skip
        try:
            choices = tuple(dict.fromkeys(FIELDS[name](value) for value in rest.split(",") if value))
        except values.InvalidValueError as error:
            raise InvalidValueError(f"segment clause {word!r}: {error}") from None
        if not choices:  # `role:,` names no value: a typo, not a wish to select nobody
            shape = _CAMPAIGN_HINT if campaign is not None else "FIELD:VALUE[,VALUE]"
            raise InvalidValueError(f"segment clause {word!r} is not {shape}")
        clauses.append(Clause(name, choices, negated, campaign))
    return Segment(tuple(clauses))
