"""AER service pieces against a real database: cold start, settings audit, audit-log poller."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from securitybot.aer.events import parse_event
from securitybot.aer.poller import POLLER_NAME, AuditLogPoller
from securitybot.aer.service import AerService
from securitybot.aer.settings_audit import SETTINGS_CHANGED
from securitybot.aer.store import poller_position
from securitybot.config import AerAuditLogs, AerConfig
from securitybot.demo import FakeSlack
from securitybot.store.aer_models import AerAnomaly
from securitybot.store.db import Database
from securitybot.store.models import AuditLog
from tests.aer_e2e.conftest import QUIET, aer_config


def _events(org: str, user: str, n: int) -> list[object]:
    now = datetime.now(UTC)
    raw = {"org": org, "user": user, "action": "file_download"}
    return [parse_event(raw, now) for _ in range(n)]


def test_cold_start_org_uses_the_default_threshold_until_it_has_history(db: Database) -> None:
    svc = AerService(AerConfig.model_validate(aer_config()), db)
    assert svc.ingest(_events("TNEW", "UZED", 300)).anomalies == 0  # default: above 300
    result = svc.ingest(_events("TNEW", "UZED", 1))
    assert result.anomalies == 1 and result.decisions == {"notify": 1}
    with db.read() as session:
        row = session.scalars(select(AerAnomaly)).one()
    assert (row.type, row.threshold, row.observed) == ("excessive_downloads", "300.0", "301")


def test_a_restart_resumes_the_live_hour_from_sql(db: Database) -> None:
    cfg = AerConfig.model_validate(aer_config())
    AerService(cfg, db).ingest(_events("TNEW", "UZED", 250))
    again = AerService(cfg, db)
    again.load_state()
    assert again.ingest(_events("TNEW", "UZED", 60)).anomalies == 1  # 310 > 300


def _settings_audits(db: Database) -> list[AuditLog]:
    with db.read() as session:
        q = select(AuditLog).where(AuditLog.action == SETTINGS_CHANGED).order_by(AuditLog.id)
        return list(session.scalars(q))


def test_a_change_of_an_orgs_settings_is_audited_with_old_and_new(db: Database) -> None:
    first = AerService(AerConfig.model_validate(aer_config()), db)
    assert sorted(first.audit_settings_changes()) == ["*", "TBUSY", QUIET]
    assert AerService(AerConfig.model_validate(aer_config()), db).audit_settings_changes() == []
    changed = aer_config()
    changed["orgs"][QUIET] = {**changed["orgs"][QUIET], "cooldown": "2h"}
    assert AerService(AerConfig.model_validate(changed), db).audit_settings_changes() == [QUIET]
    last = _settings_audits(db)[-1]
    assert (last.org, last.actor) == (QUIET, "config")
    assert "cooldown" not in last.details["old"] and last.details["new"]["cooldown"] == "2h"


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.admin_token = "xoxp-org"
        yield fake


def _entry(n: int, user: str, reason: str, session: str) -> dict[str, object]:
    return {
        "id": f"e{n}", "date_create": 1_700_000_000 + n, "action": "anomaly",
        "actor": {"type": "user", "user": {"id": user}},
        "entity": {"type": "user", "user": {"id": user}},
        "context": {"location": {"type": "workspace", "id": QUIET}, "session_id": session,
                    "ip_address": "203.0.113.5", "ua": "curl/8"},
        "details": {"reason": [reason]},
    }  # fmt: skip


def test_poller_pages_through_slack_anomalies_honours_429_and_resumes_from_sql(
    db: Database, fs: FakeSlack
) -> None:
    import asyncio

    fs.audit_entries.extend(_entry(i, "UBOB", "asn", f"S{i}") for i in range(5))
    fs.audit_entries.append({**_entry(9, "UBOB", "asn", "S9"), "action": "user_login"})
    fs.fail_next("audit.logs", status=429, retry_after=2)
    cfg = AerAuditLogs(token=SecretStr("xoxp-org"), api_url=fs.audit_base_url, page_size=2,
                       max_calls_per_minute=6000)  # fmt: skip
    svc = AerService(AerConfig.model_validate(aer_config()), db)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    poller = AuditLogPoller(svc, cfg, sleep=sleep)
    assert asyncio.run(poller.poll_once()) == 5
    assert 2.0 in waits  # the 429's Retry-After was waited out, then the page retried
    pages = [c for c in fs.calls_to("audit.logs") if c.status == 200]
    assert len(pages) == 3 and all(c.params["action"] == "anomaly" for c in pages)
    assert [bool(c.params.get("cursor")) for c in pages] == [False, True, True]
    with db.read() as session:
        assert poller_position(session, POLLER_NAME) == (None, 1_700_000_004, 1_700_000_004)
        rows = list(session.scalars(select(AerAnomaly).order_by(AerAnomaly.id)))
    assert [r.source_ref for r in rows] == [f"e{i}" for i in range(5)]
    assert {(r.source, r.type, r.verdict) for r in rows} == {("slack_audit", "asn", "notify")}

    # A fresh poller (a restart) starts from the stored position: only the new entry counts.
    fs.audit_entries.append(_entry(7, "UBOB", "tor", "S7"))
    fs.reset_calls()
    again = AuditLogPoller(svc, cfg, sleep=sleep)
    assert asyncio.run(again.poll_once()) == 1
    (call,) = fs.calls_to("audit.logs")
    assert call.params["oldest"] == str(1_700_000_004) and not call.params.get("cursor")
