"""Reports on a workspace with known events: a campaign sent to a real SMTP server, a follow-up with some skipped,
and replies, auto-replies, bounces, an unsubscribe and a complaint read from a Maildir; every figure checked, in
the service, as JSON and CSV, and as an HTML page that references nothing outside itself."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select, update

from outreach.campaigns.catalog import add_follow_up, create_campaign
from outreach.campaigns.queueing import queue_followups, queue_step
from outreach.db.models import Contact, OutboxMessage, Response, Signatory
from outreach.reports.collect import collect_report
from outreach.reports.figures import CSV_COLUMNS, Counts, GrowthPoint, Report
from outreach.reports.html import render_html
from outreach.responses.polling import poll
from outreach.responses.recording import add_response, mark_outcome
from outreach.responses.sources import MaildirSource
from outreach.responses.views import list_responses

from .conftest import Env
from .smtp_server import FaultyHandler
from .test_import import do_import
from .test_responses import INBOX, bounce, maildir, reply
from .test_sending import NOW, SENDER, Clock, drain, sending, server

__all__ = ["server"]  # fixtures

SAMPLES = Path(__file__).parent / "samples" / "inbound"
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)
# p00-p11: every third a head of state, the rest members of parliament; p00-p05 in France, p06-p11 in Germany.
P = [f"p{n:02d}@mail{n % 3}.example.org" for n in range(12)]
ROLE = {address: "head_of_state" if n % 3 == 0 else "mp" for n, address in enumerate(P)}
SCRIPT = "Non merci. <script>alert('x')</script> & goodbye"
REPORTED_AT = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def set_received(env: Env, address: str, kind: str, at: datetime) -> None:
    with env.sessions.begin() as session:
        contact_id = session.scalars(select(Contact.id).where(Contact.email == address)).one()
        done = session.execute(update(Response).where(Response.contact_id == contact_id, Response.kind == kind)
                               .values(received_at=at))  # fmt: skip
        assert done.rowcount == 1  # type: ignore[attr-defined]


def complaint(address: str, original: str) -> bytes:
    """The sample abuse report (RFC 5965), about our letter to `address`."""
    raw = (SAMPLES / "complaint-arf-abuse.eml").read_bytes()
    return raw.replace(b"e.virtanen@eduskunta.example", address.encode()).replace(
        b"<2f3a4b5c.20250410T091200@appeal.example.org>", original.encode()
    )


@pytest.fixture
def events(env: Env, server: tuple[FaultyHandler, int]) -> Env:
    """The known events, each at a time set explicitly:

    - 29 Nov 09:30: the first letter (step 0) goes to all 12 but p07, whose server refuses it (5.1.1: failed);
    - responses to it: replies from p00 (2 h later) and p04 (a day later, with a <script> in it), out-of-office
      notes from p01 and p08, a hard bounce for p02, a soft one for p05, an unsubscribe from p09, a complaint about
      p10, and a reply from a stranger that matches nothing;
    - 6 Dec 09:30: the follow-up (step 1), skipped for p00 and p04 (replied), p02 (bounced), p09 (unsubscribed)
      and p10 (complained); sent to p01, p03, p05, p06, p08; held for p11;
    - 6 Dec 15:30: p06 answers the follow-up by phone; outcomes: p00 signed, p04 declined, p06 interested;
    - two signatories from a list (1 Nov: one signed then, one without a date, added then).
    """
    handler, port = server
    do_import(env, env.write("list.csv", "email,name,country,language,role\n" + "".join(
        f"{a},Person {n:02d},{'FR' if n < 6 else 'DE'},en,{ROLE[a]}\n" for n, a in enumerate(P))))  # fmt: skip
    create_campaign(env.sessions, "wave", "appeal", "", sender=None, reply_to=None, now=NOW)
    create_campaign(env.sessions, "later", "appeal", "country:DE", sender=None, reply_to=None, now=NOW)
    queue_step(env.sessions, env.root / "templates", "wave", SENDER, now=NOW)
    handler.reject[P[7]] = f"550 5.1.1 <{P[7]}>: User unknown"
    assert drain(env, sending(port, Clock())).sent == 11
    with env.sessions.begin() as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.state == "sent").values(sent_at=NOW))
        sent = {r: m for r, m in session.execute(select(OutboxMessage.recipient, OutboxMessage.message_id))}

    away = "Auto-Submitted: auto-replied\r\n"
    unsubscribe = reply(P[9], "<unrelated@elsewhere.example>", "unsubscribe", subject="unsubscribe")
    unsubscribe = unsubscribe.replace(b"To: European Appeal <appeal@example.org>", b"To: unsubscribe@example.org")
    folder = maildir(env.root, [
        reply(P[0], sent[P[0]], "Yes, I will sign."),
        reply(P[4], sent[P[4]], SCRIPT),
        reply(P[1], sent[P[1]], "I am out of the office until Monday.", subject="Automatic reply", extra=away),
        reply(P[8], sent[P[8]], "Ich bin nicht im Büro.", subject="Abwesenheitsnotiz", extra=away),
        bounce(P[2], sent[P[2]], "5.1.1", n=1),
        bounce(P[5], sent[P[5]], "4.2.2", n=2),
        unsubscribe,
        complaint(P[10], sent[P[10]]),
        reply("stranger@nowhere.example", "<nothing@nowhere.example>", "Who are you?"),
    ])  # fmt: skip
    polled = poll(env.sessions, MaildirSource(folder), INBOX, now=lambda: NOW + 3 * DAY)
    assert dict(polled.kinds) == {"reply": 3, "auto_reply": 2, "hard_bounce": 1, "soft_bounce": 1,
                                  "unsubscribe": 1, "complaint": 1}  # fmt: skip
    for address, kind, at in [
        (P[0], "reply", NOW + 2 * HOUR), (P[4], "reply", NOW + DAY), (P[1], "auto_reply", NOW + 5 * HOUR / 60),
        (P[8], "auto_reply", NOW + HOUR / 2), (P[2], "hard_bounce", NOW + HOUR / 60),
        (P[5], "soft_bounce", NOW + DAY + HOUR / 2), (P[9], "unsubscribe", NOW + DAY + 2.5 * HOUR),
        (P[10], "complaint", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
    ]:  # fmt: skip
        set_received(env, address, kind, at)

    add_follow_up(env.sessions, "wave", "appeal-reminder", "7d", "replied,bounced,unsubscribed", now=NOW)
    followed = queue_followups(env.sessions, env.root / "templates", SENDER, now=NOW + WEEK)
    assert (followed.queued, followed.skipped) == (6, {"replied": 2, "bounced": 1, "unsubscribed": 1,
                                                       "do_not_contact": 1})  # fmt: skip
    with env.sessions.begin() as session:
        follow_ups = update(OutboxMessage).where(OutboxMessage.thread_id.is_not(None))
        session.execute(follow_ups.where(OutboxMessage.recipient == P[11]).values(state="held"))
    clock = Clock()
    clock.now = NOW + WEEK
    assert drain(env, sending(port, clock)).sent == 5
    with env.sessions.begin() as session:
        session.execute(follow_ups.where(OutboxMessage.state == "sent").values(sent_at=NOW + WEEK))

    phoned = add_response(env.sessions, P[6], "phone", "Call me after the summit.", now=NOW + WEEK + 6 * HOUR)
    replies = {view.contact: view for view in list_responses(env.sessions, kind="reply")}
    mark_outcome(env.sessions, replies[P[0]].id, "signed", now=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    mark_outcome(env.sessions, replies[P[4]].id, "declined", now=NOW + 3 * DAY)
    mark_outcome(env.sessions, phoned.id, "interested", now=NOW + WEEK + 6 * HOUR)
    with env.sessions.begin() as session:
        session.add_all([
            Signatory(name="A. Listed", line="", group="signatories", signed_at=None,
                      created_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
            Signatory(name="B. Dated", line="", group="signatories", signed_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
                      created_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC)),
        ])  # fmt: skip
    return env


def counts(**given: float | None) -> Counts:
    return Counts(**given)  # type: ignore[arg-type]


def test_every_figure_of_the_campaign_its_steps_roles_and_countries(events: Env) -> None:
    report = collect_report(events.sessions, "wave", now=REPORTED_AT)
    assert (report.campaign, report.generated_at, [c.name for c in report.campaigns]) == ("wave", REPORTED_AT, ["wave"])
    [wave] = report.campaigns
    # Median time to first reply, from each contact's first letter: p00 2 h, p04 1 d, p06 7 d 6 h (the phone call).
    assert wave.figures.total == counts(
        targeted=12, queued=1, sent=11, failed=1, unknown=0, cancelled=0, skipped=5, hard_bounced=1, soft_bounced=1,
        replied=3, auto_replied=2, unsubscribed=1, complained=1, response_rate=3 / 11, median_reply_seconds=86400.0,
    )  # fmt: skip
    first, follow_up = wave.steps
    assert (first.position, first.template, follow_up.position, follow_up.template) == (
        0, "appeal", 1, "appeal-reminder")  # fmt: skip
    assert first.figures.total == counts(
        targeted=12, sent=11, failed=1, hard_bounced=1, soft_bounced=1, replied=2, auto_replied=2, unsubscribed=1,
        complained=1, response_rate=2 / 11, median_reply_seconds=13 * 3600.0,
    )  # fmt: skip
    assert follow_up.figures.total == counts(
        targeted=11, queued=1, sent=5, skipped=5, replied=1, response_rate=1 / 5, median_reply_seconds=6 * 3600.0
    )
    by_role = wave.figures.by_role
    assert list(by_role) == ["head_of_state", "mp"]
    assert by_role["head_of_state"] == counts(
        targeted=4, sent=4, skipped=2, replied=2, unsubscribed=1, response_rate=2 / 4,
        median_reply_seconds=(2 * 3600 + 7 * 86400 + 6 * 3600) / 2,
    )  # fmt: skip
    assert by_role["mp"] == counts(
        targeted=8, queued=1, sent=7, failed=1, skipped=3, hard_bounced=1, soft_bounced=1, replied=1, auto_replied=2,
        complained=1, response_rate=1 / 7, median_reply_seconds=86400.0,
    )  # fmt: skip
    by_country = wave.figures.by_country
    assert list(by_country) == ["DE", "FR"]
    assert by_country["FR"] == counts(
        targeted=6, sent=6, skipped=3, hard_bounced=1, soft_bounced=1, replied=2, auto_replied=1, response_rate=2 / 6,
        median_reply_seconds=13 * 3600.0,
    )  # fmt: skip
    assert by_country["DE"] == counts(
        targeted=6, queued=1, sent=5, failed=1, skipped=2, replied=1, auto_replied=1, unsubscribed=1, complained=1,
        response_rate=1 / 5, median_reply_seconds=(7 * 86400 + 6 * 3600.0),
    )  # fmt: skip
    assert follow_up.figures.by_country["DE"] == counts(
        targeted=5, queued=1, sent=2, skipped=2, replied=1, response_rate=1 / 2, median_reply_seconds=6 * 3600.0
    )
    assert first.figures.by_role["head_of_state"] == counts(
        targeted=4, sent=4, replied=1, unsubscribed=1, response_rate=1 / 4, median_reply_seconds=2 * 3600.0
    )

    assert wave.outcomes == {"signed": 1, "declined": 1, "interested": 1}
    assert [(d.day, d.counts) for d in wave.responses_by_day] == [
        (date(2026, 11, 29), {"reply": 1, "auto_reply": 2, "hard_bounce": 1}),
        (date(2026, 11, 30), {"reply": 1, "soft_bounce": 1, "unsubscribe": 1}),
        (date(2026, 12, 1), {"complaint": 1}),
        (date(2026, 12, 6), {"reply": 1}),
    ], "the stranger's reply matched no campaign and is in none"
    assert [(r.contact, r.channel, r.outcome, r.text) for r in wave.replies] == [
        (f"Person 06 <{P[6]}>", "phone", "interested", "Call me after the summit."),
        (f"Person 04 <{P[4]}>", "email", "declined", SCRIPT),
        (f"Person 00 <{P[0]}>", "email", "signed", "Yes, I will sign."),
    ], "newest first"
    assert report.signatories == [
        GrowthPoint(date(2026, 11, 1), 2, 2),  # one signed then, one without a date added then
        GrowthPoint(date(2026, 12, 2), 1, 3),  # p00, made a signatory by the outcome
    ]


def test_without_a_campaign_every_campaign_is_reported_and_a_campaign_with_nothing_sent_has_no_rate(
    events: Env,
) -> None:
    report = collect_report(events.sessions, now=REPORTED_AT)
    assert report.campaign is None
    assert [(c.name, c.status, c.figures.total.sent) for c in report.campaigns] == [
        ("wave", "active", 11), ("later", "draft", 0)]  # fmt: skip
    later = report.campaigns[1]
    assert (later.figures.total, later.figures.by_role, later.steps[0].figures.total) == (Counts(), {}, Counts())
    assert later.outcomes == {"signed": 0, "declined": 0, "interested": 0} and later.replies == []


def test_the_command_as_tables_json_and_csv_and_an_unknown_campaign_in_one_line(events: Env) -> None:
    document = json.loads(events.run("report", "wave", "--json").stdout)
    expected = collect_report(events.sessions, "wave", now=REPORTED_AT).as_json()
    assert {**document, "generated_at": None} == {**expected, "generated_at": None}, "the same figures"
    total = document["campaigns"][0]["figures"]["total"]
    assert (total["sent"], total["replied"], total["median_reply_seconds"]) == (11, 3, 86400.0)
    assert total["response_rate"] == pytest.approx(0.2727, abs=1e-4)
    assert document["campaigns"][0]["figures"]["by_country"]["DE"]["failed"] == 1
    assert document["signatories"][-1] == {"day": "2026-12-02", "added": 1, "total": 3}

    written = events.run("report", "wave", "--csv", "wave.csv")
    assert "wave.csv" in written.stderr
    with (events.root / "wave.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = {(r["campaign"], r["step"], r["breakdown"], r["value"]): r for r in reader}
    assert len(rows) == 3 * 5, "the campaign and its two steps, each for all, two roles and two countries"
    whole = rows[("wave", "", "all", "")]
    assert (whole["template"], whole["targeted"], whole["sent"], whole["failed"], whole["replied"]) == (
        "", "12", "11", "1", "3")  # fmt: skip
    assert (whole["response_rate"], whole["median_reply_seconds"]) == ("0.2727", "86400")
    hos = rows[("wave", "", "role", "head_of_state")]
    assert (hos["targeted"], hos["replied"], hos["unsubscribed"], hos["response_rate"]) == ("4", "2", "1", "0.5000")
    reminder = rows[("wave", "1", "all", "")]
    assert (reminder["template"], reminder["queued"], reminder["sent"], reminder["skipped"]) == (
        "appeal-reminder", "1", "5", "5")  # fmt: skip
    de = rows[("wave", "0", "country", "DE")]
    assert (de["targeted"], de["sent"], de["failed"], de["complained"], de["median_reply_seconds"]) == (
        "6", "5", "1", "1", "")  # fmt: skip

    tables = events.run("report", "wave").stdout
    for title in ("Campaign wave (active)", "Steps", "By role", "By country", "Outcomes"):
        assert title in tables
    assert "appeal-reminder" in tables and "head_of_state" in tables and "27.3%" in tables and "1d" in tables
    assert "Signatories: 3 in all" in tables

    summary = events.run("report").stdout
    lines = summary.splitlines()
    assert len([line for line in lines if " wave " in line]) == 1
    assert len([line for line in lines if " later " in line]) == 1
    assert "2 campaigns" in summary
    both = json.loads(events.run("report", "--json").stdout)
    assert [c["name"] for c in both["campaigns"]] == ["wave", "later"] and both["campaign"] is None

    missing = events.run("report", "nope", check=False)
    assert missing.returncode != 0 and missing.stderr.strip().splitlines() == [
        "error: no campaign 'nope' (`outreach campaigns list` shows them)"]  # fmt: skip


class Page(HTMLParser):
    """What a page refers to, its tags, and the cells of each table by its class."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.references: list[str] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "background", "data"):
                self.references.append(value or "")
            if name == "style":
                self.styles.append(value or "")
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles.append(data)
        self.text.append(data)
        if self._table is not None and data.strip() and self.tables[self._table]:
            self.tables[self._table][-1].append(data.strip())


def test_the_html_page_needs_nothing_outside_itself_and_escapes_what_people_wrote(events: Env) -> None:
    done = events.run("report", "wave", "--html", "report.html")
    assert str((events.root / "report.html").resolve()) in done.stderr
    raw = (events.root / "report.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    page.close()
    outside = [ref for ref in page.references if not ref.startswith(("#", "data:", "mailto:"))]
    assert outside == [], "every reference stays inside the page"
    css = "\n".join(page.styles).lower()
    assert "@import" not in css and all(use.startswith(("#", "data:", "'#", '"#')) for use in css.split("url(")[1:])
    assert not {"script", "link", "img", "iframe", "object", "embed", "base"} & set(page.tags)
    assert "http://" not in raw and "https://" not in raw
    assert "Content-Security-Policy" in raw and "@media print" in raw
    assert raw.count("<svg") >= 3, "the funnel, responses per day and the signatory list"

    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; goodbye" in raw
    assert SCRIPT in "".join(page.text), "shown as text, as written"
    assert raw.index("Call me after the summit.") < raw.index("Non merci.") < raw.index("Yes, I will sign.")

    countries = {row[0]: row[1:] for row in page.tables["breakdown"] if row and row[0] in ("FR", "DE")}
    # targeted, sent, failed, hard bounced, soft bounced, replied, auto-replied, unsubscribed, complained, rate, reply
    assert countries["FR"] == ["6", "6", "0", "1", "1", "2", "1", "0", "0", "33.3%", "13h"]
    assert countries["DE"] == ["6", "5", "1", "0", "0", "1", "1", "1", "1", "20.0%", "7d 6h"]
    steps = {row[0]: row[1:] for row in page.tables["steps"] if row and row[0] in ("0", "1")}
    assert steps["1"][:7] == ["appeal-reminder", "11", "1", "5", "0", "0", "5"]
    assert [row for row in page.tables["outcomes"] if row] == [["outcome", "contacts"], ["signed", "1"],
                                                             ["declined", "1"], ["interested", "1"]]  # fmt: skip


def test_an_empty_workspace_reports_no_campaigns(env: Env) -> None:
    report = collect_report(env.sessions, now=REPORTED_AT)
    assert report == Report(REPORTED_AT, None, [], [])
    assert report.as_csv().splitlines() == [",".join(CSV_COLUMNS)]
    page = Page()
    page.feed(render_html(report))
    assert "No campaigns yet." in "".join(page.text) and "No signatories yet." in "".join(page.text)
