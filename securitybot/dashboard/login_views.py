"""Signing in to the dashboard with a local (break-glass) account, and signing out: CSRF-checked
forms, failed attempts counted before the password is checked, every outcome audited."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse

from securitybot.dashboard.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    DashboardSession,
    csrf_ok,
    safe_next,
)
from securitybot.dashboard.plumbing import DashboardPlumbing


class LoginViews(DashboardPlumbing):
    """The sign-in page and form, and sign-out."""

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
