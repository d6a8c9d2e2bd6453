"""`contacts import`: stream a CSV file into the contact list in one transaction, accounting for every row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from outreach.contacts.addresses import Resolver, address_hashes, alternates_besides
from outreach.contacts.reading import ReadOptions, open_contacts_file
from outreach.contacts.rejects import RejectsFile, rejects_path_for
from outreach.contacts.rows import ContactRow, Demoted, Reject, suggested_maps
from outreach.contacts.values import has_several_languages
from outreach.db.engine import workspace_secret
from outreach.db.models import Contact, ContactTag, Import, Suppression
from outreach.db.queries import insert_many, tag_ids
from outreach.errors import RejectedRowsError
from outreach.vocabulary import CONTACT_FIELDS


@dataclass(frozen=True)
class ImportOptions:
    """How to read the file and what to do with contacts that exist already."""

    role: str | None = None
    tags: tuple[str, ...] = ()
    update: bool = False
    dry_run: bool = False
    strict: bool = False
    check_dns: bool = False
    encoding: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    resolver: Resolver | None = None
    language: str | None = None


@dataclass
class ImportSummary:
    """What became of every row of the file."""

    source: str
    encoding: str = ""
    encoding_guessed: bool = False
    delimiter: str = ","
    columns: list[tuple[str, str]] = field(default_factory=list)
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    suppressed: int = 0
    rejected: int = 0
    blank: int = 0
    dry_run: bool = False
    rejects_path: Path | None = None
    first_rejects: list[Reject] = field(default_factory=list)
    # Columns kept as custom attributes that look like a field by their name: (header, field), the --map to suggest;
    # and those whose name matched a field but whose values did not look like it.
    suggestions: list[tuple[str, str]] = field(default_factory=list)
    demoted: list[Demoted] = field(default_factory=list)
    # Contacts left with no language because their country has several official languages, and those countries.
    no_language: int = 0
    no_language_countries: list[str] = field(default_factory=list)
    # Rows whose address cell held several addresses (the others kept as alternates), and the parts of such cells
    # that were not addresses (left out; the first few, with why).
    several_addresses: int = 0
    unusable_addresses: int = 0
    first_unusable: list[tuple[int, str]] = field(default_factory=list)

    @property
    def attributes(self) -> list[str]:
        """The columns kept as custom attributes."""
        return [header for header, target in self.columns if target.startswith("attr:")]

    @property
    def rows(self) -> int:
        """Rows read, blank ones aside."""
        return self.imported + self.updated + self.unchanged + self.merged + self.suppressed + self.rejected

    def counts(self) -> dict[str, int]:
        """The counts by outcome, as stored with the import and printed as JSON."""
        names = ("imported", "updated", "unchanged", "merged", "suppressed", "rejected", "blank")
        return {name: getattr(self, name) for name in names}


def import_contacts(
    sessions: sessionmaker[Session],
    source: Path,
    options: ImportOptions,
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import a CSV of contacts. All or nothing: a fatal error or `--dry-run` leaves the database as it was.

    `progress` is called with the number of bytes of the file read so far.
    """
    read = ReadOptions(options.encoding, dict(options.mapping), options.role, options.tags, options.language)
    with open_contacts_file(source, read, check_dns=options.check_dns, resolver=options.resolver) as file:
        shape = file.shape
        summary = ImportSummary(
            str(source), shape.encoding, shape.encoding_guessed, shape.delimiter, shape.columns,
            dry_run=options.dry_run,
        )  # fmt: skip
        summary.demoted = list(shape.demoted)
        summary.suggestions = suggested_maps(shape.columns, skip=[demoted.header for demoted in shape.demoted])
        # Addresses (keys) of the rows left with no language by a country of several: counted once each.
        no_language: set[str] = set()
        countries: set[str] = set()
        rejects = RejectsFile(rejects_path_for(source), shape.headers, enabled=not options.dry_run)
        summary.first_rejects = rejects.first
        try:
            with sessions() as session:
                run = Import(source=str(source), started_at=now, counts={})
                session.add(run)
                session.flush()
                batcher = _Batcher(session, run.id, options.update, now, summary, rejects)
                batcher.any_suppressed = session.scalar(select(Suppression.id).limit(1)) is not None
                for batch in file.batches():
                    for reject in batch.rejects:
                        summary.rejected += 1
                        rejects.add(reject)
                    _tally(summary, batch.rows, no_language, countries)
                    batcher.apply(batch.rows)
                    if progress:
                        progress(batch.position)
                summary.blank = file.blank
                summary.no_language, summary.no_language_countries = len(no_language), sorted(countries)
                if options.strict and summary.rejected:
                    first = summary.first_rejects[0]
                    raise RejectedRowsError(
                        f"{summary.rejected} rows rejected; nothing was imported (--strict)",
                        where=str(source),
                        hint=f"first: line {first.line}: {first.reason}",
                    )
                run.finished_at = now
                run.counts = summary.counts()
                if options.dry_run:
                    session.rollback()
                else:
                    session.commit()
        finally:
            summary.rejects_path = rejects.finish()
    return summary


def _tally(summary: ImportSummary, rows: list[ContactRow], no_language: set[str], countries: set[str]) -> None:
    """Note what a batch's rows say beyond their outcome: several addresses in a cell (and the parts that were not
    addresses), and a country of several languages that left the contact with none (each address once)."""
    for row in rows:
        if row.alternates or row.unusable:
            summary.several_addresses += 1
            for reason in row.unusable:
                summary.unusable_addresses += 1
                if len(summary.first_unusable) < 5:
                    summary.first_unusable.append((row.line, reason))
        fields = row.fields
        if "language" not in fields and (country := fields.get("country")) and has_several_languages(country):
            no_language.add(row.key)
            countries.add(country)


def _merge(into: ContactRow, later: ContactRow) -> ContactRow:
    """Fold a later row for the same address into an earlier one: its filled fields win, tags add up."""
    return into._replace(
        email=later.email,
        smtputf8=later.smtputf8,
        fields={**into.fields, **later.fields},
        tags=tuple(dict.fromkeys(into.tags + later.tags)),
        attributes={**into.attributes, **later.attributes},
        alternates=alternates_besides(into.email, into.alternates, later.alternates),
    )


_INSERTED = (
    "email", "email_key", *CONTACT_FIELDS, "attributes", "alternates", "status", "import_id", "created_at", "updated_at"
)  # fmt: skip
_LINKS = ("contact_id", "tag_id")
_EXISTING = select(
    Contact.id,
    Contact.email_key,
    Contact.import_id,
    Contact.email,
    Contact.attributes,
    Contact.alternates,
    *(getattr(Contact, f) for f in CONTACT_FIELDS),
)


@dataclass
class _Batcher:
    """Applies batches of rows to the database inside the import's transaction."""

    session: Session
    import_id: int
    update: bool
    now: datetime
    summary: ImportSummary
    rejects: RejectsFile
    tag_cache: dict[str, int] = field(default_factory=dict)
    any_suppressed: bool = True  # an empty suppression list (most workspaces) needs no hashing and no query

    def apply(self, batch: list[ContactRow]) -> None:
        rows: dict[str, ContactRow] = {}
        for row in batch:
            key = row.key
            if key in rows:
                rows[key] = _merge(rows[key], row)
                self.summary.merged += 1
            else:
                rows[key] = row
        existing = {
            found.email_key: found for found in self.session.execute(_EXISTING.where(Contact.email_key.in_(list(rows))))
        }
        new = [row for key, row in rows.items() if key not in existing]
        new = self._drop_suppressed(new)
        created = self._insert(new)
        changed_ids = self._update([(existing[k], row) for k, row in rows.items() if k in existing])
        tagged = [(created[row.key], row) for row in new] + changed_ids
        self._tag(tagged)

    def _drop_suppressed(self, rows: list[ContactRow]) -> list[ContactRow]:
        if not rows or not self.any_suppressed:
            return rows
        secret = workspace_secret(self.session)
        # Each address under both forms of its hash: keyed, and unkeyed as written before hashes were keyed.
        hashes = {digest: row.key for row in rows for digest in address_hashes(row.key, secret)}
        found = self.session.execute(
            select(Suppression.address_hash, Suppression.reason).where(Suppression.address_hash.in_(list(hashes)))
        )
        by_key = {row.key: row for row in rows}
        for digest, reason in found:
            row = by_key.pop(hashes[digest], None)
            if row is None:  # suppressed under both forms: counted once
                continue
            self.summary.suppressed += 1
            self.rejects.add(Reject(row.line, f"{row.email} is on the suppression list ({reason})", ()))
        return list(by_key.values())

    def _insert(self, rows: list[ContactRow]) -> dict[str, int]:
        if not rows:
            return {}
        constant = ("active", self.import_id, self.now, self.now)
        values = [
            (row.email, row.key, *map(row.fields.get, CONTACT_FIELDS), row.attributes, list(row.alternates) or None,
             *constant)
            for row in rows
        ]  # fmt: skip
        # A plain executemany, then one select for the ids: RETURNING with executemany makes SQLAlchemy run
        # one statement per row on SQLite, which was 90% of an import's time.
        insert_many(self.session, Contact.__table__, _INSERTED, values)  # type: ignore[arg-type]
        keys = [row.key for row in rows]
        created = self.session.execute(select(Contact.email_key, Contact.id).where(Contact.email_key.in_(keys)))
        self.summary.imported += len(rows)
        return {key: contact_id for key, contact_id in created if key is not None}

    def _update(self, pairs: list[tuple[Any, ContactRow]]) -> list[tuple[int, ContactRow]]:
        """Apply rows to existing contacts where allowed; return the contacts whose tags may need adding."""
        if not pairs:
            return []
        ids = [found.id for found, _ in pairs]
        tags_of: dict[int, set[int]] = {contact_id: set() for contact_id in ids}
        for contact_id, tag_id in self.session.execute(
            select(ContactTag.contact_id, ContactTag.tag_id).where(ContactTag.contact_id.in_(ids))
        ):
            tags_of[contact_id].add(tag_id)
        changes: list[dict[str, Any]] = []
        touched: list[tuple[int, ContactRow]] = []
        for found, row in pairs:
            same_import = found.import_id == self.import_id
            if not (self.update or same_import):
                self.summary.unchanged += 1
                continue
            change: dict[str, Any] = {k: v for k, v in row.fields.items() if getattr(found, k) != v}
            attributes = {**found.attributes, **row.attributes}
            if attributes != found.attributes:
                change["attributes"] = attributes
            alternates = list(alternates_besides(found.email, found.alternates or (), row.alternates))
            if alternates != (found.alternates or []):
                change["alternates"] = alternates
            wanted = tag_ids(self.session, row.tags, self.tag_cache) if row.tags else {}
            new_tags = {wanted[t] for t in row.tags} - tags_of[found.id]
            if same_import:
                self.summary.merged += 1
            elif change or new_tags:
                self.summary.updated += 1
            else:
                self.summary.unchanged += 1
            if change:
                changes.append({"id": found.id, **change, "import_id": self.import_id, "updated_at": self.now})
            if new_tags:
                touched.append((found.id, row))
        if changes:
            self.session.execute(update(Contact), changes)
        return touched

    def _tag(self, pairs: list[tuple[int, ContactRow]]) -> None:
        names = [tag for _, row in pairs for tag in row.tags]
        if not names:
            return
        ids = tag_ids(self.session, names, self.tag_cache)
        links = [(cid, ids[tag]) for cid, row in pairs for tag in row.tags]
        insert_many(self.session, ContactTag.__table__, _LINKS, links, skip_duplicates=True)  # type: ignore[arg-type]
