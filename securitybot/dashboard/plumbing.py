"""What every dashboard page uses: rendering a template with the security headers, reading a
form, the sign-in guard and role check, the session cookie, the runtime, the audit log and the
revoke button's POST. :class:`~securitybot.dashboard.views.Dashboard` builds on it; the page
modules see it through :class:`~securitybot.dashboard.pages.Pages`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse

from securitybot.config import DashboardConfig
from securitybot.dashboard.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    DashboardAuth,
    DashboardSession,
    csrf_ok,
)
from securitybot.dashboard.pages import Endpoint, Handler
from securitybot.dashboard.roles import Role
from securitybot.runtime import Runtime
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.untrusted import db_id, scrub, shown

HERE = Path(__file__).parent
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


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _shown(value: Any) -> Any:
    """A template value with its bidirectional controls shown (``untrusted.shown``); markup
    the product made stays markup."""
    if isinstance(value, Markup):
        return Markup(shown(str(value)))
    return shown(value) if isinstance(value, str) else value


class DashboardPlumbing:
    """The dashboard's templates and sign-in, and the plumbing its pages share."""

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
