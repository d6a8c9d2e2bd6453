"""`outreach templates`: list them, check them against contacts, render one copy to look at."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from outreach.cli.completion import complete_template
from outreach.cli.output import JsonOption, SegmentOption, command_group, count_progress, emit_json, err, table
from outreach.errors import InvalidValueError, OutreachError
from outreach.untrusted import visible

if TYPE_CHECKING:
    from outreach.rendering.previewing import CheckReport

# Rendering is imported inside each command: it brings Jinja2 and SQLAlchemy, and shell completion and --help load
# this module without running a command.

app = command_group("The letters: list, check, render.")

Follows = Annotated[
    str | None,
    typer.Option(
        help="For a follow-up: the template of the first letter (default: NAME without -reminder).",
        autocompletion=complete_template,
    ),
]


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the workspace's templates and their languages."""
    from outreach.rendering.folders import template_languages, template_names

    root = ctx.obj.workspace().templates
    found = [{"name": name, "languages": template_languages(root, name)} for name in template_names(root)]
    if json_output:
        emit_json(found)
        return
    table(f"{len(found)} templates in {root}", ["template", "languages"],
          [(t["name"], ", ".join(t["languages"])) for t in found])  # fmt: skip


@app.command("check")
def check_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="The template (default: every one).", autocompletion=complete_template)
    ] = None,
    segment: SegmentOption = None,
    follows: Follows = None,
    json_output: JsonOption = False,
) -> None:
    """Render templates for every contact of a segment; report every failure, with contact, file and line, and
    every contact whose letter or form of address falls back to another language."""
    from outreach.contacts.segments import parse_segment
    from outreach.rendering.folders import first_letter_of, template_names
    from outreach.rendering.previewing import TEMPLATE, check_template

    workspace = ctx.obj.workspace()
    names = [name] if name else template_names(workspace.templates)
    chosen = parse_segment(segment)
    reports = []
    for each in names:
        with count_progress(f"Checking {each}") as update:
            reports.append(check_template(
                workspace.sessions, workspace.templates, each, chosen, workspace.sender(), now=datetime.now(UTC),
                follows=follows or first_letter_of(workspace.templates, each), limits=workspace.render_limits(),
                progress=update,
            ))  # fmt: skip
    failed = sum(len(report.failures) for report in reports)
    if json_output:
        emit_json([
            {"template": r.template, "checked": r.checked, "languages": r.languages,
             "fallbacks": [{"language": f.language, "written_in": f.written_in, "part": f.part,
                            "count": len(f.contacts), "contacts": f.contacts} for f in r.fallbacks],
             "unchecked_forms": [{"language": u.form.language, "role": u.form.role, "country": u.form.country,
                                  "gender": u.form.gender, "salutation": u.form.salutation, "address": u.form.address,
                                  "source": u.form.source, "count": len(u.contacts), "contacts": u.contacts}
                                 for u in r.unchecked.values()],
             "failures": [{"contact": email, "where": e.where, "error": e.message} for email, e in r.failures]}
            for r in reports
        ])  # fmt: skip
    else:
        for report in reports:
            languages = ", ".join(f"{n} in {language}" for language, n in sorted(report.languages.items()))
            err.print(f"{report.template}: {report.checked} copies checked, {len(report.failures)} failed"
                      + (f" ({languages})" if languages else ""))  # fmt: skip
            for fallback in report.fallbacks:  # a letter, or its form of address, not in the contact's language
                n, wanted, used = len(fallback.contacts), fallback.language, fallback.written_in
                why = (f"written in {used} (no {wanted} template)" if fallback.part == TEMPLATE
                       else f"addressed in {used} (no {wanted} form of address for them)")  # fmt: skip
                shown = ", ".join(fallback.contacts[:3]) + (f" and {n - 3} more" if n > 3 else "")
                err.print(visible(f"  {n} {'contact' if n == 1 else 'contacts'} in {wanted} {why}: {shown}"),
                          markup=False, highlight=False)  # fmt: skip
            _print_unchecked(report)
            for problem, emails in report.grouped():
                shown = ", ".join(emails[:3]) + (f" and {len(emails) - 3} more" if len(emails) > 3 else "")
                err.print(visible(f"  {problem}: {len(emails)} contacts ({shown})"), markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


def _print_unchecked(report: CheckReport) -> None:
    """Say which copies open with a form of address no protocol source was read for, the most used form first."""
    if not report.unchecked:
        return
    copies = len({email for found in report.unchecked.values() for email in found.contacts})
    err.print(f"  {copies} {'copy opens' if copies == 1 else 'copies open'} with a form of address not yet checked "
              "against a protocol source; have someone fluent confirm it (`outreach templates salutations "
              "--unchecked`):", markup=False, highlight=False)  # fmt: skip
    ranked = sorted(report.unchecked.values(), key=lambda found: -len(found.contacts))
    for found in ranked[:5]:
        form, n = found.form, len(found.contacts)
        where = f"{form.language}, {form.role}" + (f", {form.country}" if form.country else "")
        err.print(visible(f"    {form.salutation!r} ({where}): {n} {'contact' if n == 1 else 'contacts'}"),
                  markup=False, highlight=False)  # fmt: skip
    if len(ranked) > 5:
        err.print(f"    and {len(ranked) - 5} more forms (--json lists them all)", markup=False, highlight=False)


@app.command("render")
def render_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The template.", autocompletion=complete_template)],
    contact: Annotated[str, typer.Option("--contact", "-c", help="The contact's address.")],
    format_: Annotated[str, typer.Option("--format", "-f", help="text, html or eml.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file (default: stdout).")] = None,
    follows: Follows = None,
) -> None:
    """Render one copy for one contact, to look at before anything is queued."""
    from outreach.contacts.tokens import NO_ONE, unsubscribe_token
    from outreach.rendering.folders import first_letter_of
    from outreach.rendering.letters import compose, dated, mailbox_of
    from outreach.rendering.previewing import render_for

    if format_ not in ("text", "html", "eml"):
        raise InvalidValueError(f"--format {format_!r} is not text, html or eml")
    workspace = ctx.obj.workspace()
    now = datetime.now(UTC)
    copy, recipient = render_for(
        workspace.sessions, workspace.templates, name, contact, workspace.sender(), now=now,
        follows=follows or first_letter_of(workspace.templates, name), limits=workspace.render_limits(),
    )  # fmt: skip
    if format_ == "html" and copy.html is None:
        raise OutreachError(f"template {name!r} has no HTML body in {copy.language}")
    if format_ == "eml":  # the letter as the server would receive it, with a Message-ID of its own
        # and a one-click link of the real shape that names no one: a copy outside any campaign unsubscribes nobody
        token = unsubscribe_token(workspace.secret, NO_ONE, None)
        data = dated(compose(copy, mailbox_of(recipient), workspace.sender(), unsubscribe_token=token).data, now)
    elif format_ == "html":
        data = (copy.html or "").encode("utf-8")
    else:
        data = f"Subject: {copy.subject}\n\n{copy.text}".encode()
    if output:
        output.write_bytes(data)
        err.print(f"Wrote the {copy.language} copy of {name!r} for {recipient.email} to {output}.")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    if copy.language != (recipient.language or "en"):
        err.print(f"note: {name!r} has no {recipient.language} version; the copy is in {copy.language}.")


@app.command("salutations")
def salutations_command(
    country: Annotated[
        str | None, typer.Option(help="Only the forms a contact of this country can get: its own and the generic ones.")
    ] = None,
    role: Annotated[str | None, typer.Option(help="Only the forms of this role.")] = None,
    language: Annotated[str | None, typer.Option(help="Only the forms of this language.")] = None,
    unchecked: Annotated[bool, typer.Option(help="Only the forms not yet checked against a protocol source.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Show the forms of address for review: salutation, address line, the source each follows and whether it was
    checked there. With --country, which form a contact of that country gets, by gender."""
    from outreach.contacts import values
    from outreach.rendering.salutations import review_forms, shipped_forms

    try:
        chosen_country = values.country(country) if country else None
        chosen_role = values.role(role) if role else None
        chosen_language = values.language(language) if language else None
    except values.InvalidValueError as error:
        raise InvalidValueError(str(error)) from None
    reviewed = review_forms(shipped_forms(), country=chosen_country, role=chosen_role, language=chosen_language)
    if unchecked:
        reviewed = [r for r in reviewed if not r.form.checked]

    def genders(found: tuple[str | None, ...] | None) -> str:
        return ", ".join("unknown" if gender is None else gender for gender in found or ()) or "-"

    if json_output:
        emit_json({
            "forms": [{"language": r.form.language, "role": r.form.role, "country": r.form.country,
                       "applies_to": r.applies_to, "gender": r.form.gender, "salutation": r.form.salutation,
                       "address": r.form.address, "source": r.form.source, "checked": r.form.checked,
                       **({"chosen_for": ["unknown" if g is None else g for g in r.chosen_for]}
                          if r.chosen_for is not None else {})}
                      for r in reviewed],
            "total": len(reviewed),
        })  # fmt: skip
        return
    columns = ["language", "role", "applies to", "gender", "salutation", "address line", "checked", "source"]
    rows = [[r.form.language, r.form.role, r.applies_to, r.form.gender or "any", r.form.salutation, r.form.address,
             "yes" if r.form.checked else "no", r.form.source]
            + ([genders(r.chosen_for)] if chosen_country else []) for r in reviewed]  # fmt: skip
    title = (f"{len(reviewed)} {'unchecked ' if unchecked else ''}forms of address"
             + (f" for a contact in {chosen_country}" if chosen_country else ""))  # fmt: skip
    table(title, columns + (["first choice for gender"] if chosen_country else []), rows)
