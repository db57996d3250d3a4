"""One person (Alice) seeded into every table of the store, and a way to find her again."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from securitybot.privacy.erase import all_tables
from securitybot.store.aer_budget_models import (
    AerHeldBatch,
    AerHeldReset,
    AerResetBudget,
    AerResetGrant,
)
from securitybot.store.aer_models import (
    AerAnomaly,
    AerBaseline,
    AerCounter,
    AerDeadLetter,
    AerNotification,
    AerPartition,
    AerPollerState,
    AerProfile,
    AerSession,
    AerSettingsSnapshot,
    AerThreatList,
    AerUserState,
    AerVersion,
    AerWorker,
)
from securitybot.store.dashboard_models import DashboardSessionRow, LoginAttempt
from securitybot.store.db import Database
from securitybot.store.models import (
    Alert,
    AuditLog,
    Exemption,
    Outbox,
    SeenSignature,
    SlackReceipt,
    Snooze,
    utcnow,
)
from securitybot.store.osquery_models import OsqueryNode
from securitybot.store.paging_models import Page, PagedAlert, PagerDutyWebhook
from securitybot.store.privacy_models import JobLease
from securitybot.store.slack_people_models import SlackPerson
from securitybot.store.storm_models import Storm, StormAlert, StormDm, StormKey
from securitybot.store.suppression_models import SuppressionRule

EMAIL = "alice@example.com"
UID = "U0ALICE1"
DM = "D0ALICE1"
# What must not survive an erasure (case-insensitive, whole words).
IDENTIFYING = [EMAIL, UID, DM, "Alice Liddell", "Alice", "alice", "my secret reason",
               "203.0.113.7", "sess-a-1", "AliceBrowser/1.0"]  # fmt: skip
SLACK_USER = {"id": UID, "name": "alice", "real_name": "Alice Liddell", "first_name": "Alice",
              "email": EMAIL, "tz": "Europe/London", "is_bot": False, "deleted": False}  # fmt: skip
BOB = "bob@example.com"


def _now_minus(hours: float) -> Any:
    return utcnow() - timedelta(hours=hours)


def seed_core(s: Session) -> dict[str, int]:
    alice = Alert(kind="sensitive_command", severity="high", source="siem", user_given=EMAIL,
                  user_id=UID, user_name="Alice Liddell", title=f"flurb -export by {EMAIL}",
                  description="Alice ran it on alice-laptop", status="resolved",
                  outcome="confirmed", details={"host": "alice-laptop", "user": EMAIL},
                  dedup_key=f"evt-{EMAIL}", user_answer="yes", user_comment="my secret reason",
                  dm_channel=DM, dm_ts="1.1", duo_txid="tx-1")  # fmt: skip
    bob = Alert(kind="sensitive_command", severity="high", source="siem", user_given=BOB,
                user_id="U0BOB", title="flurb by bob", description="reported by Alice Liddell",
                status="closed", claimed_by=UID, details={"host": "bobbox"})  # fmt: skip
    s.add_all([alice, bob])
    s.flush()
    s.add_all([
        AuditLog(alert_id=alice.id, actor=UID, action="answered",
                 details={"comment": "my secret reason", "via": "button"}, subject_user=UID),
        AuditLog(alert_id=alice.id, actor="system", action="dm_reply_edited",
                 details={"text": "ack my secret reason", "reply_ts": "1.2"}),
        AuditLog(alert_id=bob.id, actor=UID, action="claimed", details={}),
        AuditLog(actor="U0BOB", action="exemption_added", subject_user=EMAIL,
                 details={"user": EMAIL, "reason": "Alice is on leave"}),
        Outbox(alert_id=alice.id, effect="send_dm", status="done", idempotency_key=f"dm:{UID}",
               payload={"channel": DM, "text": "Hi Alice, did you run flurb?"},
               last_error=f"user_not_found {UID}"),
        Exemption(user=EMAIL, reason="on leave", created_by="U0BOB"),
        Exemption(user="carol@example.com", reason="service account", created_by=UID),
        Snooze(user_id=UID, kind="sensitive_command", scope={"host": "alice-laptop"},
               scope_key="k1", expires_at=_now_minus(-24)),
        SuppressionRule(kind="sensitive_command", matchers={"user": EMAIL},
                        reason="Alice's pentest", created_by=UID, expires_at=_now_minus(-24)),
        SlackReceipt(key="Ev0001", kind="event"),
        SeenSignature(signature_digest="ab" * 32, source="siem"),
        SlackPerson(key=EMAIL, user=SLACK_USER, user_cached_at=utcnow()),
        SlackPerson(key=UID, user=SLACK_USER, user_cached_at=utcnow(), dm_channel=DM,
                    locale="de"),  # the team's language choice (issue 33)
        Page(provider="pagerduty", dedup_key="sb-1", alert_id=alice.id, status="resolved",
             group_key=f"sensitive_command:{UID}", acknowledged_by="Alice Liddell"),
        PagedAlert(alert_id=alice.id, dedup_key="sb-1"),
        PagerDutyWebhook(event_id="01PD"),
        LoginAttempt(key="user:alice", failures=2),
        DashboardSessionRow(id="s" * 40, username="alice", via="oidc", email=EMAIL,
                            subject="okta|alice", expires_at=_now_minus(-8)),
        OsqueryNode(key_hash="cd" * 32, source="osquery", host_identifier="alice-laptop"),
        JobLease(name="retention_purge", owner="host-1:42:abcd"),
    ])  # fmt: skip
    return {"alice": alice.id, "bob": bob.id}


def seed_aer(s: Session) -> None:
    hour = _now_minus(2).replace(minute=0, second=0, microsecond=0)
    s.add_all([
        AerCounter(org="o", user_id=UID, action="download", bucket_start=hour, count=7),
        AerCounter(org="o", user_id=EMAIL, action="download", bucket_start=hour, count=3),
        AerCounter(org="o", user_id="U0BOB", action="download", bucket_start=hour, count=1),
        AerBaseline(org="o", action="download", level=1, samples=5, p50=1, p90=2, p99=3, mad=1),
        AerProfile(org="o", user_id=UID, countries=["GB"], asns=[1], ua_products=["Firefox"]),
        AerUserState(org="o", user_id=UID, reset_sessions=["sess-a-1"]),
        AerSession(org="o", session_id="sess-a-1", user_id=UID, user_agent="AliceBrowser/1.0"),
        AerAnomaly(org="o", user_id=UID, type="new_country", rule="geo", source="events",
                   session_id="sess-a-1", ip="203.0.113.7", user_agent="AliceBrowser/1.0",
                   observed="FR", details={"email": EMAIL, "city": "Paris"},
                   verdict="reset", reason="Alice Liddell signed in from FR", source_ref="audit-1",
                   occurred_at=utcnow()),
        AerNotification(org="o", user_id=UID, type="reset", recipient=UID,
                        last_reason=f"sessions of {EMAIL} reset", channel=DM, ts="2.2",
                        last_reason_i18n={"template": "{what}: the user is excluded from AER",
                                          "args": {"what": f"sessions of {EMAIL}"}}),
        AerSettingsSnapshot(org="o", settings={"contacts": {"o": EMAIL}}),
        AerPollerState(name="slack_audit", cursor="c1"),
        AerVersion(name="baselines", version=3),
        AerThreatList(name="tor", entries=["198.51.100.7"]),
        AerPartition(stream="AER", partition=0, owner="w1"),
        AerWorker(stream="AER", worker="w1"),
        AerDeadLetter(stream="AER", seq=1, partition=0, subject="aer.events.o", reason="bad_mac",
                      data=json.dumps({"user": EMAIL}).encode(), stored_at=utcnow()),
        AerDeadLetter(stream="AER", seq=2, partition=0, subject="aer.events.o", reason="bad_mac",
                      data=b'{"user": "U0BOB"}', stored_at=utcnow()),
        AerResetBudget(org="o"),
        AerResetGrant(org="o", anomaly_id=1),
        AerHeldBatch(org="o", budget_count=1, budget_per=3600, resolved_by=UID,
                     status="discarded"),
        AerHeldReset(batch_id=1, org="o", user_id=UID, anomaly_id=1, status="discarded",
                     payload={"email": EMAIL}),
    ])  # fmt: skip


def seed_storms(s: Session, alert_id: int) -> None:
    s.add_all([
        StormKey(key="sensitive_command:siem"),
        StormDm(key="sensitive_command:siem", user_id=UID, alert_id=alert_id),
        StormDm(key="sensitive_command:siem", user_id="U0BOB", alert_id=alert_id + 1),
        Storm(key="sensitive_command:siem", kind="sensitive_command", source="siem",
              status="discarded", max_people=25, window=600.0, resolved_by=UID),
        StormAlert(alert_id=alert_id, storm_id=1, user_id=UID),
    ])  # fmt: skip


def seed_slack_install(s: Session) -> None:
    """Alice installed the app in a second workspace (slack.oauth), as slack_sdk stores it."""
    installs = all_tables()["slack_installations"]
    s.execute(insert(installs).values(
        client_id="2141029472.691202649728", app_id="A0KRD7HC3", team_id="T0BLUE",
        bot_token="xoxb-blue", bot_user_id="U0BLUEBOT", user_id=UID, user_token="xoxp-alice",
        user_scopes="chat:write", is_enterprise_install=False, installed_at=utcnow(),
    ))  # fmt: skip


def seed(db: Database) -> dict[str, int]:
    with db.write() as s:
        ids = seed_core(s)
        seed_aer(s)
        seed_storms(s, ids["alice"])
        seed_slack_install(s)
    return ids


def dump(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text."""
    out: dict[str, list[str]] = {}
    with db.read() as s:
        for name, table in all_tables().items():
            rows = s.execute(select(table)).mappings().all()
            out[name] = [json.dumps({k: _plain(v) for k, v in r.items()}, ensure_ascii=False,
                                    default=str) for r in rows]  # fmt: skip
    return out


def _plain(v: Any) -> Any:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def finds(text: str) -> list[str]:
    return [w for w in IDENTIFYING
            if re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", text, re.I)]  # fmt: skip


Seeder = Callable[[Session], Any]
