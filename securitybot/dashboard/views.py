"""The security team's dashboard: server-rendered pages under /dashboard, off unless configured."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse
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
from securitybot.dashboard.auth import DashboardSession
from securitybot.dashboard.login_views import LoginViews
from securitybot.dashboard.plumbing import HERE
from securitybot.dashboard.roles import Role
from securitybot.flows import snoozes
from securitybot.flows.timeline import timeline_text
from securitybot.slack import held_resets, storms
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Snooze, utcnow
from securitybot.untrusted import db_id

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
_MENTION = re.compile(r"<@([A-Z0-9]+)>")


def _plain(text: str) -> str:
    """Slack mrkdwn from the shared timeline phrases, as plain text for the page."""
    return _MENTION.sub(r"\1", text).replace("*", "")


class Dashboard(LoginViews):
    """The dashboard's own pages (overview, alerts, an alert's timeline, snoozes) and every
    route, those of the page modules included."""

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
