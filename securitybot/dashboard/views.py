"""The security team's dashboard: server-rendered pages under /dashboard, off unless configured."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.config import DashboardConfig
from securitybot.dashboard import (
    held_group_views,
    oidc_views,
    queries,
    slack_install_views,
    suppression_views,
    svg,
)
from securitybot.dashboard.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    DashboardAuth,
    DashboardSession,
    csrf_ok,
    safe_next,
)
from securitybot.dashboard.pages import Endpoint, Handler
from securitybot.dashboard.roles import Role
from securitybot.flows import snoozes
from securitybot.flows.timeline import timeline_text
from securitybot.runtime import Runtime
from securitybot.slack import held_resets, storms
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Snooze, utcnow
from securitybot.untrusted import db_id, scrub, shown

HERE = Path(__file__).parent
STATUSES = (
    "new",
    "awaiting_ack",
    "awaiting_2fa",
    "held",
    "resolved",
    "escalated",
    "triaging",
    "closed",
)
SINCE = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
MAX_FORM_BYTES = 16 * 1024
_SECURITY_HEADERS = {
    # Everything is served from here; inline SVG needs no source, and nothing may frame us.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def _plain(text: str) -> str:
    """Slack mrkdwn from the shared timeline phrases, as plain text for the page."""
    return _MENTION.sub(r"\1", text).replace("*", "")


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _shown(value: Any) -> Any:
    """A template value with its bidirectional controls shown (``untrusted.shown``); markup
    the product made stays markup."""
    if isinstance(value, Markup):
        return Markup(shown(str(value)))
    return shown(value) if isinstance(value, str) else value


class Dashboard:
    def __init__(self, cfg: DashboardConfig, db: Database) -> None:
        self.auth = DashboardAuth(cfg, db)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            # Every value a template prints: bidirectional controls are shown, not obeyed.
            finalize=_shown,
        )
        # Jinja's tojson escapes <, >, & and ' as \u003c… for use inside <script>; in a <pre>
        # those escapes would show as text, so details are dumped plainly and HTML-escaped once.
        self.env.filters["pretty_json"] = _pretty_json

    # ---- plumbing ----------------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        session: DashboardSession | None = None,
        **ctx: Any,
    ) -> StarletteResponse:
        html = self.env.get_template(template).render(
            session=session, csrf_field=CSRF_FIELD, path=request.url.path, Role=Role, **ctx
        )
        # Rows from older versions may hold lone surrogates, which cannot be sent as UTF-8.
        html = scrub(html)
        return self._finish(HTMLResponse(html, status_code=status))

    @staticmethod
    def _finish(response: StarletteResponse) -> StarletteResponse:
        response.headers.update(_SECURITY_HEADERS)
        return response

    @staticmethod
    async def _form(request: Request) -> dict[str, str] | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in parsed.items()}

    def _login_redirect(self, request: Request) -> StarletteResponse:
        if request.method != "GET":
            return self._finish(PlainTextResponse("authentication required", status_code=401))
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return self._finish(RedirectResponse(f"/dashboard/login?next={target}", status_code=303))

    async def _guard(self, request: Request) -> tuple[DashboardSession | None, str | None]:
        # Sessions live in the database: look them up off the event loop.
        return await run_in_threadpool(self.auth.authenticate, request)

    def requires(self, role: Role, handler: Handler) -> Endpoint:
        """``handler`` behind sign-in and ``role``: the only way a dashboard route reaches
        data or changes anything (tests/dashboard/test_roles.py calls every route as every
        role). The endpoint carries ``required_role`` for anyone listing the routes."""

        async def endpoint(request: Request) -> StarletteResponse:
            session, cookie = await self._guard(request)
            if session is None:
                return self._login_redirect(request)
            if session.role is None or session.role < role:
                response = self.refused(request, session, role)
            else:
                response = await handler(request, session)
            return self._with_cookie(request, response, cookie)

        endpoint.required_role = role  # type: ignore[attr-defined]
        return endpoint

    def refused(
        self,
        request: Request,
        session: DashboardSession | None,
        needed: Role | None = None,
        **ctx: Any,
    ) -> StarletteResponse:
        """403: signed in without a role, or with one too low for ``needed``."""
        shown = session if session is not None and session.role is not None else None
        return self._page(request, "refused.html", status=403, session=shown, who=session,
                          needed=needed, **ctx)  # fmt: skip

    def _with_cookie(
        self, request: Request, response: StarletteResponse, cookie: str | None
    ) -> StarletteResponse:
        if cookie is not None:
            self.auth.set_cookie(response, request, SESSION_COOKIE, cookie)
        return response

    @staticmethod
    def _rt(request: Request) -> Runtime:
        rt: Runtime = request.app.state.runtime
        return rt

    def _audit(self, rt: Runtime, username: str, action: str, **kw: Any) -> None:
        with rt.db.write() as session:
            alert_store.audit(session, actor=f"dashboard:{username}"[:64], action=action, **kw)

    # ---- login and logout ----------------------------------------------------------------------

    async def login_form(self, request: Request) -> StarletteResponse:
        session, cookie = await self._guard(request)
        nxt = safe_next(request.query_params.get("next"))
        if session is not None:
            redirect = RedirectResponse(nxt, status_code=303)
            return self._finish(self._with_cookie(request, redirect, cookie))
        return self._login_page(request, nxt)

    def _login_page(
        self, request: Request, nxt: str, error: str | None = None, status: int = 200
    ) -> StarletteResponse:
        token = secrets.token_urlsafe(24)
        response = self._page(
            request,
            "login.html",
            status=status,
            login_csrf=token,
            next=nxt,
            error=error,
            password_login=self.auth.password_login,
            header=self.auth.cfg.trusted_header,
            oidc=self.auth.cfg.oidc,
        )
        self.auth.set_cookie(response, request, LOGIN_COOKIE, token, max_age=1800)
        return response

    async def login(self, request: Request) -> StarletteResponse:
        form = await self._form(request)
        if form is None or not csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)):
            return self._finish(PlainTextResponse("CSRF check failed", status_code=403))
        nxt = safe_next(form.get("next"))
        if not self.auth.cfg.local_users:
            # Break-glass accounts are switched off: refused before any password is checked.
            return self._login_page(request, nxt, "Local sign-in is disabled.", status=403)
        username, password = form.get("username", "").strip()[:64], form.get("password", "")
        client = self.auth.client_address(request)
        keys = (f"user:{username}", f"ip:{client}")
        rt = self._rt(request)
        # The attempt is counted before the password is checked, so concurrent guesses
        # cannot all get in under the limit; a right password clears the count below.
        if not await run_in_threadpool(self.auth.attempts.reserve, keys):
            return self._login_page(
                request, nxt, "Too many failed attempts; wait a few minutes.", status=429
            )
        ok = bool(username and password) and await run_in_threadpool(
            self.auth.check_password, username, password
        )
        if not ok:
            await run_in_threadpool(
                self._audit,
                rt,
                username or "?",
                "dashboard.login_failed",
                details={"client": client},
            )
            return self._login_page(request, nxt, "Wrong username or password.", status=401)
        await run_in_threadpool(self.auth.attempts.succeeded, keys)
        role = self.auth.local_role(username)
        session, cookie = await run_in_threadpool(self.auth.issue, username, "password", role)
        details = {"client": client, **session.audit_details()}
        await run_in_threadpool(self._audit, rt, username, "dashboard.login", details=details)
        response = RedirectResponse(nxt, status_code=303)
        self.auth.set_cookie(response, request, SESSION_COOKIE, cookie)
        self.auth.clear_cookie(response, request, LOGIN_COOKIE)
        return self._finish(response)

    async def logout(self, request: Request, session: DashboardSession) -> StarletteResponse:
        form = await self._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return self._finish(PlainTextResponse("CSRF check failed", status_code=403))
        await run_in_threadpool(self.auth.revoke, session)
        await run_in_threadpool(
            self._audit, self._rt(request), session.username, "dashboard.logout",
            details=session.audit_details(),
        )  # fmt: skip
        response = RedirectResponse("/dashboard/login", status_code=303)
        self.auth.clear_cookie(response, request, SESSION_COOKIE)
        return self._finish(response)

    # ---- pages -------------------------------------------------------------------------------

    async def overview(self, request: Request, session: DashboardSession) -> StarletteResponse:
        rt = self._rt(request)

        def load() -> dict[str, Any]:
            with rt.db.read() as db:
                c = queries.charts(db)
                return {
                    "queue": queries.escalation_queue(db),
                    "snoozes": queries.open_snoozes(db),
                    "charts": c,
                    "per_day_svg": svg.stacked_days(c.days, c.per_day, queries.OUTCOMES),
                    "answer_svg": svg.hbars(
                        [(label, [n]) for label, n in c.answer_buckets], [], "time to answer"
                    ),
                    "escalation_svg": svg.hbars(
                        [(k, [100.0 * e / n if n else 0.0]) for k, e, n in c.escalation_by_kind],
                        [],
                        "escalation rate per kind",
                        fmt="{:.0f}%",
                    ),
                    "aer_svg": svg.hbars(
                        [(o, [a, r]) for o, a, r in c.aer_by_org],
                        ["anomalies", "session resets"],
                        "AER per org",
                    ),
                }

        data = await run_in_threadpool(load)
        return self._page(request, "overview.html", session=session, **data)

    async def alerts(self, request: Request, session: DashboardSession) -> StarletteResponse:
        q = request.query_params
        status = [s for s in q.getlist("status") if s in STATUSES]
        kind, user = (q.get("kind") or "").strip() or None, (q.get("user") or "").strip() or None
        since_key = q.get("since") or ""
        since = utcnow() - SINCE[since_key] if since_key in SINCE else None
        cursor = q.get("cursor")
        try:
            before = alert_store.decode_cursor(cursor) if cursor else None
        except ValueError:
            before = None
        rt = self._rt(request)

        def load() -> dict[str, Any]:
            with rt.db.read() as db:
                rows, nxt = queries.alerts_page(
                    db, status=status, kind=kind, user=user, since=since, before_id=before
                )
                return {"rows": rows, "next_cursor": nxt, "kinds": queries.kinds_seen(db)}

        data = await run_in_threadpool(load)
        filters = {"status": status, "kind": kind or "", "user": user or "", "since": since_key}
        keep = [(k, v) for k, v in q.multi_items() if k != "cursor"]
        return self._page(
            request,
            "alerts.html",
            session=session,
            filters=filters,
            statuses=STATUSES,
            since_options=list(SINCE),
            keep=keep,
            **data,
        )

    async def alert(self, request: Request, session: DashboardSession) -> StarletteResponse:
        raw = request.path_params["alert_id"]
        alert_id = db_id(int(raw))  # ids past 64 bits are "no such alert", not a driver error
        rt = self._rt(request)

        def load() -> tuple[Any, list[dict[str, Any]]]:
            if alert_id is None:
                return None, []
            with rt.db.read() as db:
                alert, rows = queries.alert_timeline(db, alert_id)
                timeline = [
                    {
                        "at": r.created_at,
                        "action": r.action,
                        "actor": r.actor,
                        "from": r.from_status,
                        "to": r.to_status,
                        "text": _plain(timeline_text(r)),
                        "details": r.details or {},
                    }
                    for r in rows
                ]
                return alert, timeline

        alert, timeline = await run_in_threadpool(load)
        if alert is None:
            return self._page(request, "missing.html", status=404, session=session, what=raw)
        return self._page(request, "alert.html", session=session, alert=alert, timeline=timeline)

    async def snoozes(self, request: Request, session: DashboardSession) -> StarletteResponse:
        rt = self._rt(request)

        def load() -> list[Snooze]:
            with rt.db.read() as db:
                return queries.open_snoozes(db)

        rows = await run_in_threadpool(load)
        notice = request.query_params.get("revoked")
        return self._page(request, "snoozes.html", session=session, snoozes=rows, notice=notice)

    async def revoke_snooze(self, request: Request, session: DashboardSession) -> StarletteResponse:
        return await self._revoke(
            request, session, "snooze_id", "/dashboard/snoozes", "no such active snooze",
            lambda db, i, actor, via: snoozes.revoke(db, snooze_id=i, actor=actor, via=via),
        )  # fmt: skip

    async def _revoke(
        self,
        request: Request,
        session: DashboardSession,
        id_param: str,
        back: str,
        missing: str,
        revoke: Callable[[Session, int, str, dict[str, Any]], bool],
    ) -> StarletteResponse:
        """A revoke button's POST (the caller checked the role): CSRF-checked, then
        ``revoke(db, id, actor, via)`` for the path's ``id_param``; 404 ``missing`` if it found
        nothing active to revoke, else back to the page ``back`` with ``?revoked=<id>``."""
        form = await self._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return self._finish(PlainTextResponse("CSRF check failed", status_code=403))
        item_id = db_id(int(request.path_params[id_param]))
        actor = f"dashboard:{session.username}"[:64]
        rt = self._rt(request)

        def write() -> bool:
            if item_id is None:
                return False
            with rt.db.write() as db:
                return revoke(db, item_id, actor, {"via": "dashboard", **session.audit_details()})

        if not await run_in_threadpool(write):
            return self._finish(PlainTextResponse(missing, status_code=404))
        return self._finish(RedirectResponse(f"{back}?revoked={item_id}", 303))

    async def stylesheet(self, request: Request) -> StarletteResponse:
        return self._finish(FileResponse(HERE / "static" / "dashboard.css", media_type="text/css"))

    def routes(self) -> list[BaseRoute]:
        viewer, responder = Role.viewer, Role.responder
        return [
            # Public: signing in, and the stylesheet the sign-in page needs.
            Route("/dashboard/login", self.login_form, methods=["GET"]),
            Route("/dashboard/login", self.login, methods=["POST"]),
            Route("/dashboard/static/dashboard.css", self.stylesheet, methods=["GET"]),
            *oidc_views.routes(self),
            # Everything else names the role it needs.
            Route("/dashboard", self.requires(viewer, self.overview), methods=["GET"]),
            Route("/dashboard/", self.requires(viewer, self.overview), methods=["GET"]),
            Route("/dashboard/logout", self.requires(viewer, self.logout), methods=["POST"]),
            Route("/dashboard/alerts", self.requires(viewer, self.alerts), methods=["GET"]),
            Route("/dashboard/alerts/{alert_id:int}", self.requires(viewer, self.alert),
                  methods=["GET"]),
            Route("/dashboard/snoozes", self.requires(viewer, self.snoozes), methods=["GET"]),
            Route("/dashboard/snoozes/{snooze_id:int}/revoke",
                  self.requires(responder, self.revoke_snooze), methods=["POST"]),
            *suppression_views.routes(self),
            *slack_install_views.routes(self),
            *held_group_views.routes(self, held_resets.GROUP, "/dashboard/held", "held.html"),
            *held_group_views.routes(self, storms.GROUP, "/dashboard/storms", "storms.html"),
        ]  # fmt: skip


def dashboard_routes(cfg: DashboardConfig, db: Database) -> list[BaseRoute]:
    """The dashboard's routes, or none when it is not enabled."""
    return Dashboard(cfg, db).routes() if cfg.enabled else []
