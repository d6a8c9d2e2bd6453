"""Segments: `role:mp,mep country:FR,DE tag:wave-1 -status:bounced` parsed into clauses."""

from __future__ import annotations

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


# Each field a segment can select on, with the function that checks and normalizes one value.
FIELDS: dict[str, Callable[[str], str]] = {
    "role": values.role,
    "country": values.country,
    "language": values.language,
    "tag": _tag,
    "status": _status,
}


@dataclass(frozen=True)
class Clause:
    """Contacts whose `field` is one of `choices` (or none of them, when negated)."""

    field: str
    choices: tuple[str, ...]
    negated: bool = False

    def __str__(self) -> str:
        return f"{'-' if self.negated else ''}{self.field}:{','.join(self.choices)}"


@dataclass(frozen=True)
class Segment:
    """All clauses must hold. An empty segment selects every contact."""

    clauses: tuple[Clause, ...] = ()

    def __str__(self) -> str:
        return " ".join(str(clause) for clause in self.clauses) or "all contacts"


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
                hint=f"fields: {', '.join(FIELDS)}; roles: {', '.join(ROLES)}",
            )
        try:
            choices = tuple(dict.fromkeys(FIELDS[name](value) for value in rest.split(",") if value))
        except values.InvalidValueError as error:
            raise InvalidValueError(f"segment clause {word!r}: {error}") from None
        clauses.append(Clause(name, choices, negated))
    return Segment(tuple(clauses))
