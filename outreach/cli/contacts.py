"""`outreach contacts`: import, list, show, add, edit, tag, suppress, export, forget."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.output import (
    LISTED,
    JsonOption,
    LimitOption,
    Listing,
    SegmentOption,
    byte_progress,
    command_group,
    confirm,
    emit_json,
    err,
    out,
    table,
)
from outreach.errors import InvalidValueError
from outreach.untrusted import visible
from outreach.vocabulary import CONTACT_FIELDS, ROLES, SUPPRESSION_REASONS

if TYPE_CHECKING:
    from outreach.contacts.importer import ImportSummary

# The services are imported inside each command: they bring SQLAlchemy, and shell completion and --help load this
# module without running a command.

app = command_group("The contact list.")

Name = Annotated[str | None, typer.Option(help="Full name as it should appear.")]
FirstName = Annotated[str | None, typer.Option(help="First name.")]
LastName = Annotated[str | None, typer.Option(help="Last name.")]
Honorific = Annotated[str | None, typer.Option(help="Mr, Ms, Frau, Madame ... (implies gender).")]
Gender = Annotated[str | None, typer.Option(help="f, m, or empty for unknown.")]
Position = Annotated[str | None, typer.Option(help="Office or job, e.g. 'President of the French Republic'.")]
Role = Annotated[str | None, typer.Option(help=f"One of: {', '.join(ROLES)}.")]
Organization = Annotated[str | None, typer.Option(help="Organization or office.")]
Country = Annotated[str | None, typer.Option(help="Country name or ISO code.")]
Language = Annotated[str | None, typer.Option(help="Language of correspondence (fr, German ...).")]
TimeZone = Annotated[str | None, typer.Option("--time-zone", help="IANA zone, e.g. Europe/Paris.")]
SetAttribute = Annotated[list[str] | None, typer.Option("--set", help="Custom attribute KEY=VALUE (repeatable).")]
Tags = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")]


def _now() -> datetime:
    return datetime.now(UTC)


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError(f"{option} {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def _tags(items: list[str] | None) -> tuple[str, ...]:
    from outreach.contacts.values import tags as split_tags

    return tuple(dict.fromkeys(tag for item in items or [] for tag in split_tags(item)))


def _shell_quoted(text: str) -> str:
    """Quote text for a POSIX shell, always (`Member State` -> `'Member State'`), so a suggestion can be pasted."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _given_fields(ctx: typer.Context) -> dict[str, str | None]:
    """The contact fields given as options (`--name` ... `--time-zone`); None where not given."""
    return {name: ctx.params.get(name) for name in CONTACT_FIELDS}


def _print_import(summary: ImportSummary) -> None:
    verb = "would be" if summary.dry_run else "were"
    err.print(f"Read {summary.source} as {summary.encoding}, separated by {summary.delimiter!r}.")
    if summary.encoding_guessed:
        err.print(
            f"[yellow]The file is not UTF-8; {summary.encoding} was a guess.[/yellow] Check that names with "
            "accents look right (`outreach contacts list`); if not, import again with --encoding and --update."
        )
    read = ", ".join(
        f"{header} -> {target.removeprefix('attr:')}" + (" (custom)" if target.startswith("attr:") else "")
        for header, target in summary.columns
        if target
    )
    skipped = [header for header, target in summary.columns if not target and header]
    # The headers and rejected values are the file's: shown as text (no markup), with controls made visible.
    err.print(visible(f"Columns: {read}" + (f"; ignored: {', '.join(skipped)}" if skipped else "")), markup=False,
              highlight=False)  # fmt: skip
    if summary.attributes:
        shown = f"Kept as custom attributes: {', '.join(summary.attributes)}"
        err.print(visible(shown), markup=False, highlight=False)
    for header, field in summary.suggestions:
        shown = f"  {_shell_quoted(header)} looks like {field}: --map {_shell_quoted(f'{header}={field}')}"
        err.print(visible(shown), markup=False, highlight=False)
    for demoted in summary.demoted:
        shown = (f"{demoted.header!r} holds values that do not look like {demoted.field} (e.g. {demoted.example!r}): "
                 "kept as a custom attribute")  # fmt: skip
        err.print(visible(shown), markup=False, highlight=False)
    counts = summary.counts()
    err.print(
        f"{summary.rows} rows: {counts['imported']} imported, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['merged']} merged duplicates, "
        f"{counts['suppressed']} suppressed, {counts['rejected']} rejected"
        + (f" ({counts['blank']} blank lines skipped)" if counts["blank"] else "")
        + (" - dry run, nothing was written" if summary.dry_run else "")
    )
    for reject in summary.first_rejects:
        err.print(f"  line {reject.line}: {visible(reject.reason)}", markup=False, highlight=False)
    if summary.several_addresses:
        err.print(
            f"{summary.several_addresses} rows held several addresses: the first valid one is the contact's, the "
            "others are kept as its alternates (`contacts show`; `contacts edit ADDRESS --address OTHER` switches)."
        )
    if summary.unusable_addresses:
        err.print(f"{summary.unusable_addresses} parts of such cells were not addresses and were left out:")
        for line, reason in summary.first_unusable:
            err.print(f"  line {line}: {visible(reason)}", markup=False, highlight=False)
    if summary.no_language:
        who = "1 contact has" if summary.no_language == 1 else f"{summary.no_language} contacts have"
        countries = summary.no_language_countries
        have = "has" if len(countries) == 1 else "have"
        err.print(f"{who} no language: {', '.join(countries)} {have} several official languages (CLDR). Fill it "
                  "with --language or a language column.")  # fmt: skip
    if summary.rejects_path:
        err.print(f"Rejected rows {verb} written to {summary.rejects_path}")
    if summary.unchanged and not summary.dry_run:
        err.print("Existing contacts are left as they are; pass --update to apply the file to them.")


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file to import.")],
    role: Annotated[str | None, typer.Option(help="Role for rows whose role column is empty.")] = None,
    language: Annotated[
        str | None, typer.Option(help="Language for rows whose language column is empty (else the country's).")
    ] = None,
    tag: Tags = None,
    update: Annotated[bool, typer.Option(help="Apply the file to contacts that exist already.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check the whole file, write nothing.")] = False,
    strict: Annotated[bool, typer.Option(help="Import nothing if any row is rejected.")] = False,
    check_dns: Annotated[bool, typer.Option(help="Also check that each domain receives mail (needs DNS).")] = False,
    encoding: Annotated[str | None, typer.Option(help="The file's encoding, when detection gets it wrong.")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=field, e.g. Courriel=email.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Import contacts from CSV; rejected rows are counted and written beside the file."""
    from outreach.contacts.directory import checked_fields
    from outreach.contacts.importer import ImportOptions, import_contacts

    defaults = checked_fields({"role": role, "language": language})  # checked as `add` and `edit` check them
    options = ImportOptions(
        role=defaults.get("role"), tags=_tags(tag), update=update, dry_run=dry_run, strict=strict,
        check_dns=check_dns, encoding=encoding, mapping=_pairs(map_, "--map"), language=defaults.get("language"),
    )  # fmt: skip
    sessions = ctx.obj.workspace().sessions
    with byte_progress(f"Importing {file.name}", file.stat().st_size) as advance:
        summary = import_contacts(sessions, file, options, now=_now(), progress=advance)
    if json_output:
        emit_json({
            "source": summary.source, "encoding": summary.encoding, "encoding_guessed": summary.encoding_guessed,
            "delimiter": summary.delimiter,
            "dry_run": summary.dry_run, "rows": summary.rows, **summary.counts(),
            "columns": dict(summary.columns),
            "attributes": summary.attributes,
            "suggestions": [
                {"column": header, "field": field, "map": f"{header}={field}"} for header, field in summary.suggestions
            ],
            "demoted": [{"column": d.header, "field": d.field, "example": d.example} for d in summary.demoted],
            "no_language": summary.no_language, "no_language_countries": summary.no_language_countries,
            "rejects_file": str(summary.rejects_path) if summary.rejects_path else None,
            "rejects": [{"line": r.line, "reason": r.reason} for r in summary.first_rejects],
            "several_addresses": summary.several_addresses, "unusable_addresses": summary.unusable_addresses,
            "unusable": [{"line": line, "reason": reason} for line, reason in summary.first_unusable],
        })  # fmt: skip
    else:
        _print_import(summary)


_LISTING = Listing("contacts", "in the order they were added")


@app.command("list")
def list_command(
    ctx: typer.Context,
    segment: SegmentOption = None,
    limit: LimitOption = LISTED,
    json_output: JsonOption = False,
) -> None:
    """List contacts, all or those of a segment, in the order they were added."""
    from outreach.contacts import directory
    from outreach.contacts.segments import parse_segment

    chosen = parse_segment(segment)
    sessions = ctx.obj.workspace().sessions
    found = directory.list_contacts(sessions, chosen, _LISTING.limit(limit))
    total = _LISTING.total(len(found), limit, lambda: directory.count_contacts(sessions, chosen))
    if json_output:
        emit_json(_LISTING.json([view.as_json() for view in found], total))
        return
    table(
        f"{total} contacts ({chosen})",
        ["email", "name", "role", "country", "lang", "status", "tags"],
        [(v.email, v.name, v.role, v.country, v.language, v.status, ", ".join(v.tags)) for v in found],
    )
    _LISTING.say_shown(len(found), total)


@app.command("show")
def show_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The contact's address.")],
    json_output: JsonOption = False,
) -> None:
    """Show everything known about one contact."""
    from outreach.contacts import directory

    view = directory.show_contact(ctx.obj.workspace().sessions, address)
    if json_output:
        emit_json(view.as_json())
        return
    for key, value in view.as_json().items():
        if key == "attributes":
            for name, text in value.items():
                out.print(visible(f"{name + ' (custom)':>16}: {text}"), markup=False, highlight=False)
        else:
            shown = ", ".join(value) if isinstance(value, list) else ("" if value is None else value)
            out.print(visible(f"{key:>16}: {shown}"), markup=False, highlight=False)


@app.command("add")
def add_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Email address.")],
    name: Name = None, first_name: FirstName = None, last_name: LastName = None, honorific: Honorific = None,
    gender: Gender = None, position: Position = None, role: Role = None, organization: Organization = None,
    country: Country = None, language: Language = None, time_zone: TimeZone = None,
    tag: Tags = None, set_: SetAttribute = None, json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Add one contact."""
    from outreach.contacts import directory

    fields = _given_fields(ctx)
    view = directory.add_contact(
        ctx.obj.workspace().sessions, address, fields, _tags(tag), _pairs(set_, "--set"), now=_now()
    )
    if json_output:
        emit_json(view.as_json())
    else:
        err.print(f"Added {view.email} (id {view.id}).")


@app.command("edit")
def edit_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The contact's address.")],
    name: Name = None, first_name: FirstName = None, last_name: LastName = None, honorific: Honorific = None,
    gender: Gender = None, position: Position = None, role: Role = None, organization: Organization = None,
    country: Country = None, language: Language = None, time_zone: TimeZone = None,
    set_: SetAttribute = None,
    unset: Annotated[list[str] | None, typer.Option(help="Remove a custom attribute (repeatable).")] = None,
    new_address: Annotated[str | None, typer.Option("--address", help="Write to this address from now on (one of "
                           "the contact's alternates, say); the old one is kept as an alternate.")] = None,
    json_output: JsonOption = False,
) -> None:  # fmt: skip
    """Change a contact's fields (an empty value clears one), custom attributes and address."""
    from outreach.contacts import directory

    fields = _given_fields(ctx)
    sessions = ctx.obj.workspace().sessions
    view = directory.edit_contact(
        sessions, address, fields, _pairs(set_, "--set"), tuple(unset or ()), now=_now(), new_address=new_address
    )
    stale = directory.letters_to_old_address(sessions, view.email or address) if new_address else {}
    if json_output:
        emit_json({**view.as_json(), **({"letters_to_old_address": stale} if new_address else {})})
        return
    err.print(f"Updated {view.email}.", markup=False, highlight=False)
    for campaign, count in stale.items():
        err.print(f"{count} letters of {campaign} not sent yet are addressed to another address: "
                  f"`outreach campaigns refresh {campaign}` makes them again to {view.email}.",
                  markup=False, highlight=False)  # fmt: skip


@app.command("tag")
def tag_command(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="The tag.")],
    addresses: Annotated[list[str] | None, typer.Argument(help="Addresses; without them, --segment.")] = None,
    segment: SegmentOption = None,
    remove: Annotated[bool, typer.Option(help="Remove the tag instead of adding it.")] = False,
) -> None:
    """Tag contacts by address or by segment (or remove a tag)."""
    from outreach.contacts import directory
    from outreach.contacts.segments import parse_segment

    if not addresses and segment is None:
        raise InvalidValueError("name the contacts: addresses, or --segment (\"--segment ''\" for everyone)")
    result = directory.tag_contacts(
        ctx.obj.workspace().sessions, tag, parse_segment(segment), list(addresses or []), remove=remove
    )
    err.print(f"{'Removed' if result.removed else 'Tagged'} {result.tag!r} {'from' if result.removed else 'on'} "
              f"{result.contacts} contacts.")  # fmt: skip


@app.command("suppress")
def suppress_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The address never to write to again.")],
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(SUPPRESSION_REASONS)}.")] = "do_not_contact",
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Never write to an address again (it need not be a contact)."""
    from outreach.contacts import directory

    email = directory.suppress_contact(
        ctx.obj.workspace().sessions, address, reason.replace("-", "_"), note, now=_now()
    )
    err.print(f"Suppressed {email} ({reason}).")


@app.command("export")
def export_command(
    ctx: typer.Context,
    segment: SegmentOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV file (default: stdout).")] = None,
) -> None:
    """Export contacts as CSV that `contacts import` reads back."""
    from outreach.contacts import directory
    from outreach.contacts.segments import parse_segment

    sessions = ctx.obj.workspace().sessions
    chosen = parse_segment(segment)
    if output is None:
        count = directory.export_contacts(sessions, chosen, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            count = directory.export_contacts(sessions, chosen, handle)
    err.print(f"Exported {count} contacts" + (f" to {output}." if output else "."))


@app.command("forget")
def forget_command(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The person's address.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Erase a person from every table (GDPR); a keyed hash of the address stays so no import brings them back."""
    from outreach.contacts.erasing import forget_contact

    sessions = ctx.obj.workspace().sessions
    if not yes:  # with --yes, what was erased is said after, from the erasure itself
        ahead = forget_contact(sessions, address, now=_now(), dry_run=True)  # counted by the erasure, rolled back
        rows = ", ".join(f"{table} {count}" for table, count in ahead.rows.items() if count)
        summary = [f"Forgetting {address} erases these rows: {rows}."
                   + (f" Its letters not sent yet are withdrawn: {ahead.cancelled}." if ahead.cancelled else "")
                   + " The address stays only as a keyed hash, so that no import brings it back."]  # fmt: skip
        confirm(summary, f"Forget {address}? This cannot be undone.", yes=False)
    erasure = forget_contact(sessions, address, now=_now())
    if json_output:
        emit_json(erasure.as_json())
        return
    who = f"contact {erasure.contact_id}" if erasure.contact_id is not None else "the address (no contact)"
    erased = ", ".join(f"{table} {count}" for table, count in erasure.rows.items() if count)
    err.print(f"Forgot {who}. Rows erased: {erased}. The address stays only as a keyed hash.")
    if erasure.cancelled:
        count = erasure.cancelled
        err.print("1 letter not sent yet was cancelled." if count == 1 else f"{count} letters not sent yet were "
                  "cancelled.")  # fmt: skip
    for campaign in erasure.refresh:
        err.print(f"Letters of {campaign} not sent yet were made with the signatory list they were on: "
                  f"`outreach campaigns refresh {campaign}` makes them again without them.", markup=False)  # fmt: skip
    if erasure.database == "postgresql":
        err.print("PostgreSQL keeps the old row versions in its files until VACUUM reclaims them: run VACUUM (VACUUM "
                  "FULL rewrites the tables at once, and locks them while it does).")  # fmt: skip
    elif erasure.checkpointed is False:
        err.print("Another outreach process is reading the database: the erased bytes leave its WAL file at the "
                  "next checkpoint (when that process ends).")  # fmt: skip
    err.print("Not in the database, so not erased: the messages in the inbox, the files imported, backups.")
