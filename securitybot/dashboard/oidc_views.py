"""The dashboard's OpenID Connect routes: /dashboard/oidc/login sends the browser to the
provider, /dashboard/oidc/callback signs the person in (a server-side session with the role
their claims map to) or shows why not.

Between the two, state, nonce and PKCE verifier live in a signed cookie that expires in ten
minutes and is spent by the first callback, whatever its outcome: a callback carried to
another browser (login CSRF) or replayed finds no sign-in to finish.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.dashboard.auth import SESSION_COOKIE, safe_next
from securitybot.dashboard.oidc import OidcClient, OidcError, Pending
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import claim_values, role_from_claims

log = logging.getLogger(__name__)
PENDING_COOKIE = "sb_oidc"
PENDING_PURPOSE = "oidc-pending"
PENDING_LIFETIME = 600.0
# Failures that reached the provider are audited; a state or cookie that does not match is
# anyone's request to a public URL, and is only logged.
_UNAUDITED = frozenset({"state_mismatch", "no_pending"})


def display_name(claims: dict[str, Any]) -> str:
    """Who the person is on pages and in ``dashboard:<name>`` audit actors: the email unless
    the provider says it is unverified, else preferred_username, else the subject."""
    for value in (
        claims.get("email") if claims.get("email_verified") is not False else None,
        claims.get("preferred_username"),
        claims.get("sub"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()[:64]
    return "?"


def routes(dash: Pages) -> list[BaseRoute]:
    cfg = dash.auth.cfg.oidc
    if cfg is None:
        return []
    client = OidcClient(cfg)
    auth = dash.auth

    def failed(request: Request, exc: OidcError) -> StarletteResponse:
        response = dash._page(request, "signin_failed.html", status=exc.status, message=exc.message)
        auth.clear_cookie(response, request, PENDING_COOKIE)
        return response

    async def start(request: Request) -> StarletteResponse:
        try:
            url, pending = await client.begin(safe_next(request.query_params.get("next")))
        except OidcError as exc:
            log.warning("dashboard: OIDC sign-in could not start: %s", exc)
            return failed(request, exc)
        sealed = auth.seal(PENDING_PURPOSE, asdict(pending), PENDING_LIFETIME)
        response = RedirectResponse(url, status_code=303)
        auth.set_cookie(response, request, PENDING_COOKIE, sealed, max_age=int(PENDING_LIFETIME))
        return dash._finish(response)

    async def callback(request: Request) -> StarletteResponse:
        client_addr = auth.client_address(request)
        rt = dash._rt(request)
        data = auth.unseal(PENDING_PURPOSE, request.cookies.get(PENDING_COOKIE))
        try:
            if data is None or set(data) != {"state", "nonce", "verifier", "next"}:
                raise OidcError(
                    "no_pending",
                    "This browser has no sign-in waiting to finish: "
                    "it was started in another browser, finished already, or took "
                    "longer than ten minutes. Start again.",
                )
            pending = Pending(**{k: str(v) for k, v in data.items()})
            claims = await client.finish(pending, dict(request.query_params))
        except OidcError as exc:
            log.warning("dashboard: OIDC sign-in from %s refused: %s", client_addr, exc)
            if exc.reason not in _UNAUDITED:
                await run_in_threadpool(
                    dash._audit,
                    rt,
                    "?",
                    "dashboard.login_failed",
                    details={"auth": "oidc", "reason": exc.reason, "client": client_addr},
                )
            return failed(request, exc)
        subject, name = str(claims["sub"])[:255], display_name(claims)
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        identity = {"auth": "oidc", "sub": subject, **({"email": email[:255]} if email else {})}
        role = role_from_claims(claims, cfg.roles_claim, auth.cfg.roles.as_mapping())
        if role is None:
            await run_in_threadpool(
                dash._audit,
                rt,
                name,
                "dashboard.login_refused",
                details={**identity, "reason": "no_role", "client": client_addr},
            )
            values = [v for n in cfg.roles_claim for v in claim_values(claims, n)]
            response = dash.refused(
                request, None, None, name=name, claims=cfg.roles_claim, values=values[:20]
            )
            auth.clear_cookie(response, request, PENDING_COOKIE)
            return response
        session, cookie = await run_in_threadpool(
            auth.issue, name, "oidc", role, subject, email[:255] if email else None
        )
        await run_in_threadpool(
            dash._audit,
            rt,
            name,
            "dashboard.login",
            details={"client": client_addr, **session.audit_details()},
        )
        response = RedirectResponse(pending.next, status_code=303)
        auth.set_cookie(response, request, SESSION_COOKIE, cookie)
        auth.clear_cookie(response, request, PENDING_COOKIE)
        return dash._finish(response)

    return [
        Route("/dashboard/oidc/login", start, methods=["GET"]),
        Route("/dashboard/oidc/callback", callback, methods=["GET"]),
    ]
