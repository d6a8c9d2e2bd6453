"""The desk as a web application (Starlette): pages over the same services the CLI calls, and one-click unsubscribe.

A thin adapter. Each page reads the request, calls a service (in a worker thread: the services are synchronous and
own their transactions) and fills a Jinja2 template; no rule of the pipeline is decided here. What keeps it safe is
in outreach/desk/guard.py: derived keys, CSRF tokens on every form, rate limits on login and on `/u/`, a Content
Security Policy without script. Every text from outside goes through `outreach.untrusted.visible` and Jinja2's
escaping.

`/u/{token}` answers the List-Unsubscribe header (RFC 8058): a POST with `List-Unsubscribe=One-Click` unsubscribes
and answers 200 with an empty body; a GET only shows a page with a button, because mail scanners follow links.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outreach.desk.guard import (
    CONTENT_SECURITY_POLICY,
    REPORT_POLICY,
    SECURITY_HEADERS,
    RateLimit,
    derived_key,
    local_path,
    new_csrf_token,
    same_token,
)
from outreach.errors import NotFoundError, OutreachError
from outreach.untrusted import visible
from outreach.vocabulary import CHANNELS, GROUPS, OUTCOMES, RESPONSE_KINDS

if TYPE_CHECKING:
    from outreach.workspace import Workspace

P = ParamSpec("P")
T = TypeVar("T")

PAGE_SIZE = 50
SESSION_COOKIE = "outreach_desk"
SESSION_HOURS = 12


@dataclass(frozen=True)
class DeskOptions:
    """How the desk is served: whether its cookies are marked Secure (HTTPS, or a proxy that adds it), and the
    rate limits, which tests make small."""

    secure_cookies: bool = True
    login_attempts: int = 10  # failed or not, per client address, per 5 minutes
    unsubscribe_requests: int = 60  # per client address, per minute


def make_app(workspace: Workspace, options: DeskOptions | None = None) -> Starlette:
    """The desk over one workspace."""
    options = options or DeskOptions()
    desk = _Desk(workspace, options)
    routes = [
        Route("/", desk.home),
        Route("/health", desk.health),
        Route("/login", desk.login, methods=["GET", "POST"]),
        Route("/logout", desk.logout, methods=["POST"]),
        Route("/responses", desk.responses),
        Route("/responses/new", desk.new_response, methods=["GET", "POST"]),
        Route("/responses/{id:int}", desk.response),
        Route("/responses/{id:int}/kind", desk.reclassify, methods=["POST"]),
        Route("/responses/{id:int}/outcome", desk.outcome, methods=["POST"]),
        Route("/responses/{id:int}/sign", desk.sign, methods=["GET", "POST"]),
        Route("/campaigns", desk.campaigns),
        Route("/campaigns/{name}", desk.campaign),
        Route("/campaigns/{name}/unanswered.csv", desk.unanswered_csv),
        Route("/report", desk.report),
        Route("/u/{token}", desk.unsubscribe, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(packages=[("outreach.desk", "static")]), name="static"),
    ]
    middleware = [
        Middleware(_SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=derived_key(workspace.secret, "session cookie").hex(),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
            https_only=options.secure_cookies,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: desk.not_found})


class _SecurityHeaders:
    """Adds the Content Security Policy and the other headers of `guard` to every answer (ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = REPORT_POLICY if scope["path"] == "/report" else CONTENT_SECURITY_POLICY

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                headers.append((b"content-security-policy", policy.encode()))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class _Refused(Exception):
    """A request the desk will not serve, with the status and the one line it says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("outreach.desk", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # What strangers wrote, shown and not obeyed: controls, bidi overrides and zero-width characters as escapes.
    environment.filters["shown"] = lambda text: visible(str(text)) if text is not None else ""
    environment.filters["shown_lines"] = lambda text: visible(str(text), lines=True) if text is not None else ""
    environment.filters["words"] = lambda text: str(text or "").replace("_", " ")
    environment.filters["when"] = lambda moment: f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""
    environment.filters["excerpt"] = lambda text, size=160: _excerpt(text, size)
    return environment


def _excerpt(text: str | None, size: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class _Desk:
    """The pages. Each handler is a few lines: check, call a service, show a template."""

    def __init__(self, workspace: Workspace, options: DeskOptions) -> None:
        self.workspace = workspace
        self.templates = _templates()
        self.logins = RateLimit(options.login_attempts, 300)
        self.unsubscribes = RateLimit(options.unsubscribe_requests, 60)

    # The plumbing every page shares.

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a service in a worker thread, so that the server keeps answering while it works."""
        return await run_in_threadpool(partial(function, *args, **kwargs))

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        session = request.session
        if "csrf" not in session:
            session["csrf"] = new_csrf_token()
        html = self.templates.get_template(template).render(
            user=session.get("user"), csrf=session["csrf"], path=request.url.path, **values
        )
        return HTMLResponse(html, status_code=status)

    def refusal(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.page(request, "message.html", status, title="Refused", message=message)

    async def form(self, request: Request) -> FormData:
        """A posted form whose CSRF token matches its session's (or a refusal)."""
        form = await request.form(max_files=0, max_fields=50)
        given = form.get("csrf")
        if not same_token(given if isinstance(given, str) else None, request.session.get("csrf")):
            raise _Refused(403, "This form's security token is missing or out of date: reload the page and try again.")
        return form

    def signed_in(self, request: Request) -> str | None:
        user = request.session.get("user")
        return user if isinstance(user, str) else None

    def to_login(self, request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    async def guarded(self, request: Request, handler: Callable[[], Awaitable[Response]]) -> Response:
        """A page for signed-in campaigners only; the service's own refusals become one-line pages."""
        if self.signed_in(request) is None:
            return self.to_login(request)
        try:
            return await handler()
        except _Refused as refused:
            return self.refusal(request, refused.status, str(refused))
        except OutreachError as error:
            return self.refusal(request, 404 if isinstance(error, NotFoundError) else 400, error.format_message())

    @property
    def sessions(self) -> Any:
        return self.workspace.sessions

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # Pages anyone may open.

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.refusal(request, 404, "There is no such page.")

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/responses" if self.signed_in(request) else "/login", status_code=303)

    async def login(self, request: Request) -> Response:
        from outreach.desk.accounts import check_login

        target = local_path(request.query_params.get("next"), "/responses")
        if request.method == "GET":
            return self.page(request, "login.html", target=target)
        client = _client(request)
        try:
            form = await self.form(request)
        except _Refused as refused:
            return self.refusal(request, refused.status, str(refused))
        if not self.logins.allow(client):
            wait = self.logins.retry_after(client)
            answer = self.page(request, "login.html", 429, target=target,
                               error=f"Too many attempts from your address: try again in {wait} seconds.")  # fmt: skip
            answer.headers["Retry-After"] = str(wait)
            return answer
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        user = await self.call(check_login, self.sessions, name, password)
        if user is None:
            return self.page(request, "login.html", 401, target=target, name=name,
                             error="That name and password do not match a campaigner of this desk.")  # fmt: skip
        request.session.clear()  # a new session on login: a token planted before it is worth nothing after
        request.session.update({"user": user, "csrf": new_csrf_token()})
        return RedirectResponse(local_path(str(form.get("next", "")), "/responses"), status_code=303)

    async def logout(self, request: Request) -> Response:
        try:
            await self.form(request)
        except _Refused as refused:
            return self.refusal(request, refused.status, str(refused))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058: POST unsubscribes at once (a mail provider's one click, or the page's button); GET asks."""
        from outreach.contacts.tokens import read_unsubscribe_token
        from outreach.responses.oneclick import UnknownTokenError, unsubscribe_by_token

        token, client = request.path_params["token"], _client(request)
        if not self.unsubscribes.allow(client):
            return PlainTextResponse(
                "Too many requests: try again in a minute.",
                status_code=429,
                headers={"Retry-After": str(self.unsubscribes.retry_after(client))},
            )
        if read_unsubscribe_token(self.workspace.secret, token) is None:
            return self.page(request, "unsubscribe.html", 404, state="unknown")
        if request.method == "GET":
            return self.page(request, "unsubscribe.html", state="ask", token=token)
        form = await request.form(max_files=0, max_fields=5)
        if form.get("List-Unsubscribe") != "One-Click":
            return PlainTextResponse("A one-click unsubscribe posts List-Unsubscribe=One-Click (RFC 8058).",
                                     status_code=400)  # fmt: skip
        try:
            await self.call(unsubscribe_by_token, self.sessions, token, now=self.now())
        except UnknownTokenError:  # a contact since forgotten, or a sample letter's link
            return self.page(request, "unsubscribe.html", 404, state="unknown")
        if form.get("from") == "page":  # the page's own button: a person is looking
            return self.page(request, "unsubscribe.html", state="done")
        return Response(status_code=200)  # RFC 8058 3.2: nothing for the mail provider to read

    # The desk itself.

    async def responses(self, request: Request) -> Response:
        from outreach.campaigns.catalog import list_campaigns
        from outreach.responses.views import count_responses, list_responses

        async def show() -> Response:
            kind = request.query_params.get("kind") or None
            campaign = request.query_params.get("campaign") or None
            page = max(1, _whole(request.query_params.get("page")) or 1)
            narrowed: dict[str, Any] = {"kind": kind, "campaign": campaign}
            total = await self.call(count_responses, self.sessions, **narrowed)
            views = await self.call(list_responses, self.sessions, **narrowed, limit=PAGE_SIZE,
                                    offset=(page - 1) * PAGE_SIZE)  # fmt: skip
            campaigns = await self.call(list_campaigns, self.sessions)
            return self.page(
                request,
                "responses.html",
                responses=views,
                total=total,
                page=page,
                pages=max(1, -(-total // PAGE_SIZE)),
                first=(page - 1) * PAGE_SIZE + 1,
                kind=kind,
                campaign=campaign,
                kinds=RESPONSE_KINDS,
                campaigns=[c.name for c in campaigns],
                query=lambda **changed: urlencode({k: v for k, v in (narrowed | changed).items() if v}),
            )

        return await self.guarded(request, show)

    async def response(self, request: Request) -> Response:
        from outreach.responses.views import answered_letter, show_response

        async def show() -> Response:
            response_id = request.path_params["id"]
            view = await self.call(show_response, self.sessions, response_id)
            letter = await self.call(answered_letter, self.sessions, response_id)
            return self.page(request, "response.html", response=view, letter=letter, kinds=RESPONSE_KINDS,
                             outcomes=[o for o in OUTCOMES if o != "signed"])  # fmt: skip

        return await self.guarded(request, show)

    async def reclassify(self, request: Request) -> Response:
        from outreach.responses.recording import reclassify

        async def change() -> Response:
            form = await self.form(request)
            response_id = request.path_params["id"]
            await self.call(reclassify, self.sessions, response_id, str(form.get("kind", "")), now=self.now())
            return RedirectResponse(f"/responses/{response_id}", status_code=303)

        return await self.guarded(request, change)

    async def outcome(self, request: Request) -> Response:
        from outreach.responses.recording import mark_outcome

        async def change() -> Response:
            form = await self.form(request)
            outcome = str(form.get("outcome", ""))
            response_id = request.path_params["id"]
            if outcome == "signed":  # publishing a name is looked at first, on its own page
                return RedirectResponse(f"/responses/{response_id}/sign", status_code=303)
            await self.call(mark_outcome, self.sessions, response_id, outcome, now=self.now())
            return RedirectResponse(f"/responses/{response_id}", status_code=303)

        return await self.guarded(request, change)

    async def sign(self, request: Request) -> Response:
        """Marking signed publishes a name in every later letter: the line is shown, edited and confirmed first."""
        from outreach.responses.recording import mark_outcome, signatory_draft
        from outreach.responses.views import show_response

        async def confirm() -> Response:
            response_id = request.path_params["id"]
            view = await self.call(show_response, self.sessions, response_id)
            if request.method == "GET":
                draft = await self.call(signatory_draft, self.sessions, response_id)
                return self.page(request, "sign.html", response=view, draft=draft, groups=GROUPS)
            form = await self.form(request)
            line = {key: str(form.get(key, "")) for key in ("name", "line", "group")}
            try:
                marked = await self.call(mark_outcome, self.sessions, response_id, "signed", now=self.now(),
                                         signatory=line)  # fmt: skip
            except OutreachError as error:
                return self.page(request, "sign.html", 400, response=view, draft=line, groups=GROUPS,
                                 error=error.format_message())  # fmt: skip
            return self.page(request, "signed.html", response=view, marked=marked)

        return await self.guarded(request, confirm)

    async def new_response(self, request: Request) -> Response:
        from outreach.responses.recording import add_response

        async def add() -> Response:
            if request.method == "GET":
                return self.page(request, "new_response.html", channels=[c for c in CHANNELS if c != "email"],
                                 outcomes=OUTCOMES, values={})  # fmt: skip
            form = await self.form(request)
            values = {key: str(form.get(key, "")) for key in ("contact", "channel", "note", "outcome")}
            try:
                view = await self.call(add_response, self.sessions, values["contact"], values["channel"],
                                       values["note"], now=self.now(), outcome=values["outcome"] or None)  # fmt: skip
            except OutreachError as error:
                return self.page(request, "new_response.html", 400, channels=[c for c in CHANNELS if c != "email"],
                                 outcomes=OUTCOMES, values=values, error=error.format_message())  # fmt: skip
            return RedirectResponse(f"/responses/{view.id}", status_code=303)

        return await self.guarded(request, add)

    async def campaigns(self, request: Request) -> Response:
        from outreach.campaigns.catalog import list_campaigns

        async def show() -> Response:
            found = await self.call(list_campaigns, self.sessions)
            return self.page(request, "campaigns.html", campaigns=found)

        return await self.guarded(request, show)

    async def campaign(self, request: Request) -> Response:
        from outreach.campaigns.catalog import show_campaign
        from outreach.reports.collect import collect_report
        from outreach.reports.figures import format_rate

        async def show() -> Response:
            name = request.path_params["name"]
            view = await self.call(show_campaign, self.sessions, name, now=self.now())
            found = await self.call(collect_report, self.sessions, name, now=self.now())
            return self.page(request, "campaign.html", campaign=view, report=found.campaigns[0], rate=format_rate)

        return await self.guarded(request, show)

    async def unanswered_csv(self, request: Request) -> Response:
        """Everyone a campaign wrote to who has not answered, as `contacts export --segment campaign:N=no-reply`."""
        from outreach.contacts.directory import export_contacts
        from outreach.contacts.segments import parse_segment
        from outreach.db.queries import find_campaign

        async def download() -> Response:
            name = request.path_params["name"]

            def export() -> str:
                with self.sessions() as session:
                    find_campaign(session, name)  # an unknown campaign is a refusal, not an empty file
                buffer = io.StringIO()
                export_contacts(self.sessions, parse_segment(f"campaign:{name}=no-reply"), buffer)
                return buffer.getvalue()

            text = await self.call(export)
            filename = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in name)
            return Response(
                text,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{filename}-no-reply.csv"'},
            )

        return await self.guarded(request, download)

    async def report(self, request: Request) -> Response:
        from outreach.reports.collect import collect_report
        from outreach.reports.html import render_html

        async def show() -> Response:
            found = await self.call(collect_report, self.sessions, None, now=self.now())
            return HTMLResponse(render_html(found))

        return await self.guarded(request, show)


def _whole(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 9 else None
