"""Read-only queries behind the dashboard; aggregates run in SQL to stay fast on big tables."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, case, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, AuditLog, Snooze, utcnow

AER_RESET_ACTION = "user_sessions_reset_by_anomaly_event_response"
ANSWER_ACTIONS = ("alert.user_confirmed", "alert.user_denied")
# Upper bounds (seconds) of the time-to-answer buckets; the last bucket is open-ended.
ANSWER_BUCKETS = ((60, "< 1 min"), (300, "1–5 min"), (900, "5–15 min"), (3600, "15–60 min"))
OUTCOMES = ("confirmed", "benign", "compromised", "suppressed", "open")


@dataclass
class Charts:
    days: list[date]
    per_day: dict[date, dict[str, int]]
    answer_buckets: list[tuple[str, int]]
    escalation_by_kind: list[tuple[str, int, int]]  # kind, escalated, total
    aer_by_org: list[tuple[str, int, int]]  # org, anomalies, session resets
    anomalies_table: bool
    totals: dict[str, int] = field(default_factory=dict)


def alerts_page(
    session: Session,
    *,
    status: list[str],
    kind: str | None,
    user: str | None,
    since: datetime | None,
    before_id: int | None,
    limit: int = 50,
) -> tuple[list[Alert], str | None]:
    f = alert_store.AlertFilter(
        status=status, kind=kind, user=user, since=since, before_id=before_id, limit=limit
    )
    return alert_store.list_alerts(session, f)


def kinds_seen(session: Session) -> list[str]:
    return list(session.scalars(select(Alert.kind).distinct().order_by(Alert.kind)))


def alert_timeline(session: Session, alert_id: int) -> tuple[Alert | None, list[AuditLog]]:
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None, []
    rows = session.scalars(
        select(AuditLog).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
    )
    return alert, list(rows)


def escalation_queue(session: Session) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.status.in_(("escalated", "triaging")))
            .order_by(Alert.escalated_at.asc().nulls_last(), Alert.id)
            .limit(200)
        )
    )


def open_snoozes(session: Session) -> list[Snooze]:
    return list(
        session.scalars(
            select(Snooze)
            .where(Snooze.revoked_at.is_(None), Snooze.expires_at > utcnow())
            .order_by(Snooze.expires_at)
            .limit(500)
        )
    )


def _as_date(value: Any) -> date:
    # SQLite returns DATE() as text, PostgreSQL as a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _per_day(session: Session, since: datetime) -> dict[date, dict[str, int]]:
    day = func.date(Alert.created_at)
    bucket = func.coalesce(Alert.outcome, "open")
    rows = session.execute(
        select(day, bucket, func.count()).where(Alert.created_at >= since).group_by(day, bucket)
    )
    out: dict[date, dict[str, int]] = defaultdict(dict)
    for d, outcome, n in rows:
        out[_as_date(d)][str(outcome)] = int(n)
    return out


def _answer_buckets(session: Session, since: datetime) -> list[tuple[str, int]]:
    dm_at = func.min(case((AuditLog.action == "alert.dm_sent", AuditLog.created_at)))
    answer_at = func.min(case((AuditLog.action.in_(ANSWER_ACTIONS), AuditLog.created_at)))
    rows = session.execute(
        select(AuditLog.alert_id, dm_at, answer_at)
        .where(
            AuditLog.created_at >= since,
            AuditLog.alert_id.is_not(None),
            AuditLog.action.in_(("alert.dm_sent", *ANSWER_ACTIONS)),
        )
        .group_by(AuditLog.alert_id)
    )
    counts = [0] * (len(ANSWER_BUCKETS) + 1)
    for _id, sent, answered in rows:
        if sent is None or answered is None:
            continue
        # MIN() over a CASE loses the column type on some backends; parse when it comes back text.
        sent_at = sent if isinstance(sent, datetime) else datetime.fromisoformat(str(sent))
        ans_at = (
            answered if isinstance(answered, datetime) else datetime.fromisoformat(str(answered))
        )
        seconds = (ans_at - sent_at).total_seconds()
        index = next((i for i, (upper, _) in enumerate(ANSWER_BUCKETS) if seconds < upper), -1)
        counts[index] += 1
    labels = [label for _, label in ANSWER_BUCKETS] + ["> 1 h"]
    return list(zip(labels, counts, strict=True))


def _escalation_by_kind(session: Session, since: datetime) -> list[tuple[str, int, int]]:
    escalated = func.sum(case((Alert.escalated_at.is_not(None), 1), else_=0))
    rows = session.execute(
        select(Alert.kind, escalated, func.count())
        .where(Alert.created_at >= since, Alert.parent_id.is_(None))
        .group_by(Alert.kind)
        .order_by(Alert.kind)
    )
    return [(str(k), int(e or 0), int(n)) for k, e, n in rows]


ANOMALY_TABLES = ("aer_anomalies", "anomalies")


def _anomalies_table(engine: Engine) -> Table | None:
    """AER's anomalies table if this database has one yet (reflected, so this page does not
    depend on the AER models or on the migration having run)."""
    names = set(inspect(engine).get_table_names())
    name = next((n for n in ANOMALY_TABLES if n in names), None)
    if name is None:
        return None
    table = Table(name, MetaData(), autoload_with=engine)
    return table if "org" in table.c else None


def _aer_by_org(session: Session, since: datetime) -> tuple[list[tuple[str, int, int]], bool]:
    resets: dict[str, int] = {}
    org = func.coalesce(AuditLog.org, "(none)")
    for o, n in session.execute(
        select(org, func.count())
        .where(AuditLog.action == AER_RESET_ACTION, AuditLog.created_at >= since)
        .group_by(org)
    ):
        resets[str(o)] = int(n)
    anomalies: dict[str, int] = {}
    table = _anomalies_table(session.get_bind().engine)
    if table is not None:
        times = ("occurred_at", "ts", "detected_at", "created_at")
        when = next((table.c[c] for c in times if c in table.c), None)
        q = select(table.c.org, func.count()).group_by(table.c.org)
        if when is not None:
            q = q.where(when >= since)
        for o, n in session.execute(q):
            anomalies[str(o)] = int(n)
    orgs = sorted(set(resets) | set(anomalies))
    return [(o, anomalies.get(o, 0), resets.get(o, 0)) for o in orgs], table is not None


def charts(session: Session, days: int = 14) -> Charts:
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=utcnow().tzinfo)
    per_day = _per_day(session, since)
    aer, has_table = _aer_by_org(session, since)
    totals: dict[str, int] = defaultdict(int)
    for counts in per_day.values():
        for outcome, n in counts.items():
            totals[outcome] += n
    return Charts(
        days=[first + timedelta(days=i) for i in range(days)],
        per_day=per_day,
        answer_buckets=_answer_buckets(session, since),
        escalation_by_kind=_escalation_by_kind(session, since),
        aer_by_org=aer,
        anomalies_table=has_table,
        totals=dict(totals),
    )
