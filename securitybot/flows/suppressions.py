"""Suppression rules: the team closes matching new alerts as ``suppressed``, never silently.

A rule names a kind and glob matchers (``host=build-*``). ``source`` and ``severity`` match the
alert's own columns; any other field matches the alert's details. A matching alert is stored,
closed with the rule named (``alerts.suppression_id``, the audit row), counted in metrics and
listed in the daily summary. Kinds with ``always_escalate`` cannot be suppressed, and nobody's
rule suppresses alerts about themselves.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from securitybot.domain import Event, EventType
from securitybot.flows.transitions import apply_event, load_for_update
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.store.suppression_models import SuppressionRule

SUPPRESSED = Counter(
    "securitybot_alerts_suppressed_by_rule",
    "New alerts closed as suppressed by a team's suppression rule", ["kind"],
)  # fmt: skip

COLUMNS = ("source", "severity")  # matched against the alert itself, not its details
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
MAX_MATCHERS = 8
MAX_PATTERN = 200


# -- pure ------------------------------------------------------------------------------------


def matcher_error(field: str, pattern: str) -> str | None:
    """Why ``field=pattern`` can't be a matcher, or None."""
    if not FIELD_RE.match(field):
        return f"{field!r} is not a field name (letters, digits, _ . -)"
    if not pattern or len(pattern) > MAX_PATTERN or any(ord(c) < 32 for c in pattern):
        return f"the pattern for {field} must be 1 to {MAX_PATTERN} printable characters"
    return None


def field_value(alert: Alert, field: str) -> str | None:
    if field in COLUMNS:
        return str(getattr(alert, field))
    value = (alert.details or {}).get(field)
    return None if value is None or isinstance(value, dict | list) else str(value)


def matches(rule_kind: str, matchers: Mapping[str, Any], alert: Alert) -> bool:
    """Same kind, and every matcher's glob matches its field (case-sensitive, whole value)."""
    if rule_kind != alert.kind:
        return False
    for field, pattern in matchers.items():
        value = field_value(alert, field)
        if value is None or not fnmatch.fnmatchcase(value, str(pattern)):
            return False
    return True


def describe(rule: SuppressionRule) -> str:
    """``R3 sensitive_command host=build-*``: how Slack and the dashboard name a rule."""
    fields = " ".join(f"{k}={v}" for k, v in (rule.matchers or {}).items())
    return f"R{rule.id} {rule.kind}" + (f" {fields}" if fields else "")


def is_active(rule: SuppressionRule, now: datetime) -> bool:
    return rule.revoked_at is None and rule.expires_at > now


# -- store -----------------------------------------------------------------------------------


def create(
    session: Session, *, kind: str, matchers: dict[str, str], reason: str, actor: str,
    expires_at: datetime, via: dict[str, Any],
) -> SuppressionRule:  # fmt: skip
    """Make a rule, audited as ``actor``; the caller has checked kind, matchers and expiry."""
    rule = SuppressionRule(kind=kind, matchers=dict(matchers), reason=reason, created_by=actor,
                           created_at=utcnow(), expires_at=expires_at)  # fmt: skip
    session.add(rule)
    session.flush()
    alert_store.audit(
        session, actor=actor, action="suppression.created",
        details={"suppression_id": rule.id, "kind": kind, "matchers": rule.matchers,
                 "reason": reason, "expires_at": expires_at.isoformat(), **via},
    )  # fmt: skip
    return rule


def revoke(session: Session, *, rule_id: int, actor: str, via: dict[str, Any]) -> bool:
    """End an active rule now (the row stays); False if there is no active rule with that id."""
    rule = session.get(SuppressionRule, rule_id)
    if rule is None or not is_active(rule, utcnow()):
        return False
    rule.revoked_at, rule.revoked_by = utcnow(), actor
    alert_store.audit(session, actor=actor, action="suppression.revoked",
                      details={"suppression_id": rule.id, **via})  # fmt: skip
    return True


def list_rules(session: Session, *, include_all: bool = False) -> list[SuppressionRule]:
    q = select(SuppressionRule).order_by(SuppressionRule.id.desc()).limit(500)
    if not include_all:
        q = q.where(SuppressionRule.revoked_at.is_(None), SuppressionRule.expires_at > utcnow())
    return list(session.scalars(q))


def suppressed_alerts(session: Session, since: datetime, limit: int = 500) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.suppression_id.is_not(None), Alert.created_at >= since)
            .order_by(Alert.id.desc())
            .limit(limit)
        )
    )


def to_public(rule: SuppressionRule) -> dict[str, Any]:
    return {
        "id": rule.id, "kind": rule.kind, "matchers": rule.matchers, "reason": rule.reason,
        "created_by": rule.created_by, "created_at": rule.created_at.isoformat(),
        "expires_at": rule.expires_at.isoformat(),
        "revoked_at": rule.revoked_at.isoformat() if rule.revoked_at else None,
        "revoked_by": rule.revoked_by, "active": is_active(rule, utcnow()),
    }  # fmt: skip


def find_rule(
    session: Session, alert: Alert, people: Iterable[str | None], now: datetime | None = None
) -> SuppressionRule | None:
    """The oldest active rule matching ``alert`` that was not made by the person it is about."""
    now = now or utcnow()
    about = {p.lower() for p in people if p}
    q = select(SuppressionRule).where(
        SuppressionRule.kind == alert.kind,
        SuppressionRule.revoked_at.is_(None),
        SuppressionRule.expires_at > now,
    )
    for rule in session.scalars(q.order_by(SuppressionRule.id)):
        if rule.created_by.lower() in about:
            continue  # an alert about the rule's author is not theirs to silence
        if matches(rule.kind, rule.matchers or {}, alert):
            return rule
    return None


def close_if_suppressed(
    db: Database, alert_id: int, people: Iterable[str | None], also_set: dict[str, Any]
) -> SuppressionRule | None:
    """Close a new alert as suppressed if an active rule matches it, in one transaction."""
    people = list(people)
    with db.write() as session:
        alert = load_for_update(session, alert_id)
        if alert is None or alert.status != "new":
            return None
        return suppress(session, alert, people, also_set)


def suppress(
    session: Session, alert: Alert, people: Iterable[str | None], also_set: dict[str, Any]
) -> SuppressionRule | None:
    """In the caller's transaction, with ``alert`` (new, row-locked) read in it: close it as
    suppressed if an active rule matches; the rule, or None."""
    rule = find_rule(session, alert, [*people, alert.user_id])
    if rule is None:
        return None
    applied = apply_event(
        session, alert, Event(EventType.SUPPRESSION_MATCHED),
        also_set={**also_set, "suppression_id": rule.id},
        audit_details={"suppression_id": rule.id, "rule": describe(rule),
                       "rule_reason": rule.reason},
    )  # fmt: skip
    if not applied.transition.changed:
        return None
    SUPPRESSED.labels(alert.kind).inc()
    session.expunge(rule)
    return rule
