"""Where paging joins the alert lifecycle: outbox rows written in the transaction that changed
the alert, so a page, its acknowledgement and its resolution are never lost and never doubled.

Every step has its own idempotency key per vendor and dedup key (``page:<vendor>:<key>:trigger``
and ``…:acknowledge``, ``…:resolve``): whatever replica or restart writes it again, the outbox
holds it once, and the handler sends it once (``securitybot.paging.handlers``).

The storm hook: :func:`request_page` with a ``group_key``. The storm guard (issue 27) calls it,
in its own transaction, for each alert it groups into a storm; the first call opens one page
(dedup key ``securitybot-storm-<group_key>``), the others only link their alert to it. An alert
linked to a page is not paged again when it escalates. A claim of any linked alert acknowledges
the page; it is resolved when the last of its alerts is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from securitybot.config import BusinessHoursConfig, Settings
from securitybot.kinds import KindRegistry, escalation_severity
from securitybot.paging.policy import Timing, when_to_page
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow
from securitybot.store.once import insert_once
from securitybot.store.outbox import enqueue
from securitybot.store.paging_models import Page, PagedAlert

SESSION_KEY = "paging"
TERMINAL = ("resolved", "closed")  # alert statuses
OPEN = ("queued", "triggered", "acknowledged")  # page statuses before "resolved"
_PAGES = cast(Table, Page.__table__)
_PAGED = cast(Table, PagedAlert.__table__)


@dataclass(frozen=True)
class PagingRules:
    """What the configuration says about paging, handed to every write session
    (``session.info[SESSION_KEY]``) so the lifecycle can page without global state."""

    providers: tuple[str, ...]
    severities: frozenset[str]
    when: str
    claim_timeout: float
    hours: BusinessHoursConfig | None
    kinds: KindRegistry

    @classmethod
    def from_settings(cls, settings: Settings, kinds: KindRegistry) -> PagingRules:
        p = settings.paging
        providers = tuple(
            name
            for name, cfg in (("pagerduty", p.pagerduty), ("opsgenie", p.opsgenie))
            if cfg.enabled
        )
        return cls(providers, frozenset(p.severities), p.when, settings.escalation.claim_timeout,
                   settings.policy.business_hours, kinds)  # fmt: skip

    def severity(self, alert: Alert) -> str:
        return escalation_severity(self.kinds.get(alert.kind), alert.escalation_reason).value

    def timing(self, alert: Alert, now: datetime) -> Timing:
        return when_to_page(when=self.when, kind_page=self.kinds.get(alert.kind).page,
                            severity=self.severity(alert), severities=self.severities, now=now,
                            hours=self.hours)  # fmt: skip


def rules_of(session: Session) -> PagingRules | None:
    rules = session.info.get(SESSION_KEY)
    return rules if isinstance(rules, PagingRules) and rules.providers else None


def dedup_key(alert_id: int, group_key: str | None = None) -> str:
    return f"securitybot-storm-{group_key}" if group_key else f"securitybot-{alert_id}"


def step_key(provider: str, key: str, step: str) -> str:
    return f"page:{provider}:{key}:{step}"


def request_page(session: Session, alert: Alert, *, group_key: str | None = None) -> str | None:
    """Page the on-call for ``alert`` (or link it to its storm's page); its dedup key, or None
    when paging is not configured. Idempotent: an alert already linked keeps its page."""
    rules = rules_of(session)
    if rules is None:
        return None
    if group_key is not None and not (0 < len(group_key) <= 200):
        raise ValueError("group_key must be 1 to 200 characters")
    linked = session.scalar(select(PagedAlert.dedup_key).where(PagedAlert.alert_id == alert.id))
    if linked is not None:
        return linked
    key = dedup_key(alert.id, group_key)
    insert_once(session, _PAGED, {"alert_id": alert.id, "dedup_key": key, "created_at": utcnow()})
    now = utcnow()
    opened = []
    for provider in rules.providers:
        values = {"provider": provider, "dedup_key": key, "alert_id": alert.id,
                  "group_key": group_key, "status": "queued", "noted_through": 0,
                  "created_at": now, "updated_at": now}  # fmt: skip
        if insert_once(session, _PAGES, values):
            enqueue(session, effect="page_trigger", alert_id=alert.id,
                    payload={"provider": provider, "dedup_key": key},
                    idempotency_key=step_key(provider, key, "trigger"))  # fmt: skip
            opened.append(provider)
    alert_store.audit(session, alert_id=alert.id, actor="system", action="paging.requested",
                      details={"dedup_key": key, "group_key": group_key, "opened": opened},
                      subject_user=alert.user_id)  # fmt: skip
    return key


def on_transition(session: Session, alert: Alert, from_status: str, event_type: str) -> None:
    """Called by ``flows.transitions`` after each change of an alert (in its transaction)."""
    rules = rules_of(session)
    if rules is None or alert.parent_id is not None:
        return  # grouped alerts follow their parent's conversation, and its page
    if alert.status == "escalated" and from_status != "escalated":
        if rules.timing(alert, utcnow()) is Timing.NOW:
            request_page(session, alert)
        return
    if event_type == "claimed":
        _step(session, alert, "acknowledge", unless=("acknowledged", "resolved"))
    elif alert.status in TERMINAL and from_status not in TERMINAL:
        key = _page_of(session, alert.id)
        if key is not None and not _open_alerts(session, key):
            _step(session, alert, "resolve", unless=("resolved",), key=key)


def _page_of(session: Session, alert_id: int) -> str | None:
    return session.scalar(select(PagedAlert.dedup_key).where(PagedAlert.alert_id == alert_id))


def _open_alerts(session: Session, key: str) -> int:
    return int(session.scalar(
        select(func.count()).select_from(PagedAlert).join(Alert, Alert.id == PagedAlert.alert_id)
        .where(PagedAlert.dedup_key == key, Alert.status.not_in(TERMINAL))
    ) or 0)  # fmt: skip


def _step(session: Session, alert: Alert, step: str, *, unless: Sequence[str],
          key: str | None = None) -> None:  # fmt: skip
    key = key or _page_of(session, alert.id)
    if key is None:
        return
    pages = session.execute(
        select(Page.provider, Page.status, Page.alert_id).where(Page.dedup_key == key)
    ).all()
    for provider, status, opener in pages:
        if status in unless:
            continue  # already so in the pager (e.g. acknowledged there): nothing to send
        # On the opener's queue: a page's steps run in order, after its trigger.
        enqueue(session, effect=f"page_{step}", alert_id=opener,
                payload={"provider": provider, "dedup_key": key},
                idempotency_key=step_key(provider, key, step))  # fmt: skip


def set_status(session: Session, provider: str, key: str, status: str,
               *, only_from: Sequence[str], **more: Any) -> bool:  # fmt: skip
    """Move a page to ``status`` if it is in one of ``only_from``; True if it moved."""
    result = session.execute(
        update(Page).where(Page.provider == provider, Page.dedup_key == key,
                           Page.status.in_(list(only_from)))
        .values(status=status, updated_at=utcnow(), **more)
    )  # fmt: skip
    return bool(result.rowcount)  # type: ignore[attr-defined]


def due_unclaimed(session: Session, rules: PagingRules, now: datetime, *,
                  postgres: bool, limit: int = 100) -> list[Alert]:  # fmt: skip
    """Escalations nobody claimed within the claim timeout and not paged yet
    (paging.when: unclaimed_after_claim_timeout)."""
    q = (
        select(Alert)
        .outerjoin(PagedAlert, PagedAlert.alert_id == Alert.id)
        .where(Alert.status == "escalated", Alert.parent_id.is_(None),
               Alert.escalated_at <= now - timedelta(seconds=rules.claim_timeout),
               PagedAlert.alert_id.is_(None))
        .order_by(Alert.escalated_at)
        .limit(limit)
    )  # fmt: skip
    if postgres:
        q = q.with_for_update(skip_locked=True, of=Alert)
    return [a for a in session.scalars(q) if rules.timing(a, now) is not Timing.NEVER]


def notes_due(session: Session, *, limit: int = 100) -> list[tuple[str, int, int]]:
    """Opsgenie pages with timeline steps not yet noted: (dedup key, opener, newest step)."""
    recent = utcnow() - timedelta(days=7)  # an old page's alert has long been closed
    newest = (
        select(PagedAlert.dedup_key, func.max(AuditLog.id).label("newest"))
        .join(AuditLog, AuditLog.alert_id == PagedAlert.alert_id)
        .where(PagedAlert.created_at >= recent)
        .group_by(PagedAlert.dedup_key)
        .subquery()
    )
    # One notes job per page at a time: two running side by side (two replicas) could both
    # post the steps between the cursor and their own end.
    busy = select(Outbox.alert_id).where(Outbox.effect == "page_notes",
                                         Outbox.status == "pending")  # fmt: skip
    rows = session.execute(
        select(Page.dedup_key, Page.alert_id, newest.c.newest)
        .join(newest, newest.c.dedup_key == Page.dedup_key)
        .where(Page.provider == "opsgenie", Page.status != "queued",
               newest.c.newest > Page.noted_through, Page.alert_id.not_in(busy))
        .limit(limit)
    ).all()  # fmt: skip
    return [(r[0], int(r[1]), int(r[2])) for r in rows]
