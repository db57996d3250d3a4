"""Back from the pager: PagerDuty's v3 webhooks (``POST /pagerduty/webhook``).

The request is checked before anything is read into the store: the body's
``X-PagerDuty-Signature`` (``v1=<hex HMAC-SHA256 of the raw body>``, one or several,
comma-separated during a secret rotation: docs/webhooks/04-Signatures.md) against
``paging.pagerduty.webhook_secret``, then the event's shape. PagerDuty's signature covers no
timestamp, so replays are stopped by remembering each ``event.id`` handled (PagerDuty repeats
it on every retry) for the replay window, and refusing events that occurred before it.
PagerDuty retries for up to 48 hours, hence the default window.

An accepted event is stored with an outbox job in one transaction and answered at once
(PagerDuty wants a 2xx within 5 seconds); the job does the slow part: who acted (the REST API's
user, found by following the event's own link), who that is in Slack (by email), and then:

* ``incident.acknowledged``: shown in the Slack post, the dashboard and the audit log, and the
  alert claimed for that Slack user when they are a responder (and not the alert's subject);
* ``incident.resolved``: shown and audited, but the alert stays open: only a responder's
  outcome (benign, compromised) closes it, and the post says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from securitybot import constant_time, untrusted
from securitybot.api.common import ApiError, read_body
from securitybot.config import PagerDutyConfig, Settings
from securitybot.outbox.jobs import Done, Job, Outcome, Wake
from securitybot.paging import hooks
from securitybot.paging.vendors import PagerDuty, outcome
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, utcnow
from securitybot.store.once import Every, fit_key, insert_once
from securitybot.store.outbox import enqueue
from securitybot.store.paging_models import Page, PagerDutyWebhook


class PagingHandlers(Protocol):
    """What acting on a webhook needs of the paging handlers (which call this module)."""

    db: Database
    settings: Settings
    wake: Wake
    slack: Any
    responders: Any
    pagerduty: PagerDuty

    def apply_claim(self, alert_id: int, slack_user: str, details: dict[str, Any]) -> None: ...


logger = logging.getLogger(__name__)

PATH = "/pagerduty/webhook"
MAX_BODY = 64 * 1024  # PagerDuty's events are a few kilobytes
HANDLED = ("incident.acknowledged", "incident.resolved")
FUTURE_SKEW = timedelta(minutes=5)
_prune = Every(300.0)


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """At least one ``v1=`` signature in ``header`` is ``body``'s HMAC-SHA256 under ``secret``."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(constant_time.equal(expected, part.strip()) for part in header.split(","))


def _event(data: Any) -> dict[str, Any]:
    """The webhook's ``event``, checked for what is used; ApiError 400 naming what is wrong."""
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event, dict):
        raise ApiError(400, "invalid_event", "the body must be a JSON object with an 'event'")
    for name in ("id", "event_type", "occurred_at"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise ApiError(400, "invalid_event", f"event.{name} must be a non-empty string")
    if not isinstance(event.get("data"), dict):
        raise ApiError(400, "invalid_event", "event.data must be an object")
    if event.get("agent") is not None and not isinstance(event["agent"], dict):
        raise ApiError(400, "invalid_event", "event.agent must be an object or null")
    return event


def _occurred(event: dict[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_event", "event.occurred_at is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _store(db: Database, event: dict[str, Any], window: timedelta) -> tuple[int, str, str]:
    """Record the event once and queue its job: (HTTP status, status word, why)."""
    data = event["data"]
    key = data.get("incident_key") if isinstance(data.get("incident_key"), str) else None
    with db.write() as session:
        if _prune.due():
            session.execute(delete(PagerDutyWebhook).where(
                PagerDutyWebhook.received_at < utcnow() - window))  # fmt: skip
        fresh = insert_once(
            session,
            cast(Table, PagerDutyWebhook.__table__),
            {"event_id": fit_key(event["id"]), "received_at": utcnow()},
        )
        if not fresh:
            return 200, "duplicate", "this event was handled already"
        if event["event_type"] not in HANDLED:
            return 200, "ignored", f"{event['event_type']} changes nothing here"
        page = session.get(Page, ("pagerduty", key)) if key else None
        if page is None:
            return 200, "ignored", "not an incident Securitybot opened"
        agent = event.get("agent") or {}
        payload = {
            "event_id": event["id"], "event_type": event["event_type"], "dedup_key": key,
            "agent": {k: str(agent.get(k) or "")[:500] for k in ("id", "self", "summary")},
            "incident": {k: str(data.get(k) or "")[:500] for k in ("id", "html_url")},
        }  # fmt: skip
        enqueue(session, effect="pagerduty_webhook", alert_id=page.alert_id, payload=payload,
                idempotency_key=fit_key(f"pdwh:{event['id']}"))  # fmt: skip
        return 202, "accepted", "queued"


def route(db: Database, cfg: PagerDutyConfig, wake: Wake) -> Route:
    assert cfg.webhook_secret is not None
    secret = cfg.webhook_secret.get_secret_value()
    window = timedelta(seconds=cfg.webhook_replay_window)

    async def receive(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        header = request.headers.get("X-PagerDuty-Signature", "")
        if not header or not signature_ok(secret, body, header):
            raise ApiError(401, "invalid_signature",
                           "X-PagerDuty-Signature is missing or does not match")  # fmt: skip
        try:
            data = untrusted.loads(body)
            untrusted.check(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
        event = _event(data)
        now = utcnow()
        occurred = _occurred(event)
        if not now - window <= occurred <= now + FUTURE_SKEW:
            raise ApiError(400, "outside_replay_window",
                           f"event.occurred_at {event['occurred_at']} is outside the replay "
                           f"window of {window.total_seconds():.0f} s")  # fmt: skip
        status, word, why = await run_in_threadpool(_store, db, event, window)
        if status == 202:
            wake(["pagerduty_webhook"])
        return JSONResponse({"status": word, "reason": why}, status_code=status)

    return Route(PATH, receive, methods=["POST"])


# -- the job: who acted, and what it means here ------------------------------------------------


async def _who(h: PagingHandlers, job: Job) -> tuple[str, str | None, Outcome | None]:
    """(PagerDuty name, email or None, an outcome to return early on a retryable failure)."""
    agent = job.payload.get("agent") or {}
    name = agent.get("summary") or "someone in PagerDuty"
    link = agent.get("self") or ""
    cfg = h.settings.paging.pagerduty
    if not link or cfg.api_token is None or not h.pagerduty.may_follow(link):
        return name, None, None
    try:
        answer = await h.pagerduty.user(link)
    except Exception as exc:  # network trouble: try the whole job again later
        return name, None, outcome(job, "pagerduty", None, exc)
    if answer.status == 429 or answer.status >= 500:
        return name, None, outcome(job, "pagerduty", answer)
    user = answer.body.get("user") if isinstance(answer.body, dict) else None
    if not 200 <= answer.status < 300 or not isinstance(user, dict):
        logger.warning("PagerDuty user %s: HTTP %s; shown by name only", link, answer.status)
        return name, None, None
    email = user.get("email")
    return str(user.get("name") or name), (email if isinstance(email, str) else None), None


async def _slack_id(h: PagingHandlers, email: str | None) -> str | None:
    if not email or h.slack is None:
        return None
    user = await h.slack.lookup_user(email)
    if user is None or getattr(user, "deleted", False) or getattr(user, "is_bot", False):
        return None
    return str(user.id)


def _shown(h: PagingHandlers, job: Job, alert_id: int, action: str, status: str,
           details: dict[str, Any], show: bool) -> bool:  # fmt: skip
    """Record what happened in the pager (once per event); False if an earlier run did."""
    p = job.payload
    with h.db.write() as session:
        earlier = session.scalars(
            select(AuditLog.details).where(AuditLog.alert_id == alert_id, AuditLog.action == action)
        ).all()
        if any((d or {}).get("event_id") == p["event_id"] for d in earlier):
            return False
        who = {"acknowledged": "acknowledged_by", "resolved": "resolved_by"}[status]
        before = ("queued", "triggered") if status == "acknowledged" else hooks.OPEN
        hooks.set_status(session, "pagerduty", p["dedup_key"], status, only_from=before,
                         **{who: details["pagerduty_user"][:128]})  # fmt: skip
        alert = session.get(Alert, alert_id)
        alert_store.audit(
            session,
            alert_id=alert_id,
            actor="pagerduty",
            action=action,
            details=details,
            subject_user=alert.user_id if alert else None,
        )
        if show:
            enqueue(session, effect="update_escalation", alert_id=alert_id,
                    idempotency_key=fit_key(f"pdwh-shown:{p['event_id']}"))  # fmt: skip
    return True


async def act_on_event(h: PagingHandlers, job: Job) -> Outcome:
    p = job.payload
    alert_id = job.alert_id
    if alert_id is None:
        return Done()
    name, email, early = await _who(h, job)
    if early is not None:
        return early
    slack_id = await _slack_id(h, email)
    details: dict[str, Any] = {
        "event_id": p["event_id"], "pagerduty_user": name,
        "pagerduty_user_id": (p.get("agent") or {}).get("id"),
        "pagerduty_email": email, "incident": (p.get("incident") or {}).get("html_url"),
    }  # fmt: skip
    if p["event_type"] == "incident.resolved":
        await run_in_threadpool(_shown, h, job, alert_id, "paging.pagerduty_resolved",
                                "resolved", details, True)  # fmt: skip
        h.wake(["update_escalation"])
        return Done()
    claim_for = await _claimable(h, alert_id, slack_id)
    details["claimed_for"] = claim_for
    first = await run_in_threadpool(_shown, h, job, alert_id, "paging.pagerduty_acknowledged",
                                    "acknowledged", details, claim_for is None)  # fmt: skip
    if first and claim_for is not None:
        # The page is marked acknowledged first, so this claim sends nothing back to PagerDuty.
        await run_in_threadpool(h.apply_claim, alert_id, claim_for,
                                {"pagerduty_user": name, "event_id": p["event_id"]})  # fmt: skip
    h.wake(["update_escalation"])
    return Done()


async def _claimable(h: PagingHandlers, alert_id: int, slack_id: str | None) -> str | None:
    """``slack_id`` if the alert may be claimed for them: a responder, not the alert's subject,
    and the alert still waiting for (or in) triage."""
    if slack_id is None or h.responders is None:
        return None
    if not await h.responders.contains(slack_id):
        return None
    alert = await run_in_threadpool(_alert, h.db, alert_id)
    if alert is None or alert.user_id == slack_id or alert.status not in ("escalated", "triaging"):
        return None
    return slack_id if alert.claimed_by != slack_id else None


def _alert(db: Database, alert_id: int) -> Alert | None:
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None:
            session.expunge(alert)
        return alert
