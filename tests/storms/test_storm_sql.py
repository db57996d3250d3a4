"""The storm guard in the store, on SQLite and PostgreSQL: who counts (distinct people per
detection, ``always_escalate`` kinds too, per-kind limits), one page per storm, the API and
the decisions' audit and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select
from starlette.testclient import TestClient

from securitybot.config import Settings, StormConfig
from securitybot.kinds import load_kinds
from securitybot.paging.hooks import SESSION_KEY as PAGING_KEY
from securitybot.paging.hooks import PagingRules
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow
from securitybot.store.paging_models import Page, PagedAlert
from securitybot.store.storm_models import Storm, StormDm
from securitybot.storms.guard import SESSION_KEY
from securitybot.storms.hold import storm_guard
from tests.api.conftest import ADMIN_TOKEN, LEAD, TOKEN, serve
from tests.flows.stored import stored_alert

LIMIT = StormConfig(max_people=2, window=600.0, kinds={"mass_download": {"max_people": 4}})


def _alerts(db: Database, people: list[int], **values: Any) -> list[int]:
    return [
        stored_alert(db, status="new", user_id=f"UPERSON{p}", user_given=f"p{p}@example.com",
                     dedup_key=f"{values.get('kind', 'k')}-{n}-{p}", **values)
        for n, p in enumerate(people)
    ]  # fmt: skip


def _guard(db: Database, ids: list[int], cfg: StormConfig = LIMIT) -> list[int]:
    """Run the guard over ``ids`` as the DM path does; the ids it let through."""
    with db.write() as session:
        session.info[SESSION_KEY] = cfg
        alerts = [a for a in (session.get(Alert, i) for i in ids) if a is not None]
        found = {a.id: {"user_id": a.user_id, "user_name": a.user_id} for a in alerts}
        return [a.id for a in storm_guard(session, alerts, found)]


def _status(db: Database, ids: list[int]) -> list[str]:
    with db.read() as session:
        return [session.get(Alert, i).status for i in ids]  # type: ignore[union-attr]


def test_distinct_people_count_and_always_escalate_kinds_are_held_too(db: Database) -> None:
    ids = _alerts(db, [0, 1, 0, 2, 3], policy={"always_escalate": True})
    # person 0 twice is one person: 0, 1 and 0 again go through, 2 and 3 are held
    assert _guard(db, ids) == ids[:3]
    assert _status(db, ids) == ["new", "new", "new", "held", "held"]
    with db.read() as session:
        storm = session.scalars(select(Storm)).one()
        assert (storm.kind, storm.source, storm.people, storm.held) == (
            "sensitive_command", "test", 2, 2
        )  # fmt: skip
        assert session.get(Alert, ids[3]).escalation_reason == "storm"  # type: ignore[union-attr]


def test_per_kind_limits_and_detections_are_counted_apart(db: Database) -> None:
    mass = _alerts(db, [0, 1, 2, 3, 4], kind="mass_download")
    other_source = _alerts(db, [0, 1, 2], source="other")
    assert _guard(db, mass) == mass[:4]
    assert _guard(db, other_source) == other_source[:2]
    with db.read() as session:
        keys = sorted(session.scalars(select(Storm.key)))
    assert keys == ["mass_download:test", "sensitive_command:other"]


def test_a_storm_opens_one_page_and_one_message(db: Database) -> None:
    kinds = load_kinds(Settings().alerts.dir)
    db.session_info[PAGING_KEY] = PagingRules(
        ("pagerduty",), frozenset({"high"}), "always", 600.0, None, kinds
    )
    held_before = REGISTRY.get_sample_value(
        "securitybot_storm_alerts_held_total", {"kind": "sensitive_command"}
    ) or 0.0  # fmt: skip
    _guard(db, _alerts(db, [0, 1, 2, 3]))
    _guard(db, _alerts(db, [4, 5], title="later"))  # late arrivals join
    with db.read() as session:
        pages = session.execute(select(Page.dedup_key, Page.group_key)).all()
        linked = session.scalar(select(func.count()).select_from(PagedAlert))
        effects = list(session.scalars(select(Outbox.effect).order_by(Outbox.id)))
    storm_id = _storm_ids(db)[0]
    assert pages == [(f"securitybot-storm-{storm_id}", str(storm_id))]
    assert linked == 4
    assert effects.count("page_trigger") == 1
    assert effects.count("storm_post") == 1 and effects.count("storm_update") == 1
    assert REGISTRY.get_sample_value(
        "securitybot_storm_alerts_held_total", {"kind": "sensitive_command"}
    ) == held_before + 4  # fmt: skip


def _storm_ids(db: Database) -> list[int]:
    with db.read() as session:
        return list(session.scalars(select(Storm.id).order_by(Storm.id)))


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    settings = Settings.model_validate({
        "database": {"url": db_url},
        "ingest": {"tokens": [{"source": "monitoring", "token": TOKEN},
                              {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["admin"]}]},
        "escalation": {"responders": [LEAD, "UPERSON3"]},
        "storm": {"max_people": 2},
        "scheduler": {"enabled": False},
    })  # fmt: skip
    yield from serve(settings, db)


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_the_api_lists_and_decides_storms_once_audited(client: TestClient, db: Database) -> None:
    ids = _alerts(db, [0, 1, 2, 3])
    _guard(db, ids)
    assert client.get("/api/v1/storms", headers={"Authorization": f"Bearer {TOKEN}"}
                      ).status_code == 403  # fmt: skip
    (storm,) = client.get("/api/v1/storms", headers=_admin()).json()["storms"]
    assert (storm["status"], storm["held"], storm["users"]) == ("open", 2, ["UPERSON2", "UPERSON3"])
    path = f"/api/v1/storms/{storm['id']}/discard"
    # a responder the storm holds an alert about may not decide on it
    refused = client.post(path, headers=_admin(), json={"requested_by": "UPERSON3"})
    assert refused.status_code == 403
    stale = client.post(path, headers=_admin(), json={"requested_by": LEAD, "held": 1})
    assert stale.status_code == 409
    assert client.post(path, headers=_admin(), json={"requested_by": "nobody"}).status_code == 422
    done = client.post(path, headers=_admin(), json={"requested_by": LEAD, "held": 2})
    assert done.status_code == 200 and done.json()["status"] == "discarded"
    again = client.post(f"/api/v1/storms/{storm['id']}/release", headers=_admin(),
                        json={"requested_by": LEAD})  # fmt: skip
    assert again.status_code == 409
    assert _status(db, ids) == ["new", "new", "closed", "closed"]
    with db.read() as session:
        (row,) = session.scalars(select(AuditLog).where(AuditLog.action == "storm.discarded"))
        assert row.actor == LEAD and row.details["alerts"] == 2
        held = client.get(
            "/api/v1/alerts?status=held", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert held.status_code == 200 and held.json()["alerts"] == []


def test_a_batch_reads_only_its_own_people_of_the_window(db: Database) -> None:
    # A detection allowed many people (storm.kinds.<kind>.max_people) that has DMed 60 in the
    # window: each batch read all of them again, under the detection's lock (60,000 after ten
    # minutes at 100 alerts a second). Now the count, and whether the batch's people are in it.
    wide = StormConfig(max_people=1000, window=600.0)
    for person in range(60):
        assert len(_guard(db, _alerts(db, [person]), wide)) == 1
    seen: list[tuple[str, Any]] = []

    def note(_c: object, _cur: object, sql: str, params: Any, *_: object) -> None:
        seen.append((sql, params))

    event.listen(db.engine, "after_cursor_execute", note)
    try:
        again = _alerts(db, [60, 7])  # a new person, and one the window counts already
        assert _guard(db, again, wide) == again
    finally:
        event.remove(db.engine, "after_cursor_execute", note)
    reads = [(sql, p) for sql, p in seen
             if sql.lstrip().upper().startswith("SELECT") and "storm_dms" in sql]  # fmt: skip
    assert reads, "the guard read nothing of the window"
    with db.read() as session:
        conn = session.connection()
        for sql, params in reads:
            rows = conn.exec_driver_sql(sql, params).all()
            assert len(rows) <= 2, (sql, len(rows))
        people = session.scalar(select(func.count(func.distinct(StormDm.user_id))))
    assert people == 61


def test_rows_the_previous_release_wrote_per_dm_count_each_person_once(db: Database) -> None:
    # During a rolling restart the old replicas still write a row per DM (docs/upgrades.md).
    now = utcnow()
    with db.write() as session:
        session.add_all(StormDm(key="sensitive_command:test", user_id="UPERSON0", alert_id=n,
                                at=now) for n in range(3))  # fmt: skip
    ids = _alerts(db, [1, 2])  # person 0 counts once: 1 fits under max_people=2, 2 does not
    assert _guard(db, ids) == ids[:1]
    assert _status(db, ids) == ["new", "held"]
