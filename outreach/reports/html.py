"""The report as one self-contained HTML page: inline CSS and SVG charts drawn here, nothing fetched from anywhere.

The page makes no network request at all (no fonts, scripts, images or links outside itself; a Content Security
Policy says so to the browser as well), so it can be mailed, archived and opened offline. Every value from the
database is escaped, reply texts above all: they are what strangers wrote; and what a browser would obey rather than
show (bidi overrides that reorder a line, zero-width and control characters) is written as visible escapes
(outreach/untrusted.py). It prints on white, a campaign to a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

from outreach.reports.figures import (
    MISSING,
    OUTCOME_FIGURES,
    Breakdown,
    CampaignReport,
    Counts,
    DayCount,
    GrowthPoint,
    Report,
    format_duration,
    format_rate,
)
from outreach.untrusted import visible

# Muted colours that stay apart in print and for most colour-blind readers; one per response kind.
KIND_COLOURS = {
    "reply": "#4f8a6b",
    "auto_reply": "#c9a94d",
    "hard_bounce": "#b5533c",
    "soft_bounce": "#e0a387",
    "delayed": "#9e9e9e",
    "unsubscribe": "#7d6b9e",
    "complaint": "#7a2531",
    "unknown": "#c4c4c4",
    "unreadable": "#e8e8e8",
}
FUNNEL_COLOURS = ("#9aa5b1", "#5b7fa6", "#4f8a6b")

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; background: #fff; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; } h2 { font-size: 1.3rem; margin: 2.5rem 0 .3rem; }
h3 { font-size: 1.05rem; margin: 1.8rem 0 .5rem; color: #333; }
.muted, caption, figcaption { color: #666; font-size: .9rem; }
caption { text-align: left; padding-bottom: .3rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .9rem;
        font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #e3e3e3; text-align: right; vertical-align: top;
         white-space: nowrap; }
td.text { white-space: normal; }
table.breakdown { font-size: .82rem; } table.breakdown th, table.breakdown td { padding: .25rem .3rem; }
th:first-child, td:first-child, td.text, table.steps th:nth-child(2) { text-align: left; }
thead th { border-bottom: 2px solid #bbb; font-weight: 600; white-space: normal; vertical-align: bottom; }
tr.group th { text-align: left; color: #666; font-weight: 600; padding-top: .8rem; }
dl.figures { display: flex; flex-wrap: wrap; gap: .5rem 2rem; margin: 1rem 0; }
dl.figures div { min-width: 7rem; } dl.figures dt { color: #666; font-size: .85rem; }
dl.figures dd { margin: 0; font-size: 1.4rem; font-weight: 600; }
figure { margin: 1rem 0; } svg { max-width: 100%; height: auto; } svg text { font-size: 12px; fill: #333; }
.legend { font-size: .85rem; color: #444; } .legend span { margin-right: 1rem; white-space: nowrap; }
blockquote { margin: .3rem 0 0; padding-left: .8rem; border-left: 3px solid #ccd5dd; white-space: pre-wrap;
             overflow-wrap: anywhere; }
.reply { padding: .6rem 0; border-bottom: 1px solid #eee; }
table.unanswered th, table.unanswered td { text-align: left; }
a { color: #2f5d8a; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  section.campaign + section.campaign, section.signatories { break-before: page; }
  table, figure, .reply, dl.figures { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document that needs nothing but itself."""
    title = f"Report: {report.campaign}" if report.campaign else "Report: all campaigns"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Belt and braces: even a value that escaped escaping could not make the browser fetch anything.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="muted">Generated {_e(f"{report.generated_at:%Y-%m-%d %H:%M} UTC")}. Every figure counts '
        "contacts; days are UTC dates.</p></header>",
    ]
    if report.campaign is None:
        parts.append(_overview(report))
    parts.extend(_campaign(campaign) for campaign in report.campaigns)
    parts.append(_signatories(report.signatories))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _e(value: object, *, lines: bool = False) -> str:
    """Any value as HTML text or attribute content, its hidden characters made visible (with `lines`, for text
    shown as it was written, its line ends and tabs kept)."""
    return escape(visible(MISSING if value is None else str(value), lines=lines), quote=True)


def _anchor(name: str) -> str:
    return "campaign-" + "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


def _overview(report: Report) -> str:
    """One line per campaign, each linking to its section below."""
    if not report.campaigns:
        return '<p class="muted">No campaigns yet.</p>'
    rows = []
    for campaign in report.campaigns:
        c = campaign.figures.total
        link = f'<a href="#{_e(_anchor(campaign.name))}">{_e(campaign.name)}</a>'
        rows.append(f"<tr><td>{link}</td><td class=\"text\">{_e(campaign.status)}</td>" + _cells(
            c.targeted, c.sent, c.failed, c.hard_bounced + c.soft_bounced, c.replied, format_rate(c.response_rate),
            format_duration(c.median_reply_seconds)) + "</tr>")  # fmt: skip
    head = _head("campaign", "status", "targeted", "sent", "failed", "bounced", "replied", "rate", "first reply")
    return f"<section><h2>Campaigns</h2><table>{head}<tbody>{''.join(rows)}</tbody></table></section>"


def _campaign(campaign: CampaignReport) -> str:
    """A campaign's section: its figures, the funnel, responses per day, the tables and the replies."""
    total = campaign.figures.total
    figures = [("targeted", total.targeted), ("sent", total.sent), ("replied", total.replied),
               ("response rate", format_rate(total.response_rate)),
               ("median time to first reply", format_duration(total.median_reply_seconds))]  # fmt: skip
    return "\n".join(
        [
            f'<section class="campaign" id="{_e(_anchor(campaign.name))}">',
            f"<h2>{_e(campaign.name)}</h2>",
            f'<p class="muted">{_e(campaign.status)}, created {_e(f"{campaign.created_at:%Y-%m-%d}")}</p>',
            '<dl class="figures">'
            + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in figures)
            + "</dl>",
            "<h3>From targeted to replied</h3>",
            _funnel(total),
            "<h3>Responses per day</h3>",
            _timeline(campaign.responses_by_day),
            "<h3>By country and role</h3>",
            _breakdown_table(campaign.figures),
            "<h3>Steps</h3>",
            _steps_table(campaign),
            "<h3>Outcomes</h3>",
            _outcomes(campaign.outcomes),
            f"<h3>Replies ({len(campaign.replies)})</h3>",
            _replies(campaign),
            f"<h3>Not answered ({campaign.unanswered.total})</h3>",
            _unanswered(campaign),
            "</section>",
        ]
    )


def _funnel(counts: Counts) -> str:
    """Horizontal bars: targeted, sent, replied, each with its share of those targeted."""
    stages = [("targeted", counts.targeted), ("sent", counts.sent), ("replied", counts.replied)]
    width, label_w, row_h = 640, 90, 34
    plot = width - label_w - 110
    top = max(counts.targeted, 1)
    rows = []
    for index, ((label, value), colour) in enumerate(zip(stages, FUNNEL_COLOURS, strict=True)):
        y = index * row_h
        bar = max(value / top * plot, 1.5 if value else 0)
        share = f" ({value / counts.targeted:.0%})" if counts.targeted and index else ""
        rows.append(
            f'<text x="0" y="{y + 21}">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y + 6}" width="{bar:.1f}" height="{row_h - 12}" rx="2" fill="{colour}">'
            f"<title>{_e(label)}: {value}</title></rect>"
            f'<text x="{label_w + bar + 8:.1f}" y="{y + 21}">{value}{_e(share)}</text>'
        )
    height = row_h * len(stages)
    description = ", ".join(f"{label} {value}" for label, value in stages)
    return (f'<figure><svg viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(description)}">{"".join(rows)}</svg></figure>')  # fmt: skip


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _timeline(days: Sequence[DayCount]) -> str:
    """Stacked bars, one per day from the first response to the last (quiet days included), coloured by kind."""
    if not days:
        return '<p class="muted">No responses yet.</p>'
    by_day = {day.day: day.counts for day in days}
    span = _days(days[0].day, days[-1].day)
    width, height, left, bottom, top_pad = 640, 180, 34, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top_pad
    peak = max(sum(counts.values()) for counts in by_day.values())
    slot = plot_w / len(span)
    bar_w = max(slot * 0.8, 1.0)
    shapes = [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 4}" y2="{top_pad + plot_h}" stroke="#bbb"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{width - 4}" y2="{top_pad}" stroke="#eee"/>',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    for index, day in enumerate(span):
        y = float(top_pad + plot_h)
        for kind, count in by_day.get(day, {}).items():
            h = count / peak * plot_h
            y -= h
            label = f"{day}: {count} {kind.replace('_', ' ')}"
            shapes.append(
                f'<rect x="{left + index * slot + (slot - bar_w) / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{KIND_COLOURS.get(kind, "#999")}"><title>{_e(label)}</title></rect>'
            )
    labels = [(0, span[0])] if len(span) == 1 else [(0, span[0]), (len(span) - 1, span[-1])]
    for index, day in labels:
        x = left + (index + 0.5) * slot
        anchor = "start" if index == 0 and len(span) > 1 else "end" if index else "middle"
        shapes.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">{_e(day.isoformat())}</text>')
    kinds = list(dict.fromkeys(kind for counts in by_day.values() for kind in counts))
    legend = "".join(
        f'<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" '
        f'fill="{KIND_COLOURS.get(kind, "#999")}"/></svg> {_e(kind.replace("_", " "))} '
        f"({sum(counts.get(kind, 0) for counts in by_day.values())})</span>"
        for kind in kinds
    )
    total = sum(sum(counts.values()) for counts in by_day.values())
    return (f'<figure><svg viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{total} responses from {span[0]} to {span[-1]}">'
            f'{"".join(shapes)}</svg><figcaption class="legend">{legend}</figcaption></figure>')  # fmt: skip


COLUMNS = ("targeted", "sent", "failed", "hard bounced", "soft bounced", "replied", "auto-replied", "unsubscribed",
           "complained", "rate", "first reply")  # fmt: skip


def _values(c: Counts) -> tuple[object, ...]:
    return (c.targeted, c.sent, c.failed, c.hard_bounced, c.soft_bounced, c.replied, c.auto_replied, c.unsubscribed,
            c.complained, format_rate(c.response_rate), format_duration(c.median_reply_seconds))  # fmt: skip


def _breakdown_table(figures: Breakdown) -> str:
    """The campaign's figures for everyone, then per country, then per role."""
    span = len(COLUMNS) + 1
    rows = [f"<tr><th>all</th>{_cells(*_values(figures.total))}</tr>"]
    rows.append(f'<tr class="group"><th colspan="{span}">Country</th></tr>')
    rows += [f"<tr><td>{_e(key)}</td>{_cells(*_values(c))}</tr>" for key, c in figures.by_country.items()]
    rows.append(f'<tr class="group"><th colspan="{span}">Role</th></tr>')
    rows += [
        f"<tr><td>{_e(role.replace('_', ' '))}</td>{_cells(*_values(c))}</tr>" for role, c in figures.by_role.items()
    ]
    return f'<table class="breakdown">{_head("", *COLUMNS)}<tbody>{"".join(rows)}</tbody></table>'


def _steps_table(campaign: CampaignReport) -> str:
    """One row per step; queued, unknown and skipped besides the usual figures."""
    rows = []
    for step in campaign.steps:
        c = step.figures.total
        rows.append(f"<tr><td>{step.position}</td><td class=\"text\">{_e(step.template)}</td>" + _cells(
            c.targeted, c.queued, c.sent, c.failed, c.unknown, c.skipped, c.hard_bounced + c.soft_bounced, c.replied,
            format_rate(c.response_rate), format_duration(c.median_reply_seconds)) + "</tr>")  # fmt: skip
    head = _head("step", "template", "targeted", "queued", "sent", "failed", "unknown", "skipped", "bounced",
                 "replied", "rate", "first reply")  # fmt: skip
    return f'<table class="steps">{head}<tbody>{"".join(rows)}</tbody></table>'


def _outcomes(outcomes: dict[str, int]) -> str:
    rows = "".join(f"<tr><td>{_e(outcome)}</td>{_cells(outcomes.get(outcome, 0))}</tr>" for outcome in OUTCOME_FIGURES)
    return f'<table class="outcomes" style="width:auto">{_head("outcome", "contacts")}<tbody>{rows}</tbody></table>'


def _replies(campaign: CampaignReport) -> str:
    """What people wrote, newest first."""
    if not campaign.replies:
        return '<p class="muted">No replies yet.</p>'
    items = []
    for reply in campaign.replies:
        about = [f"{reply.received_at:%Y-%m-%d %H:%M} UTC", reply.kind, reply.channel, reply.campaign]
        if reply.outcome and reply.outcome != "none":
            about.append(reply.outcome)
        items.append(f'<div class="reply"><strong>{_e(reply.contact)}</strong> '
                     f'<span class="muted">{_e(" · ".join(about))}</span>'
                     f"<blockquote>{_e(reply.text.strip() or '(no text)', lines=True)}</blockquote></div>")  # fmt: skip
    return "".join(items)


def _unanswered(campaign: CampaignReport) -> str:
    """Who was sent the letter and has not answered (heads first), to phone; a long list ends with how many more
    there are and the command that exports them all."""
    unanswered = campaign.unanswered
    if not unanswered.total:
        return '<p class="muted">No one: everyone who was sent the letter has answered, or nothing was sent yet.</p>'
    rows = "".join(
        f'<tr><td class="text">{_e(c.name)}</td><td class="text">{_e(c.position)}</td>'
        f'<td class="text">{_e(c.role and c.role.replace("_", " "))}</td><td class="text">{_e(c.country)}</td>'
        f'<td class="text">{_e(c.email)}</td><td>{_e(c.sent_at and f"{c.sent_at:%Y-%m-%d}")}</td></tr>'
        for c in unanswered.contacts
    )
    head = _head("name", "position", "role", "country", "email", "sent")
    table = f'<table class="unanswered">{head}<tbody>{rows}</tbody></table>'
    note = ('<p class="muted">Sent the letter; no reply, bounce, unsubscribe or complaint since (an out-of-office '
            "is not an answer). Heads of state and government first.</p>")  # fmt: skip
    if unanswered.more:
        command = f"outreach contacts export --segment campaign:{campaign.name}=no-reply"
        table += f'<p class="more">and {unanswered.more} more, export with <code>{_e(command)}</code></p>'
    return note + table


def _signatories(points: Sequence[GrowthPoint]) -> str:
    """The signatory list over time: a step line of the running total, and the latest days."""
    if not points:
        return '<section class="signatories"><h2>Signatories</h2><p class="muted">No signatories yet.</p></section>'
    width, height, left, bottom, top_pad = 640, 180, 40, 22, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    first, last = points[0].day, points[-1].day
    days = max((last - first).days, 1)
    peak = points[-1].total

    def x(day: date) -> float:
        return left + (day - first).days / days * plot_w if last != first else left + plot_w / 2

    def y(total: int) -> float:
        return top_pad + plot_h - total / peak * plot_h

    path, previous = [], 0
    for point in points:  # a step line: the total holds until the next day someone signed
        path.append(f"{x(point.day):.1f},{y(previous):.1f} {x(point.day):.1f},{y(point.total):.1f}")
        previous = point.total
    dots = "".join(
        f'<circle cx="{x(p.day):.1f}" cy="{y(p.total):.1f}" r="2.5" fill="#5b7fa6">'
        f"<title>{_e(f'{p.day}: +{p.added}, {p.total} in all')}</title></circle>"
        for p in points
    )
    shapes = (
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" y2="{top_pad + plot_h}" stroke="#bbb"/>'
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{peak}</text>'
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>'
        f'<polyline points="{" ".join(path)}" fill="none" stroke="#5b7fa6" stroke-width="2"/>{dots}'
        f'<text x="{left}" y="{height - 6}">{_e(first.isoformat())}</text>'
        + (f'<text x="{width - 10}" y="{height - 6}" text-anchor="end">{_e(last.isoformat())}</text>'
           if last != first else "")
    )  # fmt: skip
    recent = "".join(f"<tr><td>{_e(p.day.isoformat())}</td>{_cells(p.added, p.total)}</tr>" for p in points[-7:][::-1])
    return (f'<section class="signatories"><h2>Signatories</h2><p class="muted">{peak} in all, the latest on '
            f"{_e(last.isoformat())}.</p>"
            f'<figure><svg viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{peak} signatories by {_e(last.isoformat())}">{shapes}</svg>'
            f"</figure><table style=\"width:auto\">{_head('day', 'signed', 'in all')}<tbody>{recent}</tbody></table>"
            "</section>")  # fmt: skip


def _head(*columns: str) -> str:
    return "<thead><tr>" + "".join(f"<th>{_e(column)}</th>" for column in columns) + "</tr></thead>"


def _cells(*values: object) -> str:
    return "".join(f"<td>{_e(value)}</td>" for value in values)
