"""The retention purge on both stores: what goes, what stays (open alerts, holds, the young),
in small batches, on one replica at a time, counted by --dry-run and by the metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import event, func, select

from securitybot import metrics
from securitybot.cli import main
from securitybot.config import RetentionConfig
from securitybot.privacy import purge
from securitybot.privacy.ages import OldestRowCollector
from securitybot.privacy.job import current_policy, run_daily
from securitybot.privacy.lease import Lease
from securitybot.store.aer_budget_models import AerHeldReset
from securitybot.store.aer_models import AerAnomaly, AerCounter
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, Snooze
from securitybot.store.paging_models import Page, PagedAlert
from securitybot.store.slack_people_models import SlackPerson
from tests.privacy.seed import ago, alert

CONFIG = {"alerts": "400d", "audit": "730d", "outbox": "14d", "aer": "90d"}


def _count(db: Database, model: type, *where: object) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def _ids(db: Database) -> set[int]:
    with db.read() as s:
        return set(s.scalars(select(Alert.id)))


def test_old_finished_alerts_go_with_their_jobs_open_held_and_young_ones_stay(db: Database) -> None:
    old = alert(db, age_days=500)
    closed = alert(db, age_days=450, status="closed")
    still_open = alert(db, age_days=600, status="escalated")
    young = alert(db, age_days=10)
    by_id = alert(db, age_days=500)
    by_person = alert(db, age_days=500, user="carol@example.com", user_id="U0CAROL")
    by_kind = alert(db, age_days=500, kind="new_country_login")
    with db.write() as s:  # a page, a paged alert and a snooze point at the old one
        s.add(Page(provider="pagerduty", dedup_key="k1", alert_id=old, status="resolved"))
        s.add(PagedAlert(alert_id=old, dedup_key="k1"))
        s.add(Snooze(user_id="U0ALICE", kind="sensitive_command", scope_key="x",
                     source_alert_id=old, expires_at=ago(-1)))  # fmt: skip
        child = s.get(Alert, young)
        assert child is not None
        child.parent_id = old  # a younger grouped alert outlives its parent
    cfg = RetentionConfig.model_validate(
        {
            **CONFIG,
            "hold": {
                "alerts": [by_id],
                "people": ["Carol@Example.com"],
                "kinds": ["new_country_login"],
            },
        }
    )
    report = purge.run(db, current_policy(db, cfg), batch_size=2)
    assert _ids(db) == {still_open, young, by_id, by_person, by_kind}
    assert report.tables["alerts"] == 2
    # Their done jobs went with them (all are older than 14 days; the held alerts keep theirs).
    assert _count(db, Outbox, Outbox.alert_id.in_([old, closed])) == 0
    assert _count(db, Outbox, Outbox.alert_id.in_([by_id, by_person, by_kind])) == 6
    # The audit log is kept longer (730 days): its rows about the purged alerts keep their ids.
    assert _count(db, AuditLog, AuditLog.alert_id.in_([old, closed])) == 4
    assert _count(db, Page) == 0 and _count(db, PagedAlert) == 0
    with db.read() as s:
        assert s.scalar(select(Snooze.source_alert_id)) is None
        assert s.get(Alert, young).parent_id is None  # type: ignore[union-attr]


def test_the_audit_log_keeps_rows_of_open_and_held_alerts(db: Database) -> None:
    gone = alert(db, age_days=800)
    still_open = alert(db, age_days=800, status="awaiting_ack")
    held = alert(db, age_days=800, user="dave@example.com", user_id="U0DAVE")
    with db.write() as s:
        s.add(AuditLog(actor="U0DAVE", action="exemption_added", created_at=ago(900)))
        s.add(AuditLog(actor="U0ERIN", action="exemption_added", created_at=ago(900)))
        s.add(AuditLog(actor="U0ERIN", action="exemption_added", created_at=ago(100)))
    cfg = RetentionConfig.model_validate({"audit": "730d", "hold": {"people": ["U0DAVE"]}})
    purge.run(db, current_policy(db, cfg), batch_size=3)
    with db.read() as s:
        left = s.execute(select(AuditLog.alert_id, AuditLog.actor)).all()
    assert {a for a, _ in left if a} == {still_open, held}
    assert sorted(actor for a, actor in left if a is None) == ["U0DAVE", "U0ERIN"]
    assert gone in _ids(db)  # retention.alerts is 0: alerts are kept


def test_only_finished_jobs_older_than_retention_outbox_go(db: Database) -> None:
    a = alert(db, age_days=1, jobs=0, audit=0)
    rows = [("done", 20, a), ("dead", 20, a), ("done", 3, a), ("pending", None, a),
            ("done", 40, None)]  # fmt: skip
    with db.write() as s:
        for status, done, alert_id in rows:
            s.add(Outbox(alert_id=alert_id, effect="send_dm", status=status, created_at=ago(30),
                         done_at=None if done is None else ago(done)))  # fmt: skip
    cfg = RetentionConfig.model_validate({"outbox": "14d"})
    report = purge.run(db, current_policy(db, cfg), batch_size=500)
    assert report.categories == {"outbox": 3}
    with db.read() as s:
        assert sorted(s.scalars(select(Outbox.status))) == ["done", "pending"]


def test_aer_counters_and_old_anomalies_go_unless_held(db: Database) -> None:
    with db.write() as s:
        s.add(SlackPerson(key="frank@example.com", user={"id": "U0FRANK"}, user_cached_at=ago(1)))
        for user, days in (("U0ALICE", 100), ("U0ALICE", 10), ("U0FRANK", 100)):
            s.add(AerCounter(org="o", user_id=user, action="download", bucket_start=ago(days),
                             count=5))  # fmt: skip
        for user, days in (("U0ALICE", 500), ("U0ALICE", 10), ("U0FRANK", 500), ("U0BOB", 500)):
            s.add(AerAnomaly(org="o", user_id=user, type="t", rule="r", source="events",
                             observed="1", verdict="reset", reason="", occurred_at=ago(days),
                             created_at=ago(days)))  # fmt: skip
        s.flush()
        bob = s.scalar(select(AerAnomaly.id).where(AerAnomaly.user_id == "U0BOB"))
        s.add(AerHeldReset(batch_id=1, org="o", user_id="U0BOB", anomaly_id=bob, status="held"))
    # A hold by email reaches the Slack id the people cache knows.
    cfg = RetentionConfig.model_validate({**CONFIG, "hold": {"people": ["frank@example.com"]}})
    dry = purge.run(db, current_policy(db, cfg), batch_size=1, dry_run=True)
    report = purge.run(db, current_policy(db, cfg), batch_size=1)
    assert dry.tables == report.tables
    assert report.tables["aer_counters"] == 1 and report.tables["aer_anomalies"] == 1
    with db.read() as s:
        assert sorted(s.scalars(select(AerCounter.user_id))) == ["U0ALICE", "U0FRANK"]
        assert sorted(s.scalars(select(AerAnomaly.user_id))) == ["U0ALICE", "U0BOB", "U0FRANK"]


def test_dry_run_counts_exactly_what_the_purge_deletes_and_deletes_nothing(db: Database) -> None:
    alert(db, age_days=900, status="triaging")
    for days in (800, 500, 500, 450, 30):  # ids grow with time, as in a real store
        alert(db, age_days=days)
    cfg = RetentionConfig.model_validate(CONFIG)
    before = (_count(db, Alert), _count(db, AuditLog), _count(db, Outbox))
    dry = purge.run(db, current_policy(db, cfg), batch_size=2, dry_run=True)
    assert (_count(db, Alert), _count(db, AuditLog), _count(db, Outbox)) == before
    done = purge.run(db, current_policy(db, cfg), batch_size=2)
    assert dry.categories == done.categories
    # 4 alerts over 400 days; audit: 2 rows of the 800-day alert (the 900-day one is open);
    # outbox: 2 jobs each of the 5 finished alerts older than 14 days (the open one's too).
    assert done.categories == {"alerts": 4, "audit": 2, "outbox": 12, "aer": 0}


def test_one_replica_at_a_time_and_once_a_day(db: Database) -> None:
    alert(db, age_days=500)
    cfg = RetentionConfig.model_validate(CONFIG)
    other = Lease(db, "retention_purge", timedelta(minutes=5), owner="replica-b")
    assert other.acquire()
    assert run_daily(db, cfg, owner="replica-a") is None  # b holds it
    assert _count(db, Alert) == 1
    other.release(done=False)  # b died before finishing: a's next run does the work
    first = run_daily(db, cfg, owner="replica-a")
    assert first is not None and first.categories["alerts"] == 1
    alert(db, age_days=500)
    assert run_daily(db, cfg, owner="replica-b") is None  # a already did today's
    assert run_daily(db, cfg, owner="replica-b", force=True) is not None
    assert _count(db, Alert) == 0


def test_an_expired_lease_is_taken_over(db: Database) -> None:
    dead = Lease(db, "retention_purge", timedelta(seconds=-1), owner="dead-replica")
    assert dead.acquire()  # already expired: it stopped renewing
    assert Lease(db, "retention_purge", timedelta(minutes=5), owner="b").acquire()
    assert not dead.renew()  # fenced: it cannot extend a lease it lost


def test_metrics_count_purged_rows_and_show_the_oldest_row(db: Database) -> None:
    alert(db, age_days=500)
    alert(db, age_days=20)
    before = metrics.RETENTION_PURGED.labels("alerts")._value.get()
    cfg = RetentionConfig.model_validate(CONFIG)
    purge.run(db, current_policy(db, cfg), batch_size=10)
    assert metrics.RETENTION_PURGED.labels("alerts")._value.get() - before == 1
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OldestRowCollector(db))
    text = generate_latest(reg).decode()
    name = 'securitybot_retention_oldest_row_age_seconds{category="alerts"}'
    line = next(x for x in text.splitlines() if x.startswith(name))
    assert 19 * 86400 < float(line.split()[-1]) < 21 * 86400
    assert 'securitybot_retention_oldest_row_age_seconds{category="aer"} 0.0' in text


def test_cli_purge_dry_run_shows_what_would_go(db: Database, db_url: str, tmp_path: Path) -> None:
    alert(db, age_days=500)
    alert(db, age_days=500, status="escalated")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"url": db_url},
                                   "retention": {"alerts": "400d", "outbox": "14d"}}))  # fmt: skip
    result = CliRunner().invoke(main, ["purge", "--dry-run", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "alerts: would purge 1 rows older than" in result.output
    assert "outbox: would purge 4 rows older than" in result.output
    assert "audit: kept (retention.audit is 0)" in result.output
    assert _count(db, Alert) == 2
    result = CliRunner().invoke(main, ["purge", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "alerts: purged 1 rows" in result.output
    assert _count(db, Alert) == 1


def test_unset_or_zero_keeps_everything() -> None:
    assert not RetentionConfig().enabled
    cfg = RetentionConfig.model_validate({"alerts": 0, "audit": None, "outbox": "14d"})
    assert cfg.alerts == 0 and cfg.audit == 0 and cfg.enabled


def test_batches_cost_the_same_and_the_young_tail_is_not_scanned(db: Database) -> None:
    for days in (500, 500, 500):
        alert(db, age_days=days, jobs=0, audit=0)
    for _ in range(40):
        alert(db, age_days=1, jobs=0, audit=0)
    windows: list[str] = []

    def note(_c: object, _cur: object, sql: str, *_: object) -> None:
        if sql.lstrip().upper().startswith("SELECT ALERTS.ID, ALERTS.CREATED_AT"):
            windows.append(sql)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        report = purge.run(db, current_policy(db, RetentionConfig(alerts=400 * 86400)),
                           batch_size=2)  # fmt: skip
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert report.tables["alerts"] == 3
    # Windows of two ids: [old, old], [old, young], then [young, young] ends the scan.
    assert len(windows) == 3
    assert all("LIMIT" in w.upper() and "ALERTS.ID >" in w.upper() for w in windows)
