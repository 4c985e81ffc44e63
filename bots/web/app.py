"""The web desk and dashboard as one ASGI application (Starlette, server-rendered templates).

Every page but the sign-in needs a signed-in agent. Every form is a POST carrying the session's
CSRF token; a POST answers with a redirect to a page (so reloading never sends twice), and an
agent's reply carries a one-time key, so a form sent twice still reaches the customer once.
The desk acts through the same `SupportDesk` as the console and the Slack desk: a reply goes
through the delivery queue to whichever platform the customer is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bots.web.auth import SignIn, csrf_ok, csrf_token
from bots.web.dashboard import Dashboard
from bots.web.live import INBOX, LiveTickets
from core.handover.escalation import Refused, SupportDesk, trend
from core.handover.tickets.store import ACTIVE, CLOSED, Ticket, TicketStatus
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.shop.catalog import Catalog
from core.shop.orders import Order, Orders

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0  # a comment line on idle event streams, so proxies keep them open
VIEWS: dict[str, tuple[TicketStatus, ...]] = {
    "active": ACTIVE,
    "open": ("open",),
    "claimed": ("claimed",),
    "closed": CLOSED,
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@dataclass
class Desk:
    """What the pages read and act on."""

    support: SupportDesk
    sign_in: SignIn
    dashboard: Dashboard
    catalog: Catalog
    orders: Orders
    live: LiveTickets
    sla_s: float
    page_size: int = 50


def build_web_app(
    desk: Desk, session_secret: str, session_hours: float = 12.0, https_only: bool = False
) -> Starlette:
    pages = Pages(desk)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(desk.live.run())
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    routes = [
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/", pages.home),
        Route("/tickets", pages.inbox),
        Route("/tickets/{ticket_id}", pages.ticket),
        Route("/tickets/{ticket_id}/{action}", pages.act, methods=["POST"]),
        Route("/events", pages.events),
        Route("/dashboard", pages.dashboard),
        Route("/dashboard/{name}.csv", pages.figure_csv),
        Route("/healthz", pages.health),
        Mount("/static", StaticFiles(packages=[("bots.web", "static")]), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret,
            session_cookie="concierge_desk",
            max_age=int(session_hours * 3600),
            same_site="strict",
            https_only=https_only,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class SecurityHeaders:
    """No framing, no foreign scripts or styles, no MIME sniffing, on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


_templates = Environment(
    loader=PackageLoader("bots.web", "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _at(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(unix))


_templates.filters["ago"] = _ago
_templates.filters["at"] = _at


class Pages:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    # -- helpers ------------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        session = request.session
        flash = session.pop("flash", None)
        page = _templates.get_template(name).render(
            agent=session.get("agent"),
            agent_name=session.get("name"),
            csrf=csrf_token(session),
            flash=flash,
            path=request.url.path,
            now=time.time(),
            **values,
        )
        return HTMLResponse(page, status_code=status)

    @staticmethod
    def signed_in(request: Request) -> str | None:
        agent = request.session.get("agent")
        return agent if isinstance(agent, str) else None

    @staticmethod
    def to_login(request: Request) -> Response:
        if request.headers.get("x-live"):  # a live refresh after the session ended
            return PlainTextResponse("signed out", status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @staticmethod
    def flash(request: Request, text: str, kind: str = "status") -> None:
        request.session["flash"] = {"text": text, "kind": kind}

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form, or None when its CSRF token is not the session's."""
        data = await request.form()
        fields = {key: value for key, value in data.items() if isinstance(value, str)}
        return fields if csrf_ok(request.session, fields.get("csrf")) else None

    def refused_form(self, request: Request) -> Response:
        event(log, "web.csrf_refused", logging.WARNING, path=request.url.path)
        return self.render(
            request,
            "error.html",
            status=403,
            title="Form refused",
            message="This form did not come from this desk session (its security token is "
            "missing or out of date). Reload the page and try again.",
        )

    # -- signing in ---------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", next=_local(request.query_params.get("next")))

    async def login(self, request: Request) -> Response:
        fields = await self.form(request)
        if fields is None:
            return self.refused_form(request)
        login = fields.get("login", "").strip()
        agent = await run_in_threadpool(self.desk.sign_in.check, login, fields.get("password", ""))
        target = _local(fields.get("next"))
        if agent is None:
            paused = self.desk.sign_in.paused(login)
            event(log, "web.sign_in_refused", logging.WARNING, paused=paused)
            message = (
                "Too many wrong passwords for this login: wait a few minutes and try again."
                if paused else "Wrong login or password."
            )
            return self.render(
                request, "login.html", status=401, error=message, login=login, next=target
            )
        request.session.clear()  # a new session (and CSRF token) for the signed-in agent
        request.session.update({"agent": agent.login, "name": agent.name})
        event(log, "web.signed_in", agent=agent.login)
        return RedirectResponse(target, status_code=303)

    async def logout(self, request: Request) -> Response:
        fields = await self.form(request)
        if fields is None:
            return self.refused_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- the desk ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/tickets", status_code=303)

    async def inbox(self, request: Request) -> Response:
        if not self.signed_in(request):
            return self.to_login(request)
        view = request.query_params.get("view", "active")
        if view not in VIEWS:
            view = "active"
        page = _page_number(request.query_params.get("page"))
        size = self.desk.page_size
        statuses = VIEWS[view]

        def read() -> tuple[list[Ticket], dict[TicketStatus, int]]:
            tickets = self.desk.support.tickets
            return tickets.list(statuses, size, (page - 1) * size), tickets.counts()

        try:
            tickets, counts = await run_in_threadpool(read)
        except StoreUnavailable as error:
            return self.unavailable(request, error)
        total = sum(counts.get(status, 0) for status in statuses)
        values: dict[str, Any] = dict(
            tickets=tickets,
            view_counts={
                name: sum(counts.get(status, 0) for status in group)
                for name, group in VIEWS.items()
            },
            view=view,
            page=page,
            pages=max(1, -(-total // size)),
            total=total,
            sla_s=self.desk.sla_s,
        )
        if request.headers.get("x-live"):
            return self.render(request, "_inbox_live.html", **values)
        return self.render(request, "inbox.html", **values)

    async def ticket(self, request: Request) -> Response:
        if not self.signed_in(request):
            return self.to_login(request)
        ticket_id = request.path_params["ticket_id"]
        try:
            found = await run_in_threadpool(self._ticket_view, ticket_id)
        except StoreUnavailable as error:
            return self.unavailable(request, error)
        if found is None:
            return self.render(
                request, "error.html", status=404, title="No such ticket",
                message=f"There is no ticket {ticket_id}.",
            )
        template = "_ticket_live.html" if request.headers.get("x-live") else "ticket.html"
        return self.render(request, template, reply_key=uuid.uuid4().hex, **found)

    def _ticket_view(self, ticket_id: str) -> dict[str, Any] | None:
        ticket = self.desk.support.tickets.get(ticket_id)
        if ticket is None:
            return None
        orders: list[Order] = []
        if ticket.verified_customer:  # only a customer who proved who they are
            orders = list(self.desk.orders.for_customer(ticket.verified_customer))[-5:]
        shown = []
        for item_id in ticket.products_shown:
            product = self.desk.catalog.get(item_id)
            shown.append((item_id, product.title if product else "no longer in the catalog",
                          product.price if product else None))
        return {
            "ticket": ticket,
            "orders": orders,
            "shown": shown,
            "sentiment": trend(ticket.sentiment_trend),
            "sla_s": self.desk.sla_s,
        }

    async def act(self, request: Request) -> Response:
        agent = self.signed_in(request)
        if not agent:
            return self.to_login(request)
        fields = await self.form(request)
        if fields is None:
            return self.refused_form(request)
        ticket_id, action = request.path_params["ticket_id"], request.path_params["action"]
        name = request.session.get("name")
        support = self.desk.support
        text = fields.get("text", "")
        actions: dict[str, tuple[Callable[[], object], str]] = {
            "claim": (lambda: support.claim(ticket_id, agent, name), "Claimed: it is yours."),
            "reply": (
                lambda: support.agent_reply(ticket_id, agent, text, fields.get("key"), name),
                "Sent to the customer.",
            ),
            "note": (lambda: support.note(ticket_id, agent, text), "Note added."),
            "resolve": (
                lambda: support.resolve(ticket_id, agent),
                "Resolved: the customer is asked for a rating.",
            ),
            "handback": (
                lambda: support.hand_back(ticket_id, agent),
                "Handed back to the assistant: the customer is asked for a rating.",
            ),
        }
        if action not in actions:
            return PlainTextResponse("Unknown action.", status_code=404)
        call, done = actions[action]
        try:
            await run_in_threadpool(call)
        except Refused as refusal:
            self.flash(request, f"Refused: {refusal}", "alert")
        except StoreUnavailable as error:
            self.flash(request, f"The ticket store is unavailable: {error}", "alert")
        else:
            event(log, "web.ticket_action", ticket=ticket_id, action=action, agent=agent)
            self.flash(request, done)
        return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)

    async def events(self, request: Request) -> Response:
        if not self.signed_in(request):
            return PlainTextResponse("Sign in first.", status_code=401)
        topic = request.query_params.get("ticket") or INBOX
        live = self.desk.live
        queue = live.listen(topic)

        async def stream() -> AsyncIterator[str]:
            try:
                # One "changed" at once: anything that happened between the page's render and
                # this stream's first look is fetched, not missed.
                yield "retry: 2000\nevent: changed\ndata: connected\n\n"
                while True:
                    try:
                        what = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": still here\n\n"
                        continue
                    yield f"event: changed\ndata: {what}\n\n"
            finally:
                live.leave(topic, queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- the dashboard ----------------------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        if not self.signed_in(request):
            return self.to_login(request)
        try:
            figures = await run_in_threadpool(self.desk.dashboard.figures)
        except StoreUnavailable as error:
            return self.unavailable(request, error)
        charts = {figure.name: Markup(figure.svg()) for figure in figures}
        return self.render(
            request, "dashboard.html", figures=figures, charts=charts,
            days=self.desk.dashboard.days,
        )

    async def figure_csv(self, request: Request) -> Response:
        if not self.signed_in(request):
            return PlainTextResponse("Sign in first.", status_code=401)
        name = request.path_params["name"]
        figure = await run_in_threadpool(self.desk.dashboard.figure, name)
        if figure is None:
            return PlainTextResponse(f"There is no figure {name!r}.", status_code=404)
        return Response(
            figure.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{figure.name}.csv"'},
        )

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    def unavailable(self, request: Request, error: Exception) -> Response:
        event(log, "web.store_unavailable", logging.ERROR, error=str(error))
        return self.render(
            request, "error.html", status=503, title="Store unavailable",
            message=f"The ticket store cannot be reached right now ({error}). "
            "This page tries again when you reload it.",
        )


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/tickets"
    return target

