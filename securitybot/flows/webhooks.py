"""Outbound webhooks: signed JSON on state changes, delivered (and retried) through the outbox.

Signature: ``X-Securitybot-Signature: v1=<hex HMAC-SHA256(secret,
"<X-Securitybot-Timestamp>." + body)>``, so a receiver can reject forgeries and replays (each
delivery is one POST to one configured URL, so the body and timestamp are all there is to bind;
inbound requests use the v2 scheme of ``securitybot.ingest.signing``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from securitybot.config import OutboundWebhook
from securitybot.masking import scrub
from securitybot.outbox.dispatcher import Done, GiveUp, Job, Outcome, RetryAt, backoff
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue

MAX_ATTEMPTS = 10


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """An outbound delivery's ``v1=`` signature over ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


SESSION_KEY = "outbound_webhooks"


def state_events(from_status: str, alert: Alert, event_type: str) -> list[str]:
    """Which public webhook events a transition produces."""
    out = []
    if alert.status != from_status and alert.status in ("resolved", "escalated", "closed"):
        out.append(alert.status)
    if event_type == "claimed":
        out.append("claimed")
    return out


def enqueue_for(
    session: Session, alert: Alert, events: list[str], extra: dict[str, Any] | None = None
) -> None:
    targets: list[OutboundWebhook] = session.info.get(SESSION_KEY) or []
    if not targets or not events:
        return
    snapshot = alert_store.to_public(alert)
    for index, target in enumerate(targets):
        for name in events:
            if name not in target.events:
                continue
            enqueue(
                session,
                effect="outbound_webhook",
                alert_id=alert.id,
                payload={"target": index, "event": name, "alert": snapshot, **(extra or {})},
                idempotency_key=f"hook:{index}:{alert.id}:v{alert.version}:{name}",
            )


class WebhookSender:
    def __init__(self, targets: list[OutboundWebhook]) -> None:
        self.targets = targets

    async def __call__(self, job: Job) -> Outcome:
        index = int(job.payload.get("target", -1))
        if not 0 <= index < len(self.targets):
            return GiveUp("webhook target no longer configured")
        target = self.targets[index]
        body = json.dumps(
            {
                "event": job.payload["event"],
                "alert": job.payload.get("alert"),
                "delivery_id": job.id,
                "sent_at": utcnow().isoformat(),
            },
            separators=(",", ":"),
            default=str,
        ).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Securitybot-Event": job.payload["event"],
            "X-Securitybot-Timestamp": str(ts),
            "X-Securitybot-Delivery": str(job.id),
        }
        if target.secret is not None:
            headers["X-Securitybot-Signature"] = sign(target.secret.get_secret_value(), ts, body)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                resp = await client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = scrub(f"{type(exc).__name__}: {exc}", target.url)  # stored and shown
        else:
            if resp.status_code < 300:
                return Done()
            error = f"HTTP {resp.status_code}"
        if job.attempts + 1 >= MAX_ATTEMPTS:
            return GiveUp(error)
        return RetryAt(
            utcnow() + backoff(job.attempts + 1, cap=timedelta(minutes=10).total_seconds()), error
        )
