"""Turning a validated payload into a stored, pending alert (plus its audit row and first job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from securitybot.config import PolicyConfig
from securitybot.ingest.schema import AlertIn
from securitybot.kinds import KindRegistry
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue

# The first job of every alert: find the Slack user and start the conversation.
START_EFFECT = "start_conversation"


@dataclass(frozen=True)
class IngestResult:
    alert: Alert
    created: bool


def frozen_policy(kind_name: str, kinds: KindRegistry, policy: PolicyConfig) -> dict[str, Any]:
    kind = kinds.get(kind_name)
    return {
        "ack_timeout": kind.ack_timeout or policy.ack_timeout,
        "duo_timeout": policy.duo_timeout,
        "always_escalate": kind.always_escalate,
        "allow_snooze": kind.allow_snooze,
        "snooze_scope": list(kind.snooze_scope),
    }


def ingest_alert(
    db: Database,
    payload: AlertIn,
    *,
    source: str,
    kinds: KindRegistry,
    policy: PolicyConfig,
) -> IngestResult:
    """Store the alert, its audit row and its first outbox job in one transaction.

    The same ``(source, dedup_key)`` returns the stored alert instead (no second DM later).
    """
    kind_name = payload.kind if payload.kind in kinds else "default"
    kind = kinds.get(kind_name)
    now = utcnow()
    values = {
        "kind": kind_name,
        "severity": kind.severity.value,
        "source": source,
        "dedup_key": payload.dedup_key,
        "user_given": payload.user,
        "title": payload.title,
        "description": payload.description,
        "details": payload.details,
        "status": "new",
        "occurred_at": payload.occurred_at,
        "policy": frozen_policy(kind_name, kinds, policy),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    if payload.kind and payload.kind != kind_name:
        # Keep what the tool said so the team can add the kind later.
        values["details"] = {**payload.details, "requested_kind": payload.kind}
    with db.write() as session:
        new_id = alert_store.insert_alert_once(session, values)
        if new_id is None:
            assert payload.dedup_key is not None  # only the dedup constraint can conflict
            existing = alert_store.find_by_dedup(session, source, payload.dedup_key)
            assert existing is not None
            return IngestResult(existing, created=False)
        alert_store.audit(
            session,
            alert_id=new_id,
            actor=f"source:{source}",
            action="alert.ingested",
            to_status="new",
            details={"kind": kind_name, "dedup_key": payload.dedup_key},
            subject_user=payload.user,
            at=now,
        )
        enqueue(session, effect=START_EFFECT, alert_id=new_id, idempotency_key=f"start:{new_id}")
        alert = Alert(id=new_id, **values)
    return IngestResult(alert, created=True)
