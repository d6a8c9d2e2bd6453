"""Shared selects and writes, named for what they return or do."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import import_module
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from outreach.db.models import Campaign, ContactTag, Tag
from outreach.errors import NotFoundError


def insert_many(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_duplicates: bool = False,
) -> None:
    """Insert rows (tuples in the order of `columns`) in one executemany; with `skip_duplicates`, ON CONFLICT
    DO NOTHING.

    SQLAlchemy's own executemany compiles and processes every parameter set in Python, which cost an import
    more than SQLite's writing. Here the statement is compiled once and each column's bind processing (JSON,
    dates on SQLite) is applied once per distinct value, so the driver gets plain values.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    # The INSERT of the dialect in use (for ON CONFLICT): the other dialect is not loaded for nothing.
    insert = import_module(f"sqlalchemy.dialects.{'postgresql' if dialect.name == 'postgresql' else 'sqlite'}").insert
    statement = insert(table).on_conflict_do_nothing() if skip_duplicates else insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    # A column with a Python-side default would be compiled in with nothing to fill it: the caller must name it.
    missing = set(compiled.params) - set(columns)
    if missing:
        raise ValueError(f"insert_many into {table.name}: give values for {', '.join(sorted(missing))}")
    active: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = []
    for index, name in enumerate(columns):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            active.append((index, process, {}))
    prepared: list[Any] = [list(row) for row in rows] if active else list(rows)
    for index, convert, memo in active:
        for values in prepared:
            value = values[index]
            key = tuple(value.items()) if isinstance(value, dict) else value
            try:
                values[index] = memo[key]
            except KeyError:
                values[index] = memo[key] = convert(value)
            except TypeError:  # unhashable: convert it every time
                values[index] = convert(value)
    if compiled.positional:
        order = [list(columns).index(name) for name in compiled.positiontup or []]
        parameters: list[Any] = [tuple(values[i] for i in order) for values in prepared]
    else:
        parameters = [dict(zip(columns, values, strict=True)) for values in prepared]
    session.connection().exec_driver_sql(str(compiled), parameters)


def tag_ids(session: Session, names: Iterable[str], cache: dict[str, int] | None = None) -> dict[str, int]:
    """Return the id of each tag name, creating the tags that do not exist yet."""
    cache = {} if cache is None else cache
    missing = [name for name in dict.fromkeys(names) if name not in cache]
    if missing:
        insert_many(session, Tag.__table__, ["name"], [(name,) for name in missing], skip_duplicates=True)  # type: ignore[arg-type]
        found = session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(missing)))
        cache.update({name: tag_id for name, tag_id in found})
    return cache


def contact_tags(session: Session, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Return each contact's tag names, sorted."""
    found: dict[int, list[str]] = {contact_id: [] for contact_id in contact_ids}
    if contact_ids:
        rows = session.execute(
            select(ContactTag.contact_id, Tag.name)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(ContactTag.contact_id.in_(contact_ids))
            .order_by(Tag.name)
        )
        for contact_id, name in rows:
            found[contact_id].append(name)
    return found


def find_campaign(session: Session, name: str) -> Campaign:
    """The campaign of that name, or a clear error."""
    campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()
    if campaign is None:
        raise NotFoundError(f"no campaign {name!r}", hint="`outreach campaigns list` shows them")
    return campaign
